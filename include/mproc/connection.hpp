// mproc/connection.hpp: message connections (Python: multiprocessing.Pipe and
// multiprocessing.connection).
//
// A Connection is one end of a byte stream carrying messages: typed values (send / recv<T>) or
// raw bytes (send_bytes / recv_bytes). Pipe() makes two connected ends; Listener and Client
// connect processes by address (TCP, a Unix socket path, or a Linux abstract name).
//
// Wire format, as Python's multiprocessing.connection (so a Python program can be the other
// end of send_bytes / recv_bytes): each message is a 4-byte big-endian signed length, or -1
// followed by an 8-byte big-endian length for messages above 2^31-1 bytes, then the bytes.
// A typed message's bytes carry its type's fingerprint, so recv<T> of another type is a
// SerializationError naming both types, and the connection stays usable.
// Authentication is Python's challenge/response: HMAC-MD5 with a 20-byte challenge for 3.11
// peers, "{sha256}" and the other digests Python accepts for 3.12+ peers; nothing is read
// before authentication but the at most 256-byte handshake messages.
//
// Concurrency: several threads, or several processes holding the same end (after fork, or
// passed to a child), may send at once; messages never interleave. The same holds for
// receiving. Each Pipe() keeps its locks in a small shared page for that.
//
// Blocking: a send takes this end's send lock (a robust process-shared mutex, held for the
// whole message) and blocks in the kernel while the socket or pipe is full; a receive takes the
// receive lock and blocks in the kernel until the whole message has arrived, with no timeout
// (poll() first to bound the wait). poll() and wait() block in poll(2) and take no lock.
// Authentication (Listener::accept, Client with a key) is a round trip with the peer. Nothing
// else blocks.
//
// Errors: the other end closed -> mproc::EOFError at a message boundary; end of file inside a
// message -> mproc::ProcessError saying so; a length above maxlength -> std::system_error
// (EMSGSIZE) after the message is skipped (the connection stays usable); a length above
// max_message_size() -> std::system_error (EMSGSIZE) and the connection is closed, nothing
// allocated for it; a malformed header -> std::system_error (EPROTO) and the connection is
// closed; sending to a closed peer -> std::system_error (EPIPE), never SIGPIPE; use after
// close() (or of a default-constructed Connection), sending on a read-only end, receiving on a
// write-only one, or descriptors over a pipe -> std::logic_error. A timeout that is NaN ->
// std::invalid_argument.
#pragma once

#include <concepts>
#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "mproc/detail/timeout.hpp"
#include "mproc/serialize.hpp"

namespace mproc {
class BaseProcess;

namespace connection {

// Where a Listener listens and a Client connects. TCP: {host, port} (port 0: the system picks
// a free one; Listener::address() tells which). Unix: .path; a path that starts with '\0' is a
// Linux abstract name (no file). An empty Address given to Listener means a fresh Unix socket
// in a private temporary directory, as Python's default.
struct Address {
    std::string host = {};
    int port = 0;
    std::string path = {};

    static Address unix_socket(std::string path) { return {{}, 0, std::move(path)}; }
    static Address abstract(std::string name) { return {{}, 0, std::string(1, '\0') + name}; }
    bool is_unix() const noexcept { return !path.empty(); }
    bool empty() const noexcept { return host.empty() && port == 0 && path.empty(); }
    std::string str() const;  // "127.0.0.1:6000", "/tmp/x.sock", "@name" for an abstract name
    bool operator==(const Address&) const = default;

    template <class Ar>
    void serialize(Ar& ar) {
        ar(host, port, path);
    }
};

class Connection {
public:
    // A closed connection.
    Connection() noexcept;
    // Takes ownership of a connected stream socket or pipe end (Python: Connection(handle,
    // readable, writable)). Neither readable nor writable: std::invalid_argument, and fd is not
    // taken.
    explicit Connection(int fd, bool readable = true, bool writable = true);
    Connection(Connection&&) noexcept;
    Connection& operator=(Connection&&) noexcept;
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;
    ~Connection();

    // Sends a serializable value. Values that hold descriptors (a Connection, ...) travel too,
    // over socket connections (over a pipe: std::logic_error). What T's serialization throws
    // passes through, nothing sent.
    template <class T>
    void send(const T& obj) {
        std::string buf;
        std::vector<int> fds;
        detail::encode(buf, obj, fds);
        send_message(buf, fds);
    }

