// mproc/process.hpp: processes (Python: multiprocessing.Process and multiprocessing.process).
//
//   void greet(std::string who) { std::cout << "hello " << who << '\n'; }
//   mproc::Process p(greet, std::string("bob"));
//   p.start(); p.join();                       // p.exitcode() == 0
//
// States: created -> started (start) -> ended (the child exited; exitcode() is set once it is
// reaped by join, is_alive, exitcode or active_children) -> closed (close). A Process is
// movable, not copyable; BaseProcess is a copyable handle to the same process, which is what
// current_process(), parent_process() and active_children() return.
//
// The target is a function, a lambda or any callable; its arguments are copied into the child.
// With fork any callable works, captures included. With spawn and forkserver the child is a
// fresh run of this program, so the target must be a function, a captureless lambda or a
// default-constructible callable with serialize(); anything else is refused at start() with a
// std::logic_error saying why. Arguments must be serializable (see serialize.hpp) under every
// start method, so a program does not change meaning when its start method changes; a type
// that is not is a compile-time error naming it. A `const char*` argument is sent as a
// std::string.
//
// Exit codes, as Python's: 0 when the target returns; 1 when it throws (the exception is
// printed to stderr as "Process <name>:" and "<type>: <what>", as Python prints a traceback);
// the code given to exit(); -N when the child was ended by signal N.
//
// Lifetimes: every child is reaped; at normal exit a process terminates its daemonic children
// and joins the others, as Python does; a child dies when the process that started it dies,
// even by SIGKILL, and so do its own children, so nothing is orphaned. A Process object
// destroyed while its child runs does not stop the child: the child is joined at exit.
//
// Thread safety: different Process objects may be used from different threads. One Process
// may be queried (is_alive, exitcode, join) from several threads at once.
//
// Blocking: each method takes the object's mutex for a moment; only join() waits (in poll(2)
// on the sentinel, without the mutex), and start() for as long as starting takes (see there).
// is_alive(), exitcode() and active_children() reap a child that has ended (waitpid, WNOHANG)
// and never wait. Misuse is std::logic_error: asking a closed Process for its pid, exitcode,
// sentinel or liveness, or to start, join or signal; any method of a moved-from one; and those
// below that say so.
#pragma once

#include <concepts>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "mproc/context.hpp"
#include "mproc/detail/code_address.hpp"
#include "mproc/detail/timeout.hpp"
#include "mproc/serialize.hpp"

