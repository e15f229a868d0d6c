// Queues: messages in a shared ring; producers hold one robust lock and consumers another.
#include "mproc/queues.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <exception>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "platform/fd.hpp"
#include "platform/io.hpp"
#include "platform/memory.hpp"
#include "platform/sync.hpp"
#include "platform/thread.hpp"

namespace mproc::detail {

namespace {
using platform::Deadline;

// The ring's capacity is a multiple of this.
constexpr std::size_t kCapacityUnit = 2 * 1024 * 1024;
// Positions only grow; a message at position p lies at p % capacity. A producer that finds
// itself past kRestartAt in the ring goes back to its start when the consumers have passed it
// (a jump record tells them to follow), so a queue that keeps up reuses the same few MiB of
// pages and never faults again. Only a backlog reaches further; the consumer that empties
// the queue afterwards gives the pages beyond kResident back. (Measured: giving every page back
// as consumers passed it cost a page fault per 4 KiB on the next pass, about 600 us per MiB,
// and 1 MiB messages ran at 0.5-0.7 GB/s.) While data waits, its pages stay: the memory bound
// is the ring's capacity.
constexpr std::uint64_t kRestartAt = 4 * 1024 * 1024;
constexpr std::uint64_t kResident = 16 * 1024 * 1024;
// The length word of a jump record: the next message is at the ring's start.
constexpr std::uint64_t kJump = ~std::uint64_t{0};
// A side about to sleep looks kLook times first, kBackoff pauses apart: the other side is most
// often mid-call on the other CPU, and sleeping costs a wake-up round trip (~15-20 us here).
// Looking less often lets a producer run ahead by a few messages instead of meeting the
// consumer on the same cache lines at every message. (Measured, 1P/1C small messages, median
// of 7: looking every pause, 10-15M msg/s and bimodal (5M in some runs); every 64 pauses,
// 17M; a queue round trip between two processes went from 0.9-2.2 us to 2.0 us.)
constexpr int kLook = 8;
constexpr int kBackoff = 64;
// A sleeper wakes after at most this long (doubling from 1 ms) to look again by itself: the
// process that should have woken it may have been killed between its change and the wake.
constexpr int kMaxCheckMs = 100;
constexpr std::uint64_t kNone = ~std::uint64_t{0};
// Header::shut: alive, shut down (puts fail, gets drain what is left), or shut down at once
// (gets fail too; shutdown() empties the queue). It only rises.
constexpr std::uint32_t kAlive = 0, kShut = 1, kShutNow = 2;

// Sleeping on a condition without a lock: the sleeper raises `sleeping` and reads `seq` before
// it looks at the condition; whoever changes the condition looks at `sleeping` after the change
// (a fence between) and, if it was raised, bumps `seq` and wakes. One of the two sees the other.
struct WaitWord {
    std::atomic<std::uint32_t> seq;
    std::atomic<std::uint32_t> sleeping;
};

// One cache line per side: a producer writes only the producers' line and a consumer only the
// consumers'; each reads the other's rarely (see seen_head_ / seen_tail_). A lock and the
// positions it guards share a line, so an operation touches one line of its own.
// (Measured: with one lock for both sides, as before, 1P/1C moved 4.2M small messages/s,
// 0.34x Boost.Interprocess, because the lock's and positions' lines crossed between the CPUs
// twice per message; with a lock per side, 14M/s.)
//   writing_* / reading_*: the last operation's intent, written before its position moves, so
// that a process taking over the lock from a holder that died can tell whether the holder's
// position moved without its counter (see repair_put / repair_get).
struct Header {
    std::uint64_t capacity;
    std::int64_t maxsize;
    // In the line nobody writes until shutdown(): every put and get reads it, for nothing else.
    std::atomic<std::uint32_t> shut;

    alignas(64) WaitWord not_empty;
    alignas(64) WaitWord not_full;
    alignas(64) WaitWord all_done;
    std::atomic<std::uint64_t> done;  // task_done calls (JoinableQueue)

    alignas(64) std::byte put_lock[LockCore::kStateBytes];
    std::atomic<std::uint64_t> tail;   // byte position just past the last whole message
    std::atomic<std::uint64_t> puts;   // messages ever put
    std::atomic<std::uint64_t> writing_next, writing_seq;

