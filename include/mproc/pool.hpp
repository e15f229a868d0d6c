// mproc/pool.hpp: process and thread pools (Python: multiprocessing.pool).
//
//   int square(int x) { return x * x; }
//   mproc::Pool pool(4);                        // or mproc::Pool pool;  (process_cpu_count())
//   std::vector<int> r = pool.map(square, std::vector<int>{1, 2, 3});
//   mproc::AsyncResult<int> ar = pool.apply_async(square, 7);   // ar.get() == 49
//
// Tasks go to worker processes that already run, so under every start method a task is a
// function, a captureless lambda or a serializable callable (a capturing lambda is a compile
// error naming the rule), and its arguments and result are serializable. With the fork start
// method the workers are copies of the program as it was when the pool was made: they are
// forked by a helper process forked at that moment, so the pool's creator never forks itself
// again once the pool runs its dispatcher thread (docs/design.md, Pools).
//
// Where Python's pool hangs or breaks, this one does not:
// - a worker that dies (a crash, _exit, SIGKILL, the OOM killer) fails only the task it was
//   running, with mproc::WorkerLostError naming the signal or exit code; the other tasks it
//   held run again elsewhere: those it had not begun, and those it had finished whose results
//   it had not sent yet (a worker sends a batch's results together, whatever the chunksize), so
//   a task may run twice when a worker dies; a new worker takes its place, and the pool keeps
//   working;
// - a task may have a deadline (PoolOptions::task_timeout, or per call): past it the worker is
//   killed and replaced, and the task fails with mproc::TimeoutError;
// - an exception thrown by a task reaches the caller with its type and message (API.md);
// - an initializer that throws or crashes makes every task fail with
//   mproc::futures::BrokenProcessPool, rather than restarting workers forever;
// - a pool can be made anywhere, also inside a pool task; a plain mproc::Queue can be an
//   argument of a pool task.
//
// Python's lifetime rules: close() stops new submissions, join() (after close or terminate)
// waits for the workers to finish what was submitted and exit, terminate() stops them at once
// (tasks not finished fail with mproc::ProcessError), and the destructor terminates, as
// Python's `with Pool() as p:` does. Callbacks run on the pool's dispatcher thread (a thread
// pool's worker thread): keep them short, as in Python.
//
// mproc::pool::ThreadPool has the same interface on threads of this process: any callable,
// captures included, and no serialization. Threads cannot be killed, so it has no task deadline
// (asking for one is std::invalid_argument).
#pragma once

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "mproc/context.hpp"
#include "mproc/detail/completion.hpp"
#include "mproc/detail/pool_call.hpp"
#include "mproc/detail/pool_job.hpp"
#include "mproc/detail/process_core.hpp"
#include "mproc/detail/thread_core.hpp"
#include "mproc/process.hpp"

