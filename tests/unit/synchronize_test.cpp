// Synchronization objects within one process (threads as the other parties): Python's
// raise-or-return behaviour, timeouts, and the shared-memory value types.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include <mproc/mproc.hpp>

using namespace std::chrono_literals;

namespace {

TEST(Lock, AcquireReleaseAndRaiseOrReturn) {
    mproc::Lock l;
    EXPECT_FALSE(l.locked());
    EXPECT_TRUE(l.acquire());
    EXPECT_TRUE(l.locked());
    EXPECT_FALSE(l.acquire(false));  // non-recursive: a second acquire fails
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_FALSE(l.acquire(true, 100ms));
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 100ms);
    EXPECT_FALSE(l.acquire(true, -1s));  // negative: zero
    l.release();
    EXPECT_FALSE(l.locked());
    EXPECT_THROW(l.release(), std::logic_error);  // released too many times
    {
        std::lock_guard g(l);
        EXPECT_TRUE(l.locked());
    }
    EXPECT_FALSE(l.locked());
}

TEST(Lock, AnyThreadMayReleaseIt) {
    mproc::Lock l;
    l.acquire();
    std::jthread([&] { l.release(); });
    EXPECT_FALSE(l.locked());
}

TEST(Lock, CopiesAreTheSameLock) {
    mproc::Lock a;
    mproc::Lock b = a;
    a.acquire();
    EXPECT_TRUE(b.locked());
    EXPECT_FALSE(b.acquire(false));
    b.release();
    EXPECT_FALSE(a.locked());
}

TEST(Lock, ExcludesThreads) {
    mproc::Lock l;
    long counter = 0;
    std::vector<std::jthread> ts;
    for (int t = 0; t < 4; ++t)
        ts.emplace_back([&] {
            for (int i = 0; i < 20000; ++i) {
                std::lock_guard g(l);
                ++counter;
            }
        });
    ts.clear();
    EXPECT_EQ(counter, 80000);
}

TEST(RLock, RecursionAndOwnership) {
    mproc::RLock r;
    EXPECT_TRUE(r.acquire());
    EXPECT_TRUE(r.acquire());
    std::jthread([&] {
        EXPECT_FALSE(r.acquire(false));           // another thread cannot take it
        EXPECT_THROW(r.release(), std::logic_error);  // nor release it
    });
    r.release();
    r.release();
    EXPECT_THROW(r.release(), std::logic_error);
    std::jthread([&] {
        EXPECT_TRUE(r.acquire(false));
        r.release();
    });
}

TEST(Semaphore, CountsAndWakes) {
    mproc::Semaphore s(2);
    EXPECT_EQ(s.get_value(), 2);
    EXPECT_TRUE(s.acquire());
    EXPECT_TRUE(s.acquire());
    EXPECT_FALSE(s.acquire(false));
    EXPECT_FALSE(s.acquire(true, 50ms));
    std::jthread releaser([&] { s.release(); });
    EXPECT_TRUE(s.acquire(true, 10s));
    s.release(2);
    EXPECT_EQ(s.get_value(), 2);
    EXPECT_THROW(mproc::Semaphore(-1), std::invalid_argument);
}

TEST(BoundedSemaphore, ReleasePastTheBoundIsAnError) {
    mproc::BoundedSemaphore b(1);
    EXPECT_THROW(b.release(), std::logic_error);
    b.acquire();
    b.release();
    EXPECT_EQ(b.get_value(), 1);
}

TEST(Condition, WaitNotifyAndTimeouts) {
    mproc::Condition c;
    EXPECT_THROW(c.wait(), std::logic_error);   // not holding the lock
    EXPECT_THROW(c.notify(), std::logic_error);
    int ready = 0;
    std::jthread producer([&] {
        std::lock_guard g(c);
        ready = 1;
        c.notify();
    });
    {
        std::unique_lock g(c);
        EXPECT_TRUE(c.wait_for([&] { return ready == 1; }, 10s));
    }
    std::unique_lock g(c);
    EXPECT_FALSE(c.wait(50ms));  // nobody notifies
    EXPECT_FALSE(c.wait_for([] { return false; }, 50ms));
}

TEST(Condition, NotifyAllWakesEveryone) {
    mproc::Condition c;
    int go = 0;
    std::atomic<int> woke{0};
    std::vector<std::jthread> ts;
    for (int i = 0; i < 4; ++i)
        ts.emplace_back([&] {
            std::unique_lock g(c);
            if (c.wait_for([&] { return go == 1; }, 20s)) ++woke;
        });
    {
        std::lock_guard g(c);
        go = 1;
        c.notify_all();
    }
    ts.clear();
    EXPECT_EQ(woke, 4);
}

