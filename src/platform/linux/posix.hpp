// What the Linux files of the platform layer share (internal to src/platform/linux): the one
// way a failed system call becomes an exception, and signal sets built from lists of numbers.
#pragma once

#include <signal.h>

#include <cerrno>
#include <span>
#include <string>
#include <string_view>
#include <system_error>

namespace mproc::platform {

// std::system_error with the real errno (read at the call, before anything else can change
// it) and `what` naming the call or the operation. The platform layer throws nothing else for
// a failed system call, and no type of the public mproc API.
[[noreturn]] inline void throw_errno(std::string_view what, int err = errno) {
    throw std::system_error(err, std::generic_category(), std::string(what));
}

inline sigset_t signal_set(std::span<const int> sigs) noexcept {
    sigset_t set;
    sigemptyset(&set);
    for (int sig : sigs) sigaddset(&set, sig);
    return set;
}

}  // namespace mproc::platform