    alignas(64) std::byte get_lock[LockCore::kStateBytes];
    std::atomic<std::uint64_t> head;   // byte position of the next message to read
    std::atomic<std::uint64_t> gets;   // messages ever taken
    std::atomic<std::uint64_t> reading_next, reading_seq;
    std::atomic<std::uint64_t> beyond;  // 1 once a backlog reached past kResident
};
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);
static_assert(std::is_standard_layout_v<Header>);

std::size_t record_size(std::size_t len) { return 8 + (len + 7) / 8 * 8; }

Header& header_of(const RegionRef& r) {
    if (!r) throw std::logic_error("mproc: use of a moved-from queue");
    return *static_cast<Header*>(r.data());
}

std::uint32_t* futex_word(std::atomic<std::uint32_t>& a) { return reinterpret_cast<std::uint32_t*>(&a); }

// A call's deadline, made when it is first needed: a put or get that waits neither for its lock
// nor for its condition never needs one. (Measured: building it on entry, and reading it back
// whole from the stack, was a tenth of a put's time.) It still counts from the call's start,
// give or take the uncontended attempt at the lock.
class CallDeadline {
public:
    explicit CallDeadline(const Timeout& timeout) : timeout_(timeout) {
        if (timeout && std::isnan(timeout->count())) (void)Deadline::after(timeout);  // throws, on entry
    }
    const Deadline& get() {
        if (!made_) {
            deadline_ = Deadline::after(timeout_);
            made_ = true;
        }
        return deadline_;
    }

private:
    const Timeout& timeout_;
    Deadline deadline_;
    bool made_ = false;
};

const Deadline& deadline_of(const Deadline& d) { return d; }
const Deadline& deadline_of(CallDeadline& call) { return call.get(); }

// Sleeps until ready() or the deadline (a Deadline, or a CallDeadline: then one last look);
// the caller holds its side's lock.
template <class D, class Ready>
bool wait_for(WaitWord& w, D&& deadline, Ready ready) {
    for (int i = 0; i < kLook; ++i) {
        if (ready()) return true;
        for (int k = 0; k < kBackoff; ++k) platform::cpu_relax();
    }
    int check_ms = 1;
    for (;;) {
        w.sleeping.store(1, std::memory_order_relaxed);
        std::atomic_thread_fence(std::memory_order_seq_cst);
        const std::uint32_t seq = w.seq.load(std::memory_order_relaxed);
        if (ready()) return true;
        if (platform::futex_wait(futex_word(w.seq), seq, deadline_of(deadline), check_ms) == platform::Wake::Deadline) return ready();
        check_ms = std::min(check_ms * 2, kMaxCheckMs);
    }
}

// After a change that a sleeper may wait for (the change is already stored). after_rmw: an
// atomic read-modify-write (a side lock's release) came after the change.
void wake(WaitWord& w, bool after_rmw = false) {
    if (after_rmw)
        platform::fence_after_rmw();
    else
        std::atomic_thread_fence(std::memory_order_seq_cst);
    if (w.sleeping.load(std::memory_order_relaxed) == 0 || w.sleeping.exchange(0) == 0) return;
    w.seq.fetch_add(1, std::memory_order_relaxed);
    platform::futex_wake(futex_word(w.seq), INT_MAX);
}

// A held side lock, released on scope exit.
class Held {
public:
    explicit Held(LockCore& l) : l_(&l) {}
    Held(const Held&) = delete;
    Held& operator=(const Held&) = delete;
    ~Held() {
        if (l_) l_->release();
    }
    void release() {
        l_->release();
        l_ = nullptr;
    }

private:
    LockCore* l_;
};

// Takes a side's lock. When another producer (or consumer) holds it, give the CPU away a few
// times before spinning on it: with more processes than CPUs, the holder's partner on the
// other side may be waiting for a CPU, and two producers taking turns at one lock on two CPUs
// move its cache line at every message. (Measured, 2 producers + 2 consumers on 2 CPUs,
// median of 7: spinning at once, 12-15M msg/s; yielding up to 4 times first, 18-20M, as fast
// as 1P/1C.) Not blocking still waits out a holder that is only copying; one asleep on the
// condition means the answer is Full or Empty, as Python's get(False) gives Empty while
// another process holds its read lock.
constexpr int kYields = 4;
bool take(LockCore& l, bool block, CallDeadline& call) {
    if (l.acquire(false, std::nullopt)) return true;
    for (int i = 0; i < kYields; ++i) {
        std::this_thread::yield();
        if (l.acquire(false, std::nullopt)) return true;
    }
    return l.acquire(true, block ? call.get().remaining() : Timeout(std::chrono::duration<double>(0)), LockCore::kShortSpin);
}
}  // namespace