    // Blocks until a message arrives and reads it as a T. A message of another type is a
    // SerializationError naming both types; it is consumed and the connection stays usable, as
    // after anything T's own serialize() throws.
    template <class T>
    T recv() {
        std::vector<int> fds;
        const std::string& bytes = receive_message(fds);
        FdCloser closer{fds};
        return detail::decode<T>(bytes, fds);
    }

    // Sends bytes [offset, offset + size) of buf (Python: send_bytes(buf, offset, size)).
    // offset or size outside buf: std::invalid_argument.
    void send_bytes(std::string_view buf, std::size_t offset = 0, std::optional<std::size_t> size = {});
    // Blocks until a message arrives and returns its bytes. maxlength: see the header comment.
    std::string recv_bytes(std::optional<std::size_t> maxlength = {});
    // Reads a message into buffer at offset; returns its length. A buffer too small: the message
    // is consumed and mproc::BufferTooShort holds all of it. offset past the buffer's end:
    // std::invalid_argument, nothing read.
    std::size_t recv_bytes_into(std::span<char> buffer, std::size_t offset = 0);
    std::size_t recv_bytes_into(std::span<std::byte> buffer, std::size_t offset = 0);

    // Whether a message (or end of file) is waiting, waiting up to timeout (Python's default
    // timeout is 0: do not wait; an empty Timeout waits forever). Takes no lock: with several
    // readers, the message it saw may be another's by the time this one receives.
    bool poll(Timeout timeout = Timeout(0.0)) const;

    // Another Connection on the same end: a new descriptor of the same stream, sharing its
    // send and receive locks (Python shares one Connection object between processes by passing
    // it twice; a move-only C++ object needs the copy to be explicit, as socket.dup()). Closed:
    // std::logic_error; dup(2) failing: std::system_error.
    Connection dup() const;

    // Never blocks. Not while another thread uses this same object (a race, as closing a
    // descriptor in use is); other ends and dup()s are unaffected.
    void close() noexcept;
    bool closed() const noexcept;
    bool readable() const noexcept;
    bool writable() const noexcept;
    // Closed: std::logic_error (Python: OSError).
    int fileno() const;

    // The largest message recv accepts, whatever maxlength says (default 1 GiB): a longer length
    // header from the peer is refused before anything is allocated for it.
    void set_max_message_size(std::size_t bytes) noexcept;
    std::size_t max_message_size() const noexcept;
    // For a byte-stream connection that only this object reads (no dup, not shared with a
    // child): read whatever has arrived, up to 64 KiB, in one call, so a small message costs
    // one read instead of two (header, then payload). Bytes of a following message are kept for
    // the next recv. (Pipes, which are records, already read a small message whole.)
    void set_read_ahead();

    // Connections travel to children (under every start method) and over socket connections:
    // the receiver gets its own descriptor of the same stream, and shares the send/receive locks.
    void save(detail::OutputArchive& ar) const;
    void load(detail::InputArchive& ar);

    // The send and receive paths behind send/recv (public for the library's other modules).
    void send_message(std::string_view bytes, std::span<const int> fds = {});
    // The same message given in parts (the pool sends large chunk buffers without copying).
    void send_message_parts(std::span<const std::string_view> parts, std::span<const int> fds = {});
    const std::string& receive_message(std::vector<int>& fds);

    struct State;
    // For the handshake and the library's other modules; not for users.
    State& handshake_state() { return state(); }

private:
    struct FdCloser {
        std::vector<int>& fds;
        ~FdCloser();
    };
    State& state() const;
    std::unique_ptr<State> s_;

    friend std::pair<Connection, Connection> make_pipe(bool duplex);
};

// Listens for connections (Python: multiprocessing.connection.Listener). With an authkey,
// accept() authenticates each peer (both ways, as Python does) before returning it; a peer
// that fails is closed and accept() throws mproc::AuthenticationError.
class Listener {
public:
    // Binds and listens at once: std::system_error when the system refuses (EADDRINUSE, ...),
    // std::invalid_argument for a Unix path too long or a port out of range.
    explicit Listener(Address address = {}, std::optional<std::string> authkey = std::nullopt, int backlog = 1);
    Listener(Listener&&) noexcept;
    Listener& operator=(Listener&&) noexcept;
    ~Listener();

