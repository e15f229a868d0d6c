// Connections: Python's framing over a stream socket or a pipe, with send/receive locks shared
// by every process that holds the same end.
#include <bit>
#include <cerrno>
#include <cstring>
#include <algorithm>
#include <deque>
#include <system_error>

#include "mproc/connection.hpp"
#include "mproc/detail/archive.hpp"
#include "mproc/process.hpp"
#include "auth.hpp"
#include "platform/fd.hpp"
#include "platform/io.hpp"
#include "platform/memory.hpp"
#include "platform/net.hpp"
#include "platform/sync.hpp"
#include "platform/system.hpp"
#include "spare_bytes.hpp"

namespace mproc::connection {

namespace {
// Python's framing is big-endian. The same swap turns a number into its big-endian bytes and
// back (htonl(3) and ntohl(3) are one byte swap too).
constexpr std::uint32_t big_endian(std::uint32_t v) noexcept {
    if constexpr (std::endian::native == std::endian::little) return __builtin_bswap32(v);
    return v;
}
constexpr std::uint64_t big_endian(std::uint64_t v) noexcept {
    if constexpr (std::endian::native == std::endian::little) return __builtin_bswap64(v);
    return v;
}

constexpr std::size_t kDefaultMaxMessage = std::size_t{1} << 30;
// Bytes allocated for a message before its bytes have arrived: a peer that announces a huge
// length and sends little costs no more than this.
constexpr std::size_t kPreallocate = std::size_t{16} << 20;
// Duplex Pipes are SOCK_SEQPACKET socketpairs. A message travels as records: the first holds
// Python's header and at most kFirstRecord bytes, so one recvmsg reads a small message whole;
// the rest go in records as large as the socket's send buffer allows (up to kMaxRecord), which
// the reader receives straight into the destination (it knows how many bytes remain, so it
// need not know the record size). A reader never takes bytes of the next message, so several
// processes can share an end. Measured here: a byte stream needs a second read per message for
// that exactness (1.37x a bare socketpair round trip, against 1.0x), and 1 MiB records with a
// 4 MiB send buffer move 17-22 GB/s against 5-6 GB/s for a stream.
constexpr std::size_t kFirstRecord = 64 * 1024;
constexpr std::size_t kMaxRecord = 1024 * 1024;
constexpr int kPipeSendBuffer = 4 * 1024 * 1024;  // asked for; the kernel caps it (wmem_max)

// The locks of one Pipe (or one accepted or connected socket): for each end a send lock and a
// receive lock, process-shared and robust, in a memfd page every holder maps.
struct LockPage {
    platform::SharedPage page;
    void* lock(int end, int which) const {
        return static_cast<char*>(page.data()) + (2 * end + which) * platform::kRobustMutexSize;
    }
    static std::shared_ptr<LockPage> create(int ends) {
        auto p = std::make_shared<LockPage>();
        p->page = platform::SharedPage::create(4096);
        for (int e = 0; e < ends; ++e)
            for (int w = 0; w < 2; ++w) platform::robust_mutex_init(p->lock(e, w));
        return p;
    }
};

enum { kSend = 0, kRecv = 1 };

class LockGuard {
public:
    explicit LockGuard(void* m) : m_(m) { platform::robust_mutex_lock(m_); }
    ~LockGuard() { platform::robust_mutex_unlock(m_); }
    LockGuard(const LockGuard&) = delete;
    LockGuard& operator=(const LockGuard&) = delete;

private:
    void* m_;
};
}  // namespace

struct Connection::State {
    platform::UniqueFd fd;
    bool readable = true;
    bool writable = true;
    bool socket = false;
    bool packets = false;  // SOCK_SEQPACKET: messages in records
    std::shared_ptr<LockPage> locks;
    int end = 0;
    std::size_t max_message = kDefaultMaxMessage;
    std::deque<int> arrived_fds;  // descriptors received and not yet claimed by a message
    std::string buffer;           // the last typed message's bytes (reused)
    std::string record;           // packets: the message's first record, being consumed
    std::size_t rpos = 0, rend = 0;
    bool first_read = false;      // packets: the current message's first record has been read
    bool read_ahead = false;      // a byte stream read in chunks (set_read_ahead): `record` holds them
    std::size_t msg_left = 0;     // packets: payload bytes of the message still in the socket
    std::size_t record_limit = 0; // packets: the largest record this end sends (0: not known yet)

