// After each test (skipped ones too): no process left by the test, no descriptor left open that
// was not open before the test, no /dev/shm entry left that this test process tree created.
#pragma once

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

namespace mproc_test {

std::vector<int> child_pids();             // direct children of this process (incl. zombies)
std::set<std::string> open_fd_targets();   // "fd -> target" for every open descriptor
// "fd dev:inode" for every open descriptor: what it is, whatever its target's name has become
// (an inherited file that its owner removes reads "<path> (deleted)" from then on).
std::set<std::string> open_fd_identities();
// "mproc_t<pid>_": the prefix of the /dev/shm names this test process and its children create
// (tests run side by side; /dev/shm is shared by all of them).
std::string shm_prefix();
std::set<std::string> shm_entries();       // /dev/shm entries with this process's prefix
// Waits up to `seconds` for the children to go (a killed child takes a moment to be reaped
// by us), reaping zombies. Returns the pids still there.
std::vector<int> settle_children(double seconds);
// Called by the test main, before mproc::init: the log in which every process of this test
// tree records the /dev/shm names it creates (see shm_open in leak_check.cpp).
void open_shm_log();

class LeakCheck : public testing::EmptyTestEventListener {
public:
    void OnTestStart(const testing::TestInfo&) override;
    void OnTestEnd(const testing::TestInfo&) override;

private:
    std::set<std::string> fds_;     // open_fd_identities() at the start
    std::set<std::string> shm_;     // every /dev/shm entry at the start (any creator)
    long shm_log_offset_ = 0;
};

}  // namespace mproc_test
