// mproc/detail/future_state.hpp: what a Future refers to (not API).
//
// Two kinds of state, on purpose (docs/design.md, Futures: "two kinds of future state"):
// - a process executor's future is a pool call of one item (JobFuture over detail/pool_job.hpp's
//   Job<T>): it rides the pool's chunks, so a worker's death, a deadline and cancel() act on
//   it as on any pool task, and a thread waiting for it can read the workers' results itself;
// - a thread executor's task is its own future (ThreadTask: one allocation holding the
//   callable, its arguments, the outcome and a futex word, TaskSync), and a free-standing
//   Future() is the same word without a task (StandaloneCore). Making the thread task a pool
//   call instead halved ThreadPoolExecutor's throughput (docs/benchmarks.md).
// The Future itself sees either through FutureCore.
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "mproc/detail/completion.hpp"
#include "mproc/detail/pool_job.hpp"
#include "mproc/detail/pool_core.hpp"
#include "mproc/errors.hpp"
#include "mproc/pool.hpp"

namespace mproc::futures {

template <class T>
class Future;

namespace detail {
// InvalidStateError: `method` was called on an executor's future (src/futures.cpp).
[[noreturn]] void refuse_executor_future(const char* method);
// Python's '<state>: <repr>' of a free-standing future, for its errors, e.g. "FINISHED:
// <Future at 0x55d0c8 state=finished returned int>". result_type: the value's type name;
// error: read only when state is TaskSync::kFinished.
std::string describe_future(const void* id, std::uint32_t state, bool notified, const std::string& result_type,
                            const std::exception_ptr& error);
// What a Future refers to: a process executor's pool call (JobFuture), or a thread executor's
// task (ThreadTask).
template <class T>
class FutureCore {
public:
    using Value = pool_value_t<T>;
    virtual ~FutureCore() = default;
    virtual bool wait(const Timeout& timeout) = 0;  // false at the timeout
    virtual bool ready() = 0;
    virtual bool started() = 0;
    virtual bool cancelled() = 0;
    virtual bool cancel() = 0;     // pending only (Python's cancel)
    virtual bool terminate() = 0;  // pending, or running where it can be stopped
    virtual std::exception_ptr error() = 0;  // CancelledError when cancelled
    virtual Value value() = 0;               // once ready without error
    virtual void add_done_callback(std::function<void()> f) = 0;

    // The promise side, for a free-standing future (StandaloneCore). An executor's future
    // refuses with InvalidStateError: its executor alone completes it.
    virtual bool set_running_or_notify_cancel() { refuse_executor_future("set_running_or_notify_cancel"); }
    virtual void set_value(Value) { refuse_executor_future("set_result"); }
    virtual void set_error(std::exception_ptr) { refuse_executor_future("set_exception"); }
    // True when only a holder of a Future can complete it (a free-standing future): then a
    // done-callback need not keep the future alive, since once every handle is gone nothing
    // can complete it, and a never-completed future with callbacks is freed, not leaked.
    virtual bool completed_by_holders() const noexcept { return false; }

    // Future::sentinel(): one descriptor per future, whichever handle asks.
    int sentinel() {
        return done_event_.fd([this](std::function<void()> f) { add_done_callback(std::move(f)); }, ready());
    }

private:
    mproc::detail::DoneEvent done_event_;
};

// What a process executor's future asks of its pool (ProcessCore::unqueue and stop). Called
// only while the future is not done, when the executor is still there (its destructor waits
// for every future).
struct PoolControl {
    std::function<bool(const mproc::detail::pool::JobBase&)> unqueue;
    std::function<bool(const mproc::detail::pool::JobBase&)> stop;
};

// A process executor's future: a pool call of one item. Pending while it waits in the pool's
// queue; running once sent to a worker (the pool sends it only to an idle one).
template <class T>
class JobFuture final : public FutureCore<T> {
public:
    using Value = pool_value_t<T>;
    JobFuture(std::shared_ptr<mproc::detail::pool::Job<T>> job, PoolControl control)
        : job_(std::move(job)), control_(std::move(control)) {}
    bool wait(const Timeout& timeout) override { return job_->wait(timeout); }
    bool ready() override { return job_->ready(); }
    bool started() override { return job_->started(); }
    bool cancelled() override { return job_->cancelled(); }
    bool cancel() override {
        if (job_->ready()) return job_->cancelled();
        // Out of the queue under the pool's lock, so no worker can have it: then cancelled.
        if (control_.unqueue(*job_)) return job_->cancel();
        return job_->cancelled();  // running (or done meanwhile)
    }
    bool terminate() override {
        if (cancel()) return true;
        if (job_->ready()) return job_->cancelled();
        // Running: cancelled first (so its result, should it come, is not taken), then its
        // worker killed and replaced.
        if (!job_->cancel()) return job_->cancelled();
        control_.stop(*job_);
        return true;
    }
    std::exception_ptr error() override { return job_->error(); }
    Value value() override { return job_->value(); }
    void add_done_callback(std::function<void()> f) override { job_->add_done_callback(std::move(f)); }

private:
    std::shared_ptr<mproc::detail::pool::Job<T>> job_;
    PoolControl control_;
};

// A thread executor task's state (src/futures.cpp): pending, running, then finished or
// cancelled; a futex word for result(timeout), callbacks for add_done_callback. Lean on
// purpose: one allocation per submit with the callable, no mutex unless callbacks are used.
class TaskSync {
public:
    // kClaimed*: a free-standing future's set_result / set_exception has taken it (from pending
    // or running) and is storing the outcome; no one else may.
    enum : std::uint32_t { kPending = 0, kRunning = 1, kClaimedPending = 2, kClaimedRunning = 3, kFinished = 4, kCancelled = 5 };
    TaskSync() = default;
    TaskSync(const TaskSync&) = delete;
    TaskSync& operator=(const TaskSync&) = delete;