namespace {
// Whether a get() would not block now: a message waits, or the queue is shut down.
bool gettable(const Header& h) {
    return h.head.load(std::memory_order_acquire) < h.tail.load(std::memory_order_acquire) ||
           h.shut.load(std::memory_order_acquire) != kAlive;
}

// Queue::fileno()'s descriptor: an eventfd kept readable while gettable(). A thread of this
// process sleeps on not_empty as a blocked consumer would, so producers (in any process) wake it
// through the path put() already has, and pay nothing while nobody sleeps there; once it made
// the descriptor readable it sleeps on a local condition instead, so puts go on paying nothing.
// fileno() (which connection::wait calls each time) and every get() of this process bring the
// descriptor in line at once (sync()); items taken in another process are noticed by the thread,
// which looks every 1 ms doubling to kMaxCheckMs while the descriptor is readable (a wake-up from
// there would cost every get()).
class QueueWatch {
public:
    explicit QueueWatch(RegionRef header)
        : header_(std::move(header)), event_(platform::make_event()), generation_(platform::fork_generation()) {
        thread_ = std::thread([this] { run(); });
    }
    QueueWatch(const QueueWatch&) = delete;
    QueueWatch& operator=(const QueueWatch&) = delete;
    ~QueueWatch() {
        {
            std::lock_guard lk(mu_);
            stop_.store(true);
        }
        cv_.notify_all();
        wake(header_of(header_).not_empty);
        thread_.join();
    }
    int fd() const noexcept { return event_.get(); }
    // False in a fork child, whose copy of this object has no thread behind it.
    bool ours() const noexcept { return generation_ == platform::fork_generation(); }
    // A fork child's copy, replaced: its copy of the descriptor is closed; the rest stays
    // allocated, since destroying a thread object whose thread is not in this process is not
    // allowed.
    void forsake() noexcept { event_.reset(); }
    // Makes the descriptor readable or not as the queue is now, at once, from this thread
    // (fileno(), and after every get() of this process).
    void sync() noexcept {
        std::lock_guard lk(mu_);
        const bool ready = gettable(header_of(header_));
        if (ready == set_) return;
        if (ready)
            platform::event_notify(event_.get());
        else
            platform::event_drain(event_.get());
        set_ = ready;
        cv_.notify_all();
    }

private:
    void run() {
        platform::set_thread_name("mproc-queue-fd");
        Header& h = header_of(header_);
        for (;;) {
            wait_for(h.not_empty, Deadline::never(), [&] { return stop_.load() || gettable(h); });
            std::unique_lock lk(mu_);
            if (stop_.load()) return;
            if (!set_ && gettable(h)) {
                platform::event_notify(event_.get());
                set_ = true;
            }
            int check_ms = 1;
            while (set_ && !stop_.load()) {
                if (cv_.wait_for(lk, std::chrono::milliseconds(check_ms)) == std::cv_status::timeout && !gettable(h)) {
                    platform::event_drain(event_.get());
                    set_ = false;
                }
                check_ms = std::min(check_ms * 2, kMaxCheckMs);
            }
            if (stop_.load()) return;
        }
    }

    RegionRef header_;
    platform::UniqueFd event_;
    const unsigned generation_;
    std::mutex mu_;
    std::condition_variable cv_;
    bool set_ = false;  // event_ readable; under mu_
    std::atomic<bool> stop_{false};
    std::thread thread_;
};
}  // namespace

class Ring {
public:
    Ring(platform::UniqueFd fd, std::size_t capacity)
        : fd_(std::move(fd)), base_(static_cast<char*>(platform::map_ring(fd_.get(), capacity))), capacity_(capacity) {}
    ~Ring() {
        // A fork child's copy of its parent's watch is left as forsake() says.
        if (QueueWatch* w = watch_.load(); w && w->ours()) delete w;
        platform::unmap_ring(base_, capacity_);
    }
    char* at(std::uint64_t offset) const { return base_ + offset % capacity_; }
    int fd() const { return fd_.get(); }
    std::size_t capacity() const { return capacity_; }

