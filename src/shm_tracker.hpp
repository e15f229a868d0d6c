// src/shm_tracker.hpp: the shared-memory tracker's client end (internal; shared_memory.cpp,
// where the tracker is described).
#pragma once

namespace mproc::detail {

// The tracker's client end (-1: none in this tree yet); a child adopts the one its parent
// passed; the tracker process's loop never returns.
int tracker_fd() noexcept;
void adopt_tracker(int fd) noexcept;
[[noreturn]] void tracker_main(int fd) noexcept;

}  // namespace mproc::detail
