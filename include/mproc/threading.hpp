// mproc/threading.hpp: threads (Python: threading).
//
//   namespace th = mproc::threading;
//   th::Lock lock; long counter = 0;
//   std::vector<th::Thread> ts;
//   for (int i = 0; i < 4; ++i) ts.emplace_back([&] { std::lock_guard g(lock); ++counter; });
//   for (auto& t : ts) t.start();
//   for (auto& t : ts) t.join();
//
// Threads share the process's memory, so a target may be any callable, captures included, with
// any arguments (copied into the thread, as std::thread does). Python's rules otherwise:
// - start() once (again: std::logic_error); it returns when the thread runs, so ident() and
//   native_id() are set. join(timeout) returns at the timeout too: check is_alive().
// - daemon defaults to the creating thread's flag. At normal exit (return from main, exit())
//   the program waits for every non-daemon thread, as Python does; daemon threads are left.
// - A Thread object destroyed while its target runs does not stop or wait for it (the thread
//   owns its target). A subclass that overrides run() is different: its thread runs on the
//   object, so ~Thread waits for it. Join before the subclass's own members are destroyed.
// - An exception escaping a thread is handed to excepthook (Python: threading.excepthook),
//   which by default prints "Exception in thread <name>:" and "<type>: <what>" to stderr;
//   set_excepthook replaces it. The thread then ends; the program goes on.
// - current_thread() in a thread mproc did not start (std::thread, a pool's thread) is a dummy
//   "Dummy-N", as in Python. After fork, the forking thread is the child's main thread and the
//   others are gone.
//
// The synchronization classes (Lock, RLock, Condition, Semaphore, BoundedSemaphore, Event,
// Barrier) are those of <mproc/synchronize.hpp> in this process's own memory: the same
// algorithms, methods and contracts (what blocks, what the caller must hold, what throws: see
// there), no descriptor or mapping each, and no dead-owner take-over (another thread may
// release a Lock, as Python allows). Only acquire's argument checks are threading's own (below).
// Copies refer to the same object. They cannot be sent to another process (std::logic_error):
// use mproc::Lock and the rest for that.
//
// Contracts of the thread functions: nothing blocks but what says so (join, start, and a Thread
// whose subclass run() is running being destroyed or assigned to); the others take a registry
// or per-thread mutex for a moment at most. A moved-from Thread is std::logic_error to use.
#pragma once

#include <atomic>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <exception>
#include <functional>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "mproc/detail/timeout.hpp"
#include "mproc/errors.hpp"
#include "mproc/synchronize.hpp"

