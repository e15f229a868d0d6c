// mproc/queues.hpp: queues between processes (Python: multiprocessing.Queue, SimpleQueue,
// JoinableQueue).
//
//   mproc::Queue<int> q;        // unbounded;  mproc::Queue<int> q(100) holds at most 100
//   q.put(7);  int x = q.get();  q.get(true, 1s);  q.get_nowait();   // mproc::Empty
//
// Where the data waits: in the queue's own shared memory, a ring in an anonymous memfd (1 GiB of
// address space by default, QueueOptions::capacity_bytes), which holds only the pages that data
// occupies; a queue that keeps up reuses its first few MiB, and the pages a backlog used beyond
// 16 MiB go back when the queue next empties. put() copies the message into the
// ring and returns; there is no feeder thread. So a child that puts 50 MiB and exits can be
// joined before anyone reads (Python deadlocks there), and close()/join_thread() have nothing
// to wait for. The memory bound is capacity_bytes per queue: past it, put() waits for room
// (or raises Full), as it does past maxsize messages.
//
// Robust: producers and consumers each take a robust lock of their own, and the read and write
// positions move only after a whole message is copied. A producer killed inside put() leaves nothing visible; a
// consumer killed inside get() leaves the message for the next one. Nobody is blocked by the
// dead process.
//
// Shut down (Python 3.13's queue.Queue.shutdown, which multiprocessing's queues lack): a flag in
// the queue's shared header, so shutdown() through any handle, in any process, stops every
// producer at once and every consumer once the queue is empty (or at once, immediate).
//
// T is any serializable type (values holding descriptors, such as a Connection, cannot go
// through shared memory: std::logic_error). FIFO per producer, any number of producers and
// consumers in any processes. A queue is an ordinary argument to a child under every start
// method; copies of a handle refer to the same queue.
//
// Contracts: put() and get() block on their side's lock (a robust futex lock in the queue's
// header) and, when they must wait for room or a message, on a futex beside it, still holding
// the lock: the others of their side wait behind them. No call makes a round trip to another
// process or waits for a thread. The other calls never block, but shutdown() (see there). Timeouts as synchronize.hpp's (NaN:
// std::invalid_argument). A moved-from queue is std::logic_error; creating one makes two
// memfds and maps them: std::system_error when the system refuses.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "mproc/errors.hpp"
#include "mproc/serialize.hpp"
#include "mproc/synchronize.hpp"

namespace mproc {

struct QueueOptions {
    long maxsize = 0;                        // messages; below 1: unbounded, as Python
    std::size_t capacity_bytes = std::size_t{1} << 30;  // the ring: the most data that can wait
};

namespace detail {
class Ring;

// The untyped queue: messages of bytes in a shared ring.
class QueueCore {
public:
    QueueCore() = default;
    // Task accounting (JoinableQueue) is always kept: it costs a counter.
    explicit QueueCore(const QueueOptions& options);
    // Full / Empty when not done in time (block false: at once); ShutDown after shutdown().
    void put(std::string_view bytes, bool block, const Timeout& timeout);
    // Hands the next message's bytes to consume (still in the ring, under the lock).
    void get(const std::function<void(std::string_view)>& consume, bool block, const Timeout& timeout);
    std::size_t qsize() const;
    long maxsize() const;
    void task_done();
    bool join(const Timeout& timeout);
    // The state lives in the shared header: every handle, in every process, sees it.
    void shutdown(bool immediate);
    bool is_shutdown() const;
    // Queue::fileno(): this process's descriptor for the queue, made on the first call.
    int fileno() const;

    void save(OutputArchive& ar) const;
    void load(InputArchive& ar);

private:
    void attach_locks();
    void repair_put();
    void repair_get();
    std::uint64_t place(std::size_t record);
    bool has_message();
    void give_back_pages(std::uint64_t head);

