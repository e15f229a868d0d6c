// Value and Array guarded by a lock the caller gives (Python: Value(typecode, v, lock=lk)),
// shared by several objects and across processes, under every start method.
#include <gtest/gtest.h>

#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include <mproc/mproc.hpp>

using namespace std::chrono_literals;

namespace {

// Updates `free` (its own lock), says so, then `guarded` (the shared lock), and says so.
template <class Guarded>
void update_both(mproc::Value<int> free, Guarded guarded, mproc::Event free_done, mproc::Event guarded_done) {
    free.set_value(1);
    free_done.set();
    if constexpr (requires { guarded.set_value(1); })
        guarded.set_value(1);
    else
        guarded.set(0, 1);
    guarded_done.set();
}

// Holding the lock through `holder` blocks the child's update of `guarded` (which shares it),
// not of a value with a lock of its own; releasing it lets the update through.
template <class Holder, class Guarded>
void check_shared(const std::string& method, Holder& holder, Guarded guarded) {
    mproc::Value<int> free(0);
    mproc::Event free_done, guarded_done;
    holder.get_lock().acquire();
    mproc::Process p({.start_method = method}, update_both<Guarded>, free, guarded, free_done, guarded_done);
    p.start();
    EXPECT_TRUE(free_done.wait(30s));       // the child runs, and a lock of its own is free
    EXPECT_FALSE(guarded_done.wait(300ms));  // but the shared lock is held here
    EXPECT_EQ(free.value(), 1);
    holder.get_lock().release();
    EXPECT_TRUE(guarded_done.wait(30s));
    p.join(30s);
    EXPECT_EQ(p.exitcode(), 0);
}

class SharedLock : public testing::TestWithParam<std::string> {};

TEST_P(SharedLock, TwoValuesShareOneRLock) {
    mproc::RLock lk;
    mproc::Value<int> a(0, lk), b(0, lk);
    // get_lock() is the lock given, for both.
    a.get_lock().acquire();
    EXPECT_TRUE(lk.locked());
    EXPECT_TRUE(b.get_lock().locked());
    a.get_lock().release();
    EXPECT_FALSE(b.get_lock().locked());
    check_shared(GetParam(), a, b);
    EXPECT_EQ(b.value(), 1);
    EXPECT_EQ(a.value(), 0);
}

TEST_P(SharedLock, AValueAndAnArrayShareOneLock) {
    mproc::Lock lk;
    mproc::Value v(0, lk);  // a Value<int, mproc::Lock>
    static_assert(std::is_same_v<decltype(v), mproc::Value<int, mproc::Lock>>);
    mproc::Array<int, mproc::Lock> arr(std::vector<int>{7, 8}, lk);
    {
        std::lock_guard g(arr.get_lock());
        EXPECT_TRUE(v.get_lock().locked());
    }
    EXPECT_FALSE(lk.locked());
    check_shared(GetParam(), v, arr);
    EXPECT_EQ(arr.to_vector(), (std::vector<int>{1, 8}));
}

INSTANTIATE_TEST_SUITE_P(StartMethods, SharedLock, testing::Values("fork", "spawn", "forkserver"),
                         [](const auto& info) { return info.param; });

// A lock of mproc::threading lives in this process alone: it cannot guard memory that other
// processes use.
TEST(SharedLockUnit, AThreadingLockIsRefused) {
    mproc::threading::Lock tl;
    EXPECT_THROW((mproc::Value<int, mproc::threading::Lock>(0, tl)), std::invalid_argument);
}

// Any lock with lock()/unlock() that travels will do, as in Python (any object with acquire and
// release): a Semaphore here.
TEST(SharedLockUnit, ASemaphoreGuardsAValue) {
    mproc::Semaphore sem(1);
    mproc::Value<int, mproc::Semaphore> v(5, sem);
    v.set_value(6);
    EXPECT_EQ(v.value(), 6);
    sem.acquire();
    EXPECT_EQ(v.get_lock().get_value(), 0);
    sem.release();
}

// Sent over a Connection: the copy received keeps the given lock (the same lock).
TEST(SharedLockUnit, ARoundTripKeepsTheSharedLock) {
    mproc::RLock lk;
    mproc::Value<double> a(1.5, lk);
    mproc::Array<int> own(2);
    auto [x, y] = mproc::Pipe();
    x.send(a);
    x.send(own);
    auto back = y.recv<mproc::Value<double>>();
    auto own_back = y.recv<mproc::Array<int>>();
    EXPECT_EQ(back.value(), 1.5);
    lk.acquire();
    EXPECT_TRUE(back.get_lock().locked());
    lk.release();
    own.get_lock().acquire();
    EXPECT_TRUE(own_back.get_lock().locked());  // its own lock, still beside its data
    own.get_lock().release();
}

}  // namespace
