// The main of every test binary: the binary is its own child (spawn and forkserver re-run it,
// and mproc::init sends the child to its job before GoogleTest starts), and a leak check runs
// after every test.
#include <gtest/gtest.h>
#include <sys/prctl.h>

#include <mproc/mproc.hpp>

#include "leak_check.hpp"

int main(int argc, char** argv) {
    mproc::init(argc, argv);
    // Orphans of the code under test are re-parented to this process instead of PID 1, so the
    // leak check sees (and reaps) any process the test left behind.
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    testing::InitGoogleTest(&argc, argv);
    testing::UnitTest::GetInstance()->listeners().Append(new mproc_test::LeakCheck);
    return RUN_ALL_TESTS();
}
