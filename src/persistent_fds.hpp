// src/persistent_fds.hpp: descriptors this process keeps open on purpose until it exits
// (internal; persistent_fds.cpp).
//
// A subsystem that keeps one (the fork server's control socket, the shared-memory tracker's
// client end, a pool's per-thread eventfd) registers a function that reports it, so that
// persistent_fds() (mproc/detail/introspect.hpp, for the test suite's leak check) asks the
// registry rather than reaching into each subsystem.
#pragma once

namespace mproc::detail {

// `source` returns the descriptor kept, or -1 when there is none (yet). Registrations last
// for the life of the process (at most 16); safe during static initialization.
void keep_fd_source(int (*source)() noexcept) noexcept;

}  // namespace mproc::detail
