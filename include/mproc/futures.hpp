// mproc/futures.hpp: executors and futures (Python: concurrent.futures).
//
//   namespace cf = mproc::futures;
//   cf::ProcessPoolExecutor ex(2);
//   cf::Future<int> f = ex.submit(add, 1, 2);       // f.result() == 3
//   for (int y : ex.map(square, items)) ...         // in order, the input read lazily
//
// ProcessPoolExecutor and ThreadPoolExecutor share mproc::Pool's machinery (pool.hpp): the same
// workers, the same crash isolation (a worker that dies fails only the future it was running,
// with mproc::WorkerLostError, and is replaced; `.break_on_worker_death = true` gives Python's
// BrokenProcessPool instead), the same deadlines (a process executor's
// `.task_timeout = 30s`, or `submit({.task_timeout = 2s}, f, args...)`: past it the worker is
// killed and replaced, the future fails with mproc::TimeoutError, the executor runs on). An
// initializer that fails breaks the executor (BrokenProcessPool / BrokenThreadPool), as in
// Python. cancel() is Python's: it
// cancels a pending future and returns false for a running one, which runs on; a true cancel()
// means the task never runs. terminate() also stops a running task on a process executor (its
// worker is killed and replaced). submit after shutdown: std::logic_error (Python: RuntimeError). The destructor shuts down
// and waits, as Python's `with` block does.
//
// A Future can also be made by hand, as Python's Future() (for code that hands out futures of
// its own, or mixes them with an executor's in wait / as_completed):
//   cf::Future<int> f;                 // pending
//   f.set_result(3);                   // or set_exception(ptr); a second time: InvalidStateError
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <typeinfo>
#include <utility>
#include <vector>

#include "mproc/pool.hpp"
#include "mproc/serialize.hpp"

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

template <class T>
class Future {
public:
    using Value = pool_value_t<T>;

    // A free-standing future, pending (Python: Future()): not tied to an executor; its holders
    // complete it with set_result or set_exception, and wait(), as_completed() and callbacks
    // treat it as any other future. Copies are handles on the same future.
    Future() : core_(std::make_shared<detail::StandaloneCore<T>>()) {}

    // The value, or the task's exception; CancelledError when cancelled; mproc::TimeoutError
    // when not done in time.
    T result(Timeout timeout = {}) const {
        if (!core_->wait(timeout)) throw TimeoutError("mproc: the future is not done within the timeout");
        if (auto e = core_->error()) std::rethrow_exception(e);
        if constexpr (!std::is_void_v<T>) return core_->value();
    }
    // The task's exception (null when it returned); CancelledError when cancelled.
    std::exception_ptr exception(Timeout timeout = {}) const {
        if (!core_->wait(timeout)) throw TimeoutError("mproc: the future is not done within the timeout");
        if (core_->cancelled()) throw CancelledError();
        return core_->error();
    }
    bool done() const { return core_->ready(); }
    bool running() const { return core_->started() && !core_->ready(); }
    bool cancelled() const { return core_->cancelled(); }
    // Python's cancel: a pending future is cancelled (true; its task will never run); a
    // running or finished one is not (false), and a running one runs on. Does not block.
    bool cancel() { return core_->cancel(); }
    // mproc's own: as cancel(), and a running task of a process executor is stopped too: its
    // worker is killed (and replaced) and the future ends cancelled (true). On a thread
    // executor, as cancel(): a thread cannot be stopped. Does not wait for the worker to go.
    bool terminate() { return core_->terminate(); }
    // fn(future) once the future is done: at once, in this thread, when it already is. What fn
    // throws is reported on stderr, and the other callbacks still run (Python logs it).
    void add_done_callback(std::function<void(Future&)> fn) {
        if (core_->completed_by_holders()) {
            // Completed through a handle, which is alive while the callbacks run.
            std::weak_ptr<detail::FutureCore<T>> weak = core_;
            core_->add_done_callback([weak, fn = std::move(fn)]() mutable {
                if (auto core = weak.lock()) {
                    Future self(std::move(core));
                    fn(self);
                }
            });
            return;
        }
        Future self = *this;
        core_->add_done_callback([self, fn = std::move(fn)]() mutable { fn(self); });
    }

