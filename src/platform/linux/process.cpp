// Processes on Linux (platform/process.hpp): fork, spawn (posix_spawn, which glibc implements
// with CLONE_VFORK: no page-table copy, and exec failure is reported to the caller), the
// fork-handler registry, pidfds, reaping, signals to children, following a parent in death.
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <stdexcept>

#include "platform/linux/posix.hpp"
#include "platform/process.hpp"

extern char** environ;

namespace mproc::platform {

namespace {
std::atomic<int> g_self_pidfd{-1};
}  // namespace

pid_t get_pid() noexcept { return ::getpid(); }
pid_t get_ppid() noexcept { return ::getppid(); }

namespace {
struct ForkHandlers {
    void (*prepare)();
    void (*parent)();
    void (*child)();
};
constexpr int kMaxForkHandlers = 32;
ForkHandlers g_fork_handlers[kMaxForkHandlers];
// Published with release after the entry is written: a fork racing a registration sees either
// the whole entry or none of it.
std::atomic<int> g_fork_handler_count{0};

void run_prepare() {
    for (int i = g_fork_handler_count.load(std::memory_order_acquire); i-- > 0;)
        if (g_fork_handlers[i].prepare) g_fork_handlers[i].prepare();
}
void run_parent() {
    const int n = g_fork_handler_count.load(std::memory_order_acquire);
    for (int i = 0; i < n; ++i)
        if (g_fork_handlers[i].parent) g_fork_handlers[i].parent();
}
void run_child() {
    const int n = g_fork_handler_count.load(std::memory_order_acquire);
    for (int i = 0; i < n; ++i)
        if (g_fork_handlers[i].child) g_fork_handlers[i].child();
}
}  // namespace

void at_fork(void (*prepare)(), void (*parent)(), void (*child)()) {
    static std::mutex mu;  // registrations one at a time; forks never take it
    std::lock_guard lk(mu);
    static const bool installed = [] {
        if (const int e = ::pthread_atfork(run_prepare, run_parent, run_child))
            throw_errno("pthread_atfork", e);
        return true;
    }();
    (void)installed;
    const int n = g_fork_handler_count.load(std::memory_order_relaxed);
    if (n == kMaxForkHandlers) throw std::length_error("mproc: too many fork handlers");
    g_fork_handlers[n] = {prepare, parent, child};
    g_fork_handler_count.store(n + 1, std::memory_order_release);
}

pid_t fork_process(std::span<const int> blocked) {
    if (blocked.empty()) {
        const pid_t pid = ::fork();
        if (pid < 0) throw_errno("fork");
        return pid;
    }
    // The child inherits this thread's mask; this thread gets its own back at once.
    const sigset_t block = signal_set(blocked);
    sigset_t old;
    pthread_sigmask(SIG_BLOCK, &block, &old);
    const pid_t pid = ::fork();
    const int err = errno;
    if (pid != 0) pthread_sigmask(SIG_SETMASK, &old, nullptr);
    if (pid < 0) throw_errno("fork", err);
    return pid;
}

pid_t spawn_process(const std::string& path, const std::vector<std::string>& argv,
                    std::span<const int> keep, std::span<const int> blocked) {
    // Everything the child needs is built here, before the clone: between clone and exec only
    // the C library's own async-signal-safe steps run.
    std::vector<char*> args;
    args.reserve(argv.size() + 1);
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);

    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    if (int e = posix_spawn_file_actions_init(&actions)) throw_errno("posix_spawn_file_actions_init", e);
    if (int e = posix_spawnattr_init(&attr)) {
        posix_spawn_file_actions_destroy(&actions);
        throw_errno("posix_spawnattr_init", e);
    }
    int err = 0;
    // The child gets keep[i] as descriptor 3 + i and nothing else above stderr, as Python's
    // spawnv_passfds does (close_fds): a descriptor some library left inheritable (Open MPI's
    // connection from a rank to mpiexec is one) must not live on in a forkserver or a worker,
    // where it outlives its owner and the other end sees its peer leave at a random moment.
    // Each goes above every source and target first, so no move overwrites one still to move.
    int high = 3 + static_cast<int>(keep.size());
    for (int fd : keep) high = std::max(high, fd + 1);
    for (std::size_t i = 0; i < keep.size() && !err; ++i)
        err = posix_spawn_file_actions_adddup2(&actions, keep[i], high + static_cast<int>(i));
    // dup2 to a new number leaves the copy without FD_CLOEXEC.
    for (std::size_t i = 0; i < keep.size() && !err; ++i)
        err = posix_spawn_file_actions_adddup2(&actions, high + static_cast<int>(i), 3 + static_cast<int>(i));
    if (!err) err = posix_spawn_file_actions_addclosefrom_np(&actions, 3 + static_cast<int>(keep.size()));
    // glibc blocks every signal across its clone, so one sent to the child before this mask
    // is set waits for it, and one in `blocked` waits past exec.
    const sigset_t mask = signal_set(blocked);
    if (!err) err = posix_spawnattr_setsigmask(&attr, &mask);
    // Signals this process ignores stay ignored across exec; the child starts with defaults.
    sigset_t defaults;
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGPIPE);
    sigaddset(&defaults, SIGCHLD);
    sigaddset(&defaults, SIGINT);
    sigaddset(&defaults, SIGTERM);
    if (!err) err = posix_spawnattr_setsigdefault(&attr, &defaults);
    if (!err) err = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    pid_t pid = -1;
    if (!err) err = posix_spawn(&pid, path.c_str(), &actions, &attr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    if (err) throw_errno(("cannot start " + path).c_str(), err);
    return pid;
}