namespace mproc::threading {

using mproc::BrokenBarrierError;

namespace detail {
// threading's argument rules for Lock.acquire(blocking, timeout): a timeout of -1 s waits
// forever (Python's default, timeout=-1); any other negative timeout, and a timeout given with
// block = false, is std::invalid_argument (Python: ValueError). Returns the timeout to wait.
Timeout lock_timeout(bool block, Timeout timeout);
// Semaphore.acquire: a timeout with block = false is std::invalid_argument; a negative timeout
// is a zero one.
void check_semaphore_arguments(bool block, const Timeout& timeout);
}  // namespace detail

// acquire(block, timeout): Python's threading.Lock.acquire, with its argument checks (see
// detail::lock_timeout). Blocks until acquired, or the timeout. Lock, RLock and Condition
// share these checks; release() not held is std::logic_error (Python: RuntimeError).
class Lock : public mproc::Lock {
public:
    Lock();
    bool acquire(bool block = true, Timeout timeout = {}) { return mproc::Lock::acquire(block, detail::lock_timeout(block, timeout)); }
};

class RLock : public mproc::RLock {
public:
    RLock();
    bool acquire(bool block = true, Timeout timeout = {}) { return mproc::RLock::acquire(block, detail::lock_timeout(block, timeout)); }
};

// Over a new RLock by default, or over the given Lock or RLock. wait and notify need the lock
// held by the calling thread, else std::logic_error (Python: RuntimeError); over a Lock held by
// another thread too, where Python's Condition, which cannot tell a Lock's owner, goes on.
class Condition : public mproc::Condition {
public:
    Condition();
    explicit Condition(const mproc::Lock& lock);
    explicit Condition(const mproc::RLock& lock);
    bool acquire(bool block = true, Timeout timeout = {}) { return mproc::Condition::acquire(block, detail::lock_timeout(block, timeout)); }
};

// acquire: a timeout with block = false is std::invalid_argument; a negative timeout is zero.
class Semaphore : public mproc::Semaphore {
public:
    explicit Semaphore(int value = 1);
    bool acquire(bool block = true, Timeout timeout = {}) {
        detail::check_semaphore_arguments(block, timeout);
        return mproc::Semaphore::acquire(block, timeout);
    }
};

class BoundedSemaphore : public mproc::BoundedSemaphore {
public:
    explicit BoundedSemaphore(int value = 1);
    bool acquire(bool block = true, Timeout timeout = {}) {
        detail::check_semaphore_arguments(block, timeout);
        return mproc::BoundedSemaphore::acquire(block, timeout);
    }
};

class Event : public mproc::Event {
public:
    Event();
};

// The action may be any callable; it runs in the thread whose arrival completes the barrier.
class Barrier : public mproc::Barrier {
public:
    explicit Barrier(int parties, std::function<void()> action = {}, Timeout timeout = {});
};

// Python: Thread(group=None, target=None, name=None, args=(), kwargs={}, *, daemon=None). As
// with ProcessOptions, the target and its arguments are the constructor's own parameters.
struct ThreadOptions {
    std::optional<std::string> name = {};  // default "Thread-N"
    std::optional<bool> daemon = {};       // default: the creating thread's daemon flag
};

class BaseThread;
class Thread;

namespace detail {
struct ThreadState;

class ThreadTarget {
public:
    virtual ~ThreadTarget() = default;
    virtual void call() = 0;
};

template <class F, class... A>
class ThreadTargetImpl final : public ThreadTarget {
public:
    template <class FF, class... AA>
    explicit ThreadTargetImpl(FF&& f, AA&&... a) : f_(std::forward<FF>(f)), args_(std::forward<AA>(a)...) {}
    void call() override { std::apply(f_, std::move(args_)); }

private:
    F f_;
    std::tuple<A...> args_;
};

template <class F, class... A>
std::unique_ptr<ThreadTarget> make_thread_target(F&& f, A&&... a) {
    return std::make_unique<ThreadTargetImpl<std::decay_t<F>, std::decay_t<A>...>>(std::forward<F>(f),
                                                                                  std::forward<A>(a)...);
}

// One slot per thread for each local<T> (src/threading.cpp).
struct LocalShared {
    std::uint64_t id;
    std::function<std::shared_ptr<void>()> make;
};
BaseThread make_base_thread(std::shared_ptr<ThreadState> state);

void* local_find(std::uint64_t id) noexcept;
void* local_create(const std::shared_ptr<LocalShared>& shared);
std::uint64_t local_next_id() noexcept;
}  // namespace detail

// A handle to a thread: one started here, the main thread, or a dummy for a thread mproc did
// not start. Copies refer to the same thread. What current_thread(), main_thread() and
// enumerate() return.
class BaseThread {
public:
    virtual ~BaseThread() = default;
    BaseThread(const BaseThread&) = default;
    BaseThread& operator=(const BaseThread&) = default;
    BaseThread(BaseThread&&) noexcept = default;
    BaseThread& operator=(BaseThread&&) noexcept = default;

    // Python lets any thread rename any other: these take the thread's mutex for a moment.
    std::string name() const;
    void set_name(std::string name);
    bool daemon() const;
    // Before start() only (std::logic_error after, as Python's RuntimeError).
    void set_daemon(bool daemonic);
    // pthread_self() of the thread (Python: ident); empty before start.
    std::optional<unsigned long> ident() const;
    // The kernel's thread id (Python: native_id); empty before start.
    std::optional<int> native_id() const;
    // True from start() until the target (or run()) returns or throws. Never blocks.
    bool is_alive() const;
    // Blocks on a futex until the thread ends or the timeout passes (then it returns; check
    // is_alive()). Joining a thread never started, or the current thread: std::logic_error
    // (Python: RuntimeError). Another thread may join it at the same time.
    void join(Timeout timeout = {}) const;

