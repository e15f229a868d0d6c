// mproc/detail/deadline.hpp: the one deadline type behind every blocking call.
//
// A blocking call turns its Timeout into a Deadline once, on entry, and every wait inside the
// call (each retry after a spurious wake-up, EINTR or a lost race) asks the Deadline for the time
// that remains, so retries never extend the caller's timeout. The arithmetic lives here only:
// a negative timeout is zero (check once, do not wait, as Python's), and a timeout too long for
// the clock (`1e300s`, `hours::max()`) saturates to "never" rather than overflowing.
#pragma once

#include <chrono>
#include <climits>
#include <cmath>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <stdexcept>

#include "mproc/detail/timeout.hpp"

namespace mproc::detail {

class Deadline {
public:
    using Clock = std::chrono::steady_clock;

    // Never: waits for as long as it takes.
    Deadline() noexcept = default;
    static Deadline never() noexcept { return {}; }

    // The deadline `timeout` from now. Empty is never; negative is now; beyond what the clock can
    // represent is never. Throws std::invalid_argument for NaN (Python: ValueError), which has
    // no meaning as a length of time.
    static Deadline after(const Timeout& timeout) {
        Deadline d;
        if (!timeout) return d;
        const double s = timeout->count();
        if (std::isnan(s)) throw std::invalid_argument("mproc: timeout is NaN");
        const auto now = Clock::now();
        if (s <= 0) {
            d.at_ = now;
            return d;
        }
        // Compare in double seconds before converting: the conversion of a too-large double to
        // the clock's integer ticks is undefined behaviour, not a large number.
        const double room = std::chrono::duration<double>(Clock::time_point::max() - now).count();
        if (s >= room * 0.5) return d;  // saturate: centuries away is never
        d.at_ = now + std::chrono::duration_cast<Clock::duration>(*timeout);
        return d;
    }

    // The deadline at a point in time already computed (e.g. a task's start plus its limit).
    static Deadline until(Clock::time_point t) noexcept {
        Deadline d;
        d.at_ = t;
        return d;
    }

    bool is_never() const noexcept { return !at_; }
    bool expired() const noexcept { return at_ && Clock::now() >= *at_; }
    // The instant itself; empty when never.
    std::optional<Clock::time_point> at() const noexcept { return at_; }

    // The time left, never negative; empty when never. For calls that take a Timeout.
    Timeout remaining() const {
        if (!at_) return std::nullopt;
        const auto left = *at_ - Clock::now();
        return std::chrono::duration<double>(left > Clock::duration::zero() ? left : Clock::duration::zero());
    }

    // Milliseconds for poll(2): -1 when never, rounded up so that a wait never ends early.
    int poll_timeout_ms() const noexcept {
        if (!at_) return -1;
        const auto left = *at_ - Clock::now();
        if (left <= Clock::duration::zero()) return 0;
        const auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
        return ms > INT_MAX ? INT_MAX : static_cast<int>(ms);
    }

    // Waits on `cv` (a std::condition_variable or _any; the caller holds `lk`) until `pred()` or
    // the deadline; returns pred().
    template <class CV, class Lock, class Pred>
    bool wait(CV& cv, Lock& lk, Pred pred) const {
        if (!at_) {
            cv.wait(lk, pred);
            return true;
        }
        return cv.wait_until(lk, *at_, pred);
    }

private:
    std::optional<Clock::time_point> at_;
};

}  // namespace mproc::detail
