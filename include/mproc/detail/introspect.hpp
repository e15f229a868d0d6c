// mproc/detail/introspect.hpp: what the library holds for the life of the process (not API;
// for the test suite's leak checks).
#pragma once

#include <sys/types.h>

#include <vector>

namespace mproc::detail {
// The forkserver's pid, or -1 when none runs.
pid_t forkserver_pid() noexcept;
// The shared-memory tracker this process started, or -1.
pid_t tracker_pid() noexcept;
// Descriptors kept open on purpose until exit: this process's own pidfd, the forkserver's
// control socket and the shared-memory tracker's client end, when they exist.
std::vector<int> persistent_fds();
}  // namespace mproc::detail