namespace mproc {

// Runs once in every worker before its first task (Python: initializer and initargs).
//   mproc::Pool pool({.processes = 2, .initializer = mproc::Initializer(setup, "db.sqlite")});
class Initializer {
public:
    Initializer() = default;
    template <class F, class... A>
        requires std::invocable<std::decay_t<F>&, detail::stored_arg_t<A>...>
    explicit Initializer(F&& f, A&&... args)
        : target_(std::make_shared<detail::TargetImpl<std::decay_t<F>, detail::stored_arg_t<A>...>>(f, args...)),
          local_([f = std::decay_t<F>(f),
                  tup = std::tuple<detail::stored_arg_t<A>...>(std::forward<A>(args)...)]() mutable {
              std::apply(f, tup);
          }) {}
    // One that arrived serialized (an MPI worker rank's, src/mpi/): it runs only in the worker
    // processes it is sent to.
    explicit Initializer(std::shared_ptr<detail::Target> target)
        : target_(std::move(target)), local_([t = target_] { t->call(); }) {}
    explicit operator bool() const noexcept { return target_ != nullptr; }
    // For worker processes: the target to send (refusal() says when it cannot travel).
    const std::shared_ptr<detail::Target>& target() const noexcept { return target_; }
    // For worker threads: runs it here, on copies of the arguments.
    void run_here() const { local_(); }

private:
    std::shared_ptr<detail::Target> target_;
    std::function<void()> local_;
};

// Python: Pool(processes=None, initializer=None, initargs=(), maxtasksperchild=None,
// context=None). initargs travel inside the Initializer; the context is start_method.
struct PoolOptions {
    std::optional<int> processes = {};  // default process_cpu_count(); below 1: invalid_argument
    Initializer initializer = {};
    // A worker is replaced after this many chunks (Python counts chunks too); empty: never.
    std::optional<std::size_t> maxtasksperchild = {};
    std::string start_method = {};      // "" uses get_start_method()
    // mproc's own: a deadline for every task (each item of a map); calls may set their own.
    Timeout task_timeout = {};
    // A task whose serialized result is larger fails with mproc::ProcessError saying so; the
    // worker lives on.
    std::size_t max_result_bytes = std::size_t{1} << 30;
    // Python's all-or-nothing behaviour (its ProcessPoolExecutor's): a worker that dies breaks
    // the pool, and every task not finished fails with futures::BrokenProcessPool. By default
    // only the task it was running fails.
    bool break_on_worker_death = false;
    // Thread pools: the threads' names are this prefix and a number (as Python's
    // ThreadPoolExecutor names them); empty: "ThreadPool".
    std::string thread_name_prefix = {};
};

template <class R>
using pool_value_t = std::conditional_t<std::is_void_v<R>, std::monostate, R>;

// apply_async's keyword arguments (Python: callback, error_callback).
template <class R>
struct ApplyOptions {
    std::function<void(const pool_value_t<R>&)> callback = {};
    std::function<void(std::exception_ptr)> error_callback = {};
    Timeout task_timeout = {};  // empty: the pool's
};

// map/starmap (and their _async forms): Python's chunksize, callback, error_callback, and
// mproc's deadline and progress bar (drawn on stderr when it is a terminal).
template <class R>
struct MapOptions {
    std::optional<std::size_t> chunksize = {};  // default: Python's, about len / (4 * processes)
    std::function<void(const std::vector<pool_value_t<R>>&)> callback = {};
    std::function<void(std::exception_ptr)> error_callback = {};
    Timeout task_timeout = {};
    bool progress = false;
};

// imap/imap_unordered.
struct IMapOptions {
    std::size_t chunksize = 1;
    Timeout task_timeout = {};
    bool progress = false;
};

namespace detail::pool {
// An _async call's job, seen without its result type.
struct ResultWaiter {
    std::shared_ptr<CallJob> job;
    bool wait(const Timeout& t) const { return job->wait(t); }
    bool ready() const { return job->ready(); }
    std::exception_ptr error() const { return job->error(); }
    void add_done_callback(std::function<void()> f) const { job->add_done_callback(std::move(f)); }  // now if complete
};
}  // namespace detail::pool

namespace pool {

// The result of an _async call (Python: multiprocessing.pool.AsyncResult).
template <class T>
class AsyncResult {
public:
    // The value, or the task's exception; mproc::TimeoutError when not ready in time. Blocks
    // until the call completed (on a process pool this thread may read the workers' results
    // itself meanwhile, rather than wait to be woken) or the timeout. A map's get() moves its
    // values out on the first call (the blocking map's only reader); map_async's copies.
    T get(Timeout timeout = {}) const {
        if (!job_->wait(timeout)) throw TimeoutError("mproc: the result is not ready within the timeout");
        if (auto e = job_->error()) std::rethrow_exception(e);
        if constexpr (!std::is_void_v<T>) return take_();
    }
    // Blocks until the call completed or the timeout; throws nothing.
    void wait(Timeout timeout = {}) const { job_->wait(timeout); }
    // Never blocks (but for the result's own mutex).
    bool ready() const { return job_->ready(); }
    // Whether it completed without an exception; std::logic_error while not ready (Python:
    // ValueError).
    bool successful() const {
        if (!job_->ready()) throw std::logic_error("mproc: the result is not ready");
        return job_->error() == nullptr;
    }

    // As futures::Future::sentinel(): readable once the call completed; made on the first ask,
    // owned by the result (all copies share it). std::system_error when the system refuses.
    int sentinel() const {
        return job_->event.fd([w = job_.get()](std::function<void()> f) { w->add_done_callback(std::move(f)); },
                              job_->ready());
    }

    using Waiter = detail::pool::ResultWaiter;
    AsyncResult(Waiter w, std::function<T()> take) : job_(std::make_shared<Shared>(std::move(w))), take_(std::move(take)) {}

