// Waiting and moving bytes on Linux (platform/io.hpp): poll with a deadline, read, write (with
// SIGPIPE kept from killing the writer), eventfd.
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>
#include <stdexcept>

#include "platform/io.hpp"
#include "platform/linux/cmsg.hpp"
#include "platform/linux/posix.hpp"

namespace mproc::platform {

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

std::size_t read_some(int fd, void* data, std::size_t size, std::vector<UniqueFd>* fds) {
    if (fds) return receive_with_fds(fd, data, size, fds);  // recvmsg, for descriptors
    for (;;) {
        const ssize_t n = ::read(fd, data, size);
        if (n >= 0) return static_cast<std::size_t>(n);
        if (errno == EINTR) continue;
        if (errno == ECONNRESET) return 0;  // the peer vanished: end of file to us
        throw_errno("read");
    }
}

namespace {
// Writing to a pipe whose reader is gone raises SIGPIPE, which kills by default. Block it in
// this thread for the write, and if the write failed with EPIPE, take the pending signal off
// the queue before unblocking (unless one was pending before we started).
class SigpipeGuard {
public:
    SigpipeGuard() {
        sigset_t pipe;
        sigemptyset(&pipe);
        sigaddset(&pipe, SIGPIPE);
        sigset_t pending;
        sigpending(&pending);
        already_pending_ = sigismember(&pending, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &pipe, &old_);
    }
    void consume_if_raised() {
        if (already_pending_) return;
        sigset_t pipe;
        sigemptyset(&pipe);
        sigaddset(&pipe, SIGPIPE);
        const timespec zero{0, 0};
        while (sigtimedwait(&pipe, nullptr, &zero) < 0 && errno == EINTR) {
        }
    }
    ~SigpipeGuard() { pthread_sigmask(SIG_SETMASK, &old_, nullptr); }

private:
    sigset_t old_;
    bool already_pending_ = false;
};
}  // namespace

void write_all(int fd, bool sock, std::span<const std::string_view> pieces, std::span<const int> fds) {
    iovec iov[8];
    std::size_t count = 0;
    for (auto p : pieces)
        if (!p.empty()) {
            if (count == 8) throw std::logic_error("mproc: write_all takes at most 8 pieces");
            iov[count++] = iovec{const_cast<char*>(p.data()), p.size()};
        }
    if (!fds.empty() && !sock)
        throw std::logic_error("mproc: descriptors can travel only over a socket connection, not a pipe");
    std::size_t first = 0;
    bool fds_sent = fds.empty();
    std::vector<char> control;
    while (first < count) {
        ssize_t n;
        if (sock) {
            msghdr msg{};
            msg.msg_iov = iov + first;
            msg.msg_iovlen = count - first;
            if (!fds_sent) attach_fds(msg, control, fds);
            n = ::sendmsg(fd, &msg, MSG_NOSIGNAL);
        } else {
            SigpipeGuard guard;
            n = ::writev(fd, iov + first, static_cast<int>(count - first));
            if (n < 0 && errno == EPIPE) guard.consume_if_raised();
        }
        if (n < 0) {
            if (errno == EINTR) continue;
            throw_errno("mproc: send on a connection whose other end is closed", errno);
        }
        fds_sent = true;
        std::size_t left = static_cast<std::size_t>(n);
        while (first < count && left >= iov[first].iov_len) left -= iov[first++].iov_len;
        if (first < count) {
            iov[first].iov_base = static_cast<char*>(iov[first].iov_base) + left;
            iov[first].iov_len -= left;
        }
    }
}

UniqueFd make_event() {
    const int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0) throw_errno("eventfd");
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