    // --- The promise side (Python: "should only be used by Executor implementations and unit
    // tests"), for a free-standing future; an executor's future throws InvalidStateError, as
    // its executor alone completes it. None of them blocks.

    // Pending: now running, true (cancel() then returns false). Cancelled: false, the first
    // time (cancel() has woken the waiters already); the work must not be done. Otherwise
    // (running, finished, or asked twice after a cancel): std::logic_error (Python:
    // RuntimeError).
    bool set_running_or_notify_cancel() { return core_->set_running_or_notify_cancel(); }
    // Pending or running: finished with this value (or exception); waiters wake, callbacks run
    // in this thread before it returns. Finished or cancelled already: InvalidStateError, and
    // the outcome stays as it was. set_exception(nullptr): std::invalid_argument.
    void set_result(Value v)
        requires(!std::is_void_v<T>)
    {
        core_->set_value(std::move(v));
    }
    void set_result()
        requires std::is_void_v<T>
    {
        core_->set_value({});
    }
    void set_exception(std::exception_ptr e) { core_->set_error(std::move(e)); }

    // Two handles on one future compare equal (Python compares the same object).
    friend bool operator==(const Future& a, const Future& b) noexcept { return a.core_ == b.core_; }

    // For executors (not API).
    explicit Future(std::shared_ptr<detail::FutureCore<T>> core) : core_(std::move(core)) {}
    const void* identity() const noexcept { return core_.get(); }

private:
    std::shared_ptr<detail::FutureCore<T>> core_;
};

enum ReturnWhen { FIRST_COMPLETED, FIRST_EXCEPTION, ALL_COMPLETED };

template <class T>
struct DoneAndNotDone {
    std::vector<Future<T>> done;
    std::vector<Future<T>> not_done;
};

namespace detail {
// Counts completions of a set of futures, for wait and as_completed.
struct Completions {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<std::size_t> order;  // indices, as they completed
};

// Python makes a set of the futures it is given (wait, as_completed): each counts once.
template <class T>
std::vector<Future<T>> distinct(std::vector<Future<T>> fs) {
    std::vector<Future<T>> out;
    out.reserve(fs.size());
    std::vector<const void*> seen;
    seen.reserve(fs.size());
    for (auto& f : fs) {
        const void* id = f.identity();
        if (std::find(seen.begin(), seen.end(), id) != seen.end()) continue;
        seen.push_back(id);
        out.push_back(std::move(f));
    }
    return out;
}
}  // namespace detail

// Waits until the condition holds for the futures or the timeout passes (Python:
// concurrent.futures.wait). A future given twice counts once. FIRST_EXCEPTION returns when a
// future raised; cancelled ones count only as done (Python ignores cancellation there).
template <class T>
DoneAndNotDone<T> wait(const std::vector<Future<T>>& given, Timeout timeout = {}, ReturnWhen return_when = ALL_COMPLETED) {
    const std::vector<Future<T>> fs = detail::distinct(given);
    auto c = std::make_shared<detail::Completions>();
    for (std::size_t i = 0; i < fs.size(); ++i) {
        Future<T> f = fs[i];
        f.add_done_callback([c, i](Future<T>&) {
            {
                std::lock_guard lk(c->mu);
                c->order.push_back(i);
            }
            c->cv.notify_all();
        });
    }
    auto satisfied = [&] {
        if (c->order.size() == fs.size()) return true;
        if (return_when == FIRST_COMPLETED) return !c->order.empty();
        if (return_when == FIRST_EXCEPTION)
            for (std::size_t i : c->order)
                if (!fs[i].cancelled() && fs[i].exception()) return true;
        return false;
    };
    {
        std::unique_lock lk(c->mu);
        if (timeout)
            c->cv.wait_for(lk, std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                   std::max(*timeout, std::chrono::duration<double>(0))),
                           satisfied);
        else
            c->cv.wait(lk, satisfied);
    }
    DoneAndNotDone<T> r;
    for (const auto& f : fs) (f.done() ? r.done : r.not_done).push_back(f);
    return r;
}