    struct Await {  // what co_await (below) asks
        static bool done(const AsyncResult& r) { return r.ready(); }
        static void subscribe(AsyncResult& r, std::function<void()> f) { r.job_->add_done_callback(std::move(f)); }
        static T take(const AsyncResult& r) { return r.get(); }
    };

private:
    struct Shared : Waiter {
        explicit Shared(Waiter w) : Waiter(std::move(w)) {}
        detail::DoneEvent event;
    };
    std::shared_ptr<Shared> job_;
    std::function<T()> take_;
};

// `T x = co_await pool.apply_async(f, args...);` in a coroutine of the caller's own type: x is
// get(), what get() throws is thrown there. No thread blocks meanwhile; it resumes as co_await on
// a futures::Future does (futures.hpp): at once when ready, else on the completing thread.
template <class T>
detail::DoneAwaiter<AsyncResult<T>, typename AsyncResult<T>::Await> operator co_await(AsyncResult<T> r) {
    return detail::DoneAwaiter<AsyncResult<T>, typename AsyncResult<T>::Await>(std::move(r));
}

// The iterator imap and imap_unordered return (Python: IMapIterator). The input is read as the
// results are taken, a few chunks per worker ahead, so an endless input works. A task's
// exception is thrown when the iteration reaches that item; the iteration can go on after it.
template <class V>
class IMapIterator {
public:
    using value_type = V;
    // The first window of chunks is submitted here, at the call, as Python submits at the
    // call: work starts (and runs) even if no result is ever taken.
    // keep_on_drop: an executor's map, whose submitted items run if the iterator is dropped
    // before its first next(), as Python's (its generator never started, so its finally never
    // cancels them); dropped after, the items no worker has begun are let go, as Python's
    // cancels its pending futures. A Pool.imap's dropped iterator always lets them go.
    // feed(room) reads and submits the next whole chunks of the input, as many as fit in room
    // items (at least one), and says how many items it submitted, 0 at the end; window: how
    // many items may be submitted and not yet handed out.
    IMapIterator(std::shared_ptr<detail::pool::StreamJob<V>> job, std::function<std::size_t(std::size_t)> feed,
                 std::function<void()> on_close, std::size_t window, bool keep_on_drop = false)
        : s_(std::make_shared<State>(std::move(job), std::move(feed), std::move(on_close), window)) {
        s_->keep_on_drop = keep_on_drop;
        s_->top_up();
    }

    // The next result, empty at the end; mproc::TimeoutError when none arrives in time
    // (Python: next(timeout), StopIteration at the end).
    std::optional<typename detail::pool::StreamJob<V>::Value> next(Timeout timeout = {}) {
        s_->iterated = true;
        s_->top_up();
        return s_->job->next(timeout);
    }

