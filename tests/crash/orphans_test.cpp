// Nothing is orphaned: when a process dies, even by SIGKILL, the children it started die too,
// under every start method (Python leaves them running).
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <thread>
#include <string>
#include <vector>

#include <mproc/mproc.hpp>

#include "fifo.hpp"

using namespace std::chrono_literals;

namespace {

void block_forever() {
    for (;;) pause();
}

// Starts `n` children that block forever (daemonic or not), writes their pids, then blocks.
// With from_thread, a short-lived thread starts them and exits first: the children must
// outlive that thread (PR_SET_PDEATHSIG alone would kill them) yet die with this process.
void parent_of_blockers(std::string fifo, std::string method, int n, bool daemonic, bool from_thread) {
    std::vector<mproc::Process> kids;
    std::string pids;
    auto start_all = [&] {
        for (int i = 0; i < n; ++i) {
            kids.emplace_back(mproc::ProcessOptions{.daemon = daemonic, .start_method = method}, block_forever);
            kids.back().start();
            pids += std::to_string(*kids.back().pid()) + " ";
        }
    };
    if (from_thread)
        std::thread(start_all).join();
    else
        start_all();
    mproc_test::write_fifo(fifo, pids);
    block_forever();
}

// True when every pid has exited within the deadline (pidfds work for non-children too).
bool all_gone_within(const std::vector<int>& pids, std::chrono::milliseconds limit) {
    const auto until = std::chrono::steady_clock::now() + limit;
    for (int pid : pids) {
        const long fd = syscall(SYS_pidfd_open, pid, 0);
        if (fd < 0) continue;  // already gone and reaped
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            until - std::chrono::steady_clock::now());
        pollfd p{static_cast<int>(fd), POLLIN, 0};
        const int r = poll(&p, 1, std::max<int>(0, static_cast<int>(left.count())));
        close(static_cast<int>(fd));
        if (r != 1) return false;
    }
    return true;
}

class Orphans : public testing::TestWithParam<std::string> {};

TEST_P(Orphans, ChildrenDieWithinTwoSecondsOfAParentKilledBySigkill) {
    mproc_test::Fifo fifo;
    mproc::Process parent({.start_method = GetParam()}, parent_of_blockers, fifo.path(), GetParam(), 3, false, false);
    parent.start();
    const std::vector<int> grandchildren = fifo.read_ints();
    ASSERT_EQ(grandchildren.size(), 3u);
    parent.kill();
    parent.join();
    EXPECT_EQ(parent.exitcode(), -SIGKILL);
    EXPECT_TRUE(all_gone_within(grandchildren, 2000ms)) << "children of a killed process outlived it";
}

TEST_P(Orphans, ChildrenStartedFromAThreadOutliveItAndDieWithTheProcess) {
    mproc_test::Fifo fifo;
    mproc::Process parent({.start_method = GetParam()}, parent_of_blockers, fifo.path(), GetParam(), 2, false, true);
    parent.start();
    const std::vector<int> grandchildren = fifo.read_ints();
    ASSERT_EQ(grandchildren.size(), 2u);
    // The starting thread has exited (it was joined before the pids were written).
    EXPECT_FALSE(all_gone_within(grandchildren, 0ms)) << "children died with the thread that started them";
    parent.kill();
    parent.join();
    EXPECT_TRUE(all_gone_within(grandchildren, 2000ms));
}

TEST_P(Orphans, TerminateLeavesNoGrandchildren) {
    // Python's documentation warns that terminate() orphans descendants; here they follow.
    mproc_test::Fifo fifo;
    mproc::Process parent({.start_method = GetParam()}, parent_of_blockers, fifo.path(), GetParam(), 2, true, false);
    parent.start();
    const std::vector<int> grandchildren = fifo.read_ints();
    ASSERT_EQ(grandchildren.size(), 2u);
    parent.terminate();
    parent.join();
    EXPECT_EQ(parent.exitcode(), -SIGTERM);
    EXPECT_TRUE(all_gone_within(grandchildren, 2000ms));
}

TEST_P(Orphans, ParentProcessHandleSeesTheParentEnd) {
    // A grandchild's parent_process() handle reports the parent's death.
    mproc_test::Fifo fifo;
    mproc::Process parent({.start_method = GetParam()}, [](std::string f, std::string m) {
        mproc::Process c({.start_method = m}, [](std::string f2) {
            auto pp = mproc::parent_process();
            mproc_test::write_fifo(f2, std::to_string(getpid()));
            pp->join();  // returns when the parent ends; then the watchdog ends us too
            for (;;) pause();
        }, f);
        c.start();
        for (;;) pause();
    }, fifo.path(), GetParam());
    parent.start();
    const auto pids = fifo.read_ints();
    ASSERT_EQ(pids.size(), 1u);
    parent.kill();
    parent.join();
    EXPECT_TRUE(all_gone_within(pids, 2000ms));
}

// At normal exit a process terminates its daemonic children and joins the others (Python's
// util._exit_function): the daemon, which would block forever, ends, so the parent can exit;
// without that the parent's join below would time out.
void parent_with_daemon_and_worker(std::string fifo, std::string method) {
    mproc::Process daemon({.daemon = true, .start_method = method}, block_forever);
    daemon.start();
    mproc::Process worker({.daemon = false, .start_method = method}, [](std::string f, int daemon_pid) {
        mproc_test::write_fifo(f, std::to_string(daemon_pid) + " " + std::to_string(getpid()));
    }, fifo, *daemon.pid());
    worker.start();
    // Returning here runs the exit function: terminate the daemon, join the worker.
}

TEST_P(Orphans, ExitTerminatesDaemonicChildrenAndJoinsTheOthers) {
    mproc_test::Fifo fifo;
    mproc::Process parent({.start_method = GetParam()}, parent_with_daemon_and_worker, fifo.path(), GetParam());
    parent.start();
    const std::vector<int> pids = fifo.read_ints();
    ASSERT_EQ(pids.size(), 2u);
    parent.join(20s);
    EXPECT_EQ(parent.exitcode(), 0) << "the parent did not finish: its exit function hung";
    EXPECT_TRUE(all_gone_within({pids[0]}, 2000ms)) << "the daemonic child outlived its parent's exit";
    EXPECT_TRUE(all_gone_within({pids[1]}, 2000ms));
}

INSTANTIATE_TEST_SUITE_P(StartMethods, Orphans, testing::Values("fork", "spawn", "forkserver"),
                         [](const auto& info) { return info.param; });

}  // namespace
