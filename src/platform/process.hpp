// src/platform/process.hpp: processes (section "process" of the platform layer; Linux:
// linux/process.cpp).
//
// Starting children (fork, spawn), the fork-handler registry, watching children (pidfds, a
// SIGCHLD descriptor) and reaping them, signalling them, and following a parent in death.
#pragma once

#include <sys/types.h>

#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "platform/fd.hpp"

namespace mproc::platform {

pid_t get_pid() noexcept;
pid_t get_ppid() noexcept;

// The one registry of fork handlers: pthread_atfork(3) is called by this layer only, once.
// Handlers run as pthread_atfork's do: `prepare` in the reverse order of registration (so a
// subsystem registered later, which may use an earlier one, locks first), `parent` and `child`
// in order. `child` runs in the single-threaded child: async-signal-safe work only. Any of the
// three may be null. Registrations last for the life of the process (at most 32).
void at_fork(void (*prepare)(), void (*parent)(), void (*child)());
// fork(2); the child's return is 0. Callers flush their streams first. Each signal in
// `blocked` is blocked in the child from its first instruction (in this thread across the fork).
pid_t fork_process(std::span<const int> blocked = {});
// Starts `path` with argv and the current environment. The child has stdin, stdout and stderr,
// keep[i] as descriptor 3 + i, and no other descriptor (inheritable or not). Signals start
// unblocked in the child, but for those in `blocked`: they stay blocked from its start across
// exec, for a child that must not die of one before it has set it up (see ignore_signals).
// Exec failure throws system_error.
pid_t spawn_process(const std::string& path, const std::vector<std::string>& argv,
                    std::span<const int> keep, std::span<const int> blocked = {});
[[noreturn]] void exit_now(int code) noexcept;  // _exit(2)

UniqueFd pidfd_open(pid_t pid);
// A pidfd of this process, opened once and kept (children inherit or receive it as their
// lifeline). Reset in a forked child, where it refers to the parent.
int self_pidfd();
void forget_self_pidfd_after_fork() noexcept;
int self_pidfd_if_open() noexcept;  // -1 when not opened yet

// waitpid(WNOHANG): the exit code when pid has ended (negative signal number when killed),
// empty while it runs. Reaps it.
std::optional<int> try_reap(pid_t pid);
// waitpid(2), blocking: for a child known to have ended.
int reap(pid_t pid);
int decode_wait_status(int status) noexcept;

// Every child's end as a readable descriptor, for a single-threaded process that waits on
// its children in a poll loop beside other descriptors (the fork server): SIGCHLD is blocked
// in the calling thread and read from a signalfd, so no handler ever runs, least of all
// between a fork and the child's own setup.
class ChildReaper {
public:
    ChildReaper();  // std::system_error when the descriptor cannot be made
    ChildReaper(const ChildReaper&) = delete;
    ChildReaper& operator=(const ChildReaper&) = delete;
    ~ChildReaper();  // closes the descriptor, restores the signal mask

    // Readable when a child may have ended.
    int fd() const noexcept { return fd_.get(); }
    // After fd() turned readable: takes what it says (a child's end is told once per batch of
    // ends, so reap_one() must then be called until it says none).
    void clear() noexcept;
    // Reaps one child that has ended, without waiting: {pid, exit code as try_reap gives it};
    // empty when none has.
    std::optional<std::pair<pid_t, int>> reap_one() noexcept;
    // In a child forked from this process: closes the descriptor and restores the signal mask
    // found at construction (async-signal-safe).
    void release_in_child() noexcept;

private:
    UniqueFd fd_;
    alignas(8) unsigned char saved_mask_[128];  // the sigset_t in force before
};

// kill(2); a process that is already gone is not an error.
void send_signal(pid_t pid, int sig);
// pidfd_send_signal(2): no pid-reuse race. A process that has ended is not an error.
void pidfd_signal(int pidfd, int sig);

// Starts a thread that kills this process (SIGKILL) when the process behind parent_pidfd ends.
// The pidfd is owned by the thread from here on.
void start_parent_watchdog(int parent_pidfd);
// PR_SET_PDEATHSIG(SIGKILL): the kernel kills this process when the thread that created it
// exits. Returns false when the parent is already gone (getppid() is no longer expected_parent).
bool set_death_signal(pid_t expected_parent) noexcept;

}  // namespace mproc::platform
