// Futexes on shared memory, and the liveness test that makes mproc's locks robust.
#include <linux/futex.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <fcntl.h>
#include <pthread.h>

#include <atomic>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <climits>
#include <system_error>

#include "platform/platform.hpp"

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
    throw std::system_error(errno, std::generic_category(), "futex wait");
}

void futex_wake(std::uint32_t* word, int n) noexcept { ::syscall(SYS_futex, word, FUTEX_WAKE, n, nullptr, nullptr, 0); }

void futex_requeue(std::uint32_t* from, std::uint32_t expected, int n, std::uint32_t* to) noexcept {
    ::syscall(SYS_futex, from, FUTEX_CMP_REQUEUE, 0, reinterpret_cast<void*>(static_cast<long>(n)), to, expected);
}

bool thread_alive(pid_t tid) noexcept {
    if (tid <= 0) return false;
    // kill(2) with signal 0 checks existence; a thread id is accepted (it names its group).
    if (::kill(tid, 0) != 0 && errno == ESRCH) return false;
    // A zombie exists but holds nothing any more. /proc/<tid>/stat: "tid (comm) S ...".
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(tid));
    const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno != ENOENT;
    char buf[512];
    const ssize_t n = ::read(fd, buf, sizeof buf - 1);
    ::close(fd);
    if (n <= 0) return true;
    buf[n] = '\0';
    const char* paren = std::strrchr(buf, ')');
    if (!paren || paren[1] != ' ') return true;
    return paren[2] != 'Z' && paren[2] != 'X';
}

namespace {
// The thread id is cached per thread: gettid() is a system call, and every lock operation asks.
// A forked child runs on a copy of the forking thread, whose cached id is the parent's: a fork
// generation, bumped by an atfork handler in the child, marks every cache stale at no cost to
// the fast path (one relaxed load).
std::atomic<unsigned> g_fork_generation{1};
thread_local pid_t t_tid = 0;
thread_local unsigned t_generation = 0;

struct ForkWatch {
    ForkWatch() {
        at_fork(nullptr, nullptr, [] { g_fork_generation.fetch_add(1, std::memory_order_relaxed); });
    }
} g_fork_watch;
}  // namespace

unsigned fork_generation() noexcept { return g_fork_generation.load(std::memory_order_relaxed); }

pid_t current_tid() noexcept {
    const unsigned gen = g_fork_generation.load(std::memory_order_relaxed);
    if (t_generation != gen) {
        t_tid = static_cast<pid_t>(::syscall(SYS_gettid));
        t_generation = gen;
    }
    return t_tid;
}

}  // namespace mproc::platform
