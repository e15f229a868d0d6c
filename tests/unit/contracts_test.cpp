// The header contracts (what each public method blocks on, what its caller must hold, what it
// throws) where no other test checks them: misuse, moved-from and empty handles, timeouts at
// the edges. Within one process; the synchronization objects' other parties are threads.
#include <gtest/gtest.h>

#include <chrono>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <thread>

#include <mproc/mproc.hpp>

using namespace std::chrono_literals;

namespace {

const mproc::Timeout kNaN(std::chrono::duration<double>(std::numeric_limits<double>::quiet_NaN()));

// Condition::wait_for's timeout is one Deadline (detail/deadline.hpp): a timeout too long for
// the clock is forever (its own arithmetic overflowed there, undefined behaviour that happened
// to wrap around to a long wait).
TEST(ConditionContract, WaitForWithATimeoutBeyondTheClockWaitsForThePredicate) {
    for (const mproc::Timeout forever : {mproc::Timeout(1e300), mproc::Timeout(std::chrono::hours::max())}) {
        mproc::Condition c;
        bool ready = false;
        std::unique_lock held(c);
        std::jthread notifier([&] {
            std::lock_guard g(c);  // only once wait_for has released it
            ready = true;
            c.notify();
        });
        EXPECT_TRUE(c.wait_for([&] { return ready; }, forever));
        held.unlock();  // before the notifier is joined: it may still be waiting for the lock
    }
}

// NaN has no meaning as a length of time (Python: ValueError); wait_for's own arithmetic
// turned it into an unspecified deadline.
TEST(ConditionContract, WaitForANaNTimeoutIsInvalid) {
    mproc::Condition c;
    std::lock_guard held(c);
    EXPECT_THROW(c.wait_for([] { return false; }, kNaN), std::invalid_argument);
    EXPECT_THROW(c.wait(kNaN), std::invalid_argument);
}

// An empty Barrier (the default constructor, for a handle to be assigned or loaded): using it
// is std::logic_error, and its noexcept queries answer as for no barrier (they used to throw
// through noexcept, which ends the program).
TEST(BarrierContract, AnEmptyHandleIsMisuseAndItsQueriesAnswer) {
    mproc::Barrier b;
    EXPECT_EQ(b.parties(), 0);
    EXPECT_EQ(b.n_waiting(), 0);
    EXPECT_FALSE(b.broken());
    EXPECT_THROW(b.wait(), std::logic_error);
    EXPECT_THROW(b.reset(), std::logic_error);
    EXPECT_THROW(b.abort(), std::logic_error);
}

}  // namespace