    bool try_start() noexcept {
        std::uint32_t p = kPending;
        return state_.compare_exchange_strong(p, kRunning, std::memory_order_acquire);
    }
    // Pending or running to claimed: the caller alone then stores the outcome and publishes it.
    // False when it is claimed, finished or cancelled already.
    bool try_claim() noexcept;
    // Pending to cancelled (then waiters wake and callbacks run); true when it is cancelled.
    bool try_cancel() noexcept;
    bool is_done() const noexcept { return state_.load(std::memory_order_acquire) >= kFinished; }
    bool is_started() const noexcept {
        const std::uint32_t s = state_.load(std::memory_order_acquire);
        return s != kPending && s != kClaimedPending;
    }
    std::uint32_t state() const noexcept { return state_.load(std::memory_order_acquire); }
    bool is_cancelled() const noexcept { return state_.load(std::memory_order_acquire) == kCancelled; }
    bool wait_done(const Timeout& timeout);
    void add_callback(std::function<void()> f);

protected:
    // After the outcome is stored: finished; wakes waiters, runs callbacks (in this thread).
    void publish(std::uint32_t final_state) noexcept;

private:
    void run_callbacks() noexcept;

    std::atomic<std::uint32_t> state_{kPending};
    std::atomic<std::uint32_t> waiters_{0};
    std::atomic<bool> has_callbacks_{false};
    std::mutex callbacks_mu_;
    std::vector<std::function<void()>> callbacks_;
};

template <class T, class F, class Tuple>
class ThreadTask final : public mproc::detail::pool::TaskNode, public FutureCore<T>, public TaskSync {
public:
    using Value = pool_value_t<T>;
    ThreadTask(F f, Tuple args) : f_(std::move(f)), args_(std::move(args)) {}

    // TaskNode: what the worker thread runs.
    void run() noexcept override {
        if (!try_start()) return;  // cancelled while queued
        try {
            if constexpr (std::is_void_v<T>) {
                std::apply(f_, std::move(args_));
                value_.emplace();
            } else {
                value_.emplace(std::apply(f_, std::move(args_)));
            }
        } catch (...) {
            error_ = std::current_exception();
        }
        mproc::detail::pool::task_finishing();
        publish(kFinished);
    }
    void cancel_pending() noexcept override { try_cancel(); }
    void fail(const std::exception_ptr& e) noexcept override {
        if (!try_start()) return;
        error_ = e;
        publish(kFinished);
    }

    // FutureCore: what the Future asks.
    bool wait(const Timeout& timeout) override { return wait_done(timeout); }
    bool ready() override { return is_done(); }
    bool started() override { return is_started(); }
    bool cancelled() override { return is_cancelled(); }
    bool cancel() override { return try_cancel(); }
    bool terminate() override { return try_cancel(); }  // a running thread cannot be stopped
    std::exception_ptr error() override {
        if (is_cancelled()) return std::make_exception_ptr(CancelledError());
        return error_;
    }
    Value value() override { return *value_; }
    void add_done_callback(std::function<void()> f) override { add_callback(std::move(f)); }

private:
    F f_;
    Tuple args_;
    std::optional<Value> value_;
    std::exception_ptr error_;
};

// A free-standing future (Future<T>()): Python's concurrent.futures.Future made by hand, as
// executors and tests make them, and completed by whoever holds it. States and rules are
// _base.py's: pending, then optionally running (set_running_or_notify_cancel), then finished
// (set_result / set_exception, once) or cancelled (cancel(), only while pending). Completing it
// wakes the waiters and runs the callbacks in the completing thread before returning.
template <class T>
class StandaloneCore final : public FutureCore<T>, public TaskSync {
public:
    using Value = pool_value_t<T>;

    bool wait(const Timeout& timeout) override { return wait_done(timeout); }
    bool ready() override { return is_done(); }
    bool started() override { return is_started(); }
    bool cancelled() override { return is_cancelled(); }
    bool cancel() override { return try_cancel(); }
    bool terminate() override { return try_cancel(); }  // no task to stop
    std::exception_ptr error() override {
        if (is_cancelled()) return std::make_exception_ptr(CancelledError());
        return error_;
    }
    Value value() override { return *value_; }
    void add_done_callback(std::function<void()> f) override { add_callback(std::move(f)); }

    bool set_running_or_notify_cancel() override {
        if (try_start()) return true;
        // Python's CANCELLED -> CANCELLED_AND_NOTIFIED, once; cancel() woke the waiters already.
        if (is_cancelled() && !notified_.exchange(true)) return false;
        throw std::logic_error("mproc: Future in unexpected state: " + describe());
    }
    void set_value(Value v) override {
        if (!try_claim()) throw InvalidStateError("mproc: " + describe());
        value_.emplace(std::move(v));
        publish(kFinished);
    }
    void set_error(std::exception_ptr e) override {
        if (!e) throw std::invalid_argument("mproc: set_exception needs an exception, not a null exception_ptr");
        if (!try_claim()) throw InvalidStateError("mproc: " + describe());
        error_ = std::move(e);
        publish(kFinished);
    }
    bool completed_by_holders() const noexcept override { return true; }

private:
    std::string describe() const {
        std::string result_type = "void";
        if constexpr (!std::is_void_v<T>) result_type = mproc::detail::type_name(typeid(T));
        return describe_future(this, state(), notified_.load(), result_type, error_);
    }

    std::optional<Value> value_;
    std::exception_ptr error_;
    std::atomic<bool> notified_{false};
};
}  // namespace detail

}  // namespace mproc::futures
