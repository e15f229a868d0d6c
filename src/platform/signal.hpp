// src/platform/signal.hpp: signals by name (section "signal" of the platform layer; Linux:
// linux/signal.cpp).
//
// The layers above name the few signals Python's multiprocessing sends or ignores through
// these constants, never through <signal.h>; their values are POSIX's (checked against the
// system's in linux/signal.cpp), which is also what the public API reports: an exit code of
// -kSigTerm is Python's -signal.SIGTERM.
#pragma once

#include <span>
#include <string>

namespace mproc::platform {

inline constexpr int kSigInt = 2;
inline constexpr int kSigKill = 9;
inline constexpr int kSigTerm = 15;

// SIG_IGN for each signal, then unblocks them: one that arrived while they were blocked is
// dropped, never delivered (Python's resource tracker: signal(SIG_IGN), then pthread_sigmask).
void ignore_signals(std::span<const int> sigs) noexcept;
// "SEGV" for SIGSEGV; empty for a number that names no signal.
std::string signal_name(int sig);

}  // namespace mproc::platform
