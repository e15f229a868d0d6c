// Descriptors on Linux (platform/fd.hpp).
#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>

#include "platform/fd.hpp"
#include "platform/linux/posix.hpp"

namespace mproc::platform {

void UniqueFd::reset(int fd) noexcept {
    if (fd_ >= 0) ::close(fd_);  // close(2) is not retried after EINTR on Linux: the fd is gone
    fd_ = fd;
}

std::pair<UniqueFd, UniqueFd> make_pipe() {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) throw_errno("pipe2");
    return {UniqueFd(p[0]), UniqueFd(p[1])};
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

UniqueFd dup_fd(int fd) {
    const int r = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
    if (r < 0) throw_errno("fcntl(F_DUPFD_CLOEXEC)");
    return UniqueFd(r);
}

std::vector<int> open_fds() {
    std::vector<int> fds;
    DIR* d = ::opendir("/proc/self/fd");
    if (!d) throw_errno("opendir(/proc/self/fd)");
    const int own = ::dirfd(d);
    while (dirent* e = ::readdir(d)) {
        if (e->d_name[0] == '.') continue;
        const int fd = std::atoi(e->d_name);
        if (fd != own) fds.push_back(fd);
    }
    ::closedir(d);
    return fds;
}

}  // namespace mproc::platform
