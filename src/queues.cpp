// Queues: messages in a shared ring guarded by a robust lock.
#include "mproc/queues.hpp"

#include <atomic>
#include <chrono>
#include <cstring>
#include <exception>
#include <functional>

#include "platform/platform.hpp"

namespace mproc::detail {

namespace {
// Pages go back to the system in chunks of this size as consumers pass them; the ring's
// capacity is a multiple of it.
constexpr std::size_t kRelease = 2 * 1024 * 1024;
// Pages at file offsets below this stay resident once touched: when the queue empties, its
// positions restart at 0 and the pages beyond this are given back, all at once. A queue that
// keeps up reuses the same pages and never faults again. (Measured: giving pages back as soon
// as consumers passed them cost a page fault per 4 KiB on the next pass, about 600 us per MiB,
// and 1 MiB messages ran at 0.5-0.7 GB/s.) While data waits, its pages stay: the memory bound
// is the ring's capacity.
constexpr std::size_t kResident = 16 * 1024 * 1024;

// Fields change only under the queue's lock, which orders them: relaxed operations suffice
// there (seq_cst stores and read-modify-writes cost tens of cycles each on the hot path).
// qsize() reads count without the lock, which a relaxed atomic load allows.
struct Header {
    std::atomic<std::uint64_t> head;        // byte offset of the next message to read
    std::atomic<std::uint64_t> tail;        // byte offset just past the last whole message
    std::atomic<std::uint64_t> count;       // messages between head and tail
    std::atomic<std::uint64_t> unfinished;  // JoinableQueue: put and not yet task_done
    std::atomic<std::uint64_t> released;    // the furthest position read since positions restarted
    std::uint64_t capacity;
    std::int64_t maxsize;
};
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);

std::size_t record_size(std::size_t len) { return 8 + (len + 7) / 8 * 8; }

Header& header_of(const RegionRef& r) {
    if (!r) throw std::logic_error("mproc: use of a moved-from queue");
    return *static_cast<Header*>(r.data());
}

}  // namespace

class Ring {
public:
    Ring(platform::UniqueFd fd, std::size_t capacity)
        : fd_(std::move(fd)), base_(static_cast<char*>(platform::map_ring(fd_.get(), capacity))), capacity_(capacity) {}
    ~Ring() { platform::unmap_ring(base_, capacity_); }
    char* at(std::uint64_t offset) const { return base_ + offset % capacity_; }
    int fd() const { return fd_.get(); }
    std::size_t capacity() const { return capacity_; }

private:
    platform::UniqueFd fd_;
    char* base_;
    std::size_t capacity_;
};

QueueCore::QueueCore(const QueueOptions& o)
    : header_(RegionRef::create(sizeof(Header))), not_empty_(lock_), not_full_(lock_), all_done_(lock_) {
    const std::size_t capacity = std::max<std::size_t>((o.capacity_bytes + kRelease - 1) / kRelease, 1) * kRelease;
    Header& h = header_of(header_);
    h.capacity = capacity;
    h.maxsize = o.maxsize > 0 ? o.maxsize : 0;
    ring_ = std::make_shared<Ring>(platform::memfd("mproc-queue", capacity), capacity);
}

namespace {
// After taking the lock over from a process that died holding it: the positions are whole
// (they move only after a copy), but the message count may lag a move by one. Recount.
void repair(Header& h, const Ring& ring) {
    std::uint64_t n = 0;
    std::uint64_t pos = h.head.load();
    const std::uint64_t tail = h.tail.load();
    while (pos < tail) {
        std::uint64_t len;
        std::memcpy(&len, ring.at(pos), 8);
        if (len > tail - pos - 8) {  // cannot happen unless memory was scribbled on: cut there
            h.tail.store(pos);
            break;
        }
        pos += record_size(static_cast<std::size_t>(len));
        ++n;
    }
    h.count.store(n);
}

class Locked {
public:
    Locked(Lock& l, Header& h, const Ring& r) : l_(l) {
        l_.acquire();
        if (l_.owner_died()) repair(h, r);
    }
    ~Locked() { l_.release(); }

private:
    Lock& l_;
};
}  // namespace

