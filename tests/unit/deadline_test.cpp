// The one deadline type (mproc/detail/deadline.hpp): its arithmetic at the edges, where the
// hand-written sites it replaced differed (one clamped at a century, the others overflowed).
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <limits>
#include <mutex>
#include <stdexcept>

#include <mproc/detail/deadline.hpp>

using mproc::Timeout;
using mproc::detail::Deadline;
using namespace std::chrono_literals;

TEST(Deadline, EmptyTimeoutIsNever) {
    const Deadline d = Deadline::after(std::nullopt);
    EXPECT_TRUE(d.is_never());
    EXPECT_FALSE(d.expired());
    EXPECT_FALSE(d.remaining().has_value());
    EXPECT_EQ(d.poll_timeout_ms(), -1);
}

// Python: a negative timeout checks once and does not wait (threading.Lock.acquire aside).
TEST(Deadline, NegativeAndZeroTimeoutsHaveExpired) {
    for (const double s : {-5.0, -0.0, 0.0}) {
        const Deadline d = Deadline::after(Timeout(s));
        EXPECT_FALSE(d.is_never()) << s;
        EXPECT_TRUE(d.expired()) << s;
        EXPECT_EQ(d.remaining()->count(), 0.0) << s;
        EXPECT_EQ(d.poll_timeout_ms(), 0) << s;
    }
}

// A timeout longer than the clock can count saturates to never, instead of overflowing into
// the past (an immediate timeout) or into undefined behaviour (double to ticks).
TEST(Deadline, HugeTimeoutsSaturateToNever) {
    const Timeout huge[] = {Timeout(1e300), Timeout(std::numeric_limits<double>::infinity()),
                            Timeout(std::chrono::duration<double>(std::chrono::hours::max())),
                            Timeout(std::chrono::duration<double>(std::chrono::nanoseconds::max()))};
    for (const Timeout& t : huge) {
        const Deadline d = Deadline::after(t);
        EXPECT_TRUE(d.is_never()) << t->count();
        EXPECT_FALSE(d.expired());
        EXPECT_EQ(d.poll_timeout_ms(), -1);
    }
    // A long but representable one stays a point in time, and poll's milliseconds saturate.
    const Deadline year = Deadline::after(Timeout(365.0 * 24 * 3600));
    EXPECT_FALSE(year.is_never());
    EXPECT_EQ(year.poll_timeout_ms(), std::numeric_limits<int>::max());
    EXPECT_GT(year.remaining()->count(), 364.0 * 24 * 3600);
}

TEST(Deadline, NanIsRefused) {
    EXPECT_THROW(Deadline::after(Timeout(std::numeric_limits<double>::quiet_NaN())), std::invalid_argument);
}

TEST(Deadline, RemainingShrinksAndPollRoundsUp) {
    const Deadline d = Deadline::after(Timeout(0.0005));  // half a millisecond
    EXPECT_LE(d.remaining()->count(), 0.0005);
    const int ms = d.poll_timeout_ms();
    EXPECT_TRUE(ms == 1 || (ms == 0 && d.expired())) << ms;  // never rounded down to an early wake
}

TEST(Deadline, WaitOnConditionVariable) {
    std::mutex mu;
    std::condition_variable cv;
    std::unique_lock lk(mu);
    bool flag = false;
    EXPECT_FALSE(Deadline::after(Timeout(0.01)).wait(cv, lk, [&] { return flag; }));
    flag = true;
    EXPECT_TRUE(Deadline::after(Timeout(0.0)).wait(cv, lk, [&] { return flag; }));
    EXPECT_TRUE(Deadline::never().wait(cv, lk, [&] { return flag; }));
}
