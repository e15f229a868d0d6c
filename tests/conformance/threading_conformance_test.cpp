// CPython's Lib/test/test_threading.py, ported over mproc::threading: ThreadTests,
// ThreadJoinOnShutdown, ThreadingExceptionTests, ExceptHookTests (the lock_tests
// instantiations of that file are in lock_tests_test.cpp, suites Threading*). A suite is named
// for the CPython class; a test for the method.
//
// CPython runs many of these in a fresh interpreter (assert_python_ok) or in a forked one; here
// a fresh interpreter is an mproc::Process, run under each start method (TEST_P) where the
// CPython test does not need fork, and a forked one is a Process started with "fork". A wait
// CPython makes without a timeout has one here of kLong, so that a failure fails the test instead
// of hanging it.
#include <gtest/gtest.h>
#include <pthread.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <mproc/mproc.hpp>

using namespace std::chrono_literals;
namespace th = mproc::threading;

namespace {

constexpr auto kLong = 30s;

std::string repr(const th::BaseThread& t) {
    std::ostringstream os;
    os << t;
    return os.str();
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// test_threading.BaseTestCase: threading_setup / threading_cleanup: every test ends with the
// threads it started gone.
class ThreadingBase : public testing::Test {
protected:
    void TearDown() override {
        for (auto& t : th::enumerate())
            if (!(t == th::main_thread())) t.join(kLong);
        EXPECT_EQ(th::active_count(), 1);
    }
};

// Some tests replace the excepthook; each such test puts back the default (CPython's
// restore_default_excepthook).
class HookRestoringBase : public ThreadingBase {
protected:
    void TearDown() override {
        th::set_excepthook({});
        ThreadingBase::TearDown();
    }
};

class ThreadTests : public ThreadingBase {};
class ThreadJoinOnShutdown : public ThreadingBase {};
class ThreadingExceptionTests : public HookRestoringBase {};
class ExceptHookTests : public HookRestoringBase {};

// Fresh-interpreter tests, under each start method.
class ThreadTestsP : public ThreadingBase, public testing::WithParamInterface<std::string> {
protected:
    mproc::ProcessOptions opts() { return {.start_method = GetParam()}; }
};
class ThreadJoinOnShutdownP : public ThreadTestsP {};

void func() {}

// ---------------------------------------------------------------------------------------------
// ThreadTests

// ThreadTests.test_name: an explicit name is kept, with or without a target; default names are
// "Thread-N" from one counter. Python appends " (target)" to a default name: mproc does not
// (python_differences.md, row "Thread(name=None) names Thread-N (target)"). (name=123 being
// converted to "123" has no C++ counterpart: names are strings.)
TEST_F(ThreadTests, test_name) {
    th::Thread thread({.name = "myname1"});
    EXPECT_EQ(thread.name(), "myname1");
    th::Thread thread2({.name = "myname2"}, func);
    EXPECT_EQ(thread2.name(), "myname2");
    th::Thread a;
    th::Thread b(func);
    ASSERT_EQ(a.name().substr(0, 7), "Thread-");
    const int n = std::stoi(a.name().substr(7));
    EXPECT_EQ(b.name(), "Thread-" + std::to_string(n + 1));
}

// ThreadTests.test_name, its `Thread(name="")` case: an empty name is no name, and the thread
// gets the next "Thread-N" (threading.py: `if name: name = str(name) else: name = _newname(...)`).
// Issue 14 (fixed): mproc named the thread "".
TEST_F(ThreadTests, test_name_empty) {
    th::Thread thread({.name = ""});
    EXPECT_EQ(thread.name().substr(0, 7), "Thread-") << "name: '" << thread.name() << "'";
}

// ThreadTests.test_args_argument: the target receives the arguments as given, whatever their
// type (bpo-45735: a list or a tuple as args).
TEST_F(ThreadTests, test_args_argument) {
    std::atomic<int> checked{0};
    th::Thread t1([&](int arg) {
        EXPECT_EQ(arg, 1);
        ++checked;
    }, 1);
    th::Thread t2([&](const std::string& arg) {
        EXPECT_EQ(arg, "str");
        ++checked;
    }, std::string("str"));
    th::Thread t3([&](const std::vector<int>& arg) {
        EXPECT_EQ(arg, std::vector<int>{1});
        ++checked;
    }, std::vector<int>{1});
    th::Thread t4([&](const std::tuple<int>& arg) {
        EXPECT_EQ(arg, std::tuple<int>(1));
        ++checked;
    }, std::tuple<int>(1));
    for (th::Thread* t : {&t1, &t2, &t3, &t4}) {
        t->start();
        t->join();
    }
    EXPECT_EQ(checked.load(), 4);
}

// test_threading.TestThread: a Thread subclass whose run() counts itself in and out under a
// BoundedSemaphore(3), checking that no more than 3 run at once.
class TestThread : public th::Thread {
public:
    TestThread(std::string name, th::BoundedSemaphore sema, th::RLock mutex, int* nrunning)
        : th::Thread(th::ThreadOptions{.name = std::move(name)}), sema_(sema), mutex_(mutex), nrunning_(nrunning) {}
    ~TestThread() override { join(); }
    void run() override {
        thread_local std::minstd_rand rng(std::random_device{}());
        const auto delay = std::chrono::duration<double>(std::uniform_real_distribution<double>(0, 1e-4)(rng));
        std::lock_guard s(sema_);
        {
            std::lock_guard m(mutex_);
            ++*nrunning_;
            EXPECT_LE(*nrunning_, 3);
        }
        std::this_thread::sleep_for(delay);
        {
            std::lock_guard m(mutex_);
            --*nrunning_;
            EXPECT_GE(*nrunning_, 0);
        }
    }

private:
    th::BoundedSemaphore sema_;
    th::RLock mutex_;
    int* nrunning_;
};

// ThreadTests.test_various_ops: "Create a bunch of threads, let each do some work, wait until all
// are done": no ident before start and a repr "initial"; distinct native ids (the main thread's
// among them); after join not alive, an ident, a repr "stopped <ident>"; the count back at 0.
// The repr names the subclass (<TestThread(...)>), as Python's (issue 14, divergence 16).
TEST_F(ThreadTests, test_various_ops) {
    const int NUMTASKS = 10;
    th::BoundedSemaphore sema(3);
    th::RLock mutex;
    int numrunning = 0;
    std::vector<std::unique_ptr<TestThread>> threads;
    for (int i = 0; i < NUMTASKS; ++i) {
        threads.push_back(std::make_unique<TestThread>("<thread " + std::to_string(i) + ">", sema, mutex, &numrunning));
        TestThread& t = *threads.back();
        EXPECT_FALSE(t.ident());
        EXPECT_TRUE(std::regex_match(repr(t), std::regex(R"(^<TestThread\(.*, initial\)>$)"))) << repr(t);
        t.start();
    }
    std::set<int> native_ids{th::get_native_id()};
    for (auto& t : threads) {
        ASSERT_TRUE(t->native_id());
        native_ids.insert(*t->native_id());
    }
    EXPECT_EQ(native_ids.size(), static_cast<std::size_t>(NUMTASKS + 1));
    for (auto& t : threads) {
        t->join();
        EXPECT_FALSE(t->is_alive());
        ASSERT_TRUE(t->ident());
        EXPECT_NE(*t->ident(), 0u);
        EXPECT_TRUE(std::regex_match(repr(*t), std::regex(R"(^<TestThread\(.*, stopped -?\d+\)>$)"))) << repr(*t);
    }
    EXPECT_EQ(numrunning, 0);
}

// ThreadTests.test_ident_of_no_threading_threads: "The ident still must work for the main thread
// and dummy threads": a foreign thread's current_thread().ident is its own thread id.
TEST_F(ThreadTests, test_ident_of_no_threading_threads) {
    EXPECT_TRUE(th::current_thread().ident());
    std::optional<unsigned long> ident;
    std::thread t([&] { ident = th::current_thread().ident(); });
    const auto tid = static_cast<unsigned long>(t.native_handle());
    t.join();
    EXPECT_EQ(ident, tid);
}

// ThreadTests.test_foreign_thread: "Check that a 'foreign' thread can use the threading module":
// current_thread() in it registers a _DummyThread, listed (by its ident) and alive. (The thread
// stays alive while it is checked: mproc drops a dummy when its thread ends.)
TEST_F(ThreadTests, test_foreign_thread) {
    th::Lock mutex;
    th::Event done;
    mutex.acquire();
    std::thread t([&] {
        th::current_thread();
        mutex.release();
        done.wait(kLong);
    });
    const auto tid = static_cast<unsigned long>(t.native_handle());
    EXPECT_TRUE(mutex.acquire(true, kLong));  // wait for the thread to have called current_thread()
    std::optional<th::BaseThread> dummy;
    for (auto& x : th::enumerate())
        if (x.ident() == tid) dummy = x;
    ASSERT_TRUE(dummy);
    EXPECT_TRUE(dummy->is_alive());
    EXPECT_TRUE(contains(repr(*dummy), "_DummyThread")) << repr(*dummy);
    done.set();
    t.join();
}

// ThreadTests.test_join_nondaemon_on_shutdown: "Raising SystemExit skipped threading._shutdown":
// a program that exits (here std::exit, the C++ SystemExit) while a non-daemon thread still
// runs waits for that thread, which finds everything still in place. The thread reports only
// after the parent has seen the child's main thread go to exit.
void nondaemon_then_exit(mproc::Event exiting, mproc::Event release, mproc::Connection out) {
    th::Thread t([release, out = std::move(out)]() mutable {
        release.wait(kLong);
        out.send(std::string("Woke up"));
    });
    t.start();
    exiting.set();
    std::exit(0);
}

TEST_P(ThreadTestsP, test_join_nondaemon_on_shutdown) {
    auto [r, w] = mproc::Pipe(false);
    mproc::Event exiting, release;
    mproc::Process p(opts(), nondaemon_then_exit, exiting, release, std::move(w));
    p.start();
    EXPECT_TRUE(exiting.wait(kLong));
    release.set();
    ASSERT_TRUE(r.poll(kLong));
    EXPECT_EQ(r.recv<std::string>(), "Woke up");
    p.join(kLong);
    EXPECT_EQ(p.exitcode(), 0);
}

// ThreadTests.test_enumerate_after_join: "a thread is still returned in threading.enumerate()
// after it has been join()ed" (#1703448) must not happen. (CPython varies the switch interval;
// there is none here.)
TEST_F(ThreadTests, test_enumerate_after_join) {
    for (int i = 1; i < 100; ++i) {
        th::Thread t([] {});
        t.start();
        t.join();
        for (auto& x : th::enumerate()) ASSERT_FALSE(x == t) << "#1703448 triggered after " << i << " trials";
    }
}

// ThreadTests.test_no_refcycle_through_target: a Thread does not keep its target (and what the
// target holds) alive once it has run, whether it returned or raised. Python checks that the
// object is collected; here, that a shared_ptr the target held is released after join while the
// Thread object itself still exists (<mproc/threading.hpp>: "released when it returns").
TEST_F(ThreadTests, test_no_refcycle_through_target) {
    th::set_excepthook([](const th::ExceptHookArgs&) {});  // Python's raising target raises SystemExit: silent
    for (bool should_raise : {false, true}) {
        auto obj = std::make_shared<int>(1);
        std::weak_ptr<int> weak = obj;
        th::Thread t(
            [should_raise](std::shared_ptr<int> self) {
                if (should_raise) throw std::runtime_error("SystemExit");
                (void)self;
            },
            std::move(obj));
        t.start();
        t.join();
        EXPECT_TRUE(weak.expired()) << (should_raise ? "raising" : "returning") << " target still referenced";
    }
    th::set_excepthook({});
}

// ThreadTests.test_repr_daemon: "daemon" shows in the repr once the flag is set.
TEST_F(ThreadTests, test_repr_daemon) {
    th::Thread t;
    EXPECT_FALSE(contains(repr(t), "daemon")) << repr(t);
    t.set_daemon(true);
    EXPECT_TRUE(contains(repr(t), "daemon")) << repr(t);
}

// ThreadTests.test_daemon_param: daemon defaults to the main thread's (False); daemon=False and
// daemon=True are kept.
TEST_F(ThreadTests, test_daemon_param) {
    th::Thread t;
    EXPECT_FALSE(t.daemon());
    th::Thread t2({.daemon = false});
    EXPECT_FALSE(t2.daemon());
    th::Thread t3({.daemon = true});
    EXPECT_TRUE(t3.daemon());
}

// ThreadTests.test_dummy_thread_after_fork: "a dummy thread in the active list doesn't mess up
// the after-fork mechanism": with a foreign thread registered, active_count() is 2; in a child
// forked then, it is 1. (The child's count comes back as its exit code.)
TEST_F(ThreadTests, test_dummy_thread_after_fork) {
    th::Event evt, done;
    std::thread bg([&] {
        th::current_thread();  // creates and registers the dummy
        evt.set();
        done.wait(kLong);
    });
    EXPECT_TRUE(evt.wait(kLong));
    EXPECT_EQ(th::active_count(), 2);
    mproc::Process p({.start_method = "fork"}, [] { std::_Exit(th::active_count()); });
    p.start();
    p.join(kLong);
    EXPECT_EQ(p.exitcode(), 1);
    done.set();
    bg.join();
}

// ThreadTests.test_is_alive_after_fork: "is_alive() could sometimes be True on threads that
// vanished after a fork" (#18418): in the child, a thread of the parent is not alive (exit code
// 10, not 11), 20 times.
TEST_F(ThreadTests, test_is_alive_after_fork) {
    for (int i = 0; i < 20; ++i) {
        th::Thread t([] {});
        t.start();
        mproc::Process p({.start_method = "fork"}, [&t] { std::_Exit(t.is_alive() ? 11 : 10); });
        p.start();
        t.join();
        p.join(kLong);
        EXPECT_EQ(p.exitcode(), 10);
    }
}

// ThreadTests.test_main_thread: main_thread() is "MainThread" and is the current thread here
// (same ident as current_thread() and get_ident()), and not in another thread.
TEST_F(ThreadTests, test_main_thread) {
    auto main = th::main_thread();
    EXPECT_EQ(main.name(), "MainThread");
    EXPECT_EQ(main.ident(), th::current_thread().ident());
    EXPECT_EQ(main.ident(), th::get_ident());
    std::atomic<bool> differs{false};
    th::Thread t([&] { differs = th::main_thread().ident() != th::current_thread().ident(); });
    t.start();
    t.join();
    EXPECT_TRUE(differs.load());
}

// ThreadTests.test_main_thread_after_fork: in a forked child, main_thread() is "MainThread" and
// is the current thread.
using MainReport = std::tuple<std::string, bool, bool>;
void report_main(mproc::Connection out) {
    auto main = th::main_thread();
    out.send(MainReport{main.name(), main.ident() == th::current_thread().ident(), main.ident() == th::get_ident()});
}

TEST_F(ThreadTests, test_main_thread_after_fork) {
    auto [r, w] = mproc::Pipe(false);
    mproc::Process p({.start_method = "fork"}, report_main, std::move(w));
    p.start();
    ASSERT_TRUE(r.poll(kLong));
    EXPECT_EQ(r.recv<MainReport>(), MainReport("MainThread", true, true));
    p.join(kLong);
    EXPECT_EQ(p.exitcode(), 0);
}

// ThreadTests.test_main_thread_after_fork_from_nonmain_thread: forked from a Thread, the child's
// main_thread() is that thread (Python: "Thread-1 (func)"; mproc names it "Thread-N",
// python_differences.md row "Thread(name=None) names Thread-N (target)") and is current there.
TEST_F(ThreadTests, test_main_thread_after_fork_from_nonmain_thread) {
    auto [r, w] = mproc::Pipe(false);
    std::string forker_name;
    int exitcode = -1;
    th::Thread th_([&, w = std::move(w)]() mutable {
        forker_name = th::current_thread().name();
        mproc::Process p({.start_method = "fork"}, report_main, std::move(w));
        p.start();
        p.join(kLong);
        exitcode = p.exitcode().value_or(-1);
    });
    th_.start();
    th_.join();
    EXPECT_EQ(exitcode, 0);
    ASSERT_TRUE(r.poll(kLong));
    EXPECT_EQ(r.recv<MainReport>(), MainReport(forker_name, true, true));
    EXPECT_EQ(forker_name.substr(0, 7), "Thread-");
}

// The connection a fresh program's exit-time code reports on (never freed: it is used at exit).
mproc::Connection* g_out = nullptr;

// ThreadTests.test_main_thread_during_shutdown: "current_thread() should still point to the main
// thread at shutdown" (bpo-31516): code run during the program's exit (Python: a __del__ run by
// the final collection; here an atexit handler) sees current_thread() is main_thread() and
// enumerate() == [main_thread()].
using ShutdownReport = std::tuple<bool, bool, bool>;
void report_main_at_exit() {
    const auto all = th::enumerate();
    g_out->send(ShutdownReport{th::current_thread() == th::main_thread(), th::main_thread().name() == "MainThread",
                               all.size() == 1 && all[0] == th::main_thread()});
}

void main_thread_during_shutdown(mproc::Connection out) {
    g_out = new mproc::Connection(std::move(out));
    std::atexit(report_main_at_exit);
    std::exit(0);
}

TEST_P(ThreadTestsP, test_main_thread_during_shutdown) {
    auto [r, w] = mproc::Pipe(false);
    mproc::Process p(opts(), main_thread_during_shutdown, std::move(w));
    p.start();
    ASSERT_TRUE(r.poll(kLong));
    EXPECT_EQ(r.recv<ShutdownReport>(), ShutdownReport(true, true, true));
    p.join(kLong);
    EXPECT_EQ(p.exitcode(), 0);
}

// ThreadTests.test_fork_at_exit: "Calling os.fork() after threading._shutdown() must not log an
// error" (bpo-42350): an atexit handler, run after the wait for threads, forks a child, which
// runs and exits 0; the program exits 0.
void child_ok(mproc::Connection out) { out.send(std::string("child process ok")); }

void fork_in_exit_handler() {
    mproc::Process p({.start_method = "fork"}, child_ok, g_out->dup());
    p.start();
    p.join(kLong);
    g_out->send(p.exitcode().value_or(-1000));
}

void fork_at_exit(mproc::Connection out) {
    g_out = new mproc::Connection(std::move(out));
    std::atexit(fork_in_exit_handler);
    // The program's normal exit: a fork child's return from its target leaves with _exit and
    // runs no atexit handler, as in Python (Popen._launch: os._exit(code)).
    std::exit(0);
}

TEST_P(ThreadTestsP, test_fork_at_exit) {
    auto [r, w] = mproc::Pipe(false);
    mproc::Process p(opts(), fork_at_exit, std::move(w));
    p.start();
    ASSERT_TRUE(r.poll(kLong));
    EXPECT_EQ(r.recv<std::string>(), "child process ok");
    ASSERT_TRUE(r.poll(kLong));
    EXPECT_EQ(r.recv<int>(), 0);
    p.join(kLong);
    EXPECT_EQ(p.exitcode(), 0);
}

// ThreadTests.test_finalization_shutdown: "Py_Finalize() calls threading._shutdown() which must
// wait until Python thread states of all non-daemon threads get deleted" (bpo-36402): the
// thread's thread-local data, whose destructor sleeps a little, is destroyed before the program
// is gone. CPython checks only for a clean exit; here the destructor also reports that it ran to
// its end.
std::minstd_rand& rng() {
    thread_local std::minstd_rand r(std::random_device{}());
    return r;
}
void random_sleep() {
    std::this_thread::sleep_for(std::chrono::duration<double>(std::uniform_real_distribution<double>(0, 0.010)(rng())));
}

struct Sleeper {
    ~Sleeper() {
        random_sleep();
        g_out->send(std::string("x"));
    }
};

th::local<Sleeper>* g_tls = nullptr;  // reachable to the end, so LeakSanitizer does not count it

void finalization_shutdown(mproc::Connection out) {
    g_out = new mproc::Connection(std::move(out));
    auto* tls = g_tls = new th::local<Sleeper>;  // never freed: the thread's copy outlives this function
    th::Thread t([tls] {
        // Sleep a bit so that the thread is still running when the program exits.
        random_sleep();
        tls->get();
        random_sleep();
    });
    t.start();
    random_sleep();
}

TEST_P(ThreadTestsP, test_finalization_shutdown) {
    auto [r, w] = mproc::Pipe(false);
    mproc::Process p(opts(), finalization_shutdown, std::move(w));
    p.start();
    ASSERT_TRUE(r.poll(kLong));
    EXPECT_EQ(r.recv<std::string>(), "x");
    p.join(kLong);
    EXPECT_EQ(p.exitcode(), 0);
}

// ThreadTests.test_repr_stopped: "started" is in the repr while the thread runs; "stopped"
// appears on its own once it has ended, without a join. (CPython polls the repr every 10 ms, up
// to 5 s: nothing else would show the change "on its own".)
TEST_F(ThreadTests, test_repr_stopped) {
    th::Lock started, finish;
    started.acquire();
    finish.acquire();
    th::Thread t([started, finish]() mutable {
        started.release();
        finish.acquire(true, kLong);
    });
    t.start();
    EXPECT_TRUE(started.acquire(true, kLong));
    EXPECT_TRUE(contains(repr(t), "started")) << repr(t);
    finish.release();
    for (int i = 0; i < 500 && !contains(repr(t), "stopped"); ++i) std::this_thread::sleep_for(10ms);
    EXPECT_TRUE(contains(repr(t), "stopped")) << repr(t);
    t.join();
}

// ThreadTests.test_BoundedSemaphore_limit: "BoundedSemaphore should raise ValueError if released
// too often", after limit acquires and limit releases from other threads.
TEST_F(ThreadTests, test_BoundedSemaphore_limit) {
    for (int limit = 1; limit < 10; ++limit) {
        th::BoundedSemaphore bs(limit);
        std::vector<th::Thread> threads;
        for (int i = 0; i < limit; ++i) threads.emplace_back([bs]() mutable { EXPECT_TRUE(bs.acquire(true, kLong)); });
        for (auto& t : threads) t.start();
        for (auto& t : threads) t.join();
        threads.clear();
        for (int i = 0; i < limit; ++i) threads.emplace_back([bs]() mutable { bs.release(); });
        for (auto& t : threads) t.start();
        for (auto& t : threads) t.join();
        EXPECT_THROW(bs.release(), std::logic_error);
    }
}

// ThreadTests.test_boolean_target: "A thread that had a boolean value of False would not run"
// (bpo-41149): a target is called whatever it converts to.
struct BooleanTarget {
    std::atomic<bool>* ran;
    explicit operator bool() const { return false; }
    void operator()() const { *ran = true; }
};

TEST_F(ThreadTests, test_boolean_target) {
    std::atomic<bool> ran{false};
    th::Thread thread(BooleanTarget{&ran});
    thread.start();
    thread.join();
    EXPECT_TRUE(ran.load());
}

// ThreadTests.test_leak_without_join: "a thread which is not joined explicitly does not leak"
// (bpo-37788): started, its object dropped, it ends and leaves the thread list.
TEST_F(ThreadTests, test_leak_without_join) {
    { th::Thread([] {}).start(); }
    for (auto& t : th::enumerate())
        if (!(t == th::main_thread())) t.join(kLong);
    EXPECT_EQ(th::active_count(), 1);
}

// ---------------------------------------------------------------------------------------------
// ThreadJoinOnShutdown: a thread that joins the main thread ends after the main program does:
// the output is "end of main" then "end of thread".

// The thread of _run_and_join: joins the given thread, then says so.
void joiningfunc(th::BaseThread mainthread, mproc::Connection out) {
    mainthread.join();
    out.send(std::string("end of thread"));
}

// Reads the two lines of _run_and_join; if the child is stuck, kills it (the check fails).
void expect_main_then_thread(mproc::Connection& r, mproc::Process& p) {
    std::vector<std::string> got;
    while (got.size() < 2 && r.poll(10s)) got.push_back(r.recv<std::string>());
    EXPECT_EQ(got, (std::vector<std::string>{"end of main", "end of thread"}));
    p.join(10s);
    if (p.is_alive()) {
        ADD_FAILURE() << "the child did not exit";
        p.kill();
        p.join();
    }
    EXPECT_EQ(p.exitcode(), 0);
}

// ThreadJoinOnShutdown.test_1_join_on_shutdown: "The usual case: on exit, wait for a non-daemon
// thread", here one that joins the main thread.
// Issue 14, divergence 7 (fixed): a thread joining main_thread() deadlocked exit: the exit
// waited for the thread, the thread for the main thread, which never counted as ended.
void join_on_shutdown(mproc::Connection out) {
    th::Thread t(joiningfunc, th::current_thread(), out.dup());
    t.start();
    std::this_thread::sleep_for(100ms);  // CPython's
    out.send(std::string("end of main"));
}

TEST_P(ThreadJoinOnShutdownP, test_1_join_on_shutdown) {
    auto [r, w] = mproc::Pipe(false);
    mproc::Process p(opts(), join_on_shutdown, std::move(w));
    p.start();
    expect_main_then_thread(r, p);
}

// ThreadJoinOnShutdown.test_2_join_in_forked_process: "Like the test above, but from a forked
// interpreter": a fresh program (spawn) forks, and the forked child does test_1's work.
// Issue 14, divergence 7 (fixed), as test_1.
void fork_and_join_on_shutdown(mproc::Connection out) {
    mproc::Process p({.start_method = "fork"}, join_on_shutdown, std::move(out));
    p.start();
    p.join(20s);
    if (p.is_alive()) {
        p.kill();
        p.join();
    }
    std::_Exit(p.exitcode().value_or(99) == 0 ? 0 : 1);
}

TEST_F(ThreadJoinOnShutdown, test_2_join_in_forked_process) {
    auto [r, w] = mproc::Pipe(false);
    mproc::Process p({.start_method = "spawn"}, fork_and_join_on_shutdown, std::move(w));
    p.start();
    expect_main_then_thread(r, p);
}

// ThreadJoinOnShutdown.test_3_join_in_forked_from_thread: "fork() was called from a worker
// thread. In the forked process, the main Thread object must be marked as stopped": a thread of
// the child joining the parent's main thread does not block.
TEST_F(ThreadJoinOnShutdown, test_3_join_in_forked_from_thread) {
    auto [r, w] = mproc::Pipe(false);
    auto main_thread = th::current_thread();
    int exitcode = -1;
    th::Thread worker([&, w = std::move(w)]() mutable {
        mproc::Process p(
            {.start_method = "fork"},
            [&main_thread](mproc::Connection out) {
                th::Thread t(joiningfunc, main_thread, out.dup());
                out.send(std::string("end of main"));
                t.start();
                t.join(20s);  // should not block: main_thread is already stopped
                std::_Exit(t.is_alive() ? 1 : 0);
            },
            std::move(w));
        p.start();
        p.join(kLong);
        if (p.is_alive()) {
            p.kill();
            p.join();
        }
        exitcode = p.exitcode().value_or(-1);
    });
    worker.start();
    worker.join();
    std::vector<std::string> got;
    while (got.size() < 2 && r.poll(1s)) got.push_back(r.recv<std::string>());
    EXPECT_EQ(got, (std::vector<std::string>{"end of main", "end of thread"}));
    EXPECT_EQ(exitcode, 0);
}

// ThreadJoinOnShutdown.test_4_daemon_threads: "Check that a daemon thread cannot crash the
// interpreter on shutdown": 40 daemon threads doing I/O in a loop while the program exits; the
// exit is clean. The threads touch nothing that exit destroys (their counter is never freed).
void daemon_io_then_exit() {
    struct Seen {
        std::mutex mu;
        std::condition_variable cv;
        int n = 0;
    };
    auto* seen = new Seen;  // never freed: daemon threads may still use it during exit
    const int count = 40;
    for (int i = 0; i < count; ++i) {
        th::Thread t({.daemon = true}, [seen] {
            std::minstd_rand rng(std::random_device{}());
            bool counted = false;
            for (;;) {
                char stuff[200];
                if (FILE* in = std::fopen("/proc/self/exe", "rb")) {
                    const std::size_t got = std::fread(stuff, 1, sizeof stuff, in);
                    if (FILE* null = std::fopen("/dev/null", "wb")) {
                        std::fwrite(stuff, 1, got, null);
                        std::fclose(null);
                    }
                    std::fclose(in);
                }
                std::this_thread::sleep_for(std::chrono::duration<double>(
                    std::uniform_real_distribution<double>(0, 1.0 / 1995)(rng)));
                if (!counted) {
                    counted = true;
                    std::lock_guard g(seen->mu);
                    ++seen->n;
                    seen->cv.notify_all();
                }
            }
        });
        t.start();
    }
    {
        std::unique_lock g(seen->mu);
        if (!seen->cv.wait_for(g, kLong, [&] { return seen->n >= count; })) std::_Exit(2);
    }
    std::exit(0);  // trigger process shutdown
}

TEST_P(ThreadJoinOnShutdownP, test_4_daemon_threads) {
    mproc::Process p(opts(), daemon_io_then_exit);
    p.start();
    p.join(kLong);
    EXPECT_EQ(p.exitcode(), 0);
}

// ThreadJoinOnShutdown.test_reinit_tls_after_fork: "fork() would deadlock in a multithreaded
// program" (#13817): 16 threads each fork a child (exit code 50) and wait for it.
void exit_50() { std::_Exit(50); }

TEST_F(ThreadJoinOnShutdown, test_reinit_tls_after_fork) {
    std::vector<th::Thread> threads;
    for (int i = 0; i < 16; ++i)
        threads.emplace_back([] {
            mproc::Process p({.start_method = "fork"}, exit_50);
            p.start();
            p.join(kLong);
            EXPECT_EQ(p.exitcode(), 50);
        });
    for (auto& t : threads) t.start();
    for (auto& t : threads) t.join();
}

// ThreadJoinOnShutdown.test_clear_threads_states_after_fork: "check that threads states are
// cleared after fork()" (#17094): with 16 threads running, the forked child has one thread
// (exit code 51, not 52). CPython's threads sleep 0.3 s to be running; these wait on an Event.
TEST_F(ThreadJoinOnShutdown, test_clear_threads_states_after_fork) {
    th::Event done;
    std::vector<th::Thread> threads;
    for (int i = 0; i < 16; ++i) threads.emplace_back([done]() mutable { done.wait(kLong); });
    for (auto& t : threads) t.start();
    mproc::Process p({.start_method = "fork"}, [] { std::_Exit(th::enumerate().size() == 1 ? 51 : 52); });
    p.start();
    p.join(kLong);
    EXPECT_EQ(p.exitcode(), 51);
    done.set();
    for (auto& t : threads) t.join();
}

// ---------------------------------------------------------------------------------------------
// ThreadingExceptionTests: misuse is RuntimeError in Python, std::logic_error here (API.md).

// ThreadingExceptionTests.test_start_thread_again.
TEST_F(ThreadingExceptionTests, test_start_thread_again) {
    th::Thread thread;
    thread.start();
    EXPECT_THROW(thread.start(), std::logic_error);
    thread.join();
}

// ThreadingExceptionTests.test_joining_current_thread.
TEST_F(ThreadingExceptionTests, test_joining_current_thread) {
    auto current_thread = th::current_thread();
    EXPECT_THROW(current_thread.join(), std::logic_error);
}

// ThreadingExceptionTests.test_joining_inactive_thread.
TEST_F(ThreadingExceptionTests, test_joining_inactive_thread) {
    th::Thread thread;
    EXPECT_THROW(thread.join(), std::logic_error);
}

// ThreadingExceptionTests.test_daemonize_active_thread.
TEST_F(ThreadingExceptionTests, test_daemonize_active_thread) {
    th::Thread thread;
    thread.start();
    EXPECT_THROW(thread.set_daemon(true), std::logic_error);
    thread.join();
}

// ThreadingExceptionTests.test_releasing_unacquired_lock.
TEST_F(ThreadingExceptionTests, test_releasing_unacquired_lock) {
    th::Lock lock;
    EXPECT_THROW(lock.release(), std::logic_error);
}

// ThreadingExceptionTests.test_print_exception: an exception escaping a thread is printed on
// stderr, "Exception in thread ..." and the exception's type, and nothing about an "Unhandled
// exception"; nothing on stdout. Python prints a traceback; C++ has none
// (python_differences.md, row "ExceptHookArgs has a traceback"): the type and what() stand in.
TEST_F(ThreadingExceptionTests, test_print_exception) {
    th::Event running, stop;
    testing::internal::CaptureStdout();
    testing::internal::CaptureStderr();
    th::Thread t([running, stop]() mutable {
        running.set();
        stop.wait(kLong);
        throw std::domain_error("division by zero");
    });
    t.start();
    EXPECT_TRUE(running.wait(kLong));
    stop.set();
    t.join();
    const std::string err = testing::internal::GetCapturedStderr();
    const std::string out = testing::internal::GetCapturedStdout();
    EXPECT_EQ(out, "");
    EXPECT_TRUE(contains(err, "Exception in thread")) << err;
    EXPECT_TRUE(contains(err, "std::domain_error")) << err;
    EXPECT_FALSE(contains(err, "Unhandled exception")) << err;
}

// ---------------------------------------------------------------------------------------------
// ExceptHookTests, with test_threading.ThreadRunFail: a Thread subclass whose run() raises
// ValueError("run failed") (std::invalid_argument here).
class ThreadRunFail : public th::Thread {
public:
    using th::Thread::Thread;
    ~ThreadRunFail() override { join(); }
    void run() override { throw std::invalid_argument("run failed"); }
};

std::string run_failing_thread(const std::string& name, std::optional<th::BaseThread>* which = nullptr) {
    testing::internal::CaptureStderr();
    ThreadRunFail thread(th::ThreadOptions{.name = name});
    thread.start();
    thread.join();
    if (which) which->emplace(thread);
    return testing::internal::GetCapturedStderr();
}

// ExceptHookTests.test_excepthook: the default hook prints "Exception in thread <name>:" and
// "ValueError: run failed" (here the C++ type; no traceback lines, python_differences.md row
// "ExceptHookArgs has a traceback").
TEST_F(ExceptHookTests, test_excepthook) {
    const std::string err = run_failing_thread("excepthook thread");
    EXPECT_TRUE(contains(err, "Exception in thread excepthook thread:\n")) << err;
    EXPECT_TRUE(contains(err, "std::invalid_argument: run failed")) << err;
}

// ExceptHookTests.test_excepthook_thread_None: excepthook called with thread=None logs the
// thread identifier instead: "Exception in thread <get_ident()>:".
// Issue 14, 2.16 (fixed): mproc printed "Exception in thread <unknown>:".
TEST_F(ExceptHookTests, test_excepthook_thread_None) {
    testing::internal::CaptureStderr();
    try {
        throw std::invalid_argument("bug");
    } catch (...) {
        th::excepthook(th::ExceptHookArgs{"std::invalid_argument", std::current_exception(), std::nullopt});
    }
    const std::string err = testing::internal::GetCapturedStderr();
    EXPECT_TRUE(contains(err, "Exception in thread " + std::to_string(th::get_ident()) + ":\n")) << err;
    EXPECT_TRUE(contains(err, "std::invalid_argument: bug")) << err;
}

// ExceptHookTests.test_custom_excepthook: a hook set in place of threading.excepthook receives
// the exception's type, its value, and the thread.
TEST_F(ExceptHookTests, test_custom_excepthook) {
    std::optional<th::ExceptHookArgs> args;
    th::set_excepthook([&](const th::ExceptHookArgs& a) { args = a; });
    std::optional<th::BaseThread> thread;
    run_failing_thread("custom", &thread);
    th::set_excepthook({});
    ASSERT_TRUE(args);
    EXPECT_EQ(args->exc_type, "std::invalid_argument");
    try {
        std::rethrow_exception(args->exc_value);
    } catch (const std::invalid_argument& e) {
        EXPECT_STREQ(e.what(), "run failed");
    } catch (...) {
        ADD_FAILURE() << "not the thread's exception";
    }
    ASSERT_TRUE(args->thread);
    EXPECT_TRUE(*args->thread == *thread);
}

// ExceptHookTests.test_custom_excepthook_fail: a hook that raises is reported as
// "Exception in threading.excepthook:" followed by the hook's own exception (given to
// sys.excepthook, which C++ does not have: the default printing stands in for it).
// Issue 14, 2.16 (fixed): mproc reported the hook's exception as if it were the thread's
// ("Exception in thread <name>:"), with no line saying that the excepthook failed.
TEST_F(ExceptHookTests, test_custom_excepthook_fail) {
    th::set_excepthook([](const th::ExceptHookArgs&) { throw std::invalid_argument("threading_hook failed"); });
    const std::string err = run_failing_thread("hook fail");
    th::set_excepthook({});
    EXPECT_TRUE(contains(err, "Exception in threading.excepthook:\n")) << err;
    EXPECT_TRUE(contains(err, "threading_hook failed")) << err;
}

// ExceptHookTests.test_original_excepthook: a custom hook's output replaces the default one, and
// putting the original hook back (Python: threading.__excepthook__; here set_excepthook({}))
// gives the default output again.
TEST_F(ExceptHookTests, test_original_excepthook) {
    const std::string default_output = run_failing_thread("excepthook thread");
    th::set_excepthook([](const th::ExceptHookArgs&) { std::fputs("Running a thread failed\n", stderr); });
    const std::string custom_hook_output = run_failing_thread("excepthook thread");
    th::set_excepthook({});
    const std::string recovered_output = run_failing_thread("excepthook thread");
    EXPECT_EQ(default_output, recovered_output);
    EXPECT_NE(default_output, custom_hook_output);
    EXPECT_EQ(custom_hook_output, "Running a thread failed\n");
}

INSTANTIATE_TEST_SUITE_P(StartMethods, ThreadTestsP, testing::Values("fork", "spawn", "forkserver"));
INSTANTIATE_TEST_SUITE_P(StartMethods, ThreadJoinOnShutdownP, testing::Values("fork", "spawn", "forkserver"));

}  // namespace
