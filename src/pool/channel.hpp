// src/pool/channel.hpp: the line between a process pool and one of its workers (private).
//
// Messages travel both ways through two rings in shared memory, one per direction, each with one
// writer and one reader. A message to a side that is looking for it (a worker between tasks, a
// thread waiting for a result: both look for a few tens of microseconds before they sleep) costs
// no system call: two processes handing a word through shared memory while spinning take a
// quarter of a microsecond here, a pipe round trip between sleeping processes 5-50 us.
//
// A side that finds its ring empty says it sleeps (a count in the ring's header), looks once
// more, and sleeps on an eventfd of its own; the writer, having published, notifies that
// eventfd only when the count says someone sleeps. So an idle pool spins no longer than the look.
//
// The socket stays: a message too large for the ring (over kRingMessage), or carrying
// descriptors, goes on it, and the ring gets a marker in its place, so that the reader takes
// messages in the order they were written whichever way each went. The socket is also how a
// worker learns that its pool is gone (end of file); the pool learns of a worker's death from
// its process sentinel.
//
// Crash safety: a record is published (the ring's head moved past it) only once written whole,
// so a writer killed half way leaves nothing a reader would take; a reader copies a record out
// before moving the tail. A record's length is checked against what was published, so a
// corrupt ring is a malformed message (SerializationError), not a read out of bounds.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mproc/connection.hpp"
#include "mproc/detail/archive.hpp"
#include "mproc/detail/shared_region.hpp"
#include "platform/fd.hpp"

namespace mproc::detail::pool {

class Channel {
public:
    static constexpr std::size_t kRingBytes = 256 * 1024;   // per direction; a power of two
    static constexpr std::size_t kRingMessage = 64 * 1024;  // larger messages go on the socket

    Channel() = default;
    Channel(Channel&&) noexcept = default;
    Channel& operator=(Channel&&) noexcept = default;

    // A pool's end and a worker's, over the two ends of a duplex socket pair: the rings and
    // the two eventfds made, each end holding its own descriptors.
    static std::pair<Channel, Channel> create(connection::Connection pool_conn, connection::Connection worker_conn);
    // A worker's end travels to its process (the socket, the region, the eventfds); a pool's
    // end stays (save is std::logic_error).
    void save(OutputArchive& ar) const;
    void load(InputArchive& ar);

    // Sends one message (the parts, one after another), on the ring when it fits and carries
    // no descriptors, else on the socket with a marker on the ring. Never blocks on the
    // reader, but for a socket send (which blocks while the socket's buffer is full). Throws
    // what the socket throws; std::runtime_error when the ring has no room even for a marker
    // (the reader has stopped reading: a pool sends a worker at most two batches and a stop).
    void send(std::span<const std::string_view> parts, std::span<const int> fds = {});
    void send(std::string_view msg, std::span<const int> fds = {}) { send(std::span(&msg, 1), fds); }

    // Whether a message waits to be received. Only a shared memory read.
    bool pending() const noexcept;
    // The next message (pending() must be true), and in fds the descriptors that came with it.
    // The reference lives until the next receive. Throws EOFError when the message was on the
    // socket and the writer died before sending it, SerializationError for a corrupt ring.
    const std::string& receive(std::vector<int>& fds);

    // The eventfd this end sleeps on (poll it for readable; drain it once woken).
    int wake_fd() const noexcept { return my_wake_.get(); }

    // The worker's wait for its next message: looks for a while, then sleeps until a message
    // comes. False when the pool is gone (the socket at end of file, no message pending).
    bool wait_worker();

    // Sleeping, for a reader that polls wake_fd() beside other descriptors: arm() says this end
    // (one more thread of it) sleeps, and returns false when a message came meanwhile (then
    // do not sleep; disarm() all the same). Each arm() is paired with a disarm().
    // The Rings form works on a copy of the region a thread holds while the channel may be
    // destroyed by another (a worker's death, under the pool's mutex).
    struct Rings {
        RegionRef region;
        bool pool_end = true;
        bool pending() const noexcept;
        bool arm() const noexcept;
        void disarm() const noexcept;
        // The CPU this end looks from, for the peer's Look; the CPU the peer last looked from
        // (-1: not known).
        void note_cpu() const noexcept;
        int peer_cpu() const noexcept;
    };
    Rings rings() const { return Rings{region_, pool_end_}; }

private:
    RegionRef region_;
    bool pool_end_ = true;
    connection::Connection conn_;
    platform::UniqueFd my_wake_, peer_wake_;
    std::string buf_;
    bool woke_peer_ = false;  // the last send notified the peer's eventfd

    struct Header;
    static bool has_pending(const Header& h) noexcept;
    Header& inbound() const noexcept;
    Header& outbound() const noexcept;
    char* inbound_data() const noexcept;
    char* outbound_data() const noexcept;
    bool write_record(std::span<const std::string_view> parts, std::size_t size, std::uint32_t kind);
};

// How long a side looks for a message before it sleeps (a worker between tasks, a pool thread
// waiting for a result): sleeping and being woken costs a wake-up on another CPU, which on a
// virtual machine is tens of microseconds (a halted virtual CPU must be woken); a call answered
// within the window costs neither side a sleep. Bounded, so an idle pool burns at most this much
// CPU per message. 100 us, not the 30 us it was: a caller that does anything between its calls
// (mproc-bench interleaves a bare pipe round trip, 14-75 us here) found the worker asleep
// whenever that took over 30 us, and its submit().result() went from 3-4 us to 15-19 us.
constexpr std::chrono::microseconds kLookBeforeSleep{100};
// A looker whose peer last ran on another CPU spins for kSpinAlone without giving up its CPU: a
// sched_yield is a system call, 1-3 us on this virtual machine, and a message arriving during one
// waits for it. After that, or from the start when the peer last ran on the looker's own CPU
// (which the peer then needs), or when this side's last message woke the peer (a pool thread
// asleep while the workers ran batches, which must now run to send the next: a worker spinning
// on its CPU delayed it, and chunksize-1 maps ran at half speed), it yields every kYieldEvery
// looks.
constexpr std::chrono::microseconds kSpinAlone{5};
constexpr unsigned kYieldEvery = 32;

// One look before sleeping: again() after each look that found nothing, false once the window
// is over.
class Look {
public:
    // peer_cpus: the CPUs the peers last looked from (Channel::Rings::peer_cpu; -1 unknown).
    // yield_now: yield from the start all the same (the peer was just woken: it needs a CPU).
    explicit Look(std::span<const int> peer_cpus, bool yield_now = false);
    bool again();

private:
    std::chrono::steady_clock::time_point start_;
    bool share_ = false;
    unsigned i_ = 0;
};

}  // namespace mproc::detail::pool
