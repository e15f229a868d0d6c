// Sockets on Linux (platform/net.hpp): pairs, SCM_RIGHTS, records, Unix and TCP listeners.
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <stdexcept>

#include "platform/linux/cmsg.hpp"
#include "platform/linux/posix.hpp"
#include "platform/net.hpp"

namespace mproc::platform {

std::pair<UniqueFd, UniqueFd> socket_pair(SocketKind kind) {
    const int type = kind == SocketKind::Packets ? SOCK_SEQPACKET : SOCK_STREAM;
    int sv[2];
    if (::socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv) != 0) throw_errno("socketpair");
    return {UniqueFd(sv[0]), UniqueFd(sv[1])};
}

bool is_socket(int fd) {
    struct stat st;
    if (::fstat(fd, &st) != 0) throw_errno("fstat");
    return S_ISSOCK(st.st_mode);
}

SocketKind socket_kind(int fd) {
    int type = 0;
    socklen_t len = sizeof type;
    if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0) {
        if (errno == ENOTSOCK) return SocketKind::NotSocket;
        throw_errno("getsockopt(SO_TYPE)");
    }
    return type == SOCK_STREAM ? SocketKind::Stream : type == SOCK_SEQPACKET ? SocketKind::Packets : SocketKind::Other;
}

void send_all(int sock, const void* data, std::size_t size, std::span<const int> fds) {
    const std::string_view piece(static_cast<const char*>(data), size);
    write_all(sock, true, std::span<const std::string_view>(&piece, 1), fds);
}

std::size_t recv_all(int sock, void* data, std::size_t size, std::vector<UniqueFd>* fds) {
    char* p = static_cast<char*>(data);
    std::size_t got = 0;
    while (got < size) {
        const std::size_t n = receive_with_fds(sock, p + got, size - got, fds);
        if (n == 0) break;
        got += n;
    }
    return got;
}

std::size_t recv_message(int sock, void* data, std::size_t size, std::vector<UniqueFd>& fds) {
    return receive_with_fds(sock, data, size, &fds);
}

void set_send_buffer_size(int fd, int bytes) noexcept {
    ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes);  // best effort: capped silently
}

std::size_t send_buffer_size(int fd) {
    int v = 0;
    socklen_t len = sizeof v;
    if (::getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, &len) != 0) throw_errno("getsockopt(SO_SNDBUF)");
    return static_cast<std::size_t>(v);
}

void send_record(int fd, std::span<const std::string_view> pieces, std::span<const int> fds) {
    iovec iov[4];
    std::size_t count = 0;
    for (auto p : pieces)
        if (!p.empty()) iov[count++] = iovec{const_cast<char*>(p.data()), p.size()};
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = count;
    std::vector<char> control;
    attach_fds(msg, control, fds);
    while (::sendmsg(fd, &msg, MSG_NOSIGNAL) < 0)
        if (errno != EINTR) throw_errno("mproc: send on a connection whose other end is closed", errno);
}

std::size_t recv_record(int fd, void* data, std::size_t size, std::vector<UniqueFd>& fds) {
    bool truncated = false;
    const std::size_t n = receive_with_fds(fd, data, size, &fds, &truncated);
    if (truncated) throw_errno("mproc: a record longer than expected", EMSGSIZE);
    return n;
}

namespace {
socklen_t to_sockaddr_un(const std::string& path, sockaddr_un& sa) {
    if (path.size() >= sizeof sa.sun_path)
        throw std::invalid_argument("mproc: Unix socket path too long: " + path);
    std::memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    std::memcpy(sa.sun_path, path.data(), path.size());
    // An abstract name (leading NUL) is exactly as long as given; a path ends at its NUL.
    return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + (path[0] == '\0' ? 0 : 1));
}

SocketAddress from_sockaddr(const sockaddr* sa, socklen_t len) {
    SocketAddress a;
    if (sa->sa_family == AF_UNIX) {
        const auto* un = reinterpret_cast<const sockaddr_un*>(sa);
        const std::size_t n = len > offsetof(sockaddr_un, sun_path) ? len - offsetof(sockaddr_un, sun_path) : 0;
        if (n > 0 && un->sun_path[0] == '\0')
            a.path.assign(un->sun_path, n);
        else
            a.path.assign(un->sun_path, strnlen(un->sun_path, n));
    } else {
        char host[INET6_ADDRSTRLEN] = {};
        if (sa->sa_family == AF_INET) {
            const auto* in = reinterpret_cast<const sockaddr_in*>(sa);
            inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
            a.port = ntohs(in->sin_port);
        } else {
            const auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
            inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
            a.port = ntohs(in6->sin6_port);
        }
        a.host = host;
    }
    return a;
}

struct Resolved {
    addrinfo* list = nullptr;
    ~Resolved() {
        if (list) freeaddrinfo(list);
    }
};

