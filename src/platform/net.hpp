// src/platform/net.hpp: sockets (section "net" of the platform layer; Linux: linux/net.cpp).
//
// Socket pairs between related processes (descriptors travel over them), and listening and
// connecting sockets, Unix or TCP, for connections and managers. Every socket is close-on-exec;
// sends never raise SIGPIPE.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "platform/fd.hpp"
#include "platform/io.hpp"

namespace mproc::platform {

// Stream: a byte stream (SOCK_STREAM); Packets: records kept whole, in order (SOCK_SEQPACKET).
enum class SocketKind { NotSocket, Stream, Packets, Other };

std::pair<UniqueFd, UniqueFd> socket_pair(SocketKind kind);  // Stream or Packets
bool is_socket(int fd);
// What fd is; NotSocket for anything that is not a socket (a pipe).
SocketKind socket_kind(int fd);

// Writes all bytes to a socket (MSG_NOSIGNAL: a closed peer is EPIPE, never SIGPIPE), with the
// descriptors attached to the first byte.
void send_all(int sock, const void* data, std::size_t size, std::span<const int> fds = {});
// Reads until size bytes have come or the peer has closed; returns how many came (size, unless
// end of file came first: 0 when it came before the first byte). Descriptors that arrive are
// appended to fds (when non-null).
std::size_t recv_all(int sock, void* data, std::size_t size, std::vector<UniqueFd>* fds = nullptr);
// One datagram (SOCK_SEQPACKET) with its descriptors; returns 0 at end of file.
std::size_t recv_message(int sock, void* data, std::size_t size, std::vector<UniqueFd>& fds);
// SOCK_SEQPACKET: one record (one sendmsg) made of the pieces; descriptors attached.
void send_record(int fd, std::span<const std::string_view> pieces, std::span<const int> fds = {});
// One record into data (at most size bytes); 0 at end of file. A record longer than size is
// an error (the stream is not one of ours).
std::size_t recv_record(int fd, void* data, std::size_t size, std::vector<UniqueFd>& fds);
// SO_SNDBUF: asks for `bytes` (the kernel caps it at wmem_max); reads what is in force.
void set_send_buffer_size(int fd, int bytes) noexcept;
std::size_t send_buffer_size(int fd);

struct SocketAddress {
    std::string host;  // numeric, for TCP
    int port = 0;
    std::string path;  // Unix; a leading '\0' is an abstract name
};
// A listening socket, close-on-exec. TCP when path is empty (host may be a name; port 0 picks
// a free port); `bound` receives the address actually bound.
UniqueFd listen_socket(const SocketAddress& addr, int backlog, SocketAddress& bound);
// accept(2) with a deadline; empty on timeout.
std::optional<UniqueFd> accept_socket(int listener, const Deadline& deadline, SocketAddress& peer);
UniqueFd connect_socket(const SocketAddress& addr);
// Whether the peer of a connected socket has closed or shut down its end (looks, never waits).
bool peer_closed(int fd) noexcept;
// shutdown(2): a thread blocked reading the socket gets end-of-file (and a thread blocked in
// accept on a listening socket wakes). With read_only, what is being written still goes out.
void shutdown_socket(int fd, bool read_only = false) noexcept;
// TCP keepalive, so that a peer whose machine vanished (no reset ever arrives) is noticed:
// after `idle_s` of silence, probes every `interval_s`, given up after `count`. No-op for a
// socket that is not TCP.
void set_keepalive(int fd, int idle_s, int interval_s, int count) noexcept;
// Whether a numeric host is a loopback address (127.0.0.0/8, ::1, ::ffff:127.x.x.x).
bool is_loopback(const std::string& numeric_host) noexcept;

}  // namespace mproc::platform
