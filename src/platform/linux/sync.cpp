// Waiting on shared memory on Linux (platform/sync.hpp): futexes and robust mutexes.
#include <linux/futex.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>

#include "platform/linux/posix.hpp"
#include "platform/sync.hpp"

namespace mproc::platform {

Wake futex_wait(std::uint32_t* word, std::uint32_t expected, const Deadline& deadline, int cap_ms) {
    int ms = deadline.poll_timeout_ms();
    if (ms == 0) return Wake::Deadline;
    bool capped = false;
    if (cap_ms > 0 && (ms < 0 || ms > cap_ms)) {
        ms = cap_ms;
        capped = true;
    }
    timespec ts{};
    timespec* tp = nullptr;
    if (ms >= 0) {
        ts.tv_sec = ms / 1000;
        ts.tv_nsec = static_cast<long>(ms % 1000) * 1000000L;
        tp = &ts;
    }
    // Not FUTEX_PRIVATE_FLAG: the word is in memory other processes map.
    const long r = ::syscall(SYS_futex, word, FUTEX_WAIT, expected, tp, nullptr, 0);
    if (r == 0 || errno == EINTR) return Wake::Woken;  // woken, or a signal
    if (errno == EAGAIN) return Wake::Changed;
    if (errno == ETIMEDOUT) return capped && !deadline.expired() ? Wake::Capped : Wake::Deadline;
    throw_errno("futex wait");
}

void futex_wake(std::uint32_t* word, int n) noexcept { ::syscall(SYS_futex, word, FUTEX_WAKE, n, nullptr, nullptr, 0); }

void futex_requeue(std::uint32_t* from, std::uint32_t expected, int n, std::uint32_t* to) noexcept {
    ::syscall(SYS_futex, from, FUTEX_CMP_REQUEUE, 0, reinterpret_cast<void*>(static_cast<long>(n)), to, expected);
}

static_assert(sizeof(pthread_mutex_t) <= kRobustMutexSize);

void robust_mutex_init(void* at) {
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    const int e = pthread_mutex_init(static_cast<pthread_mutex_t*>(at), &a);
    pthread_mutexattr_destroy(&a);
    if (e != 0) throw_errno("pthread_mutex_init", e);
}

bool robust_mutex_lock(void* at) {
    auto* m = static_cast<pthread_mutex_t*>(at);
    const int e = pthread_mutex_lock(m);
    if (e == 0) return false;
    if (e == EOWNERDEAD) {
        pthread_mutex_consistent(m);
        return true;
    }
    throw_errno("pthread_mutex_lock", e);
}

void robust_mutex_unlock(void* at) noexcept { pthread_mutex_unlock(static_cast<pthread_mutex_t*>(at)); }

}  // namespace mproc::platform
