// A process killed while holding a Lock, an RLock or a Condition's lock does not block the
// others: the next acquirer takes the lock over and owner_died() tells it so. (Python's locks
// stay locked forever.)
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <mutex>
#include <random>
#include <string>
#include <thread>

#include <mproc/mproc.hpp>

using namespace std::chrono_literals;

namespace {

template <class L>
void take_and_hang(L l, mproc::Event held) {
    l.acquire();
    held.set();
    for (;;) pause();
}

void take_condition_and_hang(mproc::Condition c, mproc::Event held) {
    c.acquire();
    held.set();
    for (;;) pause();
}

// Counts under the lock forever: increments a and b together, so a != b after a takeover
// means the owner died between the two writes.
void count_forever(mproc::Lock l, mproc::RawArray<long> ab, mproc::Event started) {
    started.set();
    for (;;) {
        std::lock_guard g(l);
        ab[0] += 1;
        ab[1] += 1;
    }
}

class RobustLocks : public testing::TestWithParam<std::string> {
protected:
    mproc::ProcessOptions opts() { return {.start_method = GetParam()}; }
};

template <class L>
void killed_holder(const mproc::ProcessOptions& o) {
    L l;
    mproc::Event held;
    mproc::Process p(o, take_and_hang<L>, l, held);
    p.start();
    ASSERT_TRUE(held.wait(20s));
    EXPECT_FALSE(l.acquire(false));
    p.kill();
    p.join();
    const auto t0 = std::chrono::steady_clock::now();
    ASSERT_TRUE(l.acquire(true, 5s)) << "the lock stayed held by a dead process";
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
    EXPECT_TRUE(l.owner_died());
    l.release();
    ASSERT_TRUE(l.acquire(false));
    EXPECT_FALSE(l.owner_died());  // a normal acquire after that
    l.release();
}

TEST_P(RobustLocks, LockOfAKilledHolderIsTakenOver) { killed_holder<mproc::Lock>(opts()); }
TEST_P(RobustLocks, RLockOfAKilledHolderIsTakenOver) { killed_holder<mproc::RLock>(opts()); }

TEST_P(RobustLocks, ConditionLockOfAKilledHolderIsTakenOver) {
    mproc::Condition c;
    mproc::Event held;
    mproc::Process p(opts(), take_condition_and_hang, c, held);
    p.start();
    ASSERT_TRUE(held.wait(20s));
    p.kill();
    p.join();
    ASSERT_TRUE(c.acquire(true, 5s));
    EXPECT_TRUE(c.owner_died());
    EXPECT_FALSE(c.wait(10ms));  // usable: wait gives the lock up and takes it back
    c.release();
}

TEST_P(RobustLocks, WaiterBlockedOnADeadHolderIsReleased) {
    // A waiter already asleep in acquire() when the holder dies (not only the next caller).
    mproc::Lock l;
    mproc::Event held;
    mproc::Process holder(opts(), take_and_hang<mproc::Lock>, l, held);
    holder.start();
    ASSERT_TRUE(held.wait(20s));
    std::jthread killer([&] {
        std::this_thread::sleep_for(50ms);  // let the main thread fall asleep in acquire first
        holder.kill();
    });
    ASSERT_TRUE(l.acquire(true, 10s));
    EXPECT_TRUE(l.owner_died());
    l.release();
    killer.join();
    holder.join();
}

TEST_P(RobustLocks, RandomKillsNeverWedgeTheLock) {
    // Kill a process that counts under the lock at random moments, many times: the lock is
    // always acquirable afterwards, and a half-done update is only ever seen with owner_died().
    mproc::Lock l;
    mproc::RawArray<long> ab(2);
    std::mt19937 rng(12345);
    int takeovers = 0;
    for (int i = 0; i < 40; ++i) {
        mproc::Event started;
        mproc::Process p(opts(), count_forever, l, ab, started);
        p.start();
        ASSERT_TRUE(started.wait(20s));
        std::this_thread::sleep_for(std::chrono::microseconds(rng() % 3000));  // a random moment
        p.kill();
        p.join();
        ASSERT_TRUE(l.acquire(true, 5s)) << "iteration " << i << ": the lock is wedged";
        if (l.owner_died()) {
            ++takeovers;
            ab[1] = ab[0];  // repair: the dead holder may have written only half
        }
        EXPECT_EQ(ab[0], ab[1]) << "a half-done update without owner_died()";
        l.release();
    }
    // With the child counting flat out, most kills land inside the lock.
    EXPECT_GT(takeovers, 0);
}

void notify_then_hang(mproc::Condition c, mproc::Event notified) {
    c.acquire();
    c.notify();  // moves the parent's wait onto the lock this process now holds
    notified.set();
    for (;;) pause();
}

TEST_P(RobustLocks, ConditionWaiterMovedOntoADeadHoldersLockIsReleased) {
    mproc::Condition c;
    mproc::Event notified;
    c.acquire();
    mproc::Process p(opts(), notify_then_hang, c, notified);
    p.start();
    std::jthread killer([&] {
        if (notified.wait(20s)) p.kill();
    });
    EXPECT_TRUE(c.wait(20s));     // notified; then the lock is taken over from the dead notifier
    EXPECT_TRUE(c.owner_died());
    c.release();
    killer.join();
    p.join();
}

INSTANTIATE_TEST_SUITE_P(StartMethods, RobustLocks, testing::Values("fork", "spawn", "forkserver"),
                         [](const auto& info) { return info.param; });

}  // namespace