    QueueWatch& watch(const RegionRef& header) {
        if (QueueWatch* w = watch_.load(std::memory_order_acquire); w && w->ours()) return *w;
        std::lock_guard lk(watch_mu_);
        QueueWatch* w = watch_.load(std::memory_order_relaxed);
        if (w && w->ours()) return *w;
        if (w) w->forsake();
        auto fresh = std::make_unique<QueueWatch>(header);
        watch_.store(fresh.get(), std::memory_order_release);
        return *fresh.release();
    }
    // After every get(): one load when nobody asked for fileno().
    void after_get() noexcept {
        if (QueueWatch* w = watch_.load(std::memory_order_acquire); w && w->ours()) w->sync();
    }

private:
    platform::UniqueFd fd_;
    char* base_;
    std::size_t capacity_;
    std::mutex watch_mu_;
    std::atomic<QueueWatch*> watch_{nullptr};
};

QueueCore::QueueCore(const QueueOptions& o) : header_(RegionRef::create(sizeof(Header))) {
    const std::size_t capacity = std::max<std::size_t>((o.capacity_bytes + kCapacityUnit - 1) / kCapacityUnit, 1) * kCapacityUnit;
    Header& h = header_of(header_);
    h.capacity = capacity;
    h.maxsize = o.maxsize > 0 ? o.maxsize : 0;
    h.writing_next.store(kNone);
    h.reading_next.store(kNone);
    ring_ = std::make_shared<Ring>(platform::memfd("mproc-queue", capacity), capacity);
    attach_locks();
}

void QueueCore::attach_locks() {
    put_lock_ = LockCore(RegionRef{header_.region, header_.offset + offsetof(Header, put_lock)}, false);
    get_lock_ = LockCore(RegionRef{header_.region, header_.offset + offsetof(Header, get_lock)}, false);
}

// After taking the producers' lock over from a process that died holding it: a message it
// made visible counts as put, even if the count did not move.
void QueueCore::repair_put() {
    Header& h = header_of(header_);
    if (h.tail.load() == h.writing_next.load()) h.puts.store(h.writing_seq.load() + 1);
}

// After taking the consumers' lock over: a message whose position moved counts as taken.
void QueueCore::repair_get() {
    Header& h = header_of(header_);
    if (h.head.load() == h.reading_next.load()) h.gets.store(h.reading_seq.load() + 1);
}

// Where a message of `record` bytes can go now, or kNone: at the ring's start if this producer
// is past kRestartAt and the consumers have left that room, else at the tail.
std::uint64_t QueueCore::place(std::size_t record) {
    Header& h = header_of(header_);
    if (h.maxsize != 0 &&
        h.puts.load(std::memory_order_relaxed) - h.gets.load(std::memory_order_acquire) >= static_cast<std::uint64_t>(h.maxsize))
        return kNone;
    const std::uint64_t capacity = ring_->capacity();
    auto fits = [&](std::uint64_t end) {
        if (end <= seen_head_ + capacity) return true;
        seen_head_ = h.head.load(std::memory_order_acquire);
        return end <= seen_head_ + capacity;
    };
    const std::uint64_t tail = h.tail.load(std::memory_order_relaxed);
    const std::uint64_t in_ring = tail % capacity;
    if (in_ring >= kRestartAt && fits(tail - in_ring + capacity + record)) return tail - in_ring + capacity;
    return fits(tail + record) ? tail : kNone;
}

bool QueueCore::has_message() {
    const std::uint64_t head = header_of(header_).head.load(std::memory_order_relaxed);
    if (head < seen_tail_) return true;
    seen_tail_ = header_of(header_).tail.load(std::memory_order_acquire);
    return head < seen_tail_;
}

void QueueCore::put(std::string_view bytes, bool block, const Timeout& timeout) {
    Header& h = header_of(header_);
    const std::size_t rec = record_size(bytes.size());
    if (rec > ring_->capacity())
        throw std::length_error("mproc: a message of " + std::to_string(bytes.size()) +
                                " bytes is larger than the queue's capacity (" + std::to_string(ring_->capacity()) +
                                " bytes; QueueOptions::capacity_bytes)");
    if (h.shut.load(std::memory_order_acquire) != kAlive) throw ShutDown();
    CallDeadline deadline(timeout);
    if (!take(put_lock_, block, deadline)) {
        if (h.shut.load(std::memory_order_acquire) != kAlive) throw ShutDown();
        throw Full();
    }
    Held held(put_lock_);
    if (put_lock_.owner_died()) repair_put();
    // Under the lock: shutdown() takes it after raising the flag, so once it returns no put
    // can still land (and a shutdown at once leaves the queue empty).
    auto shut = [&] { return h.shut.load(std::memory_order_acquire) != kAlive; };
    if (shut()) throw ShutDown();
    std::uint64_t at = place(rec);
    if (at == kNone) {
        if (!block) throw Full();
        wait_for(h.not_full, deadline, [&] { return shut() || (at = place(rec)) != kNone; });
        if (shut()) throw ShutDown();  // as Python, even when room came at the same moment
        if (at == kNone) throw Full();
    }
    const std::uint64_t tail = h.tail.load(std::memory_order_relaxed);
    const std::uint64_t seq = h.puts.load(std::memory_order_relaxed);
    h.writing_seq.store(seq, std::memory_order_relaxed);
    h.writing_next.store(at + rec, std::memory_order_relaxed);
    if (at != tail) std::memcpy(ring_->at(tail), &kJump, 8);
    const std::uint64_t len = bytes.size();
    std::memcpy(ring_->at(at), &len, 8);
    std::memcpy(ring_->at(at) + 8, bytes.data(), bytes.size());  // contiguous: the ring is mapped twice
    h.tail.store(at + rec, std::memory_order_release);  // the message becomes visible whole, or not at all
    h.puts.store(seq + 1, std::memory_order_relaxed);
    held.release();
    wake(h.not_empty, true);
}

