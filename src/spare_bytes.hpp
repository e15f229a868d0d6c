// src/spare_bytes.hpp: the one large buffer a process keeps for its next large message
// (private; reserve_bytes, in mproc/detail/archive.hpp, takes it).
//
// On this project's VM a first touch of 1 GiB costs 3-8 s (the kernel clears every page),
// copying within memory already touched 0.1-0.2 s, and a message of a gigabyte crosses a fresh
// buffer at each step of its way (serialized, received, relayed). A buffer of 64 MiB or more
// that the library is done with (a message sent, a chunk's items answered) is kept instead of
// freed, and the next reserve_bytes of a like size takes it. One is kept, the most recent; its
// pages are handed to the kernel lazily (MADV_FREE), so that under memory pressure they are
// reclaimed, and otherwise reused as they are.
#pragma once

#include <cstddef>
#include <string>

namespace mproc::detail {

// Buffers from this size are kept.
inline constexpr std::size_t kSpareFrom = std::size_t{64} << 20;

// Keeps s's memory (when its capacity is at least kSpareFrom) as the process's spare, in place
// of the one before; s is left empty either way. Never blocks but on a short mutex.
void recycle_bytes(std::string&& s) noexcept;

}  // namespace mproc::detail