// The futures in the order they complete (Python: concurrent.futures.as_completed); iterating
// past the timeout (counted from the call) throws mproc::TimeoutError. It keeps no reference to
// a future it has yielded.
template <class T>
class AsCompleted {
public:
    AsCompleted(std::vector<Future<T>> fs, Timeout timeout)
        : fs_(detail::distinct(std::move(fs))), c_(std::make_shared<detail::Completions>()),
          until_(timeout ? std::optional(std::chrono::steady_clock::now() +
                                         std::chrono::duration_cast<std::chrono::steady_clock::duration>(*timeout))
                         : std::nullopt) {
        for (std::size_t i = 0; i < fs_.size(); ++i) {
            auto c = c_;
            fs_[i].add_done_callback([c, i](Future<T>&) {
                {
                    std::lock_guard lk(c->mu);
                    c->order.push_back(i);
                }
                c->cv.notify_all();
            });
        }
    }

    // The next future to complete; empty after the last.
    std::optional<Future<T>> next() {
        if (yielded_ == fs_.size()) return std::nullopt;
        std::unique_lock lk(c_->mu);
        auto ready = [&] { return !c_->order.empty(); };
        if (until_) {
            if (!c_->cv.wait_until(lk, *until_, ready))
                throw TimeoutError("mproc: " + std::to_string(fs_.size() - yielded_) + " (of " +
                                   std::to_string(fs_.size()) + ") futures unfinished");
        } else {
            c_->cv.wait(lk, ready);
        }
        const std::size_t i = c_->order.front();
        c_->order.pop_front();
        ++yielded_;
        // Handed over, not kept: a future the caller drops after it came out is freed (Python's
        // bpo-14406, test_free_reference_yielded_future).
        return std::move(fs_[i]);
    }

    using iterator = mproc::detail::pool::NextIterator<AsCompleted, Future<T>>;
    iterator begin() { return iterator(this); }
    std::default_sentinel_t end() const noexcept { return {}; }

private:
    std::vector<Future<T>> fs_;
    std::shared_ptr<detail::Completions> c_;
    std::optional<std::chrono::steady_clock::time_point> until_;
    std::size_t yielded_ = 0;
};

template <class T>
AsCompleted<T> as_completed(std::vector<Future<T>> fs, Timeout timeout = {}) {
    return AsCompleted<T>(std::move(fs), timeout);
}

// Executor.map's keyword arguments.
struct ExecutorMapOptions {
    Timeout timeout = {};       // for the whole iteration, counted from the call
    std::size_t chunksize = 1;  // process executors batch this many items per task
    // mproc's own, process executors: each item's deadline, as SubmitOptions::task_timeout.
    // On a thread executor: std::invalid_argument (a thread cannot be stopped).
    Timeout task_timeout = {};
};

// submit's options: mproc's own (Python's submit has none); process executors only.
//   ex.submit({.task_timeout = 2s}, fetch, url)
struct SubmitOptions {
    // The task's deadline, counted from when a worker begins it; empty: the executor's
    // ProcessPoolExecutorOptions::task_timeout (if any). Past it, the worker is killed and
    // replaced and the future fails with mproc::TimeoutError. Not positive:
    // std::invalid_argument.
    Timeout task_timeout = {};
};

// Results of Executor.map in order; past the timeout, mproc::TimeoutError.
template <class V>
class MapIterator {
public:
    MapIterator(mproc::pool::IMapIterator<V> it, Timeout timeout)
        : it_(std::move(it)),
          until_(timeout ? std::optional(std::chrono::steady_clock::now() +
                                         std::chrono::duration_cast<std::chrono::steady_clock::duration>(*timeout))
                         : std::nullopt) {}
    std::optional<pool_value_t<V>> next() {
        Timeout left;
        if (until_) left = std::max(std::chrono::duration<double>(0), std::chrono::duration<double>(*until_ - std::chrono::steady_clock::now()));
        return it_.next(left);
    }
    using iterator = mproc::detail::pool::NextIterator<MapIterator, pool_value_t<V>>;
    iterator begin() { return iterator(this); }
    std::default_sentinel_t end() const noexcept { return {}; }

private:
    mproc::pool::IMapIterator<V> it_;
    std::optional<std::chrono::steady_clock::time_point> until_;
};