namespace mproc {

// Python: Process(group=None, target=None, name=None, args=(), kwargs={}, *, daemon=None).
// group exists in Python only for threading's sake and must be None, so it is left out; the
// target and its arguments are the constructor's own parameters; kwargs are a struct argument.
struct ProcessOptions {
    std::optional<std::string> name = {};  // default "Process-N" ("Process-1:2" in a child)
    std::optional<bool> daemon = {};       // default: the creating process's own daemon flag
    std::string start_method = {};         // "" uses get_start_method() at start()
};

class Process;
namespace detail {
struct ProcessState;
class ForkServer;
class Target;
// For process pools: a process with a type-erased target, forked by `server` when one is given
// (whatever its start method says).
Process make_pool_process(ProcessOptions options, std::unique_ptr<Target> target,
                          std::shared_ptr<ForkServer> server);
using EntryFn = void (*)(InputArchive&);

// A target and its arguments, type-erased: run in place after fork, or sent to a fresh
// program as (entry function, callable, arguments).
class Target {
public:
    virtual ~Target() = default;
    virtual void call() = 0;
    // Why this target cannot reach a spawn/forkserver child; nullptr when it can.
    virtual const char* refusal() const noexcept = 0;
    virtual EntryFn entry() const noexcept = 0;
    virtual void save(OutputArchive& ar) const = 0;
};

template <class A>
using stored_arg_t =
    std::conditional_t<std::is_same_v<std::decay_t<A>, const char*> || std::is_same_v<std::decay_t<A>, char*>,
                       std::string, std::decay_t<A>>;

template <class F>
inline constexpr bool is_function_pointer_v =
    std::is_pointer_v<F> && std::is_function_v<std::remove_pointer_t<F>>;
// A captureless lambda: C++20 makes its closure type default-constructible, so the child can
// make its own from the type alone; nothing but the entry function's address travels.
template <class F>
inline constexpr bool is_stateless_callable_v =
    std::is_class_v<F> && std::is_empty_v<F> && std::is_default_constructible_v<F>;
template <class F>
inline constexpr bool is_serializable_callable_v =
    std::is_class_v<F> && !std::is_empty_v<F> && std::is_default_constructible_v<F> &&
    (cereal::traits::detail::count_output_serializers<F, OutputArchive>::value > 0);
template <class F>
inline constexpr bool is_portable_callable_v =
    is_function_pointer_v<F> || is_stateless_callable_v<F> || is_serializable_callable_v<F>;

template <class F>
void save_callable(OutputArchive& ar, const F& f) {
    if constexpr (is_function_pointer_v<F>)
        save_function(ar, f);
    else if constexpr (is_serializable_callable_v<F>)
        ar(f);
}

template <class F>
F load_callable(InputArchive& ar) {
    if constexpr (is_function_pointer_v<F>) {
        return load_function<std::remove_pointer_t<F>>(ar);
    } else if constexpr (is_serializable_callable_v<F>) {
        F f{};
        ar(f);
        return f;
    } else {
        return F{};
    }
}

// Runs in a spawn/forkserver child: rebuilds the callable and arguments, then calls it.
template <class F, class... A>
void spawn_entry(InputArchive& ar) {
    F f = load_callable<F>(ar);
    std::tuple<A...> args;
    ar(args);
    std::apply(f, std::move(args));
}

inline constexpr const char* kCapturingRefusal =
    "mproc: the target is a lambda with captures (or a callable object that is neither "
    "default-constructible nor serializable), and the spawn and forkserver start methods run "
    "the child as a fresh program that cannot receive captured state. Pass the captured "
    "values as arguments, give the callable a serialize() member, or use the fork start method";

template <class F, class... A>
class TargetImpl final : public Target {
    // An argument that cannot be sent is refused here, first, with mproc's message (the check
    // asserts; this line only makes it run when the class is).
    static_assert(((void)check_serializable<A>(), ..., true));

public:
    template <class FF, class... AA>
    explicit TargetImpl(FF&& f, AA&&... a)
        : f_(std::forward<FF>(f)), args_(std::forward<AA>(a)...) {}

    void call() override { std::apply(f_, std::move(args_)); }
    const char* refusal() const noexcept override {
        if constexpr (is_portable_callable_v<F>)
            return nullptr;
        else
            return kCapturingRefusal;
    }
    EntryFn entry() const noexcept override {
        if constexpr (is_portable_callable_v<F>)
            return &spawn_entry<F, A...>;
        else
            return nullptr;
    }
    void save(OutputArchive& ar) const override {
        if constexpr (is_portable_callable_v<F>) {
            save_callable(ar, f_);
            ar(args_);
        }
    }

private:
    F f_;
    std::tuple<A...> args_;
};
}  // namespace detail

// A handle to a process: a child, the current process, or the parent. Copies refer to the same
// process. Python: multiprocessing.process.BaseProcess.
class BaseProcess {
public:
    virtual ~BaseProcess() = default;
    BaseProcess(const BaseProcess&) = default;
    BaseProcess& operator=(const BaseProcess&) = default;
    BaseProcess(BaseProcess&&) noexcept = default;
    BaseProcess& operator=(BaseProcess&&) noexcept = default;

    std::string name() const;
    void set_name(std::string name);
    bool daemon() const;
    // Before start() only (std::logic_error after, as Python's assertion); also for the
    // current and parent process, which Python lets current_process() set.
    void set_daemon(bool daemonic);
    // Empty before start.
    std::optional<int> pid() const;
    std::optional<int> ident() const { return pid(); }
    // Empty while running (or not started); 0, 1, the exit() code, or -N after signal N.
    std::optional<int> exitcode() const;
    // True from start() until the child is reaped. Reaps a child that has ended. Only the
    // creating process may ask (std::logic_error, as Python's assertion).
    bool is_alive() const;
    // Blocks until the process ends or the timeout passes (then it returns; check exitcode()),
    // then reaps it. Only the creating process may join a child; joining the current process
    // or one never started is std::logic_error (Python: AssertionError). A ParentProcess may
    // be joined, by waiting on it.
    void join(Timeout timeout = {});
    // SIGTERM / SIGKILL; never blocks. Without effect once the child has ended. Not started,
    // or not a child (the current or parent process): std::logic_error.
    void terminate();
    void kill();
    // A descriptor that becomes readable when the process ends, for poll() or
    // mproc::connection::wait. Owned by the process object. Not started: std::logic_error
    // (Python: ValueError).
    int sentinel() const;
    // The authentication key (32 random bytes in the main process, inherited by children).
    std::string authkey() const;
    void set_authkey(std::string key);

protected:
    explicit BaseProcess(std::shared_ptr<detail::ProcessState> state) noexcept
        : state_(std::move(state)) {}
    detail::ProcessState& state() const;