    RegionRef header_;
    std::shared_ptr<Ring> ring_;
    // Producers take one lock and consumers the other, so that one producer and one consumer
    // never contend for a lock (both locks live in header_).
    LockCore put_lock_, get_lock_;
    // What this handle last saw of the other side, used only under its own side's lock: most
    // operations need not read the other side's cache line. Positions only grow, so a stale
    // value is conservative.
    std::uint64_t seen_head_ = 0, seen_tail_ = 0;
};

// Encodes x into a buffer this thread reuses (a fresh string per message cost an allocation).
template <class T>
const std::string& encode_for_queue(const T& x) {
    thread_local std::string bytes;
    bytes.clear();
    std::vector<int> fds;
    encode(bytes, x, fds);
    if (!fds.empty())
        throw std::logic_error("mproc: a " + type_name(typeid(T)) +
                               " holds descriptors and cannot go through a queue's shared memory; use a Connection");
    return bytes;
}
}  // namespace detail

template <class T>
class Queue {
public:
    explicit Queue(long maxsize = 0) : Queue(QueueOptions{.maxsize = maxsize}) {}
    explicit Queue(const QueueOptions& options) : core_(options) {}

    // Blocks while the queue is full (maxsize messages, or capacity_bytes of data); with block
    // false or after timeout: mproc::Full. After close(): std::logic_error. A message larger
    // than capacity_bytes: std::length_error, nothing enqueued. Once the queue is shut down
    // (before or while this waits): mproc::ShutDown, nothing enqueued. What T's serialization
    // throws passes through, nothing enqueued.
    void put(const T& x, bool block = true, Timeout timeout = {}) {
        check_open();
        used_ = true;
        core_.put(detail::encode_for_queue(x), block, timeout);
    }
    void put_nowait(const T& x) { put(x, false); }
    // Blocks while empty; with block false or after timeout: mproc::Empty. Shut down: the items
    // left are still taken, then mproc::ShutDown instead of Empty or waiting (a getter waiting
    // when the queue is shut down wakes with it); shut down immediately: ShutDown at once.
    // After close(): std::logic_error. A message that cannot be read as a T
    // (SerializationError, or what T's own serialize() throws) is taken all the same, so the
    // next get() has the next message.
    T get(bool block = true, Timeout timeout = {}) {
        check_open();
        T value{};
        core_.get([&](std::string_view bytes) { value = loads<T>(bytes); }, block, timeout);
        return value;
    }
    T get_nowait() { return get(false); }
    // Exact on every platform (Python's raises NotImplementedError on macOS). Never blocks.
    std::size_t qsize() const { return core_.qsize(); }
    // After close() of a handle that put something: std::logic_error (Python: OSError, its
    // empty() polls the reader that close() closed once the queue was used).
    bool empty() const {
        if (closed_ && used_) check_open();
        return qsize() == 0;
    }
    bool full() const { return core_.maxsize() > 0 && static_cast<long>(qsize()) >= core_.maxsize(); }
    // Shuts the queue down, for every handle in every process (Python 3.13:
    // queue.Queue.shutdown). put() throws mproc::ShutDown from now on; get() takes what is left
    // and throws ShutDown once the queue is empty. immediate: what is left is dropped and get()
    // throws ShutDown at once; for a JoinableQueue each dropped item counts as done, so join()
    // returns once the items already taken are marked done. Blocked put()s and get()s wake
    // and throw ShutDown. Calling it again is harmless (immediate after not drops what is
    // left then); it cannot be undone. Waits only for a put or get in progress to finish its
    // copy (it takes the producers' lock, then for immediate the consumers'). Allowed on a
    // closed handle: the shutdown is the queue's, not the handle's.
    void shutdown(bool immediate = false) { core_.shutdown(immediate); }
    // Whether the queue was shut down, through any handle (Python: the is_shutdown attribute).
    bool is_shutdown() const { return core_.is_shutdown(); }
    // A descriptor that is readable while get() would not block: an item waits, or the queue is
    // shut down (Python's q._reader.fileno(), with the queue's own rule). For
    // connection::wait, epoll or an event loop, in any process that holds the queue, whoever
    // puts. Made the first time a handle in this process asks: an eventfd, and a thread that
    // sleeps on the queue's futex as a blocked get() would and makes the descriptor readable
    // when an item comes, so put() costs nothing more, here or in any process, when nobody
    // asked (and while someone did, one wake-up when the queue turns non-empty). Each call, and
    // each get() through a handle of this process (copies share it), brings it in line with the
    // queue at once (a get() that empties the queue or raises Empty leaves it unreadable); items
    // taken in another process, within 100 ms. All handles of this process share it; it is
    // closed, and the thread stopped, with the last of them. Do not close it. Never blocks
    // (but for a short mutex). After close(): std::logic_error; the system refusing:
    // std::system_error.
    int fileno() const {
        check_open();
        return core_.fileno();
    }
    // This handle will put and get no more (others are unaffected).
    void close() noexcept { closed_ = true; }
    // Python waits here for its feeder thread to flush; put() has already stored the data, so
    // this never blocks. Before close(): std::logic_error (Python: AssertionError).
    void join_thread() const {
        if (!closed_) throw std::logic_error("mproc: queue not closed; call close() before join_thread()");
    }
    void cancel_join_thread() noexcept {}

