// Process under every start method: targets, arguments, exit codes, names, lifecycle, misuse.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <mproc/mproc.hpp>

#include "fifo.hpp"
#include "leak_check.hpp"

using namespace std::chrono_literals;

namespace {

struct Point {
    int x = 0, y = 0;
    bool operator==(const Point&) const = default;
};
struct Record {
    std::string who;
    std::map<std::string, std::vector<double>> data;
    template <class Ar>
    void serialize(Ar& ar) {
        ar(who, data);
    }
};

void do_nothing() {}
void exit_with(int code) { std::exit(code); }
// _Exit: for children forked from a parent with several threads, where exit()'s leak check
// (in sanitizer builds) would count the vanished threads' memory as leaked.
void quick_exit_with(int code) { std::_Exit(code); }
void throw_runtime(std::string msg) { throw std::runtime_error(msg); }
void block_forever() {
    for (;;) pause();
}
void check_args(std::string s, std::vector<int> v, Point p, Record r, std::string expected_s) {
    const bool ok = s == expected_s && v == std::vector<int>{1, 2, 3} && p == Point{4, 5} &&
                    r.who == "amy" && r.data.at("k") == std::vector<double>{0.5};
    std::exit(ok ? 0 : 41);
}
void check_identity(std::string expected_name, int expected_ppid, std::string expected_method) {
    auto me = mproc::current_process();
    auto parent = mproc::parent_process();
    int bad = 0;
    if (me.name() != expected_name) bad |= 1;
    if (!parent || parent->pid() != expected_ppid) bad |= 2;
    if (!parent || parent->name() != "MainProcess") bad |= 4;
    if (me.pid() != getpid()) bad |= 8;
    if (expected_method != "forkserver" && getppid() != expected_ppid) bad |= 16;
    if (!parent || !parent->is_alive()) bad |= 32;
    std::exit(bad);
}
void announce_then_block(std::string fifo) {
    mproc_test::write_fifo(fifo, "up");
    block_forever();
}
void check_authkey(std::string expected) { std::exit(mproc::current_process().authkey() == expected ? 0 : 1); }
void check_daemon(bool expected) { std::exit(mproc::current_process().daemon() == expected ? 0 : 1); }
// Descriptors above stderr that would leak into an exec'd program, other than those the
// environment handed the test binary already (a shell or CI runner may leave some open).
std::vector<int> inheritable_fds(const std::vector<int>& ignore = {}) {
    std::vector<int> out;
    for (int fd = 3; fd < 1024; ++fd) {
        const int flags = fcntl(fd, F_GETFD);
        if (flags >= 0 && !(flags & FD_CLOEXEC) &&
            std::find(ignore.begin(), ignore.end(), fd) == ignore.end())
            out.push_back(fd);
    }
    return out;
}
void count_inheritable_fds(std::vector<int> preexisting) {
    std::exit(static_cast<int>(inheritable_fds(preexisting).size()));
}
// Exits 1 if any descriptor of this process is the open file (st_dev, st_ino) names, else 0:
// the child may have reused the parent's number for a file of its own.
void exit_one_if_holding(unsigned long long dev, unsigned long long ino) {
    for (int fd = 0; fd < 1024; ++fd) {
        struct stat st {};
        if (fstat(fd, &st) == 0 && st.st_dev == dev && st.st_ino == ino) std::exit(1);
    }
    std::exit(0);
}
// A child that starts its own child with the same method and reports that child's name.
void start_grandchild(std::string fifo, std::string method) {
    mproc::Process g({.start_method = method}, [](std::string f) {
        mproc_test::write_fifo(f, mproc::current_process().name() + " " +
                                      std::to_string(mproc::parent_process()->pid().value()));
    }, fifo);
    g.start();
    g.join();
    std::exit(g.exitcode() == 0 ? 0 : 3);
}

struct Squarer : mproc::Process {
    explicit Squarer(int n) : Process({.name = "squarer"}), n(n) {}
    void run() override { std::exit(n * n); }
    int n;
};

class ProcessTest : public testing::TestWithParam<std::string> {
protected:
    mproc::ProcessOptions opts(std::optional<std::string> name = std::nullopt) {
        return {.name = std::move(name), .daemon = std::nullopt, .start_method = GetParam()};
    }
};

TEST_P(ProcessTest, ReturningTargetExitsZero) {
    mproc::Process p(opts(), do_nothing);
    EXPECT_FALSE(p.pid());
    EXPECT_FALSE(p.is_alive());
    EXPECT_FALSE(p.exitcode());
    p.start();
    EXPECT_TRUE(p.pid());
    p.join();
    EXPECT_EQ(p.exitcode(), 0);
    EXPECT_FALSE(p.is_alive());
}

TEST_P(ProcessTest, ExitCodeIsTheCodeGivenToExit) {
    mproc::Process p(opts(), exit_with, 7);
    p.start();
    p.join();
    EXPECT_EQ(p.exitcode(), 7);
}

TEST_P(ProcessTest, ThrowingTargetExitsOne) {
    testing::internal::CaptureStderr();
    mproc::Process p(opts("thrower"), throw_runtime, "boom");
    p.start();
    p.join();
    const std::string err = testing::internal::GetCapturedStderr();
    EXPECT_EQ(p.exitcode(), 1);
    // Captured only when the child shares our stderr file (it does: CaptureStderr redirects fd 2).
    EXPECT_NE(err.find("Process thrower:"), std::string::npos) << err;
    EXPECT_NE(err.find("std::runtime_error: boom"), std::string::npos) << err;
}

TEST_P(ProcessTest, ArgumentsArriveIntact) {
    Record r{"amy", {{"k", {0.5}}}};
    mproc::Process p(opts(), check_args, std::string("hi"), std::vector<int>{1, 2, 3}, Point{4, 5}, r,
                     "hi");
    p.start();
    p.join();
    EXPECT_EQ(p.exitcode(), 0);
}

TEST_P(ProcessTest, CaptureslessLambdaRunsUnderEveryMethod) {
    mproc::Process p(opts(), [](int a, int b) { std::exit(a + b); }, 2, 3);
    p.start();
    p.join();
    EXPECT_EQ(p.exitcode(), 5);
}

TEST_P(ProcessTest, CapturingLambdaOnlyWithFork) {
    int secret = 9;  // not const: a constant would need no capture, and this lambda must have one
    mproc::Process p(opts(), [secret] { std::exit(secret); });
    if (GetParam() == "fork") {
        p.start();
        p.join();
        EXPECT_EQ(p.exitcode(), 9);
    } else {
        try {
            p.start();
            FAIL() << "a capturing lambda was sent to a " << GetParam() << " child";
        } catch (const std::logic_error& e) {
            EXPECT_NE(std::string(e.what()).find("captures"), std::string::npos) << e.what();
        }
        EXPECT_FALSE(p.pid());
    }
}

TEST_P(ProcessTest, SubclassOverridingRun) {
    Squarer s(3);
    s.set_daemon(false);
    mproc::set_start_method(GetParam(), true);
    if (GetParam() == "fork") {
        s.start();
        s.join();
        EXPECT_EQ(s.exitcode(), 9);
        EXPECT_EQ(s.name(), "squarer");
    } else {
        EXPECT_THROW(s.start(), std::logic_error);
    }
    mproc::set_start_method("fork", true);
}

TEST_P(ProcessTest, ChildKnowsItselfAndItsParent) {
    mproc::Process p(opts("worker-1"), check_identity, "worker-1", static_cast<int>(getpid()), GetParam());
    p.start();
    p.join();
    EXPECT_EQ(p.exitcode(), 0) << "bit mask of failed checks in check_identity";
}

TEST_P(ProcessTest, AuthkeyAndDaemonAreInherited) {
    mproc::Process a(opts(), check_authkey, mproc::current_process().authkey());
    a.start();
    a.join();
    EXPECT_EQ(a.exitcode(), 0);
    EXPECT_EQ(mproc::current_process().authkey().size(), 32u);

    mproc::ProcessOptions o = opts();
    o.daemon = true;
    mproc::Process d(o, check_daemon, true);
    EXPECT_TRUE(d.daemon());
    d.start();
    d.join();
    EXPECT_EQ(d.exitcode(), 0);
}

TEST_P(ProcessTest, JoinWithTimeoutThenTerminate) {
    mproc::Process p(opts(), block_forever);
    p.start();
    const auto t0 = std::chrono::steady_clock::now();
    p.join(100ms);
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 100ms);
    EXPECT_TRUE(p.is_alive());
    EXPECT_FALSE(p.exitcode());
    p.terminate();
    p.join();
    EXPECT_FALSE(p.is_alive());
    EXPECT_EQ(p.exitcode(), -SIGTERM);
    p.terminate();  // no effect once ended
}

