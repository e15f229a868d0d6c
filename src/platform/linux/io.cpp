// Descriptors, sockets and the deadline loop on Linux.
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cmath>
#include <cstring>
#include <system_error>

#include "mproc/errors.hpp"
#include "platform/linux/cmsg.hpp"
#include "platform/platform.hpp"

namespace mproc::platform {

namespace {
[[noreturn]] void throw_errno(const char* what) {
    throw std::system_error(errno, std::generic_category(), what);
}
}  // namespace

void UniqueFd::reset(int fd) noexcept {
    if (fd_ >= 0) ::close(fd_);  // close(2) is not retried after EINTR on Linux: the fd is gone
    fd_ = fd;
}

std::vector<std::size_t> wait_any_readable(std::span<const int> fds, const Deadline& deadline) {
    std::vector<pollfd> pfds(fds.size());
    for (std::size_t i = 0; i < fds.size(); ++i) pfds[i] = pollfd{fds[i], POLLIN, 0};
    for (;;) {
        const int n = ::poll(pfds.data(), pfds.size(), deadline.poll_timeout_ms());
        if (n < 0) {
            if (errno == EINTR) continue;  // resume with the time that remains
            throw_errno("poll");
        }
        std::vector<std::size_t> ready;
        for (std::size_t i = 0; i < pfds.size(); ++i)
            if (pfds[i].revents != 0) ready.push_back(i);
        if (!ready.empty() || deadline.expired()) return ready;
        // Nothing ready and time left: poll woke early (a rounding of the clock); wait again.
    }
}

bool wait_readable(int fd, const Deadline& deadline) {
    return !wait_any_readable(std::span<const int>(&fd, 1), deadline).empty();
}

std::pair<UniqueFd, UniqueFd> socket_pair(int type) {
    int sv[2];
    if (::socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv) != 0) throw_errno("socketpair");
    return {UniqueFd(sv[0]), UniqueFd(sv[1])};
}

void set_cloexec(int fd, bool on) {
    int flags = ::fcntl(fd, F_GETFD);
    if (flags < 0) throw_errno("fcntl(F_GETFD)");
    flags = on ? (flags | FD_CLOEXEC) : (flags & ~FD_CLOEXEC);
    if (::fcntl(fd, F_SETFD, flags) != 0) throw_errno("fcntl(F_SETFD)");
}

bool is_cloexec(int fd) {
    const int flags = ::fcntl(fd, F_GETFD);
    if (flags < 0) throw_errno("fcntl(F_GETFD)");
    return (flags & FD_CLOEXEC) != 0;
}

void send_all(int sock, const void* data, std::size_t size, std::span<const int> fds) {
    const std::string_view piece(static_cast<const char*>(data), size);
    write_all(sock, true, std::span<const std::string_view>(&piece, 1), fds);
}

bool recv_exact(int sock, void* data, std::size_t size, std::vector<UniqueFd>* fds) {
    char* p = static_cast<char*>(data);
    std::size_t got = 0;
    while (got < size) {
        const std::size_t n = receive_with_fds(sock, p + got, size - got, fds);
        if (n == 0) {
            if (got == 0) return false;
            throw EOFError("mproc: end of file in the middle of a message (" + std::to_string(got) +
                           " of " + std::to_string(size) + " bytes)");
        }
        got += n;
    }
    return true;
}

std::size_t recv_message(int sock, void* data, std::size_t size, std::vector<UniqueFd>& fds) {
    return receive_with_fds(sock, data, size, &fds);
}

UniqueFd make_event() {
    const int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
    return UniqueFd(fd);
}

void event_notify(int fd) noexcept {
    const std::uint64_t one = 1;
    // Only EAGAIN can fail here (the counter is saturated), and then a wake-up is pending anyway.
    [[maybe_unused]] const ssize_t n = ::write(fd, &one, sizeof one);
}

void event_drain(int fd) noexcept {
    std::uint64_t v;
    [[maybe_unused]] const ssize_t n = ::read(fd, &v, sizeof v);
}

}  // namespace mproc::platform
