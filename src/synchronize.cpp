// Locks, semaphores, conditions, events and barriers on futexes in shared memory.
#include "mproc/synchronize.hpp"

#include <atomic>
#include <climits>
#include <stdexcept>

#include "mproc/detail/code_address.hpp"
#include "mproc/errors.hpp"
#include "platform/io.hpp"
#include "platform/sync.hpp"
#include "platform/thread.hpp"

namespace mproc {
namespace detail {

namespace {
using platform::Deadline;
using platform::Wake;

// A lock word holds its owner's thread id (ids are unique machine-wide, so they name the owner
// across processes), with the top bit set while someone may be waiting.
constexpr std::uint32_t kWaiters = 0x80000000u;
constexpr std::uint32_t kTidMask = 0x3fffffffu;
// A waiter sleeps at most this long before checking that the owner still lives; doubling from
// 1 ms, so a lock whose owner was killed is taken over within about 100 ms, and a waiter on a
// live owner wakes about ten times a second.
constexpr int kFirstCheckMs = 1;
constexpr int kMaxCheckMs = 100;


struct LockState {
    std::atomic<std::uint32_t> word;
    std::atomic<std::uint32_t> depth;  // recursion depth (RLock)
    std::atomic<std::uint32_t> died;   // the holder took it over from a dead owner
};
static_assert(std::atomic<std::uint32_t>::is_always_lock_free);
static_assert(sizeof(LockState) <= LockCore::kStateBytes);

std::uint32_t* futex_word(std::atomic<std::uint32_t>& a) { return reinterpret_cast<std::uint32_t*>(&a); }

// For the noexcept queries: null for a moved-from lock.
LockState* lock_state_if(void* state) noexcept { return static_cast<LockState*>(state); }

[[noreturn, gnu::cold, gnu::noinline]] void throw_moved_from() { throw std::logic_error("mproc: use of a moved-from lock"); }

inline LockState& lock_state(void* state) {
    if (!state) throw_moved_from();
    return *static_cast<LockState*>(state);
}

std::uint32_t me() { return static_cast<std::uint32_t>(platform::current_tid()) & kTidMask; }
}  // namespace

namespace {
void took(LockState& st, bool died) {
    st.depth.store(1, std::memory_order_relaxed);
    st.died.store(died ? 1 : 0, std::memory_order_relaxed);
}

// LockCore::acquire past its two fast cases (the owner's re-entry, a free word): `seen` is the
// word the first compare-exchange found. Out of line, so the fast cases set up no frame for it.
[[gnu::noinline]] bool acquire_contended(LockState& st, std::uint32_t self, std::uint32_t seen, bool robust, bool block,
                                         const Timeout& timeout, int spin) {
    // Take over from a dead owner: only if the word still holds that owner (a CAS), so two
    // waiters that both saw the death cannot both win.
    // A private (mproc::threading) lock has no take-over: a thread of this process cannot die
    // alone, and Python lets another thread release a Lock whose acquirer has ended.
    auto take_over_if_dead = [&](std::uint32_t word) {
        if (!robust) return false;
        const std::uint32_t owner = word & kTidMask;
        if (owner == 0 || owner == self || platform::thread_alive(static_cast<pid_t>(owner))) return false;
        if (!st.word.compare_exchange_strong(word, self | kWaiters, std::memory_order_acquire)) return false;
        took(st, true);
        return true;
    };
    if (!block) return take_over_if_dead(seen);

    // A short bounded spin first, when asked for: a guard's holder is most often running on the
    // other core and about to release, and sleeping costs a wake-up round trip (~15-20 us here)
    // where waiting costs a fraction of a microsecond. Bounded, so a 2-core machine never burns
    // a core on it.
    std::uint32_t v;
    for (int i = 0; i < spin; ++i) {
        platform::cpu_relax();
        v = st.word.load(std::memory_order_relaxed);
        if (v == 0) {
            std::uint32_t expected = 0;
            if (st.word.compare_exchange_weak(expected, self, std::memory_order_acquire)) {
                took(st, false);
                return true;
            }
        }
    }
    const Deadline deadline = Deadline::after(timeout);
    int check_ms = kFirstCheckMs;
    for (;;) {
        v = st.word.load(std::memory_order_relaxed);
        if (v == 0) {
            // Keep the waiters bit: others may be asleep, and the release must wake one.
            if (st.word.compare_exchange_weak(v, self | kWaiters, std::memory_order_acquire)) {
                took(st, false);
                return true;
            }
            continue;
        }
        if (!(v & kWaiters)) {
            if (!st.word.compare_exchange_weak(v, v | kWaiters, std::memory_order_relaxed)) continue;
            v |= kWaiters;
        }
        const Wake w = platform::futex_wait(futex_word(st.word), v, deadline, robust ? check_ms : 0);
        if (w == Wake::Deadline) return false;
        if (w == Wake::Capped) {
            check_ms = std::min(check_ms * 2, kMaxCheckMs);
            if (take_over_if_dead(st.word.load(std::memory_order_relaxed))) return true;
        }
    }
}
}  // namespace

bool LockCore::acquire(bool block, const Timeout& timeout, int spin) {
    LockState& st = lock_state(state_);
    const std::uint32_t self = me();
    const std::uint32_t v = st.word.load(std::memory_order_relaxed);
    if (recursive_ && (v & kTidMask) == self) {
        // Only the owner touches depth while it holds the word (a new owner's acquire of the
        // word orders it after the last release), so a plain load and store do: no atomic
        // read-modify-write on the owner's re-entry, which Value's idiom does twice per
        // operation (issue 17).
        st.depth.store(st.depth.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
        return true;
    }
    std::uint32_t expected = 0;
    if (st.word.compare_exchange_strong(expected, self, std::memory_order_acquire)) {
        took(st, false);
        return true;
    }
    return acquire_contended(st, self, expected, !at_.is_private(), block, timeout, spin);
}

void LockCore::release() {
    LockState& st = lock_state(state_);
    const std::uint32_t v = st.word.load(std::memory_order_relaxed);
    const std::uint32_t owner = v & kTidMask;
    if (owner == 0)
        throw std::logic_error(recursive_ ? "mproc: cannot release un-acquired lock"
                                          : "mproc: semaphore or lock released too many times");
    if (recursive_) {
        if (owner != me()) throw std::logic_error("mproc: attempt to release recursive lock not owned by thread");
        const std::uint32_t depth = st.depth.load(std::memory_order_relaxed);
        if (depth > 1) {
            st.depth.store(depth - 1, std::memory_order_relaxed);  // the owner's alone, as in acquire
            return;
        }
    }
    st.died.store(0, std::memory_order_relaxed);
    const std::uint32_t prev = st.word.exchange(0, std::memory_order_release);
    if (prev & kWaiters) platform::futex_wake(futex_word(st.word), 1);
}

bool LockCore::locked() const noexcept {
    const LockState* st = lock_state_if(state_);
    return st && (st->word.load(std::memory_order_relaxed) & kTidMask) != 0;
}

bool LockCore::owned_by_me() const noexcept {
    const LockState* st = lock_state_if(state_);
    return st && (st->word.load(std::memory_order_relaxed) & kTidMask) == me();
}

bool LockCore::owner_died() const noexcept {
    // The flag first: it is almost always clear, and asking who owns the word costs a queue's
    // put and get a look up of this thread's id each.
    const LockState* st = lock_state_if(state_);
    return st && st->died.load(std::memory_order_relaxed) != 0 && owned_by_me();
}

void LockCore::mark_contended() { lock_state(state_).word.fetch_or(kWaiters, std::memory_order_relaxed); }

std::uint32_t* LockCore::word() const { return futex_word(lock_state(state_).word); }

std::uint32_t LockCore::release_all() {
    LockState& st = lock_state(state_);
    if (!owned_by_me()) throw std::logic_error("mproc: cannot wait on un-acquired lock");
    const std::uint32_t depth = recursive_ ? st.depth.load(std::memory_order_relaxed) : 1;
    st.depth.store(1, std::memory_order_relaxed);
    release();
    return depth;
}

void LockCore::restore(std::uint32_t depth, bool contended) {
    acquire(true, std::nullopt);
    // Nobody else releases this word while we hold it, so setting the bit after the acquire
    // loses no wake-up.
    if (contended) mark_contended();
    lock_state(state_).depth.store(depth, std::memory_order_relaxed);
}

void LockCore::save(OutputArchive& ar) const {
    at_.save(ar);
    ar(recursive_);
}

void LockCore::load(InputArchive& ar) {
    at_.load(ar);
    state_ = at_.data();
    ar(recursive_);
}

}  // namespace detail

using detail::RegionRef;
using platform::Deadline;
using platform::Wake;

namespace {
std::uint32_t* word_at(const RegionRef& r, std::size_t index) {
    if (!r) throw std::logic_error("mproc: use of a moved-from synchronization object");
    return static_cast<std::uint32_t*>(r.data()) + index;
}
std::atomic_ref<std::uint32_t> atom(const RegionRef& r, std::size_t index) { return std::atomic_ref<std::uint32_t>(*word_at(r, index)); }
}  // namespace

Lock::Lock() : Lock(RegionRef::create(64)) {}
Lock::Lock(RegionRef at) : LockHandle(detail::LockCore(std::move(at), false)) {}
RLock::RLock() : RLock(RegionRef::create(64)) {}

// Semaphore: word 0 the value, 1 sleeping waiters, 2 the bound (0: none).
Semaphore::Semaphore(int value) : Semaphore(RegionRef::create(64), value) {}

Semaphore::Semaphore(RegionRef at, int value) {
    if (value < 0) throw std::invalid_argument("mproc: semaphore initial value must be >= 0");
    at_ = std::move(at);
    atom(at_, 0).store(static_cast<std::uint32_t>(value));
}

BoundedSemaphore::BoundedSemaphore(int value) : BoundedSemaphore(RegionRef::create(64), value) {}

BoundedSemaphore::BoundedSemaphore(RegionRef at, int value) : Semaphore(std::move(at), value) {
    atom(at_, 2).store(static_cast<std::uint32_t>(value));
}

bool Semaphore::acquire(bool block, Timeout timeout) {
    auto value = atom(at_, 0);
    auto waiters = atom(at_, 1);
    const Deadline deadline = Deadline::after(timeout);
    for (;;) {
        std::uint32_t c = value.load();
        while (c > 0)
            if (value.compare_exchange_weak(c, c - 1, std::memory_order_acquire)) return true;
        if (!block) return false;
        waiters.fetch_add(1);
        // Recheck after announcing ourselves: a release in between either sees us or left a unit.
        if (value.load() > 0) {
            waiters.fetch_sub(1);
            continue;
        }
        const Wake w = platform::futex_wait(word_at(at_, 0), 0, deadline);
        waiters.fetch_sub(1);
        if (w == Wake::Deadline) {
            c = value.load();
            while (c > 0)
                if (value.compare_exchange_weak(c, c - 1, std::memory_order_acquire)) return true;
            return false;
        }
    }
}

void Semaphore::release(int n) {
    if (n < 1) throw std::invalid_argument("mproc: n must be one or more");
    auto value = atom(at_, 0);
    const std::uint32_t bound = atom(at_, 2).load();
    std::uint32_t c = value.load();
    do {
        if (bound && c + static_cast<std::uint32_t>(n) > bound)
            throw std::logic_error("mproc: semaphore or lock released too many times");
    } while (!value.compare_exchange_weak(c, c + static_cast<std::uint32_t>(n), std::memory_order_release));
    if (atom(at_, 1).load() > 0) platform::futex_wake(word_at(at_, 0), n);
}

int Semaphore::get_value() const noexcept { return at_ ? static_cast<int>(atom(at_, 0).load()) : 0; }
void Semaphore::save(detail::OutputArchive& ar) const { at_.save(ar); }
void Semaphore::load(detail::InputArchive& ar) { at_.load(ar); }

// Condition: its own region holds word 0 a sequence number each notify advances (the futex
// word waiters sleep on), word 1 the waiters not yet notified, word 2 the notifications given
// and not yet taken. Words 1 and 2 change only under the condition's lock, so notify(n) can
// count exactly: it moves min(n, waiting) from waiting to pending, and a woken waiter takes one
// pending notification back under the lock. A waiter may take one only if the sequence moved
// since it registered (a notify came after it, so the notification may be its own); one that
// woke and found none left (another eligible waiter took it first) waits on, still counted.
// Python wakes the first n waiters of a FIFO; this wakes n of those present at the notify.
namespace {
enum { kSeq = 0, kWaiting = 1, kPending = 2 };
}

Condition::Condition() : Condition(detail::LockCore(RegionRef::create(64), true), RegionRef::create(64)) {}
Condition::Condition(const Lock& lock) : Condition(lock.core(), RegionRef::create(64)) {}
Condition::Condition(const RLock& lock) : Condition(lock.core(), RegionRef::create(64)) {}
Condition::Condition(detail::LockCore lock, RegionRef seq) : lock_(std::move(lock)), seq_(std::move(seq)) {}

bool Condition::wait(Timeout timeout) {
    if (!lock_.owned_by_me()) throw std::logic_error("mproc: cannot wait on un-acquired lock");
    const Deadline deadline = Deadline::after(timeout);
    auto seq = atom(seq_, kSeq);
    auto waiting = atom(seq_, kWaiting);
    auto pending = atom(seq_, kPending);
    // Capped for a process-shared lock: notify may have moved us onto the lock's word (see
    // notify); if the lock's holder then dies, nobody wakes us there, so look around now and then.
    const int cap_ms = lock_.region().is_private() ? 0 : 100;
    waiting.fetch_add(1);  // under the lock: a notify either counts us or came before us
    for (;;) {
        const std::uint32_t before = seq.load(std::memory_order_acquire);
        const std::uint32_t depth = lock_.release_all();
        bool slept = false;  // queued on a futex: a notify may have requeued us onto the lock
        bool expired = false;
        while (seq.load(std::memory_order_acquire) == before) {
            const Wake w = platform::futex_wait(word_at(seq_, kSeq), before, deadline, cap_ms);
            if (w == Wake::Deadline) {
                expired = true;
                break;
            }
            slept |= w != Wake::Changed;
        }
        // Woken from the lock's word by a release, others requeued behind us may still sleep
        // there: take the lock marked contended, so that our release wakes the next of them.
        lock_.restore(depth, slept);
        if (seq.load(std::memory_order_relaxed) != before && pending.load() > 0) {
            pending.fetch_sub(1);
            return true;
        }
        if (expired || deadline.expired()) {
            waiting.fetch_sub(1);
            return false;
        }
        // Every notification since we registered went to another waiter: wait on.
    }
}

void Condition::notify(int n) {
    if (!lock_.owned_by_me()) throw std::logic_error("mproc: lock is not owned");
    if (n <= 0) return;
    // Waiters register under the lock we hold: with none, there is nobody to tell, and the
    // notify costs one load (no atomic increment, no system call).
    auto waiting = atom(seq_, kWaiting);
    const std::uint32_t present = waiting.load();
    if (present == 0) return;
    const std::uint32_t k = std::min(present, static_cast<std::uint32_t>(n));
    waiting.fetch_sub(k);
    atom(seq_, kPending).fetch_add(k);
    const std::uint32_t now = atom(seq_, kSeq).fetch_add(1, std::memory_order_release) + 1;
    // Wait morphing: a woken waiter would at once block on the lock we hold. Move k waiters
    // onto the lock's word instead (marking it contended, so our release wakes one, and each
    // woken one's release the next), saving a wake-up and a sleep per notify. Measured: a
    // Condition ping-pong between two processes went from 1.6-1.7x a bare process-shared
    // pthread condvar to 0.76-0.79x.
    lock_.mark_contended();
    platform::futex_requeue(word_at(seq_, kSeq), now, static_cast<int>(std::min<std::uint32_t>(k, INT_MAX)), lock_.word());
}

void Condition::notify_all() { notify(INT_MAX); }

void Condition::save(detail::OutputArchive& ar) const {
    lock_.save(ar);
    seq_.save(ar);
}

void Condition::load(detail::InputArchive& ar) {
    lock_.load(ar);
    seq_.load(ar);
}

// Event: word 0 the flag, 1 sleeping waiters, 2 a generation each set() advances (the futex
// word). A waiter returns true once the generation moved, even if clear() came at once after
// the set and the flag is down again when it wakes (Python: every thread waiting at set() wakes).
namespace {
enum { kFlag = 0, kSleepers = 1, kGeneration = 2 };
}
Event::Event() : Event(RegionRef::create(64)) {}
Event::Event(RegionRef at) : at_(std::move(at)) {}
bool Event::is_set() const noexcept { return at_ && atom(at_, kFlag).load(std::memory_order_acquire) != 0; }

void Event::set() {
    atom(at_, kFlag).store(1);
    atom(at_, kGeneration).fetch_add(1);
    if (atom(at_, kSleepers).load() > 0) platform::futex_wake(word_at(at_, kGeneration), INT_MAX);
}

void Event::clear() { atom(at_, kFlag).store(0, std::memory_order_release); }

bool Event::wait(Timeout timeout) {
    auto flag = atom(at_, kFlag);
    auto generation = atom(at_, kGeneration);
    const std::uint32_t gen = generation.load();
    if (flag.load()) return true;
    const Deadline deadline = Deadline::after(timeout);
    atom(at_, kSleepers).fetch_add(1);
    while (generation.load() == gen)
        if (platform::futex_wait(word_at(at_, kGeneration), gen, deadline) == Wake::Deadline) break;
    atom(at_, kSleepers).fetch_sub(1);
    return generation.load() != gen || flag.load() != 0;
}

void Event::save(detail::OutputArchive& ar) const { at_.save(ar); }
void Event::load(detail::InputArchive& ar) { at_.load(ar); }

// Barrier: words 0 generation, 1 arrived, 2 parties, 3 broken, 4 the generation a reset broke;
// its guard lock at byte 64 of the same region.
namespace {
enum { kGen = 0, kCount = 1, kParties = 2, kBroken = 3, kResetGen = 4 };

// Ends the current generation (the guard held): every waiter of it wakes. Broken, they throw
// BrokenBarrierError, and so does every later arrival until reset().
void end_generation(const RegionRef& at, bool broken) {
    if (broken) atom(at, kBroken).store(1);
    atom(at, kCount).store(0);
    atom(at, kGen).fetch_add(1);
    platform::futex_wake(word_at(at, kGen), INT_MAX);
}
}  // namespace

Barrier::Barrier(int parties, void (*action)(), Timeout timeout)
    : Barrier(RegionRef::create(128), parties, action ? std::function<void()>(action) : nullptr, timeout) {
    action_ = action;
}

Barrier::Barrier(RegionRef at, int parties, std::function<void()> action, Timeout timeout)
    : call_(std::move(action)), default_timeout_(timeout) {
    if (parties < 1) throw std::invalid_argument("mproc: a barrier needs at least one party");
    at_ = std::move(at);
    guard_ = detail::LockCore(RegionRef{at_.region, 64}, false);
    atom(at_, kParties).store(static_cast<std::uint32_t>(parties));
}

int Barrier::wait(Timeout timeout) {
    if (!timeout) timeout = default_timeout_;
    const Deadline deadline = Deadline::after(timeout);
    auto gen = atom(at_, kGen);
    guard_.acquire(true, std::nullopt, detail::LockCore::kShortSpin);
    if (atom(at_, kBroken).load()) {
        guard_.release();
        throw BrokenBarrierError();
    }
    const std::uint32_t my_gen = gen.load();
    const std::uint32_t index = atom(at_, kCount).fetch_add(1);
    if (index + 1 == atom(at_, kParties).load()) {
        if (call_) {
            try {
                call_();
            } catch (...) {
                end_generation(at_, true);
                guard_.release();
                throw;
            }
        }
        end_generation(at_, false);
        guard_.release();
        return static_cast<int>(index);
    }
    guard_.release();
    for (;;) {
        if (gen.load() != my_gen) break;
        if (platform::futex_wait(word_at(at_, kGen), my_gen, deadline) == Wake::Deadline) {
            guard_.acquire(true, std::nullopt, detail::LockCore::kShortSpin);
            if (gen.load() == my_gen) {
                end_generation(at_, true);
                guard_.release();
                throw BrokenBarrierError();
            }
            guard_.release();
            break;
        }
    }
    if (atom(at_, kBroken).load() || atom(at_, kResetGen).load() == my_gen + 1) throw BrokenBarrierError();
    return static_cast<int>(index);
}

void Barrier::reset() {
    guard_.acquire(true, std::nullopt, detail::LockCore::kShortSpin);
    if (atom(at_, kCount).load() > 0) {
        // Waiters of this generation must see a broken barrier; later ones find it fresh.
        atom(at_, kResetGen).store(atom(at_, kGen).load() + 1);
        end_generation(at_, false);
    }
    atom(at_, kCount).store(0);
    atom(at_, kBroken).store(0);
    guard_.release();
}

void Barrier::abort() {
    guard_.acquire(true, std::nullopt, detail::LockCore::kShortSpin);
    end_generation(at_, true);
    guard_.release();
}

// An empty handle answers as no barrier (atom() throws, which noexcept would turn into terminate).
int Barrier::parties() const noexcept { return at_ ? static_cast<int>(atom(at_, kParties).load()) : 0; }
int Barrier::n_waiting() const noexcept {
    return !at_ || atom(at_, kBroken).load() ? 0 : static_cast<int>(atom(at_, kCount).load());
}
bool Barrier::broken() const noexcept { return at_ && atom(at_, kBroken).load() != 0; }

void Barrier::save(detail::OutputArchive& ar) const {
    at_.save(ar);
    const bool has_action = action_ != nullptr;
    ar(has_action);
    if (has_action) detail::save_function(ar, action_);
    ar(default_timeout_);
}

void Barrier::load(detail::InputArchive& ar) {
    at_.load(ar);
    guard_ = detail::LockCore(RegionRef{at_.region, at_.offset + 64}, false);
    bool has_action = false;
    ar(has_action);
    action_ = nullptr;
    if (has_action) action_ = detail::load_function<void()>(ar);
    call_ = action_ ? std::function<void()>(action_) : nullptr;
    ar(default_timeout_);
}

}  // namespace mproc
