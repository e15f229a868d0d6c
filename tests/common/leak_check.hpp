// After each test: no child process left (this binary is a subreaper, so orphans count), no
// descriptor left open that was not open before the test, no /dev/shm entry of mproc's left.
#pragma once

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

namespace mproc_test {

std::vector<int> child_pids();             // direct children of this process (incl. zombies)
std::set<std::string> open_fd_targets();   // "fd -> target" for every open descriptor
// "mproc_t<pid>_": the prefix of the /dev/shm names this test process and its children create
// (tests run side by side; /dev/shm is shared by all of them).
std::string shm_prefix();
std::set<std::string> shm_entries();       // /dev/shm entries with this process's prefix
// Waits up to `seconds` for the children to go (a killed child takes a moment to be reaped
// by us), reaping zombies. Returns the pids still there.
std::vector<int> settle_children(double seconds);

class LeakCheck : public testing::EmptyTestEventListener {
public:
    void OnTestStart(const testing::TestInfo&) override;
    void OnTestEnd(const testing::TestInfo&) override;

private:
    std::set<std::string> fds_;
    std::set<std::string> shm_;
};

}  // namespace mproc_test