    using iterator = detail::pool::NextIterator<IMapIterator, typename detail::pool::StreamJob<V>::Value>;
    iterator begin() { return iterator(this); }
    std::default_sentinel_t end() const noexcept { return {}; }

private:
    struct State {
        State(std::shared_ptr<detail::pool::StreamJob<V>> j, std::function<std::size_t(std::size_t)> f,
              std::function<void()> c,
              std::size_t w)
            : job(std::move(j)), feed(std::move(f)), on_close(std::move(c)), window(w) {}
        ~State() {
            if (!keep_on_drop || iterated) job->abandon();
            if (!exhausted) on_close();
        }
        // Fills the window again once a quarter of it is free, not at each result taken, and
        // with all the chunks that fit at once: a chunk fed per result met the pool's thread
        // on its mutex at every item and kept the queue too short for full batches. The first
        // call fills it whole.
        void top_up() {
            if (exhausted) return;
            std::size_t in_flight = submitted - job->yielded();
            if (submitted > 0 && in_flight + std::max<std::size_t>(1, window / 4) > window) return;
            while (in_flight < window) {
                const std::size_t fed = feed(window - in_flight);
                if (fed == 0) {
                    exhausted = true;
                    on_close();
                    break;
                }
                submitted += fed;
                in_flight = submitted - job->yielded();
            }
        }
        std::shared_ptr<detail::pool::StreamJob<V>> job;
        std::function<std::size_t(std::size_t)> feed;
        std::function<void()> on_close;
        std::size_t window;
        std::size_t submitted = 0;  // items
        bool exhausted = false;
        bool keep_on_drop = false;
        bool iterated = false;
    };
    std::shared_ptr<State> s_;
};

}  // namespace pool

namespace detail::pool {

// The interface Python's Pool and ThreadPool share, over a core that runs chunks of items
// (detail/pool_core.hpp: the PoolCore concept).
//
// Contracts. Every method may be called from any thread, with no lock of the pool's held by the
// caller (there is none to hold); moving or destroying the pool while another thread uses it is
// undefined, as for any object. Common to every call that submits work (apply, map, imap and
// their forms):
// - throws std::logic_error after close() or terminate() (Python: ValueError), the breaking
//   error once the pool is broken (futures::BrokenProcessPool: an initializer failed), and
//   std::invalid_argument for a chunksize of 0 or a deadline that is not positive (on a
//   ThreadPool, for any deadline);
// - a task, argument or result that cannot travel to a worker process is a compile error;
// - blocks only on the pool's mutex, and on sending a batch to an idle worker from this thread
//   (a socket write); never on a task;
// - what a task throws, or what ends it (mproc::TimeoutError past its deadline, WorkerLostError
//   when its worker dies, ProcessError when the pool is terminated), is the result's, raised by
//   the result's get() or the iteration, with its type and message.
// Callbacks run on the pool's dispatcher thread (a ThreadPool's worker thread); what they throw
// is printed to stderr and dropped, as in Python.
template <PoolCore Core>
class BasicPool {
public:
    // Starts the workers, and blocks until they are started (not until their initializers
    // ran). Throws std::invalid_argument for processes < 1, an unknown start method or
    // maxtasksperchild 0, std::logic_error for an initializer that cannot travel, and what
    // starting a process throws (ProcessError).
    explicit BasicPool(PoolOptions options = {}) : core_(std::make_unique<Core>(options)) {}
    explicit BasicPool(int processes) : BasicPool(PoolOptions{.processes = processes}) {}
    // For executors (not API): over a core they made.
    explicit BasicPool(std::unique_ptr<Core> core) : core_(std::move(core)) {}
    BasicPool(BasicPool&&) noexcept = default;
    BasicPool& operator=(BasicPool&&) noexcept = default;
    ~BasicPool() {
        if (core_) core_->terminate();
    }

    // apply(f, args...): runs f(args...) in a worker and waits for the result: blocks until
    // the task ended; throws what the task threw or what ended it.
    template <class F, class... A>
        requires std::invocable<std::decay_t<F>&, stored_arg_t<A>...>
    auto apply(F&& f, A&&... args) {
        return apply_async(std::forward<F>(f), std::forward<A>(args)...).get();
    }

    // apply_async(f, args...): the same, returning at once an AsyncResult (get(timeout) blocks).
    template <class F, class... A>
        requires std::invocable<std::decay_t<F>&, stored_arg_t<A>...>
    auto apply_async(F&& f, A&&... args) {
        using Tuple = std::tuple<stored_arg_t<A>...>;
        return apply_tuple(std::decay_t<F>(std::forward<F>(f)), Tuple(std::forward<A>(args)...), {});
    }
    // Python's apply_async(func, args, callback=..., error_callback=...).
    template <class F, class... A>
        requires std::invocable<std::decay_t<F>&, A&...>
    auto apply_async(F&& f, std::tuple<A...> args,
                     std::type_identity_t<ApplyOptions<std::invoke_result_t<std::decay_t<F>&, A&...>>> options) {
        return apply_tuple(std::decay_t<F>(std::forward<F>(f)), std::tuple<stored_arg_t<A>...>(std::move(args)),
                           std::move(options));
    }

