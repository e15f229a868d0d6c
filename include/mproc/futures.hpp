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

#include "mproc/detail/deadline.hpp"
#include "mproc/detail/future_state.hpp"
#include "mproc/pool.hpp"
#include "mproc/serialize.hpp"

namespace mproc::futures {

template <class T>
class Future;

// Contracts: every method may be called from any thread, on any copy (copies are handles on one
// future); the caller holds nothing. result() and exception() block until the future is done
// or the timeout (a thread executor's future sleeps on a futex word; a process executor's may
// read the workers' results in this thread meanwhile); the other methods never block but for
// the future's own short mutex, and callbacks, which run in the completing thread (a worker
// thread, the pool's dispatcher thread, or the caller of set_result), or at once in this one.
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
    // Python's done(), running(), cancelled(): the state now. Never block, never throw.
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

    // A descriptor that turns readable once the future is done, and stays so (as
    // Process::sentinel() once the process ended): for connection::wait, or an event loop's
    // epoll or Asio. Made the first time any handle asks (an eventfd and a done-callback: a
    // future nobody asks costs nothing), owned by the future and closed when its last handle
    // goes; do not close it. Never blocks; std::system_error when the system refuses.
    int sentinel() const { return core_->sentinel(); }

    // Two handles on one future compare equal (Python compares the same object).
    friend bool operator==(const Future& a, const Future& b) noexcept { return a.core_ == b.core_; }

    // For executors (not API).
    explicit Future(std::shared_ptr<detail::FutureCore<T>> core) : core_(std::move(core)) {}
    const void* identity() const noexcept { return core_.get(); }

private:
    std::shared_ptr<detail::FutureCore<T>> core_;
};

namespace detail {
struct AwaitFuture {
    template <class T>
    static bool done(const Future<T>& f) { return f.done(); }
    template <class T>
    static void subscribe(Future<T>& f, std::function<void()> arrive) {
        f.add_done_callback([arrive = std::move(arrive)](Future<T>&) { arrive(); });
    }
    template <class T>
    static T take(const Future<T>& f) { return f.result(); }
};
}  // namespace detail

// `T x = co_await f;` in a coroutine of the caller's own type (as asyncio awaits an executor's
// future through wrap_future): x is f.result(), and what result() throws (the task's exception
// with its type, CancelledError, WorkerLostError, BrokenProcessPool...) is thrown at the
// co_await. No thread blocks while the coroutine waits: a done-callback resumes it.
// Where it resumes: when f is done already, at once, in this thread (it never suspends);
// otherwise in the thread that completes f, as a done-callback (a thread executor's worker, a
// process executor's dispatcher thread or a thread waiting on one of its futures, the caller of
// cancel() or set_result). Keep what runs there short, as a callback; a coroutine that must go
// on in its own event loop's thread next awaits that loop's hand-over (examples/event_loop.cpp:
// resume_here()), or the loop watches sentinel() instead. Never shut down or destroy the
// executor from there. A coroutine destroyed while suspended here is not resumed when f
// completes later (destroying it while f completes is the caller's race).
template <class T>
mproc::detail::DoneAwaiter<Future<T>, detail::AwaitFuture> operator co_await(Future<T> f) {
    return mproc::detail::DoneAwaiter<Future<T>, detail::AwaitFuture>(std::move(f));
}

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
// Blocks until then; throws nothing of its own (a timeout is not an error: see not_done).
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
        mproc::detail::Deadline::after(timeout).wait(c->cv, lk, satisfied);
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
          deadline_(mproc::detail::Deadline::after(timeout)) {
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
        if (!deadline_.wait(c_->cv, lk, ready))
            throw TimeoutError("mproc: " + std::to_string(fs_.size() - yielded_) + " (of " +
                               std::to_string(fs_.size()) + ") futures unfinished");
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
    mproc::detail::Deadline deadline_;
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
        : it_(std::move(it)), deadline_(mproc::detail::Deadline::after(timeout)) {}
    std::optional<pool_value_t<V>> next() { return it_.next(deadline_.remaining()); }
    using iterator = mproc::detail::pool::NextIterator<MapIterator, pool_value_t<V>>;
    iterator begin() { return iterator(this); }
    std::default_sentinel_t end() const noexcept { return {}; }

private:
    mproc::pool::IMapIterator<V> it_;
    mproc::detail::Deadline deadline_;
};

namespace detail {
// What ThreadPoolExecutor and ProcessPoolExecutor share, over a pool of either kind.
template <mproc::detail::pool::PoolCore Core>
class Executor {
public:
    // Contracts: any thread may call any method; the caller holds nothing.
    //
    // submit(f, args...): f(args...) in a worker; its Future. Never blocks on the task (a
    // process executor may send it to an idle worker from this thread); std::logic_error after
    // shutdown (Python: RuntimeError), the breaking error once broken (BrokenProcessPool /
    // BrokenThreadPool); a callable or argument that cannot travel is a compile error (process
    // executors). What the task throws, or what ends it, is the future's.
    template <class F, class... A>
        requires std::invocable<std::decay_t<F>&, mproc::detail::stored_arg_t<A>...>
    auto submit(F&& f, A&&... args) {
        using Tuple = std::tuple<mproc::detail::stored_arg_t<A>...>;
        if constexpr (mproc::detail::pool::TaskQueueCore<Core>) {
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
    // Returns at once; the input is read as results are taken. Advancing blocks until the next
    // result and throws its task's exception, or mproc::TimeoutError past the map's timeout
    // (counted from the call, as Python's).
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
    // Blocks (wait = true) until the workers have exited; idempotent; the destructor calls
    // shutdown(true).
    void shutdown(bool wait = true, bool cancel_futures = false) {
        if (!pool_) return;
        if (cancel_futures) pool_->core().cancel_pending();
        pool_->close();
        if (wait) pool_->join();
    }

    std::size_t max_workers() const noexcept { return pool_->processes(); }

protected:
    explicit Executor(PoolOptions options) : pool_(std::make_unique<mproc::detail::pool::BasicPool<Core>>(make_core(options))) {
        if constexpr (mproc::detail::pool::StoppableCore<Core>) pool_->core().set_finish_at_exit();
    }
    // Over a core the derived executor made (mpi::MPIPoolExecutor).
    explicit Executor(std::unique_ptr<Core> core)
        : pool_(std::make_unique<mproc::detail::pool::BasicPool<Core>>(std::move(core))) {
        if constexpr (mproc::detail::pool::StoppableCore<Core>) pool_->core().set_finish_at_exit();
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
    // A per-call deadline, before anything is submitted: the pool enforces it (src/pool/workers.cpp,
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
        if constexpr (requires { Core::Start::OnDemand; })
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