    std::shared_ptr<detail::ProcessState> state_;

    friend BaseProcess current_process();
    friend std::ostream& operator<<(std::ostream& os, const BaseProcess& p);
    friend std::vector<BaseProcess> active_children();
};

// The process that started this one (Python: multiprocessing.parent_process()). is_alive and
// join(timeout) work on it; it cannot be terminated from here.
class ParentProcess : public BaseProcess {
    using BaseProcess::BaseProcess;
    friend std::optional<ParentProcess> parent_process();
};

class Process : public BaseProcess {
public:
    // A process with no target (run() does nothing), for subclasses that override run().
    Process();
    explicit Process(ProcessOptions options);

    template <class F, class... Args>
        requires(!std::is_same_v<std::remove_cvref_t<F>, ProcessOptions> &&
                 std::invocable<std::decay_t<F>&, detail::stored_arg_t<Args>...>)
    explicit Process(F&& target, Args&&... args)
        : Process(ProcessOptions{}, std::forward<F>(target), std::forward<Args>(args)...) {}

    template <class F, class... Args>
        requires std::invocable<std::decay_t<F>&, detail::stored_arg_t<Args>...>
    Process(ProcessOptions options, F&& target, Args&&... args) : Process(std::move(options)) {
        target_ = std::make_unique<detail::TargetImpl<std::decay_t<F>, detail::stored_arg_t<Args>...>>(
            std::forward<F>(target), std::forward<Args>(args)...);
    }

    Process(Process&&) noexcept;
    Process& operator=(Process&&) noexcept;
    Process(const Process&) = delete;
    Process& operator=(const Process&) = delete;
    ~Process() override;

    // What the child runs: the target with its arguments. Override it in a subclass (the
    // seed's second way to make a process); a subclass runs under the fork start method, since
    // a fresh program cannot rebuild the object (start() refuses spawn/forkserver clearly).
    virtual void run();

    // Starts the child and returns once it exists, without waiting for it to run: blocks for
    // fork(2), or for spawning this program and sending it the job, or (forkserver) for a round
    // trip to the fork server, started on first use. Starting twice, or from a process other
    // than the creator, is std::logic_error, and so is a target or subclass that cannot reach
    // a spawn or forkserver child (see above) or spawn without mproc::init; an unknown start
    // method std::invalid_argument; a failure to fork or exec std::system_error (a fork server
    // gone mid-request: mproc::ProcessError).
    void start();
    // Releases the process's resources; never blocks. std::logic_error while it still runs.
    // After close most methods throw std::logic_error; close() again does nothing.
    void close();

private:
    std::unique_ptr<detail::Target> target_;

    friend Process detail::make_pool_process(ProcessOptions, std::unique_ptr<detail::Target>,
                                             std::shared_ptr<detail::ForkServer>);
};

// Python's repr: <Process name='Process-1' pid=123 parent=122 started daemon>, with status
// initial, started, stopped exitcode=N (a signal by name: exitcode=-SIGTERM) or closed.
std::ostream& operator<<(std::ostream& os, const BaseProcess& p);

// These take the registry's mutex for a moment; none waits.
// The current process (Python: multiprocessing.current_process()); "MainProcess" in the main
// program.
BaseProcess current_process();
// The parent of the current process, empty in the main program.
std::optional<ParentProcess> parent_process();
// The children of the current process that are still running; finished ones are reaped.
std::vector<BaseProcess> active_children();

}  // namespace mproc
