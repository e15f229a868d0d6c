// src/pool/channel.cpp: the rings between a process pool and a worker (channel.hpp).

#include "pool/channel.hpp"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <limits>
#include <new>
#include <stdexcept>
#include <thread>
#include <utility>

#include "mproc/errors.hpp"
#include "platform/platform.hpp"

namespace mproc::detail::pool {

// One direction's control words, each on a cache line of its own: the writer moves head, the
// reader tail, and a reader about to sleep counts itself in sleepers (the pool's end may have
// several threads asleep on one ring: the dispatcher and threads waiting for results).
struct Channel::Header {
    alignas(64) std::atomic<std::uint64_t> head;  // bytes published, ever
    alignas(64) std::atomic<std::uint64_t> tail;  // bytes consumed, ever
    alignas(64) std::atomic<std::uint32_t> sleepers;
    std::atomic<std::int32_t> reader_cpu;  // + 1 (0: not known), where the reader last looked
};

namespace {
static_assert((Channel::kRingBytes & (Channel::kRingBytes - 1)) == 0);
static_assert(std::atomic<std::uint64_t>::is_always_lock_free && std::atomic<std::uint32_t>::is_always_lock_free);

// A record: u32 length, u32 kind, then the message padded to 8 bytes.
constexpr std::uint32_t kInline = 1, kOnSocket = 2;
constexpr std::size_t kRecordHead = 8;
constexpr std::size_t kMarkerRoom = 16 * kRecordHead;  // kept free for markers
constexpr std::size_t padded(std::size_t n) { return (n + 7) & ~std::size_t{7}; }

// The region: the pool-to-worker header, the worker-to-pool header, then their data.
constexpr std::size_t kHeaderBytes = 256;
constexpr std::size_t kRegionBytes = 2 * kHeaderBytes + 2 * Channel::kRingBytes;

void copy_in(char* ring, std::uint64_t at, const char* src, std::size_t n) {
    const std::size_t off = at & (Channel::kRingBytes - 1);
    const std::size_t first = std::min(n, Channel::kRingBytes - off);
    std::memcpy(ring + off, src, first);
    std::memcpy(ring, src + first, n - first);
}

void copy_out(const char* ring, std::uint64_t at, char* dst, std::size_t n) {
    const std::size_t off = at & (Channel::kRingBytes - 1);
    const std::size_t first = std::min(n, Channel::kRingBytes - off);
    std::memcpy(dst, ring + off, first);
    std::memcpy(dst + first, ring, n - first);
}

// The header of the ring this end reads (pool end: worker-to-pool).
template <class H>
H& header_at(const RegionRef& r, bool pool_end, bool inbound) {
    const bool down = pool_end != inbound;  // the pool-to-worker ring
    return *std::launder(reinterpret_cast<H*>(static_cast<char*>(r.data()) + (down ? 0 : kHeaderBytes)));
}
}  // namespace

auto Channel::inbound() const noexcept -> Header& {
    static_assert(sizeof(Header) <= kHeaderBytes);
    return header_at<Header>(region_, pool_end_, true);
}
auto Channel::outbound() const noexcept -> Header& { return header_at<Header>(region_, pool_end_, false); }
char* Channel::inbound_data() const noexcept {
    return static_cast<char*>(region_.data()) + 2 * kHeaderBytes + (pool_end_ ? kRingBytes : 0);
}
char* Channel::outbound_data() const noexcept {
    return static_cast<char*>(region_.data()) + 2 * kHeaderBytes + (pool_end_ ? 0 : kRingBytes);
}

std::pair<Channel, Channel> Channel::create(connection::Connection pool_conn, connection::Connection worker_conn) {
    std::pair<Channel, Channel> ends;
    auto& [pool, worker] = ends;
    pool.region_ = RegionRef::create(kRegionBytes);  // zero-filled: both rings empty
    pool.conn_ = std::move(pool_conn);
    // A pool's messages are bounded by its own caps (max_result_bytes), not the connection's.
    pool.conn_.set_max_message_size(std::numeric_limits<std::size_t>::max() / 2);
    worker_conn.set_max_message_size(std::numeric_limits<std::size_t>::max() / 2);
    pool.my_wake_ = platform::make_event();
    pool.peer_wake_ = platform::make_event();
    worker.region_ = pool.region_;
    worker.pool_end_ = false;
    worker.conn_ = std::move(worker_conn);
    // The worker sleeps on what the pool notifies, and notifies what the pool sleeps on.
    worker.my_wake_ = platform::dup_fd(pool.peer_wake_.get());
    worker.peer_wake_ = platform::dup_fd(pool.my_wake_.get());
    return ends;
}

void Channel::save(OutputArchive& ar) const {
    if (pool_end_) throw std::logic_error("mproc: a pool's end of a worker channel does not travel");
    ar(conn_);
    region_.save(ar);
    const std::uint32_t wake = ar.add_fd(my_wake_.get());
    const std::uint32_t peer = ar.add_fd(peer_wake_.get());
    ar(wake, peer);
}

void Channel::load(InputArchive& ar) {
    ar(conn_);
    region_.load(ar);
    if (region_.size() < kRegionBytes) throw SerializationError("mproc: a pool worker's channel region is too small");
    std::uint32_t wake = 0, peer = 0;
    ar(wake, peer);
    my_wake_ = platform::UniqueFd(ar.take_fd(wake));
    peer_wake_ = platform::UniqueFd(ar.take_fd(peer));
    pool_end_ = false;
}

bool Channel::write_record(std::span<const std::string_view> parts, std::size_t size, std::uint32_t kind) {
    Header& h = outbound();
    const std::uint64_t head = h.head.load(std::memory_order_relaxed);
    const std::uint64_t used = head - h.tail.load(std::memory_order_acquire);
    const std::size_t need = kRecordHead + padded(size);
    // Messages leave kMarkerRoom free for markers; a marker may use it.
    const std::size_t reserve = kind == kInline ? kMarkerRoom : 0;
    if (used + need + reserve > kRingBytes) return false;
    char* ring = outbound_data();
    const std::uint32_t words[2] = {static_cast<std::uint32_t>(size), kind};
    copy_in(ring, head, reinterpret_cast<const char*>(words), kRecordHead);
    std::uint64_t at = head + kRecordHead;
    for (std::string_view p : parts) {
        copy_in(ring, at, p.data(), p.size());
        at += p.size();
    }
    h.head.store(head + need, std::memory_order_release);
    // Published; does the reader sleep? (Pairs with the fence in arm: either it sees the new
    // head before it sleeps, or this sees it counted and wakes it.)
    std::atomic_thread_fence(std::memory_order_seq_cst);
    woke_peer_ = h.sleepers.load(std::memory_order_relaxed) > 0;
    if (woke_peer_) platform::event_notify(peer_wake_.get());
    return true;
}

void Channel::send(std::span<const std::string_view> parts, std::span<const int> fds) {
    std::size_t size = 0;
    for (std::string_view p : parts) size += p.size();
    if (fds.empty() && size <= kRingMessage && write_record(parts, size, kInline)) return;
    // On the socket: the marker first, so that the reader, taking records in order, knows to
    // read the socket for this one. (The marker may wake the reader before the socket has
    // the message; its read then waits for it.)
    if (!write_record({}, 0, kOnSocket))
        throw std::runtime_error("mproc: a pool channel's ring is full: its reader has stopped reading");
    if (parts.size() == 1)
        conn_.send_message(parts[0], fds);
    else
        conn_.send_message_parts(parts, fds);
}

bool Channel::has_pending(const Header& h) noexcept {
    return h.head.load(std::memory_order_acquire) != h.tail.load(std::memory_order_relaxed);
}

bool Channel::pending() const noexcept { return has_pending(inbound()); }

const std::string& Channel::receive(std::vector<int>& fds) {
    Header& h = inbound();
    const std::uint64_t tail = h.tail.load(std::memory_order_relaxed);
    const std::uint64_t head = h.head.load(std::memory_order_acquire);
    const std::uint64_t published = head - tail;
    fds.clear();
    if (published < kRecordHead || published > kRingBytes) throw SerializationError("mproc: a pool channel's ring is corrupt");
    const char* ring = inbound_data();
    std::uint32_t words[2];
    copy_out(ring, tail, reinterpret_cast<char*>(words), kRecordHead);
    const std::size_t size = words[0];
    if (kRecordHead + padded(size) > published || (words[1] != kInline && words[1] != kOnSocket) ||
        (words[1] == kOnSocket && size != 0))
        throw SerializationError("mproc: a pool channel's ring holds a malformed record");
    if (words[1] == kOnSocket) {
        h.tail.store(tail + kRecordHead, std::memory_order_release);
        return conn_.receive_message(fds);
    }
    buf_.resize(size);
    copy_out(ring, tail + kRecordHead, buf_.data(), size);
    h.tail.store(tail + kRecordHead + padded(size), std::memory_order_release);
    return buf_;
}

bool Channel::wait_worker() {
    const Rings r = rings();
    for (;;) {
        r.note_cpu();
        const int peer = r.peer_cpu();
        for (Look look(std::span(&peer, 1), std::exchange(woke_peer_, false)); !pending();)
            if (!look.again()) break;
        if (pending()) return true;
        const bool sleep = r.arm();
        std::vector<std::size_t> ready;
        if (sleep) {
            const int fds[2] = {my_wake_.get(), conn_.fileno()};
            ready = platform::wait_any_readable(fds, platform::Deadline::never());
        }
        r.disarm();
        platform::event_drain(my_wake_.get());
        if (pending()) return true;
        // Nothing on the ring, yet the socket is readable: the pool has closed it (a message
        // there would have had its marker published first).
        if (std::find(ready.begin(), ready.end(), std::size_t{1}) != ready.end()) {
            std::vector<int> fds;
            try {
                (void)conn_.receive_message(fds);
            } catch (const EOFError&) {
                return false;
            }
            for (int fd : fds) platform::UniqueFd closer(fd);
            throw SerializationError("mproc: a pool worker's socket had a message the ring did not announce");
        }
    }
}

bool Channel::Rings::pending() const noexcept { return has_pending(header_at<Header>(region, pool_end, true)); }

bool Channel::Rings::arm() const noexcept {
    Header& h = header_at<Header>(region, pool_end, true);
    h.sleepers.fetch_add(1, std::memory_order_seq_cst);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    return h.head.load(std::memory_order_relaxed) == h.tail.load(std::memory_order_relaxed);
}

void Channel::Rings::note_cpu() const noexcept {
    const int cpu = platform::current_cpu();
    header_at<Header>(region, pool_end, true).reader_cpu.store(cpu + 1, std::memory_order_relaxed);
}

int Channel::Rings::peer_cpu() const noexcept {
    return header_at<Header>(region, pool_end, false).reader_cpu.load(std::memory_order_relaxed) - 1;
}

Look::Look(std::span<const int> peer_cpus, bool yield_now) : start_(std::chrono::steady_clock::now()) {
    const int mine = platform::current_cpu();
    share_ = yield_now || std::find(peer_cpus.begin(), peer_cpus.end(), mine) != peer_cpus.end();
}

bool Look::again() {
    if (++i_ % kYieldEvery != 0) {
        platform::cpu_relax();
        return true;
    }
    const auto spent = std::chrono::steady_clock::now() - start_;
    if (spent >= kLookBeforeSleep) return false;
    if (share_ || spent >= kSpinAlone) std::this_thread::yield();
    return true;
}

void Channel::Rings::disarm() const noexcept {
    header_at<Header>(region, pool_end, true).sleepers.fetch_sub(1, std::memory_order_relaxed);
}

}  // namespace mproc::detail::pool