void QueueCore::put(std::string_view bytes, bool block, const Timeout& timeout) {
    Header& h = header_of(header_);
    const std::size_t rec = record_size(bytes.size());
    if (rec > ring_->capacity())
        throw std::length_error("mproc: a message of " + std::to_string(bytes.size()) +
                                " bytes is larger than the queue's capacity (" + std::to_string(ring_->capacity()) +
                                " bytes; QueueOptions::capacity_bytes)");
    const platform::Deadline deadline = platform::Deadline::after(timeout);
    Locked g(lock_, h, *ring_);
    auto no_room = [&] {
        return (h.maxsize > 0 && h.count.load(std::memory_order_relaxed) >= static_cast<std::uint64_t>(h.maxsize)) ||
               ring_->capacity() - (h.tail.load(std::memory_order_relaxed) - h.head.load(std::memory_order_relaxed)) < rec;
    };
    while (no_room())  // a wait returns false only when the deadline has passed
        if (!block || (!not_full_.wait(deadline.remaining()) && no_room())) throw Full();
    const std::uint64_t tail = h.tail.load(std::memory_order_relaxed);
    const std::uint64_t len = bytes.size();
    std::memcpy(ring_->at(tail), &len, 8);
    std::memcpy(ring_->at(tail) + 8, bytes.data(), bytes.size());  // contiguous: the ring is mapped twice
    h.tail.store(tail + rec, std::memory_order_relaxed);  // the message becomes visible whole, or not at all
    h.count.store(h.count.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    h.unfinished.store(h.unfinished.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    not_empty_.notify();
}

void QueueCore::get(const std::function<void(std::string_view)>& consume, bool block, const Timeout& timeout) {
    Header& h = header_of(header_);
    const platform::Deadline deadline = platform::Deadline::after(timeout);
    if (block && h.count.load(std::memory_order_relaxed) == 0) {
        // A producer that is mid-put will be done in well under a microsecond; sleeping on the
        // condition would cost a wake-up round trip. Look a little first (bounded).
        for (int spin = 0; spin < 200 && h.count.load(std::memory_order_relaxed) == 0; ++spin) {
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#endif
        }
    }
    Locked g(lock_, h, *ring_);
    while (h.count.load(std::memory_order_relaxed) == 0)
        if (!block || (!not_empty_.wait(deadline.remaining()) && h.count.load(std::memory_order_relaxed) == 0)) throw Empty();
    const std::uint64_t head = h.head.load(std::memory_order_relaxed);
    std::uint64_t len;
    std::memcpy(&len, ring_->at(head), 8);
    const std::uint64_t next = head + record_size(static_cast<std::size_t>(len));
    // Decoded in place, under the lock: one copy, from the ring into the value. A message that
    // cannot be decoded is consumed all the same (the error goes to the caller), as a
    // Connection does, so one bad message cannot wedge the queue.
    std::exception_ptr failed;
    try {
        consume(std::string_view(ring_->at(head) + 8, static_cast<std::size_t>(len)));
    } catch (...) {
        failed = std::current_exception();
    }
    h.head.store(next, std::memory_order_relaxed);  // consumed only now: a consumer killed while copying leaves it in place
    h.count.store(h.count.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
    if (next == h.tail.load(std::memory_order_relaxed)) {
        // Empty: start over at the resident pages, and give back what a backlog touched beyond
        // them (up to the furthest position used since the last restart, within one pass).
        const std::uint64_t used = std::min<std::uint64_t>(h.released.load(std::memory_order_relaxed) > next ? h.released.load(std::memory_order_relaxed) : next, ring_->capacity());
        if (used > kResident) platform::release_range(ring_->fd(), kResident, static_cast<std::size_t>(used - kResident));
        h.head.store(0, std::memory_order_relaxed);
        h.tail.store(0, std::memory_order_relaxed);
        h.released.store(0, std::memory_order_relaxed);
    } else if (next > h.released.load(std::memory_order_relaxed)) {
        h.released.store(next, std::memory_order_relaxed);  // the furthest position since the restart
    }
    not_full_.notify();
    if (failed) std::rethrow_exception(failed);
}

std::size_t QueueCore::qsize() const { return static_cast<std::size_t>(header_of(header_).count.load(std::memory_order_relaxed)); }
long QueueCore::maxsize() const { return static_cast<long>(header_of(header_).maxsize); }

void QueueCore::task_done() {
    Header& h = header_of(header_);
    Locked g(lock_, h, *ring_);
    if (h.unfinished.load() == 0) throw std::logic_error("mproc: task_done() called too many times");
    if (h.unfinished.fetch_sub(1) == 1) all_done_.notify_all();
}

void QueueCore::join() {
    Header& h = header_of(header_);
    Locked g(lock_, h, *ring_);
    while (h.unfinished.load() != 0) all_done_.wait();
}

void QueueCore::save(OutputArchive& ar) const {
    header_.save(ar);
    const std::uint32_t fd = ar.add_fd(ring_->fd());
    ar(fd, static_cast<std::uint64_t>(ring_->capacity()), lock_, not_empty_, not_full_, all_done_);
}

void QueueCore::load(InputArchive& ar) {
    header_.load(ar);
    std::uint32_t fd = 0;
    std::uint64_t capacity = 0;
    ar(fd, capacity);
    platform::UniqueFd ring_fd(ar.take_fd(fd));
    if (capacity == 0 || capacity % kRelease != 0 || capacity != header_of(header_).capacity ||
        platform::file_size(ring_fd.get()) != capacity)
        throw SerializationError("mproc: malformed queue");
    ring_ = std::make_shared<Ring>(std::move(ring_fd), static_cast<std::size_t>(capacity));
    ar(lock_, not_empty_, not_full_, all_done_);
}

}  // namespace mproc::detail
