// Condition and Event wake exactly whom Python wakes, over both flavours: mproc's process-shared
// primitives and mproc::threading's. Sources:
//   CPython Lib/threading.py Condition.notify: "wake up at most n threads waiting"; it releases
//     the first n waiter locks of its deque and no other.
//   CPython Lib/test/lock_tests.py ConditionTests._check_notify (notify(n), then notify_all,
//     each waking exactly that many) and EventTests.test_set_and_clear (gh-57711 / bpo-13502:
//     wait() returns true even when the event is cleared before the waiter wakes).
// Issue 14, divergences 1-3.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include <mproc/mproc.hpp>

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

struct ProcessShared {
    using Condition = mproc::Condition;
    using Event = mproc::Event;
    using RLock = mproc::RLock;
};
struct Threading {
    using Condition = mproc::threading::Condition;
    using Event = mproc::threading::Event;
    using RLock = mproc::threading::RLock;
};

template <class Flavour>
class ConditionEvent : public testing::Test {};
using Flavours = testing::Types<ProcessShared, Threading>;
class FlavourNames {
public:
    template <class T>
    static std::string GetName(int) {
        return std::is_same_v<T, ProcessShared> ? "ProcessShared" : "Threading";
    }
};
TYPED_TEST_SUITE(ConditionEvent, Flavours, FlavourNames);

// N threads wait on `c` with `timeout`, each counting itself in `registered` under the lock
// first; once all are registered (seen under the lock, so each is inside wait()), `act` runs
// holding the lock. Returns each waiter's result and how long it took.
struct Outcome {
    bool result;
    Clock::duration took;
};
template <class Condition, class Act>
std::vector<Outcome> wait_then(Condition& c, int n, std::chrono::duration<double> timeout, Act act) {
    int registered = 0;
    std::vector<Outcome> out(static_cast<std::size_t>(n));
    std::vector<std::thread> ts;
    for (int i = 0; i < n; ++i)
        ts.emplace_back([&, i] {
            std::unique_lock g(c);
            ++registered;
            const auto t0 = Clock::now();
            const bool r = c.wait(timeout);
            out[static_cast<std::size_t>(i)] = {r, Clock::now() - t0};
        });
    const auto give_up = Clock::now() + 30s;
    for (;;) {
        std::unique_lock g(c);
        if (registered == n) {
            act();
            break;
        }
        g.unlock();
        if (Clock::now() > give_up) break;
        std::this_thread::yield();
    }
    for (auto& t : ts) t.join();
    EXPECT_EQ(registered, n);
    return out;
}

int count_true(const std::vector<Outcome>& v) {
    int n = 0;
    for (const auto& o : v) n += o.result;
    return n;
}

// lock_tests.ConditionTests._check_notify: notify(n) wakes n of the waiters, no more. Before the
// fix, the process-shared Condition woke every waiter (all 6 returned true).
TYPED_TEST(ConditionEvent, NotifyNWakesExactlyN) {
    typename TypeParam::Condition c;
    const auto out = wait_then(c, 6, 1.5s, [&] { c.notify(2); });
    EXPECT_EQ(count_true(out), 2);
    for (const auto& o : out)
        if (!o.result) {
            EXPECT_GE(o.took, 1.4s);  // the others waited out their timeout
        }
}

// notify(1) twice, each under its own hold of the lock: two woken, not one and not all.
TYPED_TEST(ConditionEvent, TwoNotifyOnesWakeTwo) {
    typename TypeParam::Condition c;
    const auto out = wait_then(c, 4, 1.5s, [&] {
        c.notify(1);
        c.notify(1);
    });
    EXPECT_EQ(count_true(out), 2);
}

// notify_all (and notify(n > 1)) wakes every waiter at once. Before the fix, mproc::threading's
// Condition woke one; the others slept until their timeout and then returned true.
TYPED_TEST(ConditionEvent, NotifyAllWakesEveryWaiterPromptly) {
    typename TypeParam::Condition c;
    const auto out = wait_then(c, 5, 20s, [&] { c.notify_all(); });
    EXPECT_EQ(count_true(out), 5);
    for (const auto& o : out) EXPECT_LT(o.took, 10s);
}

TYPED_TEST(ConditionEvent, NotifyThreeOfFiveWakesThreePromptly) {
    typename TypeParam::Condition c;
    const auto out = wait_then(c, 5, 4s, [&] { c.notify(3); });
    EXPECT_EQ(count_true(out), 3);
    for (const auto& o : out)
        if (o.result) {
            EXPECT_LT(o.took, 3s);
        }
}

// A waiter that timed out is no longer a waiter: a later notify(1) goes to a live one (Python
// removes a timed-out waiter from its deque).
TYPED_TEST(ConditionEvent, TimedOutWaiterDoesNotAbsorbALaterNotify) {
    typename TypeParam::Condition c;
    {
        std::unique_lock g(c);
        EXPECT_FALSE(c.wait(10ms));
    }
    const auto out = wait_then(c, 1, 20s, [&] { c.notify(1); });
    EXPECT_TRUE(out[0].result);
    EXPECT_LT(out[0].took, 10s);
}

// lock_tests.RLockTests / ConditionTests over an RLock: wait() gives up every level of a
// recursive lock, so another thread can take it and notify.
TYPED_TEST(ConditionEvent, WaitReleasesEveryLevelOfAnRLock) {
    typename TypeParam::RLock r;
    typename TypeParam::Condition c(r);
    std::atomic<bool> notifier_got_lock{false};
    std::thread notifier;
    {
        r.acquire();
        r.acquire();
        notifier = std::thread([&] {
            if (!r.acquire(true, 10s)) return;  // blocks until the waiter gives up both levels
            notifier_got_lock = true;
            c.notify();
            r.release();
        });
        EXPECT_TRUE(c.wait(20s));
        // Both levels are back: two releases succeed, a third is an error.
        r.release();
        r.release();
        EXPECT_THROW(r.release(), std::logic_error);
    }
    notifier.join();
    EXPECT_TRUE(notifier_got_lock);
}

// lock_tests.EventTests.test_set_and_clear: every thread waiting at set() returns true, even
// when clear() follows at once. CPython's test gives the waiters a moment to block
// (wait_threads_blocked sleeps); so does this one. Before the fix, the waiters slept on and
// their wait returned false at its timeout.
TYPED_TEST(ConditionEvent, EventSetAndClearWakesEveryWaiter) {
    // Whether a woken waiter finds the flag already down depends on who runs first after
    // set(): on a loaded machine the waiters may all run before clear(), and a wait() that
    // only read the flag would pass that round. Ten rounds make that chance negligible.
    for (int round = 0; round < 10; ++round) {
        typename TypeParam::Event e;
        constexpr int kN = 5;
        std::atomic<int> started{0};
        std::vector<int> results(kN, -1);
        std::vector<std::thread> ts;
        for (int i = 0; i < kN; ++i)
            ts.emplace_back([&, i] {
                ++started;
                results[static_cast<std::size_t>(i)] = e.wait(5s);
            });
        while (started.load() < kN) std::this_thread::yield();
        std::this_thread::sleep_for(100ms);  // as wait_threads_blocked: let them reach the futex
        e.set();
        e.clear();
        for (auto& t : ts) t.join();
        EXPECT_EQ(results, std::vector<int>(kN, 1)) << "round " << round;
        EXPECT_FALSE(e.is_set());
    }
}

}  // namespace