    // The same thread.
    friend bool operator==(const BaseThread& a, const BaseThread& b) noexcept { return a.state_ == b.state_; }

protected:
    explicit BaseThread(std::shared_ptr<detail::ThreadState> state) noexcept : state_(std::move(state)) {}
    detail::ThreadState& state() const;

    std::shared_ptr<detail::ThreadState> state_;

    friend BaseThread current_thread();
    friend BaseThread main_thread();
    friend std::vector<BaseThread> enumerate();
    friend BaseThread detail::make_base_thread(std::shared_ptr<detail::ThreadState>);
    friend std::ostream& operator<<(std::ostream& os, const BaseThread& t);
};

class Thread : public BaseThread {
public:
    // A thread with no target (run() does nothing), for subclasses that override run().
    Thread();
    explicit Thread(ThreadOptions options);

    template <class F, class... Args>
        requires(!std::is_same_v<std::remove_cvref_t<F>, ThreadOptions> &&
                 std::invocable<std::decay_t<F>&, std::decay_t<Args>...>)
    explicit Thread(F&& target, Args&&... args)
        : Thread(ThreadOptions{}, std::forward<F>(target), std::forward<Args>(args)...) {}

    template <class F, class... Args>
        requires std::invocable<std::decay_t<F>&, std::decay_t<Args>...>
    Thread(ThreadOptions options, F&& target, Args&&... args) : Thread(std::move(options)) {
        set_target(detail::make_thread_target(std::forward<F>(target), std::forward<Args>(args)...));
    }

    // Moving a Thread whose subclass run() is already running is not allowed: the thread runs
    // on the object.
    Thread(Thread&& other) noexcept;
    Thread& operator=(Thread&& other) noexcept;
    Thread(const Thread&) = delete;
    Thread& operator=(const Thread&) = delete;
    ~Thread() override;

    // What the thread runs: the target with its arguments (released when it returns). Override
    // it in a subclass constructed without a target. What it throws in the thread goes to
    // excepthook; called directly, it throws to its caller.
    virtual void run();
    // Starts the thread and blocks until it runs. Twice: std::logic_error (Python:
    // RuntimeError). A failure to create a thread: std::system_error, and start() may be
    // called again.
    void start();

private:
    void set_target(std::unique_ptr<detail::ThreadTarget> target);
    void adopt(Thread& other) noexcept;
    void wait_for_own_run() noexcept;
};

// Calls function(args...) after interval, in a thread of its own, unless cancel() came first
// (Python: threading.Timer). Like any target thread it runs on even if the Timer object is
// destroyed.
class Timer : public Thread {
public:
    template <class F, class... Args>
        requires std::invocable<std::decay_t<F>&, std::decay_t<Args>...>
    Timer(std::chrono::duration<double> interval, F&& function, Args&&... args)
        : Timer(interval, detail::make_thread_target(std::forward<F>(function), std::forward<Args>(args)...)) {}

    // Stops the timer if it is still waiting; without effect once the function has started.
    // Never blocks.
    void cancel() { finished_.set(); }

private:
    Timer(std::chrono::duration<double> interval, std::unique_ptr<detail::ThreadTarget> function);
    Timer(std::chrono::duration<double> interval, std::unique_ptr<detail::ThreadTarget> function, Event finished);
    Event finished_;
};

// Data each thread sees its own copy of (Python: threading.local). A thread's first get()
// makes its copy: T() by default, or T(args...) from the arguments given to the constructor.
// A thread's copies are destroyed when it ends; a destroyed local's copies in threads still
// running are freed at their end or at their next first use of any local. Copies of a local
// refer to the same per-thread data.
template <class T>
class local {
public:
    local()
        requires std::default_initializable<T>
        : shared_(std::make_shared<detail::LocalShared>(
              detail::LocalShared{detail::local_next_id(), [] { return std::shared_ptr<void>(std::make_shared<T>()); }})) {}