TEST_P(ProcessTest, KillGivesMinusNine) {
    mproc::Process p(opts(), block_forever);
    p.start();
    p.kill();
    p.join(20s);
    EXPECT_EQ(p.exitcode(), -SIGKILL);
}

TEST_P(ProcessTest, SentinelBecomesReadableAtExit) {
    mproc::Process p(opts(), block_forever);
    p.start();
    pollfd fd{p.sentinel(), POLLIN, 0};
    EXPECT_EQ(poll(&fd, 1, 0), 0);
    p.kill();
    EXPECT_EQ(poll(&fd, 1, 20000), 1);
    p.join();
}

TEST_P(ProcessTest, ChildrenOfChildrenAreNamedAfterTheirParent) {
    mproc_test::Fifo fifo;
    mproc::Process p(opts(), start_grandchild, fifo.path(), GetParam());
    p.start();
    const std::string got = fifo.read_all();
    p.join();
    EXPECT_EQ(p.exitcode(), 0);
    const std::string expected_prefix = p.name() + ":1 ";
    EXPECT_EQ(got.rfind(expected_prefix, 0), 0u) << got << " vs " << expected_prefix;
    EXPECT_EQ(got.substr(expected_prefix.size()), std::to_string(*p.pid()));
}

TEST_P(ProcessTest, ActiveChildrenListsRunningOnes) {
    mproc::Process p(opts(), block_forever);
    p.start();
    auto kids = mproc::active_children();
    ASSERT_EQ(kids.size(), 1u);
    EXPECT_EQ(kids[0].pid(), p.pid());
    EXPECT_EQ(kids[0].name(), p.name());
    kids[0].terminate();  // a handle controls the same process
    p.join();
    EXPECT_TRUE(mproc::active_children().empty());
}

