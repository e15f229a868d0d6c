// Threads on Linux (platform/thread.hpp): ids, the fork generation, liveness, names.
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "platform/process.hpp"
#include "platform/thread.hpp"

namespace mproc::platform {

pid_t get_tid() noexcept { return static_cast<pid_t>(::syscall(SYS_gettid)); }

bool is_main_thread() noexcept { return get_tid() == ::getpid(); }

unsigned long thread_ident() noexcept { return static_cast<unsigned long>(::pthread_self()); }

void set_thread_name(const std::string& name) noexcept {
    ::pthread_setname_np(::pthread_self(), name.substr(0, 15).c_str());
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
// One thread-local object, so that current_tid() (taken at every lock's acquire and release)
// looks up the thread's storage once.
struct TidCache {
    pid_t tid = 0;
    unsigned generation = 0;
};
thread_local TidCache t_cache;

struct ForkWatch {
    ForkWatch() {
        at_fork(nullptr, nullptr, [] { g_fork_generation.fetch_add(1, std::memory_order_relaxed); });
    }
} g_fork_watch;
}  // namespace

int current_cpu() noexcept { return ::sched_getcpu(); }

unsigned fork_generation() noexcept { return g_fork_generation.load(std::memory_order_relaxed); }

pid_t current_tid() noexcept {
    const unsigned gen = g_fork_generation.load(std::memory_order_relaxed);
    TidCache& c = t_cache;
    if (c.generation != gen) {
        c.tid = static_cast<pid_t>(::syscall(SYS_gettid));
        c.generation = gen;
    }
    return c.tid;
}

}  // namespace mproc::platform