    ~State() {
        for (int fd : arrived_fds) platform::UniqueFd closer(fd);
    }

    void check_open() const {
        if (!fd) throw std::logic_error("mproc: handle is closed");
    }
    void check_readable() const {
        check_open();
        if (!readable) throw std::logic_error("mproc: connection is write-only");
    }
    void check_writable() const {
        check_open();
        if (!writable) throw std::logic_error("mproc: connection is read-only");
    }

    // Reads exactly n bytes. false: end of file before the first byte. A deadline that passes
    // is mproc::TimeoutError.
    bool read_exact(char* p, std::size_t n, const platform::Deadline& deadline) {
        std::size_t got = 0;
        while (got < n) {
            if (rpos < rend) {  // what is left of the current record
                const std::size_t k = std::min(rend - rpos, n - got);
                std::memcpy(p + got, record.data() + rpos, k);
                rpos += k;
                got += k;
                continue;
            }
            if (!deadline.is_never() && !platform::wait_readable(fd.get(), deadline))
                throw TimeoutError("mproc: timed out waiting for the peer");
            std::vector<platform::UniqueFd> fds;
            std::size_t r;
            bool direct = true;
            if (!packets && read_ahead && n - got < kFirstRecord) {
                // Whatever has arrived, up to a chunk: a small message's header and payload
                // in one read. Bytes past this message stay in `record` for the next.
                if (record.size() < kFirstRecord) record.resize(kFirstRecord);
                r = platform::read_some(fd.get(), record.data(), kFirstRecord, socket ? &fds : nullptr);
                rpos = 0;
                rend = r;
                direct = false;
            } else if (!packets) {
                r = platform::read_some(fd.get(), p + got, n - got, socket ? &fds : nullptr);
            } else if (first_read && n - got >= msg_left) {
                // A continuation record is never longer than what the message has left, and
                // all of that fits here: receive it in place.
                r = platform::recv_record(fd.get(), p + got, msg_left, fds);
                msg_left -= std::min(r, msg_left);
            } else {
                // Into the record buffer: the message's first record (the header and the
                // payload's start), or a continuation the caller reads in pieces (skipping the
                // message, or growing a buffer) that may run past this piece.
                const bool continuation = first_read;
                const std::size_t cap = continuation ? std::min(msg_left, kMaxRecord) : kFirstRecord;
                if (record.size() < cap) record.resize(cap);
                r = platform::recv_record(fd.get(), record.data(), cap, fds);
                if (continuation) msg_left -= std::min(r, msg_left);
                first_read = true;
                rpos = 0;
                rend = r;
                direct = false;
            }
            for (auto& f : fds) arrived_fds.push_back(f.release());
            if (r == 0) {
                if (got == 0) return false;
                throw ProcessError("mproc: got end of file during message (" + std::to_string(got) +
                                   " of " + std::to_string(n) + " bytes)");
            }
            if (direct) got += r;
        }
        return true;
    }