void QueueCore::get(const std::function<void(std::string_view)>& consume, bool block, const Timeout& timeout) {
    Header& h = header_of(header_);
    struct AfterGet {
        Ring& ring;
        ~AfterGet() { ring.after_get(); }
    } after_get{*ring_};
    auto shut = [&] { return h.shut.load(std::memory_order_acquire); };
    if (shut() == kShutNow) throw ShutDown();
    CallDeadline deadline(timeout);
    if (!take(get_lock_, block, deadline)) {
        if (shut() != kAlive && qsize() == 0) throw ShutDown();
        throw Empty();
    }
    Held held(get_lock_);
    if (get_lock_.owner_died()) repair_get();
    if (!has_message() && block) wait_for(h.not_empty, deadline, [&] { return shut() != kAlive || has_message(); });
    // Shut down: what is left may still be taken, unless it was at once (shutdown() is about
    // to drop it, waiting for this lock).
    const std::uint32_t state = shut();
    if (state == kShutNow || (state == kShut && !has_message())) throw ShutDown();
    if (!has_message()) throw Empty();
    const std::uint64_t capacity = ring_->capacity();
    std::uint64_t head = h.head.load(std::memory_order_relaxed);
    const std::uint64_t seq = h.gets.load(std::memory_order_relaxed);
    std::uint64_t len;
    std::memcpy(&len, ring_->at(head), 8);
    if (len == kJump) {  // a message always follows its jump record in the same put
        head += capacity - head % capacity;
        std::memcpy(&len, ring_->at(head), 8);
    }
    const std::uint64_t next = head + record_size(static_cast<std::size_t>(len));
    h.reading_seq.store(seq, std::memory_order_relaxed);
    h.reading_next.store(next, std::memory_order_relaxed);
    // Decoded in place, under the lock: one copy, from the ring into the value. A message that
    // cannot be decoded is consumed all the same (the error goes to the caller), as a
    // Connection does, so one bad message cannot wedge the queue.
    std::exception_ptr failed;
    try {
        consume(std::string_view(ring_->at(head) + 8, static_cast<std::size_t>(len)));
    } catch (...) {
        failed = std::current_exception();
    }
    if ((next - 1) % capacity + 1 > kResident) h.beyond.store(1, std::memory_order_relaxed);
    h.head.store(next, std::memory_order_release);  // consumed only now: a consumer killed while copying leaves it in place
    h.gets.store(seq + 1, std::memory_order_relaxed);
    if (next == seen_tail_ && h.beyond.load(std::memory_order_relaxed) != 0) give_back_pages(next);
    held.release();
    wake(h.not_full, true);
    if (failed) std::rethrow_exception(failed);
}

// The consumer that emptied a queue whose backlog reached past kResident: give those pages
// back. Only while no producer can write (the producers' lock, if free: else a later get that
// empties the queue tries again), since a producer may reuse any room the consumers have left.
void QueueCore::give_back_pages(std::uint64_t head) {
    Header& h = header_of(header_);
    if (!put_lock_.acquire(false, std::nullopt)) return;
    Held held(put_lock_);
    if (put_lock_.owner_died()) repair_put();
    if (h.tail.load(std::memory_order_relaxed) != head) return;  // not empty after all
    platform::release_range(ring_->fd(), kResident, ring_->capacity() - kResident);
    h.beyond.store(0, std::memory_order_relaxed);
}