UniqueFd pidfd_open(pid_t pid) {
    const long fd = ::syscall(SYS_pidfd_open, pid, 0);  // pidfds are always close-on-exec
    if (fd < 0) throw_errno("pidfd_open");
    return UniqueFd(static_cast<int>(fd));
}

int self_pidfd() {
    int fd = g_self_pidfd.load(std::memory_order_acquire);
    if (fd >= 0) return fd;
    UniqueFd opened = pidfd_open(::getpid());
    int expected = -1;
    if (g_self_pidfd.compare_exchange_strong(expected, opened.get(), std::memory_order_acq_rel))
        return opened.release();
    return expected;  // another thread won; ours closes
}

void forget_self_pidfd_after_fork() noexcept {
    // The child's copy refers to the parent: the child hands it to its watchdog, not closes it.
    g_self_pidfd.store(-1, std::memory_order_release);
}

int self_pidfd_if_open() noexcept { return g_self_pidfd.load(std::memory_order_acquire); }

int decode_wait_status(int status) noexcept {
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return -WTERMSIG(status);
    return 255;
}

std::optional<int> try_reap(pid_t pid) {
    int status = 0;
    for (;;) {
        const pid_t r = ::waitpid(pid, &status, WNOHANG);
        if (r == 0) return std::nullopt;
        if (r == pid) return decode_wait_status(status);
        if (errno == EINTR) continue;
        // ECHILD: someone else reaped it (SIGCHLD set to SIG_IGN, or a stray waitpid(-1)).
        // The code is lost; Python reports the same case as 255.
        if (errno == ECHILD) return 255;
        throw_errno("waitpid");
    }
}

int reap(pid_t pid) {
    int status = 0;
    for (;;) {
        const pid_t r = ::waitpid(pid, &status, 0);
        if (r == pid) return decode_wait_status(status);
        if (errno == EINTR) continue;
        if (errno == ECHILD) return 255;  // reaped by someone else, as in try_reap
        throw_errno("waitpid");
    }
}

void send_signal(pid_t pid, int sig) {
    if (::kill(pid, sig) != 0 && errno != ESRCH) throw_errno("kill");
}

ChildReaper::ChildReaper() {
    static_assert(sizeof(sigset_t) <= sizeof saved_mask_);
    const int chld[] = {SIGCHLD};
    const sigset_t set = signal_set(chld);
    sigset_t old;
    sigprocmask(SIG_BLOCK, &set, &old);
    std::memcpy(saved_mask_, &old, sizeof old);
    const int fd = ::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (fd < 0) {
        const int e = errno;
        sigprocmask(SIG_SETMASK, &old, nullptr);
        throw_errno("signalfd", e);
    }
    fd_.reset(fd);
}

ChildReaper::~ChildReaper() { release_in_child(); }

void ChildReaper::clear() noexcept {
    signalfd_siginfo si;
    while (::read(fd_.get(), &si, sizeof si) > 0) {
    }
}

std::optional<std::pair<pid_t, int>> ChildReaper::reap_one() noexcept {
    int status;
    const pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0) return std::nullopt;
    return std::pair{pid, decode_wait_status(status)};
}

void ChildReaper::release_in_child() noexcept {
    if (!fd_) return;
    fd_.reset();
    sigset_t old;
    std::memcpy(&old, saved_mask_, sizeof old);
    sigprocmask(SIG_SETMASK, &old, nullptr);
}

namespace {
void* watchdog_main(void* arg) {
    const int fd = static_cast<int>(reinterpret_cast<intptr_t>(arg));
    pollfd p{fd, POLLIN, 0};
    for (;;) {
        const int n = ::poll(&p, 1, -1);
        if (n > 0) break;
        if (n < 0 && errno != EINTR) break;  // cannot watch: fail safe, as if the parent died
    }
    // The parent is gone: die as PR_SET_PDEATHSIG would, so our own children see us go.
    ::kill(::getpid(), SIGKILL);
    return nullptr;
}
}  // namespace

void start_parent_watchdog(int parent_pidfd) {
    // pthread directly, not std::thread: this thread must never be joined, must not keep the
    // process alive, and needs only a tiny stack.
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    // The watchdog must not take signals meant for the program.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_t t;
    const int e = pthread_create(&t, &attr, watchdog_main,
                                 reinterpret_cast<void*>(static_cast<intptr_t>(parent_pidfd)));
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    pthread_attr_destroy(&attr);
    if (e != 0) throw_errno("pthread_create (parent watchdog)", e);
}

bool set_death_signal(pid_t expected_parent) noexcept {
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) return false;
    return ::getppid() == expected_parent;  // the parent may have died before the prctl
}

void exit_now(int code) noexcept { ::_exit(code); }

void pidfd_signal(int pidfd, int sig) {
    if (::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0) != 0 && errno != ESRCH)
        throw_errno("pidfd_send_signal");
}

}  // namespace mproc::platform
