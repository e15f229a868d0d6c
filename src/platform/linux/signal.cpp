// Signals on Linux (platform/signal.hpp).
#include <pthread.h>
#include <signal.h>

#include <cstring>

#include "platform/linux/posix.hpp"
#include "platform/signal.hpp"

namespace mproc::platform {

static_assert(kSigInt == SIGINT && kSigKill == SIGKILL && kSigTerm == SIGTERM);

void ignore_signals(std::span<const int> sigs) noexcept {
    for (int sig : sigs) ::signal(sig, SIG_IGN);
    const sigset_t set = signal_set(sigs);
    pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
}

std::string signal_name(int sig) {
    const char* abbrev = ::sigabbrev_np(sig);
    return abbrev ? abbrev : "";
}

}  // namespace mproc::platform