    // map(f, items): f over every item, results in input order. Reads the whole input first
    // (what reading it throws propagates, nothing submitted); blocks until every item ended.
    // The first item to fail makes map throw its exception (the other items still run).
    // map_async returns at once; its get() blocks.
    template <class F, std::ranges::input_range Rng>
    auto map(F&& f, Rng&& items, std::optional<std::size_t> chunksize = {}) {
        return map(std::forward<F>(f), std::forward<Rng>(items), {.chunksize = chunksize});
    }
    template <class F, std::ranges::input_range Rng>
    auto map(F&& f, Rng&& items, std::type_identity_t<MapOptions<map_result_t<F, Rng>>> options) {
        using Tuple = std::tuple<stored_arg_t<std::ranges::range_value_t<Rng>>>;
        return take_list(list_job<Tuple>(std::decay_t<F>(std::forward<F>(f)), std::forward<Rng>(items), std::move(options)));
    }
    template <class F, std::ranges::input_range Rng>
    auto map_async(F&& f, Rng&& items, std::type_identity_t<MapOptions<map_result_t<F, Rng>>> options = {}) {
        using Tuple = std::tuple<stored_arg_t<std::ranges::range_value_t<Rng>>>;
        return list_result(list_job<Tuple>(std::decay_t<F>(std::forward<F>(f)), std::forward<Rng>(items), std::move(options)));
    }

    // starmap(f, tuples): f(a, b, ...) for every tuple (or pair) (a, b, ...).
    template <class F, std::ranges::input_range Rng>
    auto starmap(F&& f, Rng&& items, std::optional<std::size_t> chunksize = {}) {
        return starmap(std::forward<F>(f), std::forward<Rng>(items), {.chunksize = chunksize});
    }
    template <class F, std::ranges::input_range Rng>
    auto starmap(F&& f, Rng&& items, std::type_identity_t<MapOptions<starmap_result_t<F, Rng>>> options) {
        using Tuple = typename tuple_of<std::remove_cvref_t<std::ranges::range_value_t<Rng>>>::type;
        return take_list(list_job<Tuple>(std::decay_t<F>(std::forward<F>(f)), std::forward<Rng>(items), std::move(options)));
    }
    template <class F, std::ranges::input_range Rng>
    auto starmap_async(F&& f, Rng&& items,
                       std::type_identity_t<MapOptions<starmap_result_t<F, Rng>>> options = {}) {
        using Tuple = typename tuple_of<std::remove_cvref_t<std::ranges::range_value_t<Rng>>>::type;
        return list_result(list_job<Tuple>(std::decay_t<F>(std::forward<F>(f)), std::forward<Rng>(items), std::move(options)));
    }

    // imap(f, items): results in input order as they come; imap_unordered: as they finish.
    // Returns at once; the input is read lazily, a few chunks ahead of the results taken, and
    // keeps the pool accepting its chunks after close() until it ends. Advancing the iterator
    // blocks until the next result (next(timeout): mproc::TimeoutError when none comes in time)
    // and throws that item's exception; what reading the input throws is thrown in its place.
    template <class F, std::ranges::input_range Rng>
    auto imap(F&& f, Rng&& items, std::size_t chunksize = 1) {
        return stream_call(Mode::Ordered, std::decay_t<F>(std::forward<F>(f)), std::forward<Rng>(items),
                           IMapOptions{.chunksize = chunksize});
    }
    template <class F, std::ranges::input_range Rng>
    auto imap(F&& f, Rng&& items, IMapOptions options) {
        return stream_call(Mode::Ordered, std::decay_t<F>(std::forward<F>(f)), std::forward<Rng>(items), options);
    }
    template <class F, std::ranges::input_range Rng>
    auto imap_unordered(F&& f, Rng&& items, std::size_t chunksize = 1) {
        return stream_call(Mode::Unordered, std::decay_t<F>(std::forward<F>(f)), std::forward<Rng>(items),
                           IMapOptions{.chunksize = chunksize});
    }
    template <class F, std::ranges::input_range Rng>
    auto imap_unordered(F&& f, Rng&& items, IMapOptions options) {
        return stream_call(Mode::Unordered, std::decay_t<F>(std::forward<F>(f)), std::forward<Rng>(items), options);
    }

    // No more tasks; the workers exit once the submitted ones are done. Never blocks.
    void close() { core_->close(); }
    // Stops the workers now (SIGKILL; a ThreadPool's threads finish the task they run); every
    // unfinished task fails with mproc::ProcessError. Blocks until the workers are gone.
    // Idempotent; the destructor calls it.
    void terminate() { core_->terminate(); }
    // After close() or terminate() (else std::logic_error, Python's ValueError): blocks until
    // every task submitted has ended and the workers have exited. From a callback (the
    // dispatcher thread itself) it returns at once.
    void join() { core_->join(); }
    std::size_t processes() const noexcept { return core_->processes(); }

private:

