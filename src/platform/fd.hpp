// src/platform/fd.hpp: descriptors (section "fd" of the platform layer; Linux: linux/fd.cpp).
//
// UniqueFd owns one descriptor; every descriptor the library makes is close-on-exec and owned
// by one. The rest of this section makes, copies and inspects descriptors.
#pragma once

#include <utility>
#include <vector>

namespace mproc::platform {

// A move-only owner of one file descriptor.
class UniqueFd {
public:
    UniqueFd() noexcept = default;
    explicit UniqueFd(int fd) noexcept : fd_(fd) {}
    UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    UniqueFd& operator=(UniqueFd&& o) noexcept {
        if (this != &o) reset(std::exchange(o.fd_, -1));
        return *this;
    }
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;
    ~UniqueFd() { reset(); }

    int get() const noexcept { return fd_; }
    explicit operator bool() const noexcept { return fd_ >= 0; }
    int release() noexcept { return std::exchange(fd_, -1); }
    // Closes the descriptor held (close(2) is async-signal-safe: usable in a fork child).
    void reset(int fd = -1) noexcept;

private:
    int fd_ = -1;
};

std::pair<UniqueFd, UniqueFd> make_pipe();  // {read end, write end}
void set_cloexec(int fd, bool on);
bool is_cloexec(int fd);
// dup(2) with close-on-exec.
UniqueFd dup_fd(int fd);
std::vector<int> open_fds();  // this process's open descriptors, from /proc/self/fd

}  // namespace mproc::platform
