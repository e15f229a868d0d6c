// src/launch.hpp: how this process starts another like itself (internal): a copy by fork, or a
// fresh run of this executable in a role. The start methods, the fork server and the
// shared-memory tracker all start theirs through these two.
#pragma once

#include <span>

#include "platform/process.hpp"

namespace mproc::detail {

// fork(2) under the fork mutex, after flushing the standard streams; in the child, forgets
// the parent's children and pidfd. Returns 0 in the child.
pid_t fork_child();
// Runs this executable again as `--mproc-<role> 3` (role: "spawn", "forkserver" or
// "tracker"; init() sends each to its job), with fd as its descriptor 3 and the signals in
// `blocked` blocked from its start (platform::spawn_process). Defined in context.cpp, which
// knows the executable and the program name.
pid_t spawn_self(const char* role, int fd, std::span<const int> blocked = {});
// Flushes the C++ and C standard streams, so that nothing buffered is written twice, by a
// parent and its fork child.
void flush_std_streams() noexcept;

}  // namespace mproc::detail