    // A per-call deadline must be positive (the pool-wide one is checked when the pool is made);
    // a thread pool refuses any (its submit_items says why).
    static void check_deadline(const Timeout& t) {
        if (t && Core::can_stop_running && !(t->count() > 0))
            throw std::invalid_argument("mproc: a task deadline must be positive");
    }

    template <class R>
    static void check_result() {
        // A result travels back from the worker: one that cannot is refused with mproc's message.
        if constexpr (!std::is_void_v<R> && Core::crosses_processes) (void)check_serializable<R>();
    }

    template <class F, class Tuple>
    auto apply_tuple(F f, Tuple args, ApplyOptions<typename apply_result<F, Tuple>::type> options) {
        using R = typename apply_result<F, Tuple>::type;
        auto job = submit_job(std::move(f), std::move(args), options.task_timeout, std::move(options.callback),
                              std::move(options.error_callback));
        return mproc::pool::AsyncResult<R>(waiter(job), [job]() -> R {
            if constexpr (!std::is_void_v<R>) return job->value();
        });
    }

public:
    // For executors (not API): one call of f(args...), as its job.
    template <class F, class Tuple, class R = typename apply_result<F, Tuple>::type>
    std::shared_ptr<Job<R>> submit_job(F f, Tuple args, const Timeout& timeout,
                                       typename Job<R>::ValueCallback on_value = {},
                                       std::function<void(std::exception_ptr)> on_error = {},
                                       bool executor_future = false) {
        check_callable<Core, F>();
        check_arguments<Core, Tuple>();
        check_result<R>();
        core_->check_accepting();
        check_deadline(timeout);
        auto job = std::make_shared<Job<R>>(Mode::Single, 1);
        if (executor_future) job->set_executor_future();
        core_->adopt(*job);
        job->set_callbacks(std::move(on_value), {}, std::move(on_error));
        const auto prepared = core_->template prepare<R, F, Tuple>(f);
        core_->template submit_items<R>(job, 0, prepared, std::span<Tuple>(&args, 1), timeout, false);
        return job;
    }

    // For executors (not API): f over the ranges zipped (as Python's map(f, *iterables)),
    // results in order, the input read as results are taken.
    template <class F, class... Rngs>
    auto zip_stream(F f, std::size_t chunksize, const Timeout& task_timeout, Rngs&&... ranges) {
        using Tuple = std::tuple<stored_arg_t<std::ranges::range_value_t<Rngs>>...>;
        using R = typename apply_result<F, Tuple>::type;
        check_callable<Core, F>();
        check_arguments<Core, Tuple>();
        check_result<R>();
        core_->check_accepting();
        check_deadline(task_timeout);
        auto job = std::make_shared<StreamJob<R>>(Mode::Ordered);
        // Unlike Pool.imap, an executor's map does not hold the pool open: shutdown never waits
        // on an iterator (Python's Executor.map has submitted everything by then). Items the
        // iterator would feed after shutdown fail, saying the pool was closed.
        struct Source {
            std::tuple<HeldRange<Rngs>...> views;
            std::tuple<typename HeldRange<Rngs>::iterator...> its;
            bool started = false;
            bool advance = false;  // the last item read: the iterators move past it on the next read
            std::size_t next_index = 0;
        };
        auto src = std::make_shared<Source>(Source{{HeldRange<Rngs>(std::forward<Rngs>(ranges))...}, {}, false, false, 0});
        Core* core = core_.get();
        auto prepared = core_->template prepare<R, F, Tuple>(f);
        const std::size_t chunk = checked_chunksize(chunksize);
        auto feed = [src, core, job, prepared, chunk, task_timeout](std::size_t room) -> std::size_t {
            constexpr auto idx = std::index_sequence_for<Rngs...>{};
            const std::size_t want = std::max<std::size_t>(1, room / chunk) * chunk;
            std::vector<Tuple> part;
            std::exception_ptr input_error;
            try {
                if (!src->started) {
                    [&]<std::size_t... I>(std::index_sequence<I...>) {
                        ((std::get<I>(src->its) = std::ranges::begin(std::get<I>(src->views).get())), ...);
                    }(idx);
                    src->started = true;
                }
                while (part.size() < want) {
                    // Moving on is part of reading the next item (Python's next(it)), so what it
                    // throws belongs to that item's chunk.
                    if (std::exchange(src->advance, false))
                        [&]<std::size_t... I>(std::index_sequence<I...>) { (++std::get<I>(src->its), ...); }(idx);
                    const bool more = [&]<std::size_t... I>(std::index_sequence<I...>) {
                        return ((std::get<I>(src->its) != std::ranges::end(std::get<I>(src->views).get())) && ...);
                    }(idx);
                    if (!more) break;
                    [&]<std::size_t... I>(std::index_sequence<I...>) { part.emplace_back(*std::get<I>(src->its)...); }(idx);
                    src->advance = true;
                }
            } catch (...) {
                input_error = std::current_exception();
            }
            return feed_part<R>(*core, job, src->next_index, prepared, part, chunk, task_timeout, input_error);
        };
        return mproc::pool::IMapIterator<R>(job, std::move(feed), [] {}, stream_window(core_->processes(), chunk) * chunk,
                                            /*keep_on_drop*/ true);
    }