    void save(detail::OutputArchive& ar) const { core_.save(ar); }
    void load(detail::InputArchive& ar) { core_.load(ar); }

protected:
    void check_open() const {
        if (closed_) throw std::logic_error("mproc: queue is closed");
    }
    detail::QueueCore core_;
    bool closed_ = false;
    bool used_ = false;
};

// A queue with task accounting (Python: multiprocessing.JoinableQueue).
template <class T>
class JoinableQueue : public Queue<T> {
public:
    explicit JoinableQueue(long maxsize = 0) : Queue<T>(QueueOptions{.maxsize = maxsize}) {}
    explicit JoinableQueue(const QueueOptions& options) : Queue<T>(options) {}
    // One item taken with get() is done; wakes join() when it was the last. Never blocks. More
    // calls than items put: std::logic_error (Python: ValueError).
    void task_done() { this->core_.task_done(); }
    // Blocks on a futex until every item put has been marked done; false when the timeout
    // passed first (Python's join() takes no timeout).
    bool join(Timeout timeout = {}) { return this->core_.join(timeout); }
};

// Python: multiprocessing.SimpleQueue: put, get, empty, close; and shutdown, as Queue's (Python's
// SimpleQueue has none: mproc's is a Queue underneath, so it costs nothing).
template <class T>
class SimpleQueue {
public:
    SimpleQueue() : q_() {}
    // As Queue::put with no bound: blocks only on the producers' lock, or while capacity_bytes
    // of data wait. Shut down: mproc::ShutDown. After close(): std::logic_error.
    void put(const T& x) { q_.put(x); }
    // Blocks while empty; shut down and empty (or shut down immediately): mproc::ShutDown.
    // After close(): std::logic_error.
    T get() { return q_.get(); }
    // As Queue::shutdown.
    void shutdown(bool immediate = false) { q_.shutdown(immediate); }
    bool is_shutdown() const { return q_.is_shutdown(); }
    // As Queue::fileno().
    int fileno() const { return q_.fileno(); }
    // After close(): std::logic_error (Python's close() closes the reader that empty() polls).
    bool empty() const {
        if (closed_) throw std::logic_error("mproc: queue is closed");
        return q_.empty();
    }
    void close() noexcept {
        closed_ = true;
        q_.close();
    }

    void save(detail::OutputArchive& ar) const { q_.save(ar); }
    void load(detail::InputArchive& ar) { q_.load(ar); }

private:
    Queue<T> q_;
    bool closed_ = false;
};

}  // namespace mproc
