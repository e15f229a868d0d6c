// mproc/synchronize.hpp: synchronization between processes (Python: multiprocessing.Lock,
// RLock, Semaphore, BoundedSemaphore, Condition, Event, Barrier).
//
// Each object lives in a small region of shared memory. Copies of a handle refer to the same
// object; a handle may be given to a child as a target argument under every start method, or
// sent over a Connection, and used from any thread of any process.
//
// Raise or return as Python does: acquire(block, timeout) returns false when it could not
// acquire in time; releasing a lock that is not held is std::logic_error (Python: ValueError /
// RuntimeError); BoundedSemaphore released past its bound is std::logic_error; Condition::wait
// returns false at its timeout; Barrier::wait throws BrokenBarrierError. Each has
// lock/unlock/try_lock where it is a lock, for std::lock_guard and std::unique_lock.
//
// Contracts common to every class here (each method says the rest):
// - Blocking: a call that waits sleeps on a futex in the object's shared memory (a lock first
//   spins briefly); no call makes a round trip to another process.
// - Timeouts: empty waits forever; negative is zero (check once, do not sleep); too long for
//   the clock is forever; NaN is std::invalid_argument (a call that need not wait may return
//   first).
// - A moved-from handle, or an empty Barrier, is std::logic_error; the noexcept queries answer
//   as for an unheld, unset object. Creating an object makes a memfd: std::system_error when
//   the system refuses one.
//
// Robust to a dead owner (where Python blocks forever): Lock, RLock and the lock of a Condition
// record their owner's thread id. A waiter that has slept a while (1 ms at first, up to 100 ms)
// checks that the owner still lives; if it died (SIGKILL, a crash), the waiter takes the lock
// over, and owner_died() is true for it until it releases. The protected data may be half
// updated: check owner_died() after acquiring when that matters. Semaphores, Events and Barriers
// have no owner, as in Python; a process that dies holding a semaphore's unit keeps it.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <utility>

#include "mproc/detail/deadline.hpp"
#include "mproc/detail/shared_region.hpp"
#include "mproc/detail/timeout.hpp"

namespace mproc {

namespace detail {
// A lock word in shared memory, and the algorithms on it (src/synchronize.cpp).
class LockCore {
public:
    // The shared bytes a lock word takes, for objects that keep their locks inside a region of
    // their own (a queue's two locks live in its header).
    static constexpr std::size_t kStateBytes = 16;
    LockCore() = default;
    LockCore(RegionRef at, bool recursive) : at_(std::move(at)), state_(at_.data()), recursive_(recursive) {}
    LockCore(const LockCore&) = default;
    LockCore& operator=(const LockCore&) = default;
    // A moved-from core has no state: its use is std::logic_error, as for its region.
    LockCore(LockCore&& o) noexcept
        : at_(std::move(o.at_)), state_(std::exchange(o.state_, nullptr)), recursive_(o.recursive_) {}
    LockCore& operator=(LockCore&& o) noexcept {
        at_ = std::move(o.at_);
        state_ = std::exchange(o.state_, nullptr);
        recursive_ = o.recursive_;
        return *this;
    }
    // `spin`: pauses to look at a held word before sleeping on it. Locks of the user's (Lock,
    // RLock, Value's) take none, as glibc's mutex: a holder in a tight loop would hand the lock
    // over at every turn to a spinner instead of running on alone (docs/design.md, Locks).
    // Internal guards held only over a copy (a queue's side, a barrier's count) spin kShortSpin.
    static constexpr int kShortSpin = 100;
    bool acquire(bool block, const Timeout& timeout, int spin = 0);
    void release();
    bool locked() const noexcept;
    bool owned_by_me() const noexcept;
    bool owner_died() const noexcept;
    bool recursive() const noexcept { return recursive_; }
    // For Condition::wait: give up the lock entirely (an RLock at any depth) and take it back.
    // `contended`: taken back by a waiter that slept and may have been requeued onto the lock's
    // word by Condition::notify; others may sleep there behind it, so the word keeps its
    // waiters bit and the release wakes the next one.
    std::uint32_t release_all();
    void restore(std::uint32_t depth, bool contended = false);
    // For Condition::notify's wait morphing: the futex word, and its waiters bit.
    std::uint32_t* word() const;
    void mark_contended();
    const RegionRef& region() const noexcept { return at_; }