void resolve(const SocketAddress& addr, bool passive, Resolved& r) {
    if (addr.port < 0 || addr.port > 65535)
        throw std::invalid_argument("mproc: port out of range: " + std::to_string(addr.port));
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = passive ? AI_PASSIVE : 0;
    const std::string port = std::to_string(addr.port);
    const int e = getaddrinfo(addr.host.empty() ? nullptr : addr.host.c_str(), port.c_str(), &hints, &r.list);
    if (e != 0)
        throw_errno("mproc: cannot resolve '" + addr.host + "': " + gai_strerror(e), EHOSTUNREACH);
}
}  // namespace

UniqueFd listen_socket(const SocketAddress& addr, int backlog, SocketAddress& bound) {
    UniqueFd s;
    if (!addr.path.empty()) {
        sockaddr_un sa;
        const socklen_t len = to_sockaddr_un(addr.path, sa);
        s = UniqueFd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        if (!s) throw_errno("socket");
        if (::bind(s.get(), reinterpret_cast<sockaddr*>(&sa), len) != 0)
            throw_errno("mproc: cannot listen on " + addr.path);
    } else {
        Resolved r;
        resolve(addr, true, r);
        int err = 0;
        for (addrinfo* ai = r.list; ai; ai = ai->ai_next) {
            UniqueFd c(::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol));
            if (!c) {
                err = errno;
                continue;
            }
            const int one = 1;
            ::setsockopt(c.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
            if (::bind(c.get(), ai->ai_addr, ai->ai_addrlen) == 0) {
                s = std::move(c);
                break;
            }
            err = errno;
        }
        if (!s) throw_errno("mproc: cannot listen on " + addr.host + ":" + std::to_string(addr.port), err);
    }
    if (::listen(s.get(), backlog > 0 ? backlog : 1) != 0) throw_errno("listen");
    sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (::getsockname(s.get(), reinterpret_cast<sockaddr*>(&ss), &len) != 0) throw_errno("getsockname");
    bound = from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len);
    return s;
}

std::optional<UniqueFd> accept_socket(int listener, const Deadline& deadline, SocketAddress& peer) {
    for (;;) {
        if (!wait_readable(listener, deadline)) return std::nullopt;
        sockaddr_storage ss;
        socklen_t len = sizeof ss;
        const int fd = ::accept4(listener, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_CLOEXEC);
        if (fd >= 0) {
            UniqueFd c(fd);
            peer = from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len);
            if (ss.ss_family != AF_UNIX) {
                const int one = 1;  // messages are small and framed: do not wait to coalesce
                ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            }
            return c;
        }
        if (errno == EINTR || errno == ECONNABORTED || errno == EAGAIN) continue;
        throw_errno("accept");
    }
}

UniqueFd connect_socket(const SocketAddress& addr) {
    if (!addr.path.empty()) {
        sockaddr_un sa;
        const socklen_t len = to_sockaddr_un(addr.path, sa);
        UniqueFd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        if (!s) throw_errno("socket");
        while (::connect(s.get(), reinterpret_cast<sockaddr*>(&sa), len) != 0)
            if (errno != EINTR) throw_errno("mproc: cannot connect to " + addr.path);
        return s;
    }
    Resolved r;
    resolve(addr, false, r);
    int err = ECONNREFUSED;
    for (addrinfo* ai = r.list; ai; ai = ai->ai_next) {
        UniqueFd s(::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol));
        if (!s) {
            err = errno;
            continue;
        }
        int rc;
        while ((rc = ::connect(s.get(), ai->ai_addr, ai->ai_addrlen)) != 0 && errno == EINTR) {
        }
        if (rc == 0) {
            const int one = 1;
            ::setsockopt(s.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            return s;
        }
        err = errno;
    }
    throw_errno("mproc: cannot connect to " + addr.host + ":" + std::to_string(addr.port), err);
}

bool peer_closed(int fd) noexcept {
    pollfd p{fd, POLLRDHUP, 0};
    int rc;
    while ((rc = ::poll(&p, 1, 0)) < 0 && errno == EINTR) {
    }
    return rc > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

void shutdown_socket(int fd, bool read_only) noexcept { ::shutdown(fd, read_only ? SHUT_RD : SHUT_RDWR); }

void set_keepalive(int fd, int idle_s, int interval_s, int count) noexcept {
    sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0 || (ss.ss_family != AF_INET && ss.ss_family != AF_INET6))
        return;
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle_s, sizeof idle_s);
    ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval_s, sizeof interval_s);
    ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
    // And a write that is never acknowledged fails after as long.
    const unsigned ms = static_cast<unsigned>((idle_s + interval_s * count) * 1000);
    ::setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof ms);
}

bool is_loopback(const std::string& h) noexcept {
    return h.rfind("127.", 0) == 0 || h == "::1" || h.rfind("::ffff:127.", 0) == 0;
}

}  // namespace mproc::platform
