// src/spare_bytes.hpp: the one large buffer a process keeps for its next large message
// (private; reserve_bytes and assign_bytes, in mproc/detail/archive.hpp, and
// resize_for_overwrite, below, take it).
//
// On this project's VM a first touch of 1 GiB costs 3-8 s (the kernel clears every page),
// copying within memory already touched 0.1-0.2 s, and a message of a gigabyte crosses a fresh
// buffer at each step of its way (serialized, received, relayed). A buffer of 64 MiB or more
// that the library is done with (a message sent, a chunk's items answered) is kept instead of
// freed, and the next reserve_bytes of a like size takes it. One is kept, the most recent; its
// pages are handed to the kernel lazily (MADV_FREE), so that under memory pressure they are
// reclaimed, and otherwise reused as they are.
//
// Nor is a byte written twice on the way: a message is received whole into memory already held
// (not grown by doubling, which copied and cleared it), and neither a received message's buffer
// nor a decoded string's is cleared before it is written (a pass over a gigabyte costs
// 0.2-0.3 s here, whether it copies or clears).
#pragma once

#include <cstddef>
#include <string>

namespace mproc::detail {

// Buffers from this size are kept.
inline constexpr std::size_t kSpareFrom = std::size_t{64} << 20;

// Keeps s's memory (when its capacity is at least kSpareFrom) as the process's spare, in place
// of the one before; s is left empty either way. The spare keeps s's size, so that taking it
// for a message of no more bytes writes none. Never blocks but on a short mutex.
void recycle_bytes(std::string&& s) noexcept;

// Makes s n bytes long for the caller to overwrite whole: what it held is not kept, and the
// bytes it is given are not written first when memory already touched serves (s's own, or
// the spare): clearing a gigabyte costs as much as copying it. Fresh memory otherwise
// (reserve_bytes).
void resize_for_overwrite(std::string& s, std::size_t n);

// resize_for_overwrite when that takes no fresh memory: s's own capacity, or the spare; false
// (s unchanged) otherwise. For a length a peer announced: memory the process already holds is
// no hostage to a peer that says much and sends little.
bool resize_from_held(std::string& s, std::size_t n);

}  // namespace mproc::detail
