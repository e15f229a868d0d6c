// SCM_RIGHTS: descriptors attached to a socket message, and collected from one (internal to
// src/platform/linux).
#pragma once

#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <span>
#include <vector>

#include "platform/fd.hpp"
#include "platform/linux/posix.hpp"

namespace mproc::platform {

// Points msg's control data at `control`, filled with fds. No-op when fds is empty.
inline void attach_fds(msghdr& msg, std::vector<char>& control, std::span<const int> fds) {
    if (fds.empty()) return;
    control.assign(CMSG_SPACE(sizeof(int) * fds.size()), 0);
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
}

// Takes ownership of every descriptor that arrived with msg at once (so none leaks), and
// hands them to `out`, or closes them when out is null.
inline void collect_fds(msghdr& msg, std::vector<UniqueFd>* out) {
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (std::size_t i = 0; i < count; ++i) {
            int fd;
            std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
            UniqueFd owned(fd);
            if (out) out->push_back(std::move(owned));
        }
    }
}

// recvmsg(2) into data, taking ownership of the descriptors that came with the bytes (into
// fds, or closed when fds is null). EINTR is retried; a reset connection reads as end of file
// (0). truncated, when given, tells whether a record (SOCK_SEQPACKET) was longer than size.
inline std::size_t receive_with_fds(int fd, void* data, std::size_t size, std::vector<UniqueFd>* fds,
                                    bool* truncated = nullptr) {
    iovec iov{data, size};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 64)];
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n;
    while ((n = ::recvmsg(fd, &msg, MSG_CMSG_CLOEXEC)) < 0) {
        if (errno == ECONNRESET) return 0;
        if (errno != EINTR) throw_errno("recvmsg");
    }
    collect_fds(msg, fds);
    if (truncated) *truncated = (msg.msg_flags & MSG_TRUNC) != 0;
    return static_cast<std::size_t>(n);
}

}  // namespace mproc::platform
