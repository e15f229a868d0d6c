// mproc/detail/introspect.hpp: what the library holds for the life of the process (not API;
// for the test suite's leak checks).
#pragma once

#include <vector>

namespace mproc::detail {
// The forkserver's pid, or -1 when none runs (an int, as Process::pid() is: no system header
// in a public one).
int forkserver_pid() noexcept;
// The shared-memory tracker this process started, or -1.
int tracker_pid() noexcept;
// Descriptors kept open on purpose until exit: this process's own pidfd, and those its
// subsystems registered (the forkserver's control socket, the shared-memory tracker's client
// end, a pool's per-thread eventfd), when they exist.
std::vector<int> persistent_fds();
}  // namespace mproc::detail
