// src/pool/gate.hpp: the lifecycle both pool cores share (private).
#pragma once

#include <cstddef>
#include <exception>
#include <mutex>
#include <stdexcept>

#include "mproc/errors.hpp"

namespace mproc::detail::pool {

// The lifecycle both pools share: running, then closed (no new calls, though an imap begun
// before may still feed its input), then terminating; and broken, once a worker could not be
// set up.
struct Gate {
    enum class State { Running, Closed, Terminating };
    virtual ~Gate() = default;
    // Tells the pool's own thread(s) that the state or the work changed.
    virtual void wake() noexcept = 0;

    std::mutex mu;
    State state = State::Running;
    std::size_t streams = 0;
    std::exception_ptr broken;

    // Under mu, for a new chunk: null to take it, else the error to fail it with. A new call
    // (not the next chunk of an imap) after close is std::logic_error.
    std::exception_ptr admit_locked(bool stream) const {
        if (broken) return broken;
        if (!stream && state != State::Running) throw_closed();
        if (state == State::Terminating) return terminated_error();
        return nullptr;
    }
    void check_accepting() {
        std::lock_guard lk(mu);
        if (broken) std::rethrow_exception(broken);
        if (state != State::Running) throw_closed();
    }
    void stream_opened() {
        std::lock_guard lk(mu);
        ++streams;
    }
    void stream_closed() {
        std::lock_guard lk(mu);
        --streams;
    }
    void close() {
        std::lock_guard lk(mu);
        if (state == State::Running) state = State::Closed;
    }
    void check_joinable() {
        std::lock_guard lk(mu);
        if (state == State::Running)
            throw std::logic_error("mproc: join() needs close() or terminate() first (Python: ValueError)");
    }
    [[noreturn]] static void throw_closed() {
        throw std::logic_error("mproc: the pool is closed or terminated; it takes no new tasks");
    }
    static std::exception_ptr terminated_error() {
        return std::make_exception_ptr(ProcessError("mproc: the pool was terminated before this task finished"));
    }
};

}  // namespace mproc::detail::pool