namespace detail {
// What ThreadPoolExecutor and ProcessPoolExecutor share, over a pool of either kind.
template <class Core>
class Executor {
public:
    // submit(f, args...): f(args...) in a worker; its Future.
    template <class F, class... A>
        requires std::invocable<std::decay_t<F>&, mproc::detail::stored_arg_t<A>...>
    auto submit(F&& f, A&&... args) {
        using Tuple = std::tuple<mproc::detail::stored_arg_t<A>...>;
        if constexpr (std::is_same_v<Core, mproc::detail::pool::ThreadCore>) {
            // A thread task is its own future: one allocation, no pool call around it.
            using T = std::invoke_result_t<std::decay_t<F>&, mproc::detail::stored_arg_t<A>...>;
            pool_->core().check_accepting();
            auto task = std::make_shared<ThreadTask<T, std::decay_t<F>, Tuple>>(std::decay_t<F>(std::forward<F>(f)),
                                                                             Tuple(std::forward<A>(args)...));
            pool_->core().submit_task(task);
            return Future<T>(std::move(task));
        } else {
            return submit(SubmitOptions{}, std::forward<F>(f), std::forward<A>(args)...);
        }
    }
    // submit(options, f, args...): with a deadline (process executors; see SubmitOptions).
    template <class F, class... A>
        requires(Core::can_stop_running && std::invocable<std::decay_t<F>&, mproc::detail::stored_arg_t<A>...>)
    auto submit(SubmitOptions options, F&& f, A&&... args) {
        using Tuple = std::tuple<mproc::detail::stored_arg_t<A>...>;
        auto job = pool_->submit_job(std::decay_t<F>(std::forward<F>(f)), Tuple(std::forward<A>(args)...),
                                     checked_task_timeout(options.task_timeout), {}, {}, /*executor_future*/ true);
        using R = typename decltype(job)::element_type::Value;
        using T = std::conditional_t<std::is_same_v<R, std::monostate>, void, R>;
        return Future<T>(std::make_shared<JobFuture<T>>(std::move(job), control()));
    }

    // map(f, ranges...): f over the ranges zipped, results in order (Python: Executor.map).
    template <class F, std::ranges::input_range... Rngs>
        requires(sizeof...(Rngs) > 0)
    auto map(F&& f, Rngs&&... ranges) {
        return map(ExecutorMapOptions{}, std::forward<F>(f), std::forward<Rngs>(ranges)...);
    }
    template <class F, std::ranges::input_range... Rngs>
        requires(sizeof...(Rngs) > 0)
    auto map(ExecutorMapOptions options, F&& f, Rngs&&... ranges) {
        auto it = pool_->zip_stream(std::decay_t<F>(std::forward<F>(f)), options.chunksize,
                                    checked_task_timeout(options.task_timeout), std::forward<Rngs>(ranges)...);
        using V = typename decltype(it)::value_type;
        return MapIterator<V>(std::move(it), options.timeout);
    }

    // No more submissions; wait: until the submitted ones are done and the workers gone;
    // cancel_futures: cancel those not started (Python: shutdown(wait, cancel_futures)).
    void shutdown(bool wait = true, bool cancel_futures = false) {
        if (!pool_) return;
        if (cancel_futures) pool_->core().cancel_pending();
        pool_->close();
        if (wait) pool_->join();
    }

