// src/mpi/wire.hpp: what the ranks of an MPI job say to each other (private), both sides.
//
// Rank 0 runs the program; every other rank serves the pools rank 0 opens (src/mpi/server.cpp).
// All traffic is point to point between rank 0 and one worker rank, on the engine's own
// communicator and one tag, so MPI keeps each pair's messages in order. A message is a byte
// string; the engine (src/mpi/engine.cpp) splits one past kPiece bytes into pieces, since
// Open MPI 4.1 counts in int. After the engine's frame byte, each starts with its kind:
//
//   worker -> 0   kHello       build id, host name, pid: the first message of a worker rank
//                 kAlive       nothing: a heartbeat, every kHeartbeat (and any message counts)
//                 kResult      u64 core, u64 seq, u32 first, u32 n, results as run_chunk wrote
//                              them (detail/pool_wire.hpp): items [first, first + n) of the chunk
//                 kItemFailed  u64 core, u64 seq, u32 index, exception: what ended one item
//                              (WorkerLostError, TimeoutError, a broken or terminated pool)
//                 kClosed      u64 core: that pool on this rank has ended (after kClose or
//                              kTerminate)
//                 kBye         nothing: after kExit, its pools ended, it leaves the job. Rank 0
//                              finalizes MPI once every live rank said so (or kByeTimeout
//                              passed): with --enable-recovery, a rank that finalizes while
//                              another's last message is still on its way may hang the job.
//   0 -> worker   kRefused     string: why the job cannot start (another build); exit
//                 kAlive       as above, so that a worker rank whose rank 0 vanished ends
//                 kOpen        u64 core, u32 processes, u64 max_result_bytes, maxtasksperchild
//                              (u64, 0: none), bool initializer [, its entry and target]
//                 kTask        u64 core, u64 seq, f64 timeout (s; < 0: none), string prefix,
//                              u32 n, u32 fixed, [u32 size] * n when not fixed, items
//                 kStopTask    u64 core, u64 seq: kill what runs that chunk
//                 kClose       u64 core: finish what was sent, then end the pool
//                 kTerminate   u64 core, u8 how (kTerminateNow, kStopWorkers, kKillWorkers)
//                 kExit        nothing: rank 0 is ending; end every pool and leave the job
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

namespace mproc::detail::mpi {

constexpr std::uint8_t kHello = 'h', kAlive = 'a', kResult = 'r', kItemFailed = 'f', kClosed = 'c', kBye = 'b';
constexpr std::uint8_t kRefused = 'R', kOpen = 'O', kTask = 'T', kStopTask = 'S', kClose = 'C', kTerminate = 'X',
                       kExit = 'E';
constexpr std::uint8_t kTerminateNow = 0, kStopWorkers = 1, kKillWorkers = 2;

// The engine's tags on its own communicator: messages, and the pieces of a long one (on a tag
// of their own, so that a heartbeat sent after them can overtake them).
constexpr int kTag = 0x6d70, kPieceTag = 0x6d71;
// A long message travels in pieces of this size (Open MPI 4.1 counts bytes in int). Small, and
// received a few at a time (kPiecesAtOnce): over shared memory the receiver copies a piece
// inside one call of MPI's progress, and the engine's loop, its heartbeats and its liveness
// checks wait meanwhile. With 1 GiB pieces a slow machine spent more than the 5 s liveness
// timeout in one such call, and the peer was taken for lost (mpi.scenario.large).
constexpr std::size_t kPiece = std::size_t{64} << 20;
constexpr std::size_t kPiecesAtOnce = 2;
// How long rank 0 waits at exit for the worker ranks' kBye.
constexpr std::chrono::seconds kByeTimeout{5};
// Every rank tells its peer(s) it lives this often.
constexpr std::chrono::milliseconds kHeartbeat{500};

}  // namespace mproc::detail::mpi
