// Process behaviour checked against Python's documented semantics. Sources:
//   https://docs.python.org/3.11/library/multiprocessing.html#process-and-exceptions
//   CPython Lib/multiprocessing/process.py (names, identity, exitcode, close)
//   CPython Lib/multiprocessing/context.py (set_start_method, get_start_method)
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <string>

#include <mproc/mproc.hpp>

namespace {

void nothing() {}
void quit(int c) { std::_Exit(c); }

// process.py: `_current_process = _MainProcess()`, whose name is 'MainProcess'.
TEST(Conformance, MainProcessName) {
    EXPECT_EQ(mproc::current_process().name(), "MainProcess");
    EXPECT_EQ(mproc::current_process().pid(), getpid());
    EXPECT_FALSE(mproc::parent_process());  // parent_process(): None in the main process
    EXPECT_TRUE(mproc::current_process().is_alive());
}

// process.py BaseProcess.__init__: `self._identity = _current_process._identity + (count,)`,
// `self._name = name or type(self).__name__ + '-' + ':'.join(str(i) for i in self._identity)`.
// The counter advances for every Process made, named or not.
TEST(Conformance, DefaultNamesCountUp) {
    mproc::Process a(nothing);
    mproc::Process b({.name = "named"}, nothing);
    mproc::Process c(nothing);
    const int na = std::stoi(a.name().substr(8));
    EXPECT_EQ(a.name().substr(0, 8), "Process-");
    EXPECT_EQ(b.name(), "named");
    EXPECT_EQ(c.name(), "Process-" + std::to_string(na + 2));
}

// "The process's daemon flag ... The initial value is inherited from the creating process."
TEST(Conformance, DaemonDefaultsToCreatorsFlag) {
    mproc::Process p(nothing);
    EXPECT_FALSE(p.daemon());
    p.set_daemon(true);
    EXPECT_TRUE(p.daemon());
}

// "exitcode: The child's exit code. This will be None if the process has not yet terminated.
//  A negative value -N indicates that the child was terminated by signal N."
TEST(Conformance, ExitCodes) {
    mproc::Process p(quit, 3);
    EXPECT_FALSE(p.exitcode());
    p.start();
    p.join();
    EXPECT_EQ(p.exitcode(), 3);
    mproc::Process q([] { raise(SIGINT); });
    q.start();
    q.join();
    EXPECT_EQ(q.exitcode(), -SIGINT);
}

// "pid: Return the process ID. Before the process is spawned, this will be None."
// "is_alive: Roughly, a process object is alive from the moment the start() method returns
//  until the child process terminates."
TEST(Conformance, PidAndIsAlive) {
    mproc::Process p(nothing);
    EXPECT_FALSE(p.pid());
    EXPECT_FALSE(p.is_alive());
    p.start();
    EXPECT_TRUE(p.pid());
    p.join();
    EXPECT_FALSE(p.is_alive());
    EXPECT_EQ(p.ident(), p.pid());
}

// context.py: set_start_method raises RuntimeError('context has already been set') unless
// force; get_start_method(allow_none=False) fixes the default.
TEST(Conformance, StartMethodContext) {
    mproc::set_start_method("fork", true);
    EXPECT_THROW(mproc::set_start_method("spawn"), std::logic_error);
    EXPECT_EQ(mproc::get_start_method(true), std::optional<std::string>("fork"));
}

// process.py close(): "ValueError: Cannot close a process while it is still running";
// afterwards most methods raise ValueError("process object is closed").
TEST(Conformance, Close) {
    mproc::Process p(nothing);
    p.start();
    p.join();
    p.close();
    EXPECT_THROW(p.exitcode(), std::logic_error);
    EXPECT_THROW(p.pid(), std::logic_error);
    EXPECT_NO_THROW(p.name());  // name stays readable, as in Python
}

// spawn.py get_preparation_data: `start_method=get_start_method()`, and prepare():
// `set_start_method(data['start_method'], force=True)`: a spawn or forkserver child takes its
// parent's start method as its own default, so its children start the same way (issue 14,
// divergence 10: they said "fork").
void exit_unless_method_is(std::string expected) { std::_Exit(mproc::get_start_method() == expected ? 0 : 1); }

TEST(Conformance, ChildInheritsTheParentsStartMethod) {
    const auto saved = mproc::get_start_method(true);
    for (const char* method : {"spawn", "forkserver", "fork"}) {
        mproc::set_start_method(method, true);
        mproc::Process p(exit_unless_method_is, std::string(method));
        p.start();
        p.join();
        EXPECT_EQ(p.exitcode(), 0) << "a " << method << " child's get_start_method()";
    }
    mproc::set_start_method(saved.value_or("fork"), true);
}

// The main guard: init returns at once in the program itself.
TEST(Conformance, InitIsIdempotentInTheProgram) {
    EXPECT_TRUE(mproc::initialized());
    char arg0[] = "prog";
    char* argv[] = {arg0, nullptr};
    mproc::init(1, argv);
    SUCCEED();
}

}  // namespace