    Core& core() noexcept { return *core_; }
    const Core& core() const noexcept { return *core_; }

private:
    template <class Tuple, class F, class Rng, class R>
    std::shared_ptr<Job<R>> list_job(F f, Rng&& range, MapOptions<R> options) {
        check_callable<Core, F>();
        check_arguments<Core, Tuple>();
        check_result<R>();
        core_->check_accepting();
        check_deadline(options.task_timeout);
        std::vector<Tuple> all;
        if constexpr (std::ranges::sized_range<Rng>) all.reserve(std::ranges::size(range));
        for (auto&& x : range) all.push_back(to_tuple<Tuple>(std::forward<decltype(x)>(x)));
        const std::size_t n = all.size();
        const std::size_t chunk =
            n == 0 ? 1 : checked_chunksize(options.chunksize.value_or(default_chunksize(n, core_->processes())));
        auto job = std::make_shared<Job<R>>(Mode::List, n);
        core_->adopt(*job);
        job->set_callbacks({}, std::move(options.callback), std::move(options.error_callback));
        if (options.progress && ProgressBar::wanted()) job->set_progress(std::make_unique<ProgressBar>(n, true));
        const auto prepared = core_->template prepare<R, F, Tuple>(f);
        submit_chunks<R>(*core_, job, 0, prepared, std::span<Tuple>(all), chunk, options.task_timeout, false);
        return job;
    }
    // A blocking map's result: the values are moved out (its only reader).
    template <class R>
    static std::vector<typename Job<R>::Value> take_list(const std::shared_ptr<Job<R>>& job) {
        job->wait_done();
        return job->take_list();
    }
    // map_async's: get() copies them.
    template <class R>
    static auto list_result(const std::shared_ptr<Job<R>>& job) {
        return mproc::pool::AsyncResult<std::vector<typename Job<R>::Value>>(waiter(job), [job] { return job->list(); });
    }

    template <class F, class Rng>
    auto stream_call(Mode mode, F f, Rng&& range, IMapOptions options) {
        using Tuple = std::tuple<stored_arg_t<std::ranges::range_value_t<Rng>>>;
        using R = typename apply_result<F, Tuple>::type;
        check_callable<Core, F>();
        check_arguments<Core, Tuple>();
        check_result<R>();
        core_->check_accepting();
        check_deadline(options.task_timeout);
        auto job = std::make_shared<StreamJob<R>>(mode);
        const bool sized = std::ranges::sized_range<Rng>;
        std::size_t total = 0;
        if constexpr (std::ranges::sized_range<Rng>) total = std::ranges::size(range);
        if (options.progress && ProgressBar::wanted()) job->set_progress(std::make_unique<ProgressBar>(total, sized));
        const std::size_t chunk = checked_chunksize(options.chunksize);
        core_->stream_opened();
        // The input is read here, in the caller's thread, as the iteration asks for results.
        struct Source {
            HeldRange<Rng> view;
            typename HeldRange<Rng>::iterator it;
            bool started = false;
            bool advance = false;  // as zip_stream's
            std::size_t next_index = 0;
        };
        auto src = std::make_shared<Source>(Source{HeldRange<Rng>(std::forward<Rng>(range)), {}, false, false, 0});
        Core* core = core_.get();
        auto prepared = core_->template prepare<R, F, Tuple>(f);
        auto feed = [src, core, job, prepared, chunk, timeout = options.task_timeout](std::size_t room) -> std::size_t {
            const std::size_t want = std::max<std::size_t>(1, room / chunk) * chunk;
            std::vector<Tuple> part;
            std::exception_ptr input_error;
            try {
                if (!src->started) {
                    src->it = std::ranges::begin(src->view.get());
                    src->started = true;
                }
                while (part.size() < want) {
                    if (std::exchange(src->advance, false)) ++src->it;
                    if (src->it == std::ranges::end(src->view.get())) break;
                    part.push_back(to_tuple<Tuple>(*src->it));
                    src->advance = true;
                }
            } catch (...) {
                input_error = std::current_exception();
            }
            return feed_part<R>(*core, job, src->next_index, prepared, part, chunk, timeout, input_error);
        };
        auto on_close = [core] { core->stream_closed(); };
        return mproc::pool::IMapIterator<R>(job, std::move(feed), std::move(on_close),
                                            stream_window(core_->processes(), chunk) * chunk);
    }

