// src/forkserver.hpp: a process that forks children on request (internal; forkserver.cpp,
// where its protocol is written down).
//
// The forkserver start method uses one, started as a fresh run of this executable; a process
// pool under the fork start method uses its own, forked from the pool's creator (forked =
// true), so that its workers are copies of that moment while the creator itself never forks a
// process that runs the pool's threads. The server exits when its control socket closes;
// stop() waits for it.
#pragma once

#include <memory>
#include <mutex>
#include <span>
#include <string>

#include "platform/fd.hpp"
#include "platform/process.hpp"
#include "popen.hpp"

namespace mproc::detail {

class ForkServer {
public:
    explicit ForkServer(bool forked);
    ForkServer(const ForkServer&) = delete;
    ForkServer& operator=(const ForkServer&) = delete;
    ~ForkServer();

    // Starts the server now rather than with the first child.
    void start();
    std::unique_ptr<Popen> start_child(const std::string& job, std::span<const int> fds);
    void stop() noexcept;
    pid_t pid() const noexcept;
    int control_fd() const noexcept;
    // In a fork child: drops this process's copy of the control socket (async-signal-safe).
    void forget_after_fork() noexcept {
        control_.reset();
        pid_ = -1;
    }

private:
    int ensure_running_locked();

    mutable std::mutex mu_;
    const bool forked_;
    platform::UniqueFd control_;
    pid_t pid_ = -1;
};

// The forkserver process's loop; never returns.
[[noreturn]] void forkserver_main(int control_fd) noexcept;
// Stops the forkserver start method's server, if one runs (at exit).
void stop_forkserver() noexcept;

}  // namespace mproc::detail