TEST(Condition, OverAPlainLockAndARecursiveOne) {
    mproc::Lock l;
    mproc::Condition c(l);
    c.acquire();
    EXPECT_TRUE(l.locked());  // the same lock
    EXPECT_FALSE(c.wait(10ms));
    EXPECT_TRUE(l.locked());  // taken back after the wait
    c.release();
    mproc::RLock r;
    mproc::Condition d(r);
    r.acquire();
    r.acquire();  // depth 2: wait gives up both levels and restores them
    EXPECT_FALSE(d.wait(10ms));
    r.release();
    r.release();
    EXPECT_THROW(r.release(), std::logic_error);
}

TEST(Event, SetWaitClear) {
    mproc::Event e;
    EXPECT_FALSE(e.is_set());
    EXPECT_FALSE(e.wait(20ms));
    std::jthread setter([&] { e.set(); });
    EXPECT_TRUE(e.wait(10s));
    EXPECT_TRUE(e.is_set());
    EXPECT_TRUE(e.wait());  // at once when set
    e.clear();
    EXPECT_FALSE(e.is_set());
}

std::atomic<int> g_barrier_actions{0};
void count_action() { ++g_barrier_actions; }

TEST(Barrier, IndicesActionAndReuse) {
    g_barrier_actions = 0;
    mproc::Barrier b(4, count_action);
    EXPECT_EQ(b.parties(), 4);
    for (int round = 0; round < 3; ++round) {
        std::vector<int> idx(4, -1);
        std::vector<std::jthread> ts;
        for (int i = 0; i < 4; ++i) ts.emplace_back([&, i] { idx[i] = b.wait(10s); });
        ts.clear();
        std::sort(idx.begin(), idx.end());
        EXPECT_EQ(idx, (std::vector<int>{0, 1, 2, 3}));
    }
    EXPECT_EQ(g_barrier_actions, 3);
    EXPECT_FALSE(b.broken());
}

TEST(Barrier, TimeoutAbortAndReset) {
    mproc::Barrier b(3);
    std::atomic<int> broken{0};
    {
        std::jthread t([&] {
            try {
                b.wait(10s);
            } catch (const mproc::BrokenBarrierError&) {
                ++broken;
            }
        });
        EXPECT_THROW(b.wait(100ms), mproc::BrokenBarrierError);  // only 2 of 3 came
    }
    EXPECT_EQ(broken, 1);  // the other waiter was released with the error too
    EXPECT_TRUE(b.broken());
    EXPECT_THROW(b.wait(), mproc::BrokenBarrierError);
    b.reset();
    EXPECT_FALSE(b.broken());
    {
        std::jthread t([&] {
            try {
                b.wait(10s);
            } catch (const mproc::BrokenBarrierError&) {
                ++broken;
            }
        });
        while (b.n_waiting() < 1) std::this_thread::yield();
        b.abort();
    }
    EXPECT_EQ(broken, 2);
    EXPECT_THROW(mproc::Barrier(0), std::invalid_argument);
}

TEST(SharedCTypes, ValueAndArray) {
    mproc::Value<double> v(10.0);  // Value('d', 10)
    EXPECT_EQ(v.value(), 10.0);
    v.set_value(3.5);
    EXPECT_EQ(v.value(), 3.5);
    {
        std::lock_guard g(v.get_lock());  // recursive: value() inside is fine
        v.set_value(v.value() + 1);
    }
    EXPECT_EQ(v.value(), 4.5);
    v.get_obj() = 7;
    EXPECT_EQ(v.value(), 7.0);
    mproc::Value<int> zero;
    EXPECT_EQ(zero.value(), 0);

    mproc::Array<int> a(4);
    EXPECT_EQ(a.size(), 4u);
    EXPECT_EQ(a.to_vector(), (std::vector<int>{0, 0, 0, 0}));
    a.set(2, 9);
    EXPECT_EQ(a.get(2), 9);
    EXPECT_THROW(a.get(4), std::out_of_range);
    EXPECT_THROW(a.set(10, 1), std::out_of_range);
    mproc::Array<int> b{1, 2, 3, 4};
    EXPECT_EQ(b.to_vector(), (std::vector<int>{1, 2, 3, 4}));
    for (int& x : b.get_obj()) x *= 2;
    EXPECT_EQ(b.to_vector(), (std::vector<int>{2, 4, 6, 8}));
    mproc::Array<int> empty(0);
    EXPECT_EQ(empty.size(), 0u);
    EXPECT_TRUE(empty.to_vector().empty());
}

TEST(SharedCTypes, RawKinds) {
    mproc::RawValue<int> rv(0);
    rv.value() += 1;
    EXPECT_EQ(rv.value(), 1);
    mproc::RawArray<int> ra(8);
    ra[3] = 7;
    int sum = 0;
    for (int x : ra) sum += x;
    EXPECT_EQ(sum, 7);
    EXPECT_THROW(ra.at(8), std::out_of_range);
    struct P {
        int x;
        double y;
    };
    mproc::Value<P> p(P{1, 2.0});
    EXPECT_EQ(p.value().x, 1);
}

}  // namespace