TEST_P(ProcessTest, ManyInParallel) {
    std::vector<mproc::Process> ps;
    for (int i = 0; i < 8; ++i) ps.emplace_back(opts(), exit_with, i);
    for (auto& p : ps) p.start();
    for (auto& p : ps) p.join();
    for (int i = 0; i < 8; ++i) EXPECT_EQ(ps[i].exitcode(), i);
}

TEST_P(ProcessTest, StartFromManyThreadsAtOnce) {
    std::vector<std::thread> ts;
    std::atomic<int> ok{0};
    for (int t = 0; t < 4; ++t)
        ts.emplace_back([&, t] {
            for (int i = 0; i < 3; ++i) {
                mproc::Process p(opts(), quick_exit_with, t * 10 + i);
                p.start();
                p.join();
                if (p.exitcode() == t * 10 + i) ++ok;
            }
        });
    for (auto& t : ts) t.join();
    EXPECT_EQ(ok, 12);
}

TEST_P(ProcessTest, StartedFromAThreadThatExitsKeepsRunning) {
    // PR_SET_PDEATHSIG belongs to the forking thread: a child started from a thread that then
    // exits would be killed at once if mproc relied on it there.
    // The thread stays until the child runs its target (so past any set-up), then exits.
    mproc_test::Fifo fifo;
    mproc::Process p(opts(), announce_then_block, fifo.path());
    std::thread([&] {
        p.start();
        EXPECT_EQ(fifo.read_all(), "up");
    }).join();
    p.join(300ms);
    EXPECT_TRUE(p.is_alive()) << "the child died with the thread that started it: " << p;
    p.kill();
    p.join();
}

TEST_P(ProcessTest, DescriptorsAreCloseOnExec) {
    const std::vector<int> before = inheritable_fds();
    mproc::Process p(opts(), count_inheritable_fds, before);
    p.start();
    p.join();
    EXPECT_EQ(p.exitcode(), 0) << "descriptors without FD_CLOEXEC in the child";
    EXPECT_EQ(inheritable_fds(before), std::vector<int>{}) << "in the parent";
}