    void save(OutputArchive& ar) const;
    void load(InputArchive& ar);

private:
    RegionRef at_;
    // at_.data(), kept: the mapping never moves, and the owner's re-entry (Value's idiom takes
    // the lock twice more inside the held one) should not pay two calls to find it.
    void* state_ = nullptr;
    bool recursive_ = false;
};
}  // namespace detail

namespace detail {
// What Lock and RLock share: a handle on a LockCore.
class LockHandle {
public:
    // Blocks until this thread holds the lock, taking it over from an owner that died; with
    // block false, tries once (and ignores the timeout, as multiprocessing does); with a
    // timeout, false once it passes. An RLock this thread holds is taken again at once; a Lock
    // it holds is not: a blocking acquire() without timeout then waits forever, as in Python.
    bool acquire(bool block = true, Timeout timeout = {}) { return core_.acquire(block, timeout); }
    // Never blocks; wakes one waiter. Not held: std::logic_error (Lock: Python's ValueError).
    // RLock: the owning thread only, once per acquire; another thread: std::logic_error (Python:
    // AssertionError, threading's RuntimeError).
    void release() { core_.release(); }
    // True when this thread holds the lock and took it over from an owner that died holding
    // it. Never blocks.
    bool owner_died() const noexcept { return core_.owner_died(); }
    // acquire(), release(), acquire(false).
    void lock() { acquire(); }
    void unlock() { release(); }
    bool try_lock() { return acquire(false); }

    void save(OutputArchive& ar) const { core_.save(ar); }
    void load(InputArchive& ar) { core_.load(ar); }
    const LockCore& core() const noexcept { return core_; }

protected:
    explicit LockHandle(LockCore core) : core_(std::move(core)) {}
    LockCore core_;
};
}  // namespace detail

// A non-recursive lock (Python: multiprocessing.Lock). Any thread or process may release it,
// as in Python.
class Lock : public detail::LockHandle {
public:
    Lock();
    // Held by any thread of any process. Never blocks.
    bool locked() const noexcept { return core_.locked(); }

protected:
    // Over a given region (mproc::threading's Lock passes process-private memory).
    explicit Lock(detail::RegionRef at);
};

// A recursive lock (Python: multiprocessing.RLock): the owning thread may acquire it again;
// only the owner may release it.
class RLock : public detail::LockHandle {
public:
    RLock();
    // Held by any thread (Python 3.14's RLock.locked()). Never blocks.
    bool locked() const noexcept { return core_.locked(); }
    // Over an existing region (Value and Array keep their lock beside their data).
    explicit RLock(detail::RegionRef at) : LockHandle(detail::LockCore(std::move(at), true)) {}
};

// A counting semaphore (Python: multiprocessing.Semaphore). No owner: any thread or process
// may release.
class Semaphore {
public:
    // value below 0: std::invalid_argument (Python: ValueError).
    explicit Semaphore(int value = 1);
    // Blocks until a unit is free and takes it; with block false, tries once (the timeout
    // ignored); with a timeout, false once it passes.
    bool acquire(bool block = true, Timeout timeout = {});
    // Adds n units and wakes up to n waiters; never blocks. n below 1: std::invalid_argument
    // (Python's threading: ValueError). BoundedSemaphore: see below.
    void release(int n = 1);
    // The units free now (0 for a moved-from handle). Never blocks.
    int get_value() const noexcept;
    // acquire(), release(), acquire(false).
    void lock() { acquire(); }
    void unlock() { release(); }
    bool try_lock() { return acquire(false); }

    void save(detail::OutputArchive& ar) const;
    void load(detail::InputArchive& ar);

protected:
    Semaphore(detail::RegionRef at, int value);
    detail::RegionRef at_;
};

// A semaphore that may not be released above its initial value: a release(n) that would pass
// it is std::logic_error and releases nothing (Python: ValueError).
class BoundedSemaphore : public Semaphore {
public:
    explicit BoundedSemaphore(int value = 1);

protected:
    BoundedSemaphore(detail::RegionRef at, int value);
};

// A condition variable (Python: multiprocessing.Condition), over an RLock of its own by
// default, or over the Lock or RLock given (that same lock, not a new one).
class Condition {
public:
    Condition();
    explicit Condition(const Lock& lock);
    explicit Condition(const RLock& lock);
    // The lock's own acquire, release, lock, unlock, try_lock and owner_died: see LockHandle.
    bool acquire(bool block = true, Timeout timeout = {}) { return lock_.acquire(block, timeout); }
    void release() { lock_.release(); }
    void lock() { acquire(); }
    void unlock() { release(); }
    bool try_lock() { return acquire(false); }
    bool owner_died() const noexcept { return lock_.owner_died(); }