    std::size_t max_workers() const noexcept { return pool_->processes(); }

protected:
    explicit Executor(PoolOptions options) : pool_(std::make_unique<mproc::detail::pool::BasicPool<Core>>(make_core(options))) {
        if constexpr (std::is_same_v<Core, mproc::detail::pool::ProcessCore>) pool_->core().set_finish_at_exit();
    }
    Executor(Executor&&) noexcept = default;
    Executor& operator=(Executor&&) noexcept = default;
    ~Executor() {
        if (pool_) shutdown(true);
    }

protected:
    // Python 3.14's terminate_workers / kill_workers (process executors).
    void stop_workers(bool kill) {
        if (pool_) pool_->core().stop_workers(kill);
    }

private:
    // A per-call deadline, before anything is submitted: the pool enforces it (pool.cpp,
    // enforce_deadlines) but takes a call's as given.
    static const Timeout& checked_task_timeout(const Timeout& t) {
        if (!t) return t;
        if constexpr (!Core::can_stop_running)
            throw std::invalid_argument(
                "mproc: a thread cannot be stopped from outside, so a ThreadPoolExecutor task cannot have a "
                "deadline; use ProcessPoolExecutor for tasks that must be stoppable");
        if (!(t->count() > 0)) throw std::invalid_argument("mproc: a task deadline must be positive");
        return t;
    }

    static std::unique_ptr<Core> make_core(const PoolOptions& options) {
        // A thread executor starts a thread only when no idle one can take the task (Python's
        // ThreadPoolExecutor: three tasks one after the other run on one thread).
        if constexpr (std::is_same_v<Core, mproc::detail::pool::ThreadCore>)
            return std::make_unique<Core>(options, Core::Start::OnDemand);
        else
            return std::make_unique<Core>(options);
    }

    PoolControl control() {
        Core* core = &pool_->core();
        return {[core](const mproc::detail::pool::JobBase& j) { return core->unqueue(j); },
                [core](const mproc::detail::pool::JobBase& j) { return core->stop(j); }};
    }

    std::unique_ptr<mproc::detail::pool::BasicPool<Core>> pool_;
};
}  // namespace detail

// Python: ThreadPoolExecutor(max_workers=None, thread_name_prefix='', initializer=None,
// initargs=()).
struct ThreadPoolExecutorOptions {
    std::optional<int> max_workers = {};  // default min(32, process_cpu_count() + 4); below 1: invalid_argument
    std::string thread_name_prefix = {};
    Initializer initializer = {};
};

// Threads of this process: any callable, captures included.
class ThreadPoolExecutor : public detail::Executor<mproc::detail::pool::ThreadCore> {
public:
    explicit ThreadPoolExecutor(ThreadPoolExecutorOptions options = {});
    explicit ThreadPoolExecutor(int max_workers) : ThreadPoolExecutor(ThreadPoolExecutorOptions{.max_workers = max_workers}) {}
};

// Python: ProcessPoolExecutor(max_workers=None, mp_context=None, initializer=None, initargs=(),
// max_tasks_per_child=None); mp_context is start_method.
struct ProcessPoolExecutorOptions {
    std::optional<int> max_workers = {};  // default process_cpu_count(); below 1: invalid_argument
    std::string start_method = {};  // "" uses get_start_method(), or "spawn" with max_tasks_per_child
    Initializer initializer = {};
    std::optional<std::size_t> max_tasks_per_child = {};
    // mproc's own: Python's behaviour when a worker dies (BrokenProcessPool for every future
    // not finished) instead of failing only the future it ran.
    bool break_on_worker_death = false;
    // mproc's own: every task's deadline, counted from when a worker begins it (submit and map
    // may set their own). Past it, the task's worker is killed and replaced, and its future
    // fails with mproc::TimeoutError; other futures and the executor are unaffected (also with
    // break_on_worker_death). Empty: none. Not positive: std::invalid_argument.
    Timeout task_timeout = {};
};

class ProcessPoolExecutor : public detail::Executor<mproc::detail::pool::ProcessCore> {
public:
    explicit ProcessPoolExecutor(ProcessPoolExecutorOptions options = {});
    explicit ProcessPoolExecutor(int max_workers) : ProcessPoolExecutor(ProcessPoolExecutorOptions{.max_workers = max_workers}) {}
    // Python 3.14: shutdown(wait = false, cancel_futures = true), then every worker is sent
    // SIGTERM (terminate_workers) or SIGKILL (kill_workers); the futures they ran fail with
    // BrokenProcessPool. Returns once the workers are gone; the executor takes no more tasks.
    void terminate_workers() { stop_workers(false); }
    void kill_workers() { stop_workers(true); }
};

}  // namespace mproc::futures
