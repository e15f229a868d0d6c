// src/mpi/engine_shared.hpp: what the engine's files share (engine.cpp: the loop, framing,
// liveness and leaving; meet.cpp: the ranks' meeting). Private.
#pragma once

#include <mpi.h>

#include <chrono>

namespace mproc::detail::mpi {

// The shortest sleep between polls (the loop's, and rank 0's while it waits for the hellos).
constexpr auto kMinSleep = std::chrono::microseconds(20);
// How long rank 0 waits for every rank's hello, and for its last messages at exit.
constexpr auto kJoinTimeout = std::chrono::seconds(60);
constexpr auto kExitFlush = std::chrono::seconds(2);

// The engine keeps its communicator as a void* (engine.hpp does not include mpi.h).
inline MPI_Comm& comm_of(void*& p) { return *reinterpret_cast<MPI_Comm*>(&p); }

// An MPI call that failed ends the process, saying which and why (exit status 70).
void check(int code, const char* what);

}  // namespace mproc::detail::mpi