    // items in chunks of `chunk`, as items first...: a group at a time where the core can
    // (ProcessCore::submit_all), else chunk by chunk.
    template <class R, class Prepared, class Tuple>
    static void submit_chunks(Core& core, const std::shared_ptr<Job<R>>& job, std::size_t first, const Prepared& prepared,
                              std::span<Tuple> items, std::size_t chunk, const Timeout& timeout, bool stream) {
        if constexpr (requires { core.template submit_all<R>(job, first, prepared, items, chunk, timeout, stream); }) {
            core.template submit_all<R>(job, first, prepared, items, chunk, timeout, stream);
        } else {
            for (std::size_t at = 0; at < items.size(); at += chunk)
                core.template submit_items<R>(job, first + at, prepared, items.subspan(at, std::min(chunk, items.size() - at)),
                                              timeout, stream);
        }
    }

    // A stream's next chunks, read from its input: submitted as items next_index...; the
    // number of their items, 0 at the end. An exception the input threw takes the place of the
    // chunk it was reading, and ends the stream there (Python's _guarded_task_generation over
    // _get_tasks' chunks): the results of the chunks before it come first, then it is raised,
    // then the iteration stops. The items of that chunk read before the exception do not run,
    // as in Python.
    template <class R, class Prepared, class Tuple>
    static std::size_t feed_part(Core& core, const std::shared_ptr<StreamJob<R>>& job, std::size_t& next_index,
                                 const Prepared& prepared, std::vector<Tuple>& part, std::size_t chunk,
                                 const Timeout& timeout, const std::exception_ptr& input_error) {
        if (input_error) part.resize(part.size() / chunk * chunk);  // the chunks read whole
        if (!part.empty()) {
            const std::size_t first = next_index;
            next_index += part.size();
            submit_chunks<R>(core, job, first, prepared, std::span<Tuple>(part), chunk, timeout, true);
        }
        if (input_error) {
            job->set_error(next_index, input_error);
            job->set_total(++next_index);
            return 0;
        }
        if (part.empty()) job->set_total(next_index);
        return part.size();
    }

    // One item as the task's argument tuple: (x) for map, the tuple or pair itself for starmap.
    template <class Tuple, class X>
    static Tuple to_tuple(X&& x) {
        return Tuple(std::forward<X>(x));
    }

    static ResultWaiter waiter(std::shared_ptr<CallJob> job) { return {std::move(job)}; }

    std::unique_ptr<Core> core_;
};

// The members that are not templates are compiled once, in the library (src/pool/pools.cpp).
extern template class BasicPool<ProcessCore>;
extern template class BasicPool<ThreadCore>;

}  // namespace detail::pool

// A pool of worker processes (Python: multiprocessing.Pool).
class Pool : public detail::pool::BasicPool<detail::pool::ProcessCore> {
public:
    using BasicPool::BasicPool;
};

template <class T>
using AsyncResult = pool::AsyncResult<T>;

namespace pool {
using mproc::Pool;
// A pool of threads of this process with Pool's interface (Python:
// multiprocessing.pool.ThreadPool).
class ThreadPool : public detail::pool::BasicPool<detail::pool::ThreadCore> {
public:
    using BasicPool::BasicPool;
};
}  // namespace pool

}  // namespace mproc