    // Blocks in the kernel until a peer connects, then, with an authkey, for the handshake's
    // round trip. With a timeout, mproc::TimeoutError when none came in time (the timeout
    // covers the handshake too, so a peer that stalls cannot block accept forever). Closed:
    // std::logic_error (Python: OSError).
    Connection accept(Timeout timeout = {});
    // Never blocks; removes a Unix socket's file (and the default address's directory).
    void close() noexcept;
    const Address& address() const noexcept { return address_; }
    const std::optional<Address>& last_accepted() const noexcept { return last_accepted_; }
    // Closed: std::logic_error.
    int fileno() const;

private:
    int fd_ = -1;
    Address address_;
    std::optional<std::string> authkey_;
    std::optional<Address> last_accepted_;
    std::string temp_dir_;  // for the default address; removed at close
    bool unlink_ = false;
};

// Connects to a Listener (Python: multiprocessing.connection.Client). With an authkey, the
// handshake runs before this returns, a round trip with no timeout (as Python's); a wrong key
// is mproc::AuthenticationError. Nobody listening there: std::system_error (ECONNREFUSED,
// ENOENT).
Connection Client(const Address& address, std::optional<std::string> authkey = std::nullopt);

// Python's handshake steps, for protocols built on Connection (managers use them).
// deliver_challenge sends a "{sha256}" challenge (3.12 style; 3.11 peers answer it with
// HMAC-MD5, which is accepted) and checks the answer; answer_challenge answers either style.
// Each is a round trip with the peer: a wrong key, a malformed message or end of file is
// mproc::AuthenticationError; the timeout passing, mproc::TimeoutError.
void deliver_challenge(Connection& c, std::string_view authkey, Timeout timeout = {});
void answer_challenge(Connection& c, std::string_view authkey, Timeout timeout = {});

// Something wait() can watch, as Python's wait takes a Connection, a sentinel or any object
// with fileno(): a Connection (a message or end of file waiting); a process (its sentinel: it
// ended); a queue (its fileno(): get() would not block, an item waits or it is shut down); a
// futures::Future or an AsyncResult (its sentinel(): done); a Listener (a peer is waiting); or
// a raw descriptor. Asking a queue, a future or an AsyncResult makes its descriptor (see their
// fileno() / sentinel()); it belongs to that object. A Waitable refers to its object, as to a
// Connection: keep the object while the Waitable is waited on; wait() asks it again each time.
class Waitable {
public:
    Waitable(Connection* c) : conn_(c), fd_(c->fileno()) {}  // NOLINT: implicit by design
    Waitable(Connection& c) : Waitable(&c) {}                // NOLINT
    Waitable(const BaseProcess& p);                          // NOLINT
    Waitable(int fd) : fd_(fd) {}                            // NOLINT
    template <class W>
        requires(!std::is_base_of_v<Connection, W> && requires(const W& w) {
            { w.fileno() } -> std::convertible_to<int>;
        })
    Waitable(const W& w)  // NOLINT
        : fd_(w.fileno()), object_(&w), ask_([](const void* o) { return static_cast<const W*>(o)->fileno(); }) {}
    template <class W>
        requires(!std::is_base_of_v<BaseProcess, W> && !requires(const W& w) { w.fileno(); } &&
                 requires(const W& w) {
                     { w.sentinel() } -> std::convertible_to<int>;
                 })
    Waitable(const W& w)  // NOLINT
        : fd_(w.sentinel()), object_(&w), ask_([](const void* o) { return static_cast<const W*>(o)->sentinel(); }) {}
    Connection* connection() const noexcept { return conn_; }
    int fileno() const noexcept { return fd_; }
    bool operator==(const Waitable& o) const noexcept { return fd_ == o.fd_ && conn_ == o.conn_; }
    // The descriptor to poll now: a queue's is brought in line with the queue at each ask.
    int poll_fd() const { return ask_ ? ask_(object_) : fd_; }

private:
    Connection* conn_ = nullptr;
    int fd_ = -1;
    const void* object_ = nullptr;  // a queue, future, ... whose fileno() / sentinel() ask_ calls
    int (*ask_)(const void*) = nullptr;
};

// Waits until any object is ready (see Waitable) or the timeout passes; returns the ready ones,
// in the order given, empty at the timeout (Python: multiprocessing.connection.wait). Blocks in
// poll(2); takes no lock. As with several readers of a Connection, a queue another consumer
// empties meanwhile may be returned all the same: its get_nowait() then raises Empty.
std::vector<Waitable> wait(const std::vector<Waitable>& objects, Timeout timeout = {});

std::pair<Connection, Connection> make_pipe(bool duplex);

}  // namespace connection

using connection::Connection;

// Two connected ends (Python: multiprocessing.Pipe). Duplex: a socketpair, both ends send and
// receive. Not duplex: a pipe; the first end only receives, the second only sends.
inline std::pair<Connection, Connection> Pipe(bool duplex = true) { return connection::make_pipe(duplex); }

}  // namespace mproc