    // The next frame's length; EOFError at end of file.
    std::size_t read_length(const platform::Deadline& deadline) {
        if (!read_ahead) rpos = rend = 0;  // a message starts a record: nothing of an earlier one is left to read
        first_read = false;
        std::int32_t be = 0;
        if (!read_exact(reinterpret_cast<char*>(&be), 4, deadline))
            throw EOFError("mproc: the other end of the connection is closed");
        const std::int32_t n = static_cast<std::int32_t>(big_endian(static_cast<std::uint32_t>(be)));
        if (n >= 0) return begin_payload(static_cast<std::size_t>(n), deadline);
        if (n != -1) {
            fd.reset();  // a negative length other than -1: the stream cannot be trusted again
            throw std::system_error(EPROTO, std::generic_category(), "mproc: malformed message header (negative length)");
        }
        std::uint64_t be64 = 0;
        if (!read_exact(reinterpret_cast<char*>(&be64), 8, deadline))
            throw ProcessError("mproc: got end of file during message header");
        return begin_payload(static_cast<std::size_t>(big_endian(be64)), deadline);
    }

    // Every message passes here: above max_message_size it is refused (the stream closed,
    // nothing allocated). In records, what the first record holds beyond the header is the
    // payload's start; the rest is still in the socket.
    std::size_t begin_payload(std::size_t n, const platform::Deadline& deadline) {
        if (n > max_message) refuse(n, max_message, "max_message_size", deadline);
        if (!packets) return n;
        const std::size_t here = rend - rpos;
        if (here > n) {
            fd.reset();
            throw std::system_error(EPROTO, std::generic_category(), "mproc: malformed record (longer than its message)");
        }
        msg_left = n - here;
        return n;
    }

    // A length the caller cannot take: over the hard limit the stream is closed (reading that
    // much to skip it would hand the peer our time); under it, the bytes are skipped so the
    // connection stays usable.
    [[noreturn]] void refuse(std::size_t n, std::size_t limit, const char* what, const platform::Deadline& deadline) {
        if (n > max_message) {
            fd.reset();
            throw std::system_error(EMSGSIZE, std::generic_category(),
                                    "mproc: bad message length " + std::to_string(n) + " (max_message_size " +
                                        std::to_string(max_message) + "); the connection is closed");
        }
        // In records, a continuation record may be up to kMaxRecord long: the scratch space
        // must hold one whole.
        std::string scratch(std::min(n, packets ? kMaxRecord : std::size_t{65536}), '\0');
        for (std::size_t left = n; left > 0;) {
            const std::size_t k = std::min(left, scratch.size());
            read_exact(scratch.data(), k, deadline);
            left -= k;
        }
        throw std::system_error(EMSGSIZE, std::generic_category(),
                                "mproc: bad message length " + std::to_string(n) + " (" + what + " " +
                                    std::to_string(limit) + "); the message was skipped");
    }

    // Into memory already held (out's own, or the process's spare) the message is received
    // whole and in place: a record then lands straight in it, and nothing is written twice.
    // Otherwise out grows as the bytes arrive, so that a peer that announces a huge length and
    // sends little costs no more than kPreallocate.
    void read_payload(std::string& out, std::size_t n, const platform::Deadline& deadline) {
        if (n <= kPreallocate)
            detail::resize_for_overwrite(out, n);
        else if (!detail::resize_from_held(out, n))
            return read_growing(out, n, deadline);
        read_part(out.data(), n, 0, n, deadline);
    }

    void read_growing(std::string& out, std::size_t n, const platform::Deadline& deadline) {
        out.clear();
        for (std::size_t got = 0; got < n;) {
            const std::size_t step = std::min(n - got, std::max(got, kPreallocate));
            detail::reserve_bytes(out, got + step);
            out.resize(got + step);
            read_part(out.data() + got, step, got, n, deadline);
            got += step;
        }
    }

    void read_part(char* into, std::size_t size, std::size_t got, std::size_t n, const platform::Deadline& deadline) {
        if (!read_exact(into, size, deadline))
            throw ProcessError("mproc: got end of file during message (" + std::to_string(got) + " of " +
                               std::to_string(n) + " bytes)");
    }

    std::string recv_bytes(std::optional<std::size_t> maxlength, const platform::Deadline& deadline) {
        check_readable();
        LockGuard g(locks->lock(end, kRecv));
        const std::size_t n = read_length(deadline);
        if (maxlength && n > *maxlength) refuse(n, *maxlength, "maxlength", deadline);
        std::string out;
        read_payload(out, n, deadline);
        return out;
    }