    // The calling thread must hold the lock (at any depth, for an RLock), else std::logic_error
    // (Python: RuntimeError; multiprocessing: AssertionError). Releases it entirely, sleeps
    // until a notify meant for it or the timeout, then blocks (without timeout) until it holds
    // the lock again at its former depth. True when notified, false at the timeout; never
    // returns for a spurious wake-up.
    bool wait(Timeout timeout = {});
    // Waits until pred() is true, calling it with the lock held: once at first, then after each
    // wake. The timeout covers all the waits together. Returns pred()'s last value. The lock:
    // as wait()'s, checked only when it waits (pred() true at first, or a timeout of zero or
    // less, returns at once; Python's calls wait() once in the second case).
    template <class Pred>
    bool wait_for(Pred pred, Timeout timeout = {});
    // The calling thread must hold the lock, else std::logic_error (Python: RuntimeError;
    // multiprocessing: AssertionError), even when nobody waits. Never blocks: up to n of the
    // threads waiting at the call (all, for notify_all) are moved to wait for the lock, and run
    // once the caller releases it. n below 1 notifies nobody.
    void notify(int n = 1);
    void notify_all();

    void save(detail::OutputArchive& ar) const;
    void load(detail::InputArchive& ar);

protected:
    Condition(detail::LockCore lock, detail::RegionRef seq);

private:
    detail::LockCore lock_;
    detail::RegionRef seq_;
};

// A flag processes wait on (Python: multiprocessing.Event).
class Event {
public:
    Event();
    // Never blocks; false for a moved-from handle.
    bool is_set() const noexcept;
    // Raises the flag and wakes every waiter. Never blocks.
    void set();
    // Lowers the flag. Never blocks.
    void clear();
    // Blocks until the flag is set: true (at once if it already is, and also when a set() came
    // while waiting, even if clear() followed it); false at the timeout.
    bool wait(Timeout timeout = {});

    void save(detail::OutputArchive& ar) const;
    void load(detail::InputArchive& ar);

protected:
    explicit Event(detail::RegionRef at);

private:
    detail::RegionRef at_;
};

// A barrier for a fixed number of parties (Python: multiprocessing.Barrier). The action, when
// given, runs in the process whose arrival completes the barrier, before anyone is released;
// to reach a spawn or forkserver child it must be a plain function.
class Barrier {
public:
    // parties below 1: std::invalid_argument (Python: ValueError).
    explicit Barrier(int parties, void (*action)() = nullptr, Timeout timeout = {});
    // An empty handle, to be assigned or loaded (a child receiving a Barrier starts from one);
    // using it is std::logic_error.
    Barrier() = default;
    // Blocks until all parties have arrived; returns this party's arrival index (0 ..
    // parties-1). The timeout is this call's, else the barrier's default. BrokenBarrierError:
    // the barrier was broken on arrival, or broke while waiting (a timeout, which breaks it for
    // everyone, abort(), reset(), or an action that threw; the party that ran the action gets
    // the action's own exception). Takes the barrier's internal lock only briefly.
    int wait(Timeout timeout = {});
    // Back to the fresh state; parties waiting now get BrokenBarrierError. Takes the internal
    // lock briefly.
    void reset();
    // Breaks the barrier: parties waiting now, and every later one until reset(), get
    // BrokenBarrierError. Takes the internal lock briefly.
    void abort();
    // Never block.
    int parties() const noexcept;
    int n_waiting() const noexcept;
    bool broken() const noexcept;

    void save(detail::OutputArchive& ar) const;
    void load(detail::InputArchive& ar);

protected:
    // Over a given region, with any callable as the action (mproc::threading's Barrier; such an
    // action cannot travel, and neither can the private region it comes with).
    Barrier(detail::RegionRef at, int parties, std::function<void()> action, Timeout timeout);

private:
    detail::RegionRef at_;
    detail::LockCore guard_;
    void (*action_)() = nullptr;   // what travels
    std::function<void()> call_;  // what runs
    Timeout default_timeout_;
};

template <class Pred>
bool Condition::wait_for(Pred pred, Timeout timeout) {
    const detail::Deadline deadline = detail::Deadline::after(timeout);
    bool result = pred();
    while (!result) {
        if (deadline.expired()) break;
        wait(deadline.remaining());
        result = pred();
    }
    return result;
}

}  // namespace mproc
