// try_lock on every lock-like type (the non-blocking acquire std::lock and std::try_lock use),
// and Process::set_authkey, under each start method (issue 14, section 4: never exercised
// directly before). Each would fail if try_lock always answered the same, or set_authkey did
// nothing.
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include <mproc/mproc.hpp>

using namespace std::chrono_literals;
namespace mm = mproc::managers;

namespace {

template <class L>
void hold_until(L l, mproc::Event held, mproc::Event go) {
    l.acquire();
    held.set();
    go.wait(60s);
    l.release();
}

template <class L>
void report_try_lock(L l, mproc::Value<int> out) {
    const bool got = l.try_lock();
    out.set_value(got ? 1 : 0);
    if (got) l.release();
}

void report_authkey(mproc::Queue<std::string> q) { q.put(mproc::current_process().authkey()); }

class TryLockAuthkey : public testing::TestWithParam<std::string> {
protected:
    mproc::ProcessOptions opts() { return {.start_method = GetParam()}; }

    // try_lock from this process fails while a child holds `l`, and succeeds once it let go.
    template <class L>
    void expect_blocked_by_child(L l) {
        mproc::Event held, go;
        mproc::Process p(opts(), hold_until<L>, l, held, go);
        p.start();
        ASSERT_TRUE(held.wait(60s));
        EXPECT_FALSE(l.try_lock()) << "try_lock succeeded on a lock held by another process";
        go.set();
        p.join(60s);
        EXPECT_EQ(p.exitcode(), 0);
        EXPECT_TRUE(l.try_lock()) << "try_lock failed on a free lock";
        l.release();
    }

    // A child's try_lock on `l`, as 1 (acquired) or 0.
    template <class L>
    int child_try_lock(L l) {
        mproc::Value<int> out(-1);
        mproc::Process p(opts(), report_try_lock<L>, l, out);
        p.start();
        p.join(60s);
        EXPECT_EQ(p.exitcode(), 0);
        return out.value();
    }
};

TEST_P(TryLockAuthkey, LockTryLock) {
    mproc::Lock l;
    EXPECT_TRUE(l.try_lock());
    EXPECT_FALSE(l.try_lock()) << "a Lock is not recursive";
    l.release();
    expect_blocked_by_child(l);
}

TEST_P(TryLockAuthkey, RLockTryLock) {
    mproc::RLock l;
    EXPECT_TRUE(l.try_lock());
    EXPECT_TRUE(l.try_lock()) << "the owner takes an RLock again";
    EXPECT_EQ(child_try_lock(l), 0);
    l.release();
    EXPECT_EQ(child_try_lock(l), 0) << "still held once";
    l.release();
    EXPECT_EQ(child_try_lock(l), 1);
    expect_blocked_by_child(l);
}

TEST_P(TryLockAuthkey, SemaphoreTryLock) {
    mproc::Semaphore s(2);
    EXPECT_TRUE(s.try_lock());
    EXPECT_TRUE(s.try_lock());
    EXPECT_FALSE(s.try_lock()) << "a third taker of a Semaphore(2)";
    EXPECT_EQ(child_try_lock(s), 0);
    s.release();
    EXPECT_EQ(child_try_lock(s), 1);
    s.release();
    expect_blocked_by_child(mproc::Semaphore(1));
}

TEST_P(TryLockAuthkey, BoundedSemaphoreTryLock) {
    mproc::BoundedSemaphore s(1);
    EXPECT_TRUE(s.try_lock());
    EXPECT_FALSE(s.try_lock());
    EXPECT_EQ(child_try_lock(s), 0);
    s.release();
    expect_blocked_by_child(s);
}

TEST_P(TryLockAuthkey, ManagerLockProxyTryLock) {
    mm::SyncManager m = mproc::Manager({.start_method = GetParam()});
    mm::LockProxy l = m.Lock();
    EXPECT_TRUE(l.try_lock());
    EXPECT_FALSE(l.try_lock()) << "a Lock is not recursive";
    EXPECT_EQ(child_try_lock(l), 0);
    l.release();
    EXPECT_EQ(child_try_lock(l), 1);
    EXPECT_TRUE(l.try_lock());
    l.release();
}

TEST_P(TryLockAuthkey, ManagerRLockProxyTryLock) {
    mm::SyncManager m = mproc::Manager({.start_method = GetParam()});
    mm::RLockProxy l = m.RLock();
    EXPECT_TRUE(l.try_lock());
    EXPECT_TRUE(l.try_lock()) << "the owner takes an RLock again";
    EXPECT_EQ(child_try_lock(l), 0);
    l.release();
    l.release();
    EXPECT_EQ(child_try_lock(l), 1);
}

// The key set before start() is the child's own (Python: the child's current_process().authkey).
TEST_P(TryLockAuthkey, SetAuthkeyIsTheChildsKey) {
    const std::string key = "key for " + GetParam();
    mproc::Queue<std::string> q;
    mproc::Process p(opts(), report_authkey, q);
    ASSERT_NE(p.authkey(), key);
    p.set_authkey(key);
    EXPECT_EQ(p.authkey(), key);
    p.start();
    EXPECT_EQ(q.get(true, 60s), key);
    p.join(60s);
    EXPECT_EQ(p.exitcode(), 0);
}

// A manager without an authkey takes the current process's: after set_authkey, a client with
// that key is let in and one with another is refused.
TEST_P(TryLockAuthkey, SetAuthkeyOfTheCurrentProcessKeysItsManagers) {
    mproc::BaseProcess me = mproc::current_process();
    const std::string old = me.authkey();
    me.set_authkey("the new key");
    EXPECT_EQ(mproc::current_process().authkey(), "the new key");
    {
        mm::SyncManager m = mproc::Manager({.start_method = GetParam()});
        mm::BaseManager good({.address = m.address(), .authkey = std::string("the new key")});
        EXPECT_NO_THROW(good.connect());
        EXPECT_EQ(good.number_of_objects(), 0u);
        mm::BaseManager bad({.address = m.address(), .authkey = old});
        EXPECT_THROW(bad.connect(), mproc::AuthenticationError);
    }
    me.set_authkey(old);
    EXPECT_EQ(mproc::current_process().authkey(), old);
}

INSTANTIATE_TEST_SUITE_P(StartMethods, TryLockAuthkey, testing::Values("fork", "spawn", "forkserver"),
                         [](const auto& info) { return info.param; });

}  // namespace