    void send(std::string_view bytes, std::span<const int> fds) { send_parts(std::span<const std::string_view>(&bytes, 1), fds); }

    // One message made of parts, sent as if they were one string (no copy into one).
    void send_parts(std::span<const std::string_view> parts, std::span<const int> fds) {
        check_writable();
        std::size_t total = 0;
        for (auto p : parts) total += p.size();
        char header[12];
        std::size_t hlen;
        if (total > 0x7fffffff) {
            const std::int32_t minus_one = static_cast<std::int32_t>(big_endian(0xffffffffu));
            const std::uint64_t n = big_endian(static_cast<std::uint64_t>(total));
            std::memcpy(header, &minus_one, 4);
            std::memcpy(header + 4, &n, 8);
            hlen = 12;
        } else {
            const std::uint32_t n = big_endian(static_cast<std::uint32_t>(total));
            std::memcpy(header, &n, 4);
            hlen = 4;
        }
        const std::string_view head(header, hlen);
        LockGuard g(locks->lock(end, kSend));
        std::vector<std::string_view> pieces;
        pieces.reserve(parts.size() + 1);
        if (!packets) {
            pieces.push_back(head);
            pieces.insert(pieces.end(), parts.begin(), parts.end());
            platform::write_all(fd.get(), socket, pieces, fds);
            return;
        }
        if (record_limit == 0) record_limit = std::clamp(platform::send_buffer_size(fd.get()) / 2, kFirstRecord, kMaxRecord);
        // Records of the concatenated parts: the first carries the header and the descriptors.
        std::size_t part = 0, offset = 0;  // where the next record starts
        auto take = [&](std::size_t len) {
            while (len > 0 && part < parts.size()) {
                const std::size_t n = std::min(len, parts[part].size() - offset);
                if (n > 0) pieces.push_back(parts[part].substr(offset, n));
                offset += n;
                len -= n;
                if (offset == parts[part].size()) {
                    ++part;
                    offset = 0;
                }
            }
        };
        pieces.push_back(head);
        take(std::min(total, kFirstRecord - hlen));
        platform::send_record(fd.get(), pieces, fds);
        for (std::size_t at = std::min(total, kFirstRecord - hlen); at < total; at += record_limit) {
            pieces.clear();
            take(std::min(record_limit, total - at));
            platform::send_record(fd.get(), pieces);
        }
    }
};

Connection::Connection() noexcept = default;

Connection::Connection(int fd, bool readable, bool writable) : s_(std::make_unique<State>()) {
    if (!readable && !writable) throw std::invalid_argument("mproc: at least one of readable or writable must be true");
    s_->fd = platform::UniqueFd(fd);
    s_->readable = readable;
    s_->writable = writable;
    const platform::SocketKind kind = platform::socket_kind(fd);
    s_->socket = kind != platform::SocketKind::NotSocket;
    s_->packets = kind == platform::SocketKind::Packets;
    s_->locks = LockPage::create(1);
}

Connection::Connection(Connection&&) noexcept = default;
Connection& Connection::operator=(Connection&&) noexcept = default;
Connection::~Connection() = default;

Connection::State& Connection::state() const {
    if (!s_) throw std::logic_error("mproc: handle is closed");
    return *s_;
}

Connection::FdCloser::~FdCloser() {
    for (int fd : fds)
        if (fd >= 0) platform::UniqueFd closer(fd);
}

void Connection::send_message(std::string_view bytes, std::span<const int> fds) { state().send(bytes, fds); }
void Connection::send_message_parts(std::span<const std::string_view> parts, std::span<const int> fds) {
    state().send_parts(parts, fds);
}

const std::string& Connection::receive_message(std::vector<int>& fds) {
    State& s = state();
    s.check_readable();
    LockGuard g(s.locks->lock(s.end, kRecv));
    const platform::Deadline never;
    const std::size_t n = s.read_length(never);
    s.read_payload(s.buffer, n, never);
    std::size_t count = 0;
    try {
        count = detail::envelope_fd_count(s.buffer);
    } catch (const SerializationError&) {
        count = 0;  // not a typed message: decode will say so, naming the type asked for
    }
    if (count > s.arrived_fds.size())
        throw SerializationError("mproc: a message announced " + std::to_string(count) +
                                 " descriptors but " + std::to_string(s.arrived_fds.size()) + " arrived");
    for (std::size_t i = 0; i < count; ++i) {
        fds.push_back(s.arrived_fds.front());
        s.arrived_fds.pop_front();
    }
    return s.buffer;
}

void Connection::send_bytes(std::string_view buf, std::size_t offset, std::optional<std::size_t> size) {
    if (offset > buf.size()) throw std::invalid_argument("mproc: offset is larger than the buffer");
    const std::size_t n = size ? *size : buf.size() - offset;
    if (n > buf.size() - offset) throw std::invalid_argument("mproc: buffer length < offset + size");
    state().send(buf.substr(offset, n), {});
}

std::string Connection::recv_bytes(std::optional<std::size_t> maxlength) {
    return state().recv_bytes(maxlength, platform::Deadline::never());
}

std::size_t Connection::recv_bytes_into(std::span<char> buffer, std::size_t offset) {
    State& s = state();
    s.check_readable();
    if (offset > buffer.size()) throw std::invalid_argument("mproc: offset is larger than the buffer");
    LockGuard g(s.locks->lock(s.end, kRecv));
    const platform::Deadline never;
    const std::size_t n = s.read_length(never);
    if (n <= buffer.size() - offset) {
        if (n > 0 && !s.read_exact(buffer.data() + offset, n, never))
            throw ProcessError("mproc: got end of file during message");
        return n;
    }
    std::string whole;
    s.read_payload(whole, n, never);
    throw BufferTooShort(std::move(whole));
}

std::size_t Connection::recv_bytes_into(std::span<std::byte> buffer, std::size_t offset) {
    return recv_bytes_into(std::span<char>(reinterpret_cast<char*>(buffer.data()), buffer.size()), offset);
}

bool Connection::poll(Timeout timeout) const {
    const State& s = state();
    s.check_readable();
    if (s.read_ahead && s.rpos < s.rend) return true;  // already read ahead
    return platform::wait_readable(s.fd.get(), platform::Deadline::after(timeout));
}

Connection Connection::dup() const {
    const State& s = state();
    s.check_open();
    Connection c;
    c.s_ = std::make_unique<State>();
    c.s_->fd = platform::dup_fd(s.fd.get());
    c.s_->readable = s.readable;
    c.s_->writable = s.writable;
    c.s_->socket = s.socket;
    c.s_->packets = s.packets;
    c.s_->locks = s.locks;
    c.s_->end = s.end;
    c.s_->max_message = s.max_message;
    return c;
}

void Connection::close() noexcept {
    if (s_) s_->fd.reset();
}
bool Connection::closed() const noexcept { return !s_ || !s_->fd; }
bool Connection::readable() const noexcept { return s_ && s_->readable; }
bool Connection::writable() const noexcept { return s_ && s_->writable; }
int Connection::fileno() const {
    const State& s = state();
    s.check_open();
    return s.fd.get();
}
void Connection::set_max_message_size(std::size_t bytes) noexcept {
    if (s_) s_->max_message = bytes;
}
std::size_t Connection::max_message_size() const noexcept { return s_ ? s_->max_message : kDefaultMaxMessage; }

void Connection::set_read_ahead() {
    State& s = state();
    s.check_readable();
    if (!s.packets) s.read_ahead = true;
}

void Connection::save(detail::OutputArchive& ar) const {
    const State& s = state();
    s.check_open();
    const std::uint32_t fd_index = ar.add_fd(s.fd.get());
    const std::uint32_t lock_index = ar.add_fd(s.locks->page.fd());
    ar(fd_index, lock_index, s.readable, s.writable, s.socket, s.packets, s.end, static_cast<std::uint64_t>(s.max_message));
}

void Connection::load(detail::InputArchive& ar) {
    std::uint32_t fd_index = 0, lock_index = 0;
    bool readable = false, writable = false, socket = false, packets = false;
    int end = 0;
    std::uint64_t max_message = 0;
    ar(fd_index, lock_index, readable, writable, socket, packets, end, max_message);
    if (end < 0 || end > 1) throw SerializationError("mproc: malformed connection");
    auto s = std::make_unique<State>();
    s->fd = platform::UniqueFd(ar.take_fd(fd_index));
    auto page = std::make_shared<LockPage>();
    page->page = platform::SharedPage::attach(platform::UniqueFd(ar.take_fd(lock_index)));
    if (page->page.size() < 4 * platform::kRobustMutexSize) throw SerializationError("mproc: malformed connection lock page");
    s->locks = std::move(page);
    s->readable = readable;
    s->writable = writable;
    s->socket = socket;
    s->packets = packets;
    s->end = end;
    s->max_message = static_cast<std::size_t>(max_message);
    s_ = std::move(s);
}

std::pair<Connection, Connection> make_pipe(bool duplex) {
    platform::UniqueFd a, b;
    if (duplex) {
        std::tie(a, b) = platform::socket_pair(platform::SocketKind::Packets);
    } else {
        std::tie(a, b) = platform::make_pipe();
    }
    if (duplex)
        for (int fd : {a.get(), b.get()}) platform::set_send_buffer_size(fd, kPipeSendBuffer);
    auto locks = LockPage::create(2);
    auto make = [&](platform::UniqueFd fd, int end, bool r, bool w) {
        Connection c;
        c.s_ = std::make_unique<Connection::State>();
        c.s_->fd = std::move(fd);
        c.s_->readable = r;
        c.s_->writable = w;
        c.s_->socket = duplex;
        c.s_->packets = duplex;
        c.s_->locks = locks;
        c.s_->end = end;
        return c;
    };
    Connection first = make(std::move(a), 0, true, duplex);
    Connection second = make(std::move(b), 1, duplex, true);
    return {std::move(first), std::move(second)};
}

std::string Address::str() const {
    if (!path.empty()) return path[0] == '\0' ? std::string("@").append(path, 1) : path;
    const bool v6 = host.find(':') != std::string::npos;
    return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

Waitable::Waitable(const BaseProcess& p) : fd_(p.sentinel()) {}

std::vector<Waitable> wait(const std::vector<Waitable>& objects, Timeout timeout) {
    std::vector<int> fds;
    fds.reserve(objects.size());
    for (const auto& o : objects) fds.push_back(o.poll_fd());
    std::vector<Waitable> ready;
    for (std::size_t i : platform::wait_any_readable(fds, platform::Deadline::after(timeout))) ready.push_back(objects[i]);
    return ready;
}

// Python's authentication handshake (Lib/multiprocessing/connection.py, 3.12's table of steps):
//
//   serving side (deliver_challenge)        connecting side (answer_challenge)
//   1. send "#CHALLENGE#" + M, where
//      M = "{sha256}" + 40 random bytes     2. receive at most 256 bytes; must start with
//                                              "#CHALLENGE#"; M is the rest (>= 20 bytes)
//                                           3. M of 20 bytes (a 3.11 server): reply the raw
//                                              HMAC-MD5(key, M). Else M = "{d}..." with d an
//                                              allowed digest: reply "{d}" + HMAC-d(key, M)
//   4. receive at most 256 bytes: 16 bytes
//      is a raw HMAC-MD5 (a 3.11 client),
//      else "{d}" + MAC; compare
//      HMAC-d(key, M) in constant time
//   5. send "#WELCOME#" or "#FAILURE#"      6. anything but "#WELCOME#": AuthenticationError
//
// The MAC covers all of M, the "{digest}" prefix included, so a peer cannot downgrade the
// digest. Nothing is deserialized before this; every read is bounded to 256 bytes.
namespace {
constexpr std::string_view kChallenge = "#CHALLENGE#";
constexpr std::string_view kWelcome = "#WELCOME#";
constexpr std::string_view kFailure = "#FAILURE#";
constexpr std::size_t kLegacyChallenge = 20;
constexpr std::size_t kMd5Len = 16;

// The digest a message names, and its payload; "" for the legacy forms (16 or 20 bytes).
std::pair<std::string, std::string_view> digest_and_payload(std::string_view m) {
    if (m.size() == kLegacyChallenge || m.size() == kMd5Len) return {"", m};
    if (!m.empty() && m[0] == '{') {
        const std::size_t curly = m.find('}', 1);
        if (curly != std::string_view::npos && curly <= 9) {  // the longest name, sha3_384, has 8
            const std::string name(m.substr(1, curly - 1));
            if (detail::hmac_digest_allowed(name)) return {name, m.substr(curly + 1)};
        }
    }
    throw AuthenticationError("mproc: unsupported message length, missing digest prefix, or unsupported digest");
}

std::string recv_handshake(Connection::State& s, const platform::Deadline& deadline) {
    try {
        return s.recv_bytes(256, deadline);
    } catch (const std::system_error& e) {
        if (e.code().value() == EMSGSIZE) throw AuthenticationError("mproc: handshake message longer than 256 bytes");
        throw;
    } catch (const EOFError&) {
        throw AuthenticationError("mproc: the peer closed the connection during the handshake");
    }
}
}  // namespace

void deliver_challenge(Connection& c, std::string_view authkey, Timeout timeout) {
    Connection::State& s = c.handshake_state();
    const platform::Deadline deadline = platform::Deadline::after(timeout);
    std::string message = "{sha256}";
    std::string random(40, '\0');
    platform::random_bytes(random.data(), random.size());
    message += random;
    s.send(std::string(kChallenge) + message, {});
    const std::string response = recv_handshake(s, deadline);
    bool ok = false;
    std::string why = "digest received was wrong";
    try {
        auto [name, mac] = digest_and_payload(response);
        if (name.empty()) name = "md5";
        const std::string expected = detail::hmac(name, authkey, message);
        ok = expected.size() == mac.size() && detail::constant_time_equal(expected, mac);
    } catch (const AuthenticationError& e) {
        why = e.what();
    }
    if (!ok) {
        try {
            s.send(kFailure, {});
        } catch (...) {
        }
        throw AuthenticationError("mproc: " + why);
    }
    s.send(kWelcome, {});
}

void answer_challenge(Connection& c, std::string_view authkey, Timeout timeout) {
    Connection::State& s = c.handshake_state();
    const platform::Deadline deadline = platform::Deadline::after(timeout);
    const std::string got = recv_handshake(s, deadline);
    if (got.compare(0, kChallenge.size(), kChallenge) != 0)
        throw AuthenticationError("mproc: protocol error, expected a challenge");
    const std::string_view message = std::string_view(got).substr(kChallenge.size());
    if (message.size() < kLegacyChallenge)
        throw AuthenticationError("mproc: challenge too short: " + std::to_string(message.size()) + " bytes");
    const std::string name = digest_and_payload(message).first;
    const std::string response =
        name.empty() ? detail::hmac("md5", authkey, message) : "{" + name + "}" + detail::hmac(name, authkey, message);
    s.send(response, {});
    if (recv_handshake(s, deadline) != kWelcome) throw AuthenticationError("mproc: digest sent was rejected");
}

}  // namespace mproc::connection