// A descriptor some library left inheritable (Open MPI leaves a rank's connection to mpiexec
// so) reaches a fork child, as in Python, but never a spawned one, nor the forkserver or its
// children: Python's spawn passes only the descriptors it names (spawnv_passfds).
TEST_P(ProcessTest, OnlyAForkChildInheritsAnInheritableDescriptor) {
    int ends[2];
    ASSERT_EQ(pipe(ends), 0);  // no O_CLOEXEC
    struct stat st {};
    ASSERT_EQ(fstat(ends[0], &st), 0);
    mproc::Process p(opts(), exit_one_if_holding, static_cast<unsigned long long>(st.st_dev),
                     static_cast<unsigned long long>(st.st_ino));
    p.start();
    p.join();
    close(ends[0]);
    close(ends[1]);
    EXPECT_EQ(p.exitcode(), GetParam() == "fork" ? 1 : 0);
}

TEST_P(ProcessTest, Misuse) {
    mproc::Process p(opts(), do_nothing);
    EXPECT_THROW(p.join(), std::logic_error);  // not started
    EXPECT_THROW(p.sentinel(), std::logic_error);
    p.start();
    EXPECT_THROW(p.start(), std::logic_error);  // twice
    EXPECT_THROW(p.set_daemon(true), std::logic_error);
    p.join();
    p.close();
    EXPECT_THROW(p.is_alive(), std::logic_error);
    EXPECT_THROW(p.join(), std::logic_error);
    EXPECT_THROW(p.start(), std::logic_error);
    p.close();  // closing twice is fine, as in Python

    mproc::Process q(opts(), block_forever);
    q.start();
    EXPECT_THROW(q.close(), std::logic_error);  // still running
    q.kill();
    q.join();

    EXPECT_THROW(mproc::current_process().join(), std::logic_error);
    mproc::Process bad({.start_method = "threads"}, do_nothing);
    EXPECT_THROW(bad.start(), std::invalid_argument);
}

TEST_P(ProcessTest, DestroyedWhileRunningIsStillReaped) {
    int pid = 0;
    {
        mproc::Process p(opts(), block_forever);
        p.start();
        pid = *p.pid();
    }
    auto kids = mproc::active_children();
    ASSERT_EQ(kids.size(), 1u);
    EXPECT_EQ(kids[0].pid(), pid);
    kids[0].kill();
    kids[0].join();
    EXPECT_TRUE(mproc::active_children().empty());
}

INSTANTIATE_TEST_SUITE_P(StartMethods, ProcessTest, testing::Values("fork", "spawn", "forkserver"),
                         [](const auto& info) { return info.param; });

TEST(SpawnErrors, ExecFailureReachesStart) {
    mproc::set_executable("/nonexistent/program");
    mproc::Process p({.start_method = "spawn"}, do_nothing);
    try {
        p.start();
        FAIL() << "start() did not report the failed exec";
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code().value(), ENOENT);
    }
    mproc::set_executable("/proc/self/exe");
    EXPECT_FALSE(p.pid());
}

TEST(StartMethod, SetAndGet) {
    EXPECT_EQ(mproc::get_all_start_methods(), (std::vector<std::string>{"fork", "spawn", "forkserver"}));
    EXPECT_THROW(mproc::set_start_method("threads"), std::invalid_argument);
    mproc::set_start_method("spawn", true);
    EXPECT_EQ(mproc::get_start_method(), "spawn");
    EXPECT_THROW(mproc::set_start_method("fork"), std::logic_error);  // already set
    mproc::set_start_method("fork", true);
    EXPECT_EQ(mproc::get_start_method(), "fork");
}

TEST(Machine, CpuCounts) {
    EXPECT_GE(mproc::cpu_count(), 1);
    EXPECT_GE(mproc::process_cpu_count(), 1);
    EXPECT_LE(mproc::process_cpu_count(), mproc::cpu_count());
}

}  // namespace

namespace {
// The suite's teardown check is only worth something if it can see what it looks for.
TEST(LeakCheck, SeesARunningChildAndNotAReapedOne) {
    mproc::Process p({.start_method = "fork"}, block_forever);
    p.start();
    const auto kids = mproc_test::child_pids();
    EXPECT_NE(std::find(kids.begin(), kids.end(), *p.pid()), kids.end());
    const auto fds = mproc_test::open_fd_targets();
    EXPECT_TRUE(std::any_of(fds.begin(), fds.end(), [](const std::string& f) {
        return f.find("pidfd") != std::string::npos;
    }));
    p.kill();
    p.join();
    const auto after = mproc_test::child_pids();
    EXPECT_EQ(std::find(after.begin(), after.end(), *p.pid()), after.end());
}
}  // namespace
