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
// returns false at its timeout; Barrier::wait throws BrokenBarrierError. A negative timeout is
// a zero timeout. Each has lock/unlock/try_lock where it is a lock, for std::lock_guard and
// std::unique_lock.
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
    LockCore(RegionRef at, bool recursive) : at_(std::move(at)), recursive_(recursive) {}
    bool acquire(bool block, const Timeout& timeout);
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
    bool recursive_ = false;
};
}  // namespace detail

namespace detail {
// What Lock and RLock share: a handle on a LockCore.
class LockHandle {
public:
    // Blocks until acquired; with block false, tries once; with a timeout, gives up after it.
    bool acquire(bool block = true, Timeout timeout = {}) { return core_.acquire(block, timeout); }
    void release() { core_.release(); }
    // True when the current holder took this lock over from an owner that died holding it.
    bool owner_died() const noexcept { return core_.owner_died(); }
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
    // Held by any thread (Python 3.14's RLock.locked()).
    bool locked() const noexcept { return core_.locked(); }
    // Over an existing region (Value and Array keep their lock beside their data).
    explicit RLock(detail::RegionRef at) : LockHandle(detail::LockCore(std::move(at), true)) {}
};

// A counting semaphore (Python: multiprocessing.Semaphore). value below 0: std::invalid_argument.
class Semaphore {
public:
    explicit Semaphore(int value = 1);
    bool acquire(bool block = true, Timeout timeout = {});
    void release(int n = 1);
    int get_value() const noexcept;
    void lock() { acquire(); }
    void unlock() { release(); }
    bool try_lock() { return acquire(false); }

    void save(detail::OutputArchive& ar) const;
    void load(detail::InputArchive& ar);

protected:
    Semaphore(detail::RegionRef at, int value);
    detail::RegionRef at_;
};

// A semaphore that may not be released above its initial value (std::logic_error, as Python's
// ValueError).
class BoundedSemaphore : public Semaphore {
public:
    explicit BoundedSemaphore(int value = 1);

protected:
    BoundedSemaphore(detail::RegionRef at, int value);
};

// A condition variable (Python: multiprocessing.Condition), over an RLock by default.
class Condition {
public:
    Condition();
    explicit Condition(const Lock& lock);
    explicit Condition(const RLock& lock);
    bool acquire(bool block = true, Timeout timeout = {}) { return lock_.acquire(block, timeout); }
    void release() { lock_.release(); }
    void lock() { acquire(); }
    void unlock() { release(); }
    bool try_lock() { return acquire(false); }
    bool owner_died() const noexcept { return lock_.owner_died(); }

    // Releases the lock, waits for a notify (or the timeout), takes the lock back. False at the
    // timeout. Not holding the lock: std::logic_error.
    bool wait(Timeout timeout = {});
    // Waits until pred() is true, rechecking after each wake; returns pred()'s last value.
    template <class Pred>
    bool wait_for(Pred pred, Timeout timeout = {});
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
    bool is_set() const noexcept;
    void set();
    void clear();
    // True when the flag is set (at once if it already is); false at the timeout.
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
    explicit Barrier(int parties, void (*action)() = nullptr, Timeout timeout = {});
    // An empty handle, to be assigned or loaded (a child receiving a Barrier starts from one);
    // using it is std::logic_error.
    Barrier() = default;
    // Waits for all parties; returns this party's arrival index (0 .. parties-1). A timeout,
    // abort() or reset() while waiting, or an action that throws: BrokenBarrierError.
    int wait(Timeout timeout = {});
    void reset();
    void abort();
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