std::size_t QueueCore::qsize() const {
    const Header& h = header_of(header_);
    // gets first: it only grows, so the difference cannot be too small, only briefly too big by
    // a message whose count a producer has not yet raised (or below 0 by it: clamp).
    const std::uint64_t gets = h.gets.load(std::memory_order_acquire);
    const std::uint64_t puts = h.puts.load(std::memory_order_acquire);
    return puts > gets ? static_cast<std::size_t>(puts - gets) : 0;
}

void QueueCore::shutdown(bool immediate) {
    Header& h = header_of(header_);
    const std::uint32_t want = immediate ? kShutNow : kShut;
    std::uint32_t was = h.shut.load();
    while (was < want && !h.shut.compare_exchange_weak(was, want)) {
    }
    // Blocked putters and getters look at the flag when woken; join() waits on, for the tasks
    // not done.
    wake(h.not_full);
    wake(h.not_empty);
    // A put that saw the queue alive may be copying; it ends before this lock is ours, and
    // every later put sees the flag under it.
    {
        put_lock_.acquire(true, std::nullopt, LockCore::kShortSpin);
        Held held(put_lock_);
        if (put_lock_.owner_died()) repair_put();
    }
    if (!immediate) return;
    // Drop what is left, as consumed and done (JoinableQueue: each dropped item counts as a
    // task_done, so join() returns once the items already taken are done).
    get_lock_.acquire(true, std::nullopt, LockCore::kShortSpin);
    Held held(get_lock_);
    if (get_lock_.owner_died()) repair_get();
    const std::uint64_t tail = h.tail.load(std::memory_order_acquire);
    const std::uint64_t gets = h.gets.load(std::memory_order_relaxed);
    const std::uint64_t puts = h.puts.load(std::memory_order_acquire);
    if (puts > gets) {
        h.reading_seq.store(puts - 1, std::memory_order_relaxed);
        h.reading_next.store(tail, std::memory_order_relaxed);
        h.head.store(tail, std::memory_order_release);
        h.gets.store(puts, std::memory_order_relaxed);
        // Python lowers the unfinished count by one per item dropped, not below zero.
        std::uint64_t done = h.done.load();
        while (!h.done.compare_exchange_weak(done, std::max(done, std::min(puts, done + (puts - gets))))) {
        }
        seen_tail_ = tail;
        if (h.beyond.load(std::memory_order_relaxed) != 0) give_back_pages(tail);
    }
    held.release();
    wake(h.not_full);
    wake(h.all_done);
}

int QueueCore::fileno() const {
    header_of(header_);  // a moved-from queue: std::logic_error
    QueueWatch& w = ring_->watch(header_);
    w.sync();
    return w.fd();
}

bool QueueCore::is_shutdown() const { return header_of(header_).shut.load(std::memory_order_acquire) != kAlive; }

long QueueCore::maxsize() const { return static_cast<long>(header_of(header_).maxsize); }

void QueueCore::task_done() {
    Header& h = header_of(header_);
    // A message can be taken (gets) a moment before its producer counts it put (puts).
    std::uint64_t done = h.done.load();
    do {
        if (done >= std::max(h.puts.load(), h.gets.load())) throw std::logic_error("mproc: task_done() called too many times");
    } while (!h.done.compare_exchange_weak(done, done + 1));
    if (done + 1 >= h.puts.load()) wake(h.all_done);
}

bool QueueCore::join(const Timeout& timeout) {
    Header& h = header_of(header_);
    return wait_for(h.all_done, Deadline::after(timeout), [&] { return h.done.load() >= h.puts.load(); });
}

void QueueCore::save(OutputArchive& ar) const {
    header_.save(ar);
    const std::uint32_t fd = ar.add_fd(ring_->fd());
    ar(fd, static_cast<std::uint64_t>(ring_->capacity()));
}

void QueueCore::load(InputArchive& ar) {
    header_.load(ar);
    std::uint32_t fd = 0;
    std::uint64_t capacity = 0;
    ar(fd, capacity);
    platform::UniqueFd ring_fd(ar.take_fd(fd));
    if (header_.size() < sizeof(Header) || capacity == 0 || capacity % kCapacityUnit != 0 ||
        capacity != header_of(header_).capacity || platform::file_size(ring_fd.get()) != capacity)
        throw SerializationError("mproc: malformed queue");
    ring_ = std::make_shared<Ring>(std::move(ring_fd), static_cast<std::size_t>(capacity));
    attach_locks();
}

}  // namespace mproc::detail
