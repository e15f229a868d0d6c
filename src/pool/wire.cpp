// src/pool/wire.cpp: the out-of-line parts of the pool's wire protocol (detail/pool_wire.hpp),
// and the look-before-sleeping poll both of its sides use.

#include <chrono>
#include <string>
#include <thread>
#include <typeinfo>

#include "mproc/connection.hpp"
#include "mproc/detail/pool_wire.hpp"
#include "platform/platform.hpp"
#include "pool/pool_internal.hpp"

namespace mproc::detail::pool {

namespace {
using Clock = std::chrono::steady_clock;

std::int64_t now_ns() noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

// Before a worker, or a thread waiting for a result, goes to sleep on its socket, it looks for
// the next message for a short while. Sleeping and being woken costs a wake-up on another CPU,
// which on a virtual machine is tens of microseconds (a halted virtual CPU must be woken); a
// call answered within the window costs neither side a sleep. Bounded, so an idle pool burns
// at most this much CPU per message.
constexpr auto kLookBeforeSleep = std::chrono::microseconds(30);
constexpr unsigned kYieldEvery = 2;
}  // namespace

void ChunkContext::begin_chunk(std::uint64_t seq, bool timed) noexcept {
    seq_ = seq;
    timed_ = timed;
    begin_item(0);
}

void ChunkContext::begin_item(std::uint32_t index) noexcept {
    auto* s = static_cast<Slot*>(slot_);
    if (timed_) s->started_ns.store(now_ns(), std::memory_order_relaxed);
    s->pos.store(slot_pos(seq_, index), std::memory_order_release);
}

std::exception_ptr result_too_large(std::size_t size, std::size_t cap) {
    return std::make_exception_ptr(ProcessError(
        "mproc: the task's result takes " + std::to_string(size) + " bytes serialized, more than "
        "the pool's max_result_bytes (" + std::to_string(cap) + "); it was not sent"));
}

std::size_t begin_message(std::string& out) {
    out.clear();
    return write_envelope(out, typeid(PoolMessage));
}

std::string_view message_body(const std::string& msg) {
    return std::string_view(msg).substr(check_envelope(msg, typeid(PoolMessage)).payload_offset);
}

std::vector<std::size_t> look_readable(std::span<const int> fds) {
    const auto until = Clock::now() + kLookBeforeSleep;
    const platform::Deadline now = platform::Deadline::after(Timeout(0.0));
    for (unsigned i = 1;; ++i) {
        std::vector<std::size_t> ready = platform::wait_any_readable(fds, now);
        if (!ready.empty() || Clock::now() >= until) return ready;
        // Now and then a thread that shares this CPU (the other side?) runs first.
        if (i % kYieldEvery == 0) std::this_thread::yield();
    }
}

void close_unclaimed(std::vector<int>& fds) noexcept {
    for (int fd : fds)
        if (fd >= 0) platform::UniqueFd closer(fd);
    fds.clear();
}

}  // namespace mproc::detail::pool
