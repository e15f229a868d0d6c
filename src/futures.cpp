// Executors (Python: concurrent.futures): options translated into a pool's (pool.cpp).
#include "mproc/futures.hpp"

#include <cxxabi.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <typeinfo>

#include "platform/io.hpp"
#include "platform/sync.hpp"

namespace mproc::detail {

namespace {
struct RaisedEvent {
    platform::UniqueFd fd = platform::make_event();
    std::atomic<bool> raised{false};
    void raise() noexcept {
        if (!raised.exchange(true, std::memory_order_acq_rel)) platform::event_notify(fd.get());
    }
};
}  // namespace

int DoneEvent::fd(const std::function<void(std::function<void()>)>& subscribe, bool done) {
    std::call_once(once_, [&] {
        auto event = std::make_shared<RaisedEvent>();
        // The callback holds the descriptor too: it may run after the owner is gone (a pool's
        // job outlives the future that was dropped), and must not write to a number reused since.
        subscribe([event] { event->raise(); });
        fd_ = event->fd.get();
        event_ = std::move(event);
    });
    // The callbacks run a moment after the result is marked done (after its waiters woke), so
    // one who saw it done raises it here rather than find it unreadable for that moment.
    if (done) static_cast<RaisedEvent*>(event_.get())->raise();
    return fd_;
}

}  // namespace mproc::detail

namespace mproc::futures {

namespace detail {
namespace {
std::uint32_t* word(std::atomic<std::uint32_t>& a) { return reinterpret_cast<std::uint32_t*>(&a); }

std::string exception_type_name(const std::exception_ptr& e) {
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& x) {
        return mproc::detail::type_name(typeid(x));
    } catch (...) {
        const std::type_info* t = abi::__cxa_current_exception_type();
        return t ? mproc::detail::type_name(*t) : "unknown";
    }
}
}  // namespace

void refuse_executor_future(const char* method) {
    throw InvalidStateError(std::string("mproc: ") + method +
                            " on an executor's future: its executor alone completes it; only a "
                            "future made by Future() is completed by its holders");
}

// Python's '{state}: {repr}', e.g. "FINISHED: <Future at 0x7f3c state=finished returned int>".
std::string describe_future(const void* id, std::uint32_t state, bool notified, const std::string& result_type,
                            const std::exception_ptr& error) {
    std::string name, shown;
    switch (state) {
        case TaskSync::kPending:
            name = "PENDING", shown = "pending";
            break;
        case TaskSync::kRunning:
            name = "RUNNING", shown = "running";
            break;
        case TaskSync::kCancelled:
            name = notified ? "CANCELLED_AND_NOTIFIED" : "CANCELLED", shown = "cancelled";
            break;
        case TaskSync::kFinished:
            name = "FINISHED";
            shown = error ? "finished raised " + exception_type_name(error) : "finished returned " + result_type;
            break;
        default:  // claimed: another thread is storing its outcome
            name = "FINISHED", shown = "finished";
    }
    char address[32];
    std::snprintf(address, sizeof address, "%#jx", static_cast<std::uintmax_t>(reinterpret_cast<std::uintptr_t>(id)));
    return name + ": <Future at " + address + " state=" + shown + ">";
}

bool TaskSync::try_claim() noexcept {
    std::uint32_t s = state_.load(std::memory_order_acquire);
    while (s == kPending || s == kRunning)
        if (state_.compare_exchange_weak(s, s == kPending ? kClaimedPending : kClaimedRunning, std::memory_order_acq_rel))
            return true;
    return false;
}

bool TaskSync::try_cancel() noexcept {
    std::uint32_t p = kPending;
    if (!state_.compare_exchange_strong(p, kCancelled, std::memory_order_acq_rel)) return p == kCancelled;
    publish(kCancelled);
    return true;
}

// The store and the loads are sequentially consistent, paired with those of wait_done and
// add_callback: either the waiter sees the final state, or this sees the waiter (Dekker).
void TaskSync::publish(std::uint32_t final_state) noexcept {
    state_.store(final_state, std::memory_order_seq_cst);
    if (waiters_.load(std::memory_order_seq_cst) > 0) platform::futex_wake(word(state_), INT_MAX);
    if (has_callbacks_.load(std::memory_order_seq_cst)) run_callbacks();
}

bool TaskSync::wait_done(const Timeout& timeout) {
    if (is_done()) return true;
    const platform::Deadline deadline = platform::Deadline::after(timeout);
    waiters_.fetch_add(1, std::memory_order_seq_cst);
    for (;;) {
        const std::uint32_t s = state_.load(std::memory_order_seq_cst);
        if (s >= kFinished) break;
        if (platform::futex_wait(word(state_), s, deadline) == platform::Wake::Deadline) break;
    }
    waiters_.fetch_sub(1, std::memory_order_relaxed);
    return is_done();
}

void TaskSync::add_callback(std::function<void()> f) {
    {
        std::lock_guard lk(callbacks_mu_);
        if (!is_done()) {
            callbacks_.push_back(std::move(f));
            f = nullptr;
        }
    }
    if (f) return mproc::detail::pool::run_callback(f);  // done already: now, in this thread
    has_callbacks_.store(true, std::memory_order_seq_cst);
    // Finished between the check and the flag: publish may not have seen the flag.
    if (state_.load(std::memory_order_seq_cst) >= kFinished) run_callbacks();
}

// Whoever takes the list runs it, so each callback runs once.
void TaskSync::run_callbacks() noexcept {
    std::vector<std::function<void()>> now;
    {
        std::lock_guard lk(callbacks_mu_);
        now.swap(callbacks_);
    }
    for (auto& f : now) mproc::detail::pool::run_callback(f);
}
}  // namespace detail

namespace {
std::atomic<unsigned> executor_counter{0};
}

ThreadPoolExecutor::ThreadPoolExecutor(ThreadPoolExecutorOptions o)
    : Executor(PoolOptions{
          .processes = o.max_workers.value_or(std::min(32, process_cpu_count() + 4)),
          .initializer = std::move(o.initializer),
          .thread_name_prefix = o.thread_name_prefix.empty()
                                    ? "ThreadPoolExecutor-" + std::to_string(executor_counter++)
                                    : o.thread_name_prefix}) {}

namespace {
// Python 3.11+: max_tasks_per_child without an mp_context means the "spawn" context, not the
// default one (replacement workers start while the parent runs other threads, where a fork
// could copy a lock one of them holds).
std::string executor_start_method(const ProcessPoolExecutorOptions& o) {
    if (o.start_method.empty() && o.max_tasks_per_child) return "spawn";
    return o.start_method;
}
}  // namespace

ProcessPoolExecutor::ProcessPoolExecutor(ProcessPoolExecutorOptions o)
    : Executor(PoolOptions{.processes = o.max_workers,
                           .initializer = std::move(o.initializer),
                           .maxtasksperchild = o.max_tasks_per_child,
                           .start_method = executor_start_method(o),
                           .task_timeout = o.task_timeout,
                           .break_on_worker_death = o.break_on_worker_death}) {}

}  // namespace mproc::futures