    template <class... Args>
        requires(sizeof...(Args) > 0 && !(sizeof...(Args) == 1 && (std::is_same_v<std::remove_cvref_t<Args>, local> && ...)) &&
                 std::constructible_from<T, const std::decay_t<Args>&...>)
    explicit local(Args&&... args)
        : shared_(std::make_shared<detail::LocalShared>(detail::LocalShared{
              detail::local_next_id(), [saved = std::make_tuple(std::forward<Args>(args)...)] {
                  return std::shared_ptr<void>(std::apply([](const auto&... a) { return std::make_shared<T>(a...); }, saved));
              }})) {}

    // This thread's copy, made on first use (what T's constructor throws, then, passes through).
    // Takes no lock.
    T& get() {
        if (void* p = detail::local_find(shared_->id)) return *static_cast<T*>(p);
        return *static_cast<T*>(detail::local_create(shared_));
    }
    T& operator*() { return get(); }
    T* operator->() { return &get(); }
    // Whether this thread has made its copy yet (Python: hasattr on a fresh thread).
    bool has_value() const noexcept { return detail::local_find(shared_->id) != nullptr; }

private:
    std::shared_ptr<detail::LocalShared> shared_;
};

// These take the registry's mutex for a moment at most; none blocks otherwise.
// The thread calling it; a dummy "Dummy-N" handle for a thread mproc did not start.
BaseThread current_thread();
// The program's main thread (after fork: the thread that forked).
BaseThread main_thread();
// The live threads: the main thread, those started by Thread, and dummies.
std::vector<BaseThread> enumerate();
int active_count();
unsigned long get_ident() noexcept;
int get_native_id() noexcept;

// What excepthook receives (Python: threading.ExceptHookArgs; no traceback in C++).
struct ExceptHookArgs {
    std::string exc_type;          // the exception's type name ("std::runtime_error")
    std::exception_ptr exc_value;  // rethrow it to inspect
    std::optional<BaseThread> thread;
};
using ExceptHook = std::function<void(const ExceptHookArgs&)>;
// Python's threading.__excepthook__: prints "Exception in thread <name>:" and "<type>: <what>"
// to stderr in one write.
void default_excepthook(const ExceptHookArgs& args);
// Calls the hook in force (Python: threading.excepthook(args)); what the hook throws passes
// through.
void excepthook(const ExceptHookArgs& args);
// Python's `threading.excepthook = hook`: returns the previous hook; an empty hook restores the
// default. A hook that throws has its exception printed by default_excepthook.
ExceptHook set_excepthook(ExceptHook hook);

// The seed's rule of thumb (S23) for threads that wait as well as compute:
//   threads = ((wait time + CPU time) / CPU time) x CPUs = (1 + wait/CPU) x CPUs,
// rounded up. A task that computes for 2 ms and then waits 8 ms on the network keeps a CPU busy
// a fifth of the time, so five threads per CPU keep each CPU busy. cpus defaults to the CPUs
// this process may run on. A negative or non-finite ratio, cpus below 1, or a count past 2^20:
// std::invalid_argument.
int suggested_thread_count(double wait_to_cpu_ratio, std::optional<int> cpus = {});
template <class R1, class P1, class R2, class P2>
int suggested_thread_count(std::chrono::duration<R1, P1> wait_time, std::chrono::duration<R2, P2> cpu_time,
                           std::optional<int> cpus = {}) {
    const double cpu = std::chrono::duration<double>(cpu_time).count();
    if (!(cpu > 0)) throw std::invalid_argument("mproc: the CPU time per task must be positive");
    return suggested_thread_count(std::chrono::duration<double>(wait_time).count() / cpu, cpus);
}

// Python's repr: <Thread(Thread-1, started 140245)>, with initial / started / stopped and
// "daemon".
std::ostream& operator<<(std::ostream& os, const BaseThread& t);

}  // namespace mproc::threading
