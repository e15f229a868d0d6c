// The main of every test binary: the binary is its own child (spawn and forkserver re-run it,
// and mproc::init sends the child to its job before GoogleTest starts), and a leak check runs
// after every test.
#include <gtest/gtest.h>
#include <sys/prctl.h>

#include <mproc/mproc.hpp>

#include "leak_check.hpp"

int main(int argc, char** argv) {
    // Before init, so spawned copies of this binary see it too: segments this test process
    // (and its children) create are named for it, and the leak check counts only those.
    if (!getenv("MPROC_SHM_NAME_PREFIX")) setenv("MPROC_SHM_NAME_PREFIX", mproc_test::shm_prefix().c_str(), 1);
    mproc_test::open_shm_log();
    mproc::init(argc, argv);
    // Orphans of the code under test are re-parented to this process instead of PID 1, so the
    // leak check sees (and reaps) any process the test left behind.
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    testing::InitGoogleTest(&argc, argv);
    testing::UnitTest::GetInstance()->listeners().Append(new mproc_test::LeakCheck);
    return RUN_ALL_TESTS();
}
