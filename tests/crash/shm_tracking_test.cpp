// Named segments are removed when the tree of processes that created them is gone, even after
// kill -9, but never while another process still has them open; and a process that only
// attached never removes them (Python <= 3.12 does, when the attacher exits).
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>
#include <thread>

#include <mproc/mproc.hpp>

#include "fifo.hpp"
#include "wait_removed.hpp"

using namespace std::chrono_literals;
namespace sm = mproc::shared_memory;

namespace {

void block_forever() {
    for (;;) pause();
}

// Creates a segment, reports its name, and either blocks (to be killed) or returns.
void create_segment(std::string fifo, bool then_block) {
    sm::SharedMemory shm({.create = true, .size = 4096});
    mproc_test::write_fifo(fifo, shm.name());
    if (then_block) block_forever();
}

void attach_and_leave(std::string name) { sm::SharedMemory shm({.name = name}); }

class ShmTracking : public testing::TestWithParam<std::string> {
protected:
    mproc::ProcessOptions opts() { return {.start_method = GetParam()}; }
};

TEST_P(ShmTracking, RemovedWhenTheCreatorIsKilled) {
    mproc_test::Fifo fifo;
    mproc::Process p(opts(), create_segment, fifo.path(), true);
    p.start();
    const std::string name = fifo.read_all();
    ASSERT_FALSE(name.empty());
    ASSERT_TRUE(mproc_test::exists("/dev/shm/" + name));
    p.kill();
    p.join();
    EXPECT_TRUE(mproc_test::wait_until_removed("/dev/shm/" + name, 10)) << name << " outlived its creator";
}

TEST_P(ShmTracking, RemovedWhenTheCreatorEndsWithoutUnlinking) {
    mproc_test::Fifo fifo;
    mproc::Process p(opts(), create_segment, fifo.path(), false);
    p.start();
    const std::string name = fifo.read_all();
    p.join();
    EXPECT_EQ(p.exitcode(), 0);
    EXPECT_TRUE(mproc_test::wait_until_removed("/dev/shm/" + name, 10));
}

TEST_P(ShmTracking, NeverRemovedUnderAProcessThatStillUsesIt) {
    mproc_test::Fifo fifo;
    mproc::Process p(opts(), create_segment, fifo.path(), true);
    p.start();
    const std::string name = fifo.read_all();
    std::optional<sm::SharedMemory> user(sm::SharedMemory({.name = name}));  // this process uses it
    p.kill();
    p.join();
    // The creator's tree is gone; the tracker now waits for us. For as long as we hold it:
    EXPECT_FALSE(mproc_test::wait_until_removed("/dev/shm/" + name, 0.5)) << "removed while still in use";
    user->buf()[0] = std::byte{1};  // still usable
    user.reset();                   // let go: now it goes
    EXPECT_TRUE(mproc_test::wait_until_removed("/dev/shm/" + name, 10));
}

TEST_P(ShmTracking, AnAttacherThatExitsDoesNotRemoveIt) {
    sm::SharedMemory shm({.create = true, .size = 4096, .track = false});  // this test removes it
    mproc::Process p(opts(), attach_and_leave, shm.name());
    p.start();
    p.join();
    EXPECT_EQ(p.exitcode(), 0);
    EXPECT_FALSE(mproc_test::wait_until_removed("/dev/shm/" + shm.name(), 0.3)) << "the attacher removed it";
    shm.unlink();
}

INSTANTIATE_TEST_SUITE_P(StartMethods, ShmTracking, testing::Values("fork", "spawn", "forkserver"),
                         [](const auto& info) { return info.param; });

}  // namespace
