// src/process_impl.hpp: the machinery behind Process (internal).
//
// One Popen per started child, chosen by start method (Python: popen_fork, popen_spawn_posix,
// popen_forkserver), behind one small interface: pid, sentinel, poll, send_signal.
#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "mproc/process.hpp"
#include "platform/platform.hpp"

namespace mproc::detail {

class Popen {
public:
    virtual ~Popen() = default;
    virtual pid_t pid() const noexcept = 0;
    // Readable once the child has ended.
    virtual int sentinel() const noexcept = 0;
    // Non-blocking: the exit code once the child has ended (reaping it), else empty.
    virtual std::optional<int> poll() = 0;
    // No effect once the child has ended.
    virtual void send_signal(int sig) = 0;
    // Blocking: the exit code, once the sentinel has said the child ended. (A pidfd can turn
    // readable a moment before waitpid(WNOHANG) finds the child reapable: its last thread is
    // still being torn down.)
    virtual int wait_ended() = 0;
};

enum class ProcessKind { Child, Current, Parent };

struct ProcessState {
    std::mutex mu;
    ProcessKind kind = ProcessKind::Child;
    std::string name;
    bool daemon = false;
    std::string start_method;
    bool method_given = false;  // start_method was the Process's own (Python: a context's Process)
    std::vector<unsigned> identity;  // (1,), (1, 2), ... as Python's _identity
    std::string authkey;
    pid_t creator_pid = -1;  // the process that made this object; only it may start/join it
    pid_t pid = -1;          // Current and Parent kinds
    std::unique_ptr<Popen> popen;
    bool closed = false;
    platform::UniqueFd parent_sentinel;  // Parent kind: a pidfd of the parent
    // Set by a process pool: the server its worker is forked from (whatever the start method
    // says), so that the pool's creator never forks itself once the pool runs threads.
    std::shared_ptr<class ForkServer> server;
};

// What a child must know about itself and its parent; sent in the job (spawn, forkserver) or
// copied by fork.
struct ChildConfig {
    std::string name;
    std::vector<unsigned> identity;
    bool daemon = false;
    std::string authkey;
    std::string start_method;
    // What a spawn or forkserver child, a fresh program, takes as its own default start method:
    // the Process's own method when it was given one (Python's _bootstrap forces a context's
    // method), else the parent's get_start_method() (Python's spawn preparation data); empty
    // when neither was set.
    std::string context_method;
    int parent_pid = -1;
    std::string parent_name;
    // How the child follows its parent in death (docs/design.md): when the kernel parent's
    // creating thread lives as long as its process (the main thread, or the single-threaded
    // forkserver), PR_SET_PDEATHSIG with this pid as the expected parent; otherwise (-1) a
    // watchdog thread polling the parent's pidfd.
    int death_signal_parent = -1;
    // Whether the job's last descriptor is the shared-memory tracker's client end.
    bool has_tracker = false;

    template <class Ar>
    void serialize(Ar& ar) {
        ar(name, identity, daemon, authkey, start_method, context_method, parent_pid, parent_name, death_signal_parent,
           has_tracker);
    }
};

// The lock held across fork(2) so that no other thread leaves the registry, the current
// process's state or the forkserver client half-updated in the child.
std::mutex& fork_mutex();

// Children of this process that were started and not yet reaped.
void register_child(std::shared_ptr<ProcessState> s);
void cleanup_finished_children();
// Called once in a forked child: the parent's children are not ours.
void forget_children_after_fork();

std::shared_ptr<ProcessState> current_state();
ChildConfig make_child_config(const ProcessState& child);
// In a new child: makes cfg the current process and the parent (watched through parent_pidfd,
// which it takes) the parent process.
void set_current_from_config(const ChildConfig& cfg, int parent_pidfd);
// Terminates daemonic children and joins the others (Python: util._exit_function).
void exit_function() noexcept;
void install_exit_function();

// Things a child gives back as it ends, after its target and before its exit function (a
// manager's references that a fork child took on): hooks registered once, at static
// initialization, run in registration order.
void add_child_exit_hook(void (*hook)()) noexcept;
// Hooks that run first in exit_function, in the program and in every child, before daemonic
// children are sent SIGTERM and the others joined: pools stop there (an executor finishes its
// work, a Pool is terminated), so no dispatcher replaces a worker the exit is ending.
void add_exit_hook(void (*hook)()) noexcept;
void run_child_exit_hooks() noexcept;

// Runs a child's body and ends the process: sets the current process up from cfg, starts the
// watchdog on the parent, runs body, reports an escaped exception, runs the exit function,
// flushes and exits. fresh_program: exit(3) (spawn) rather than _exit(2) (fork, forkserver).
[[noreturn]] void run_child(const ChildConfig& cfg, int parent_pidfd,
                            const std::function<void()>& body, bool fresh_program) noexcept;

// Reads exactly size bytes from a socket: false on end of file before the first byte; end of
// file in the middle is EOFError.
bool recv_exact(int sock, void* data, std::size_t size, std::vector<platform::UniqueFd>* fds = nullptr);

// Job transport for spawn and forkserver children: a header (size, descriptor count) with the
// descriptors attached, then the bytes. The first descriptor is the parent's pidfd.
void send_job(int sock, const std::string& job, std::span<const int> fds);
// Reads the job on sock and runs it; never returns. A forkserver passes its own pid: it is the
// kernel parent, and single-threaded, so its death signal is the child's to set.
[[noreturn]] void run_job(int sock, bool fresh_program, pid_t forkserver = -1) noexcept;

// fork(2) under the fork mutex, after flushing the standard streams; in the child, forgets
// the parent's children and pidfd. Returns 0 in the child.
pid_t fork_child();
std::unique_ptr<Popen> start_fork(const ChildConfig& cfg, const std::function<void()>& body);
std::unique_ptr<Popen> start_spawn(const std::string& job, std::span<const int> fds);
std::unique_ptr<Popen> start_forkserver(const std::string& job, std::span<const int> fds);

// The shared-memory tracker's client end (-1: none in this tree yet); a child adopts the one
// its parent passed; the tracker process's loop never returns.
int tracker_fd() noexcept;
void adopt_tracker(int fd) noexcept;
[[noreturn]] void tracker_main(int fd) noexcept;

// A process that forks children on request (the protocol is in forkserver.cpp). The forkserver
// start method uses one, started as a fresh run of this executable; a process pool under the
// fork start method uses its own, forked from the pool's creator (forked = true), so that its
// workers are copies of that moment while the creator itself never forks a process that runs
// the pool's threads. The server exits when its control socket closes; stop() waits for it.
class ForkServer {
public:
    explicit ForkServer(bool forked);
    ForkServer(const ForkServer&) = delete;
    ForkServer& operator=(const ForkServer&) = delete;
    ~ForkServer();

    // Starts the server now rather than with the first child.
    void start();
    std::unique_ptr<Popen> start_child(const std::string& job, std::span<const int> fds);
    void stop() noexcept;
    pid_t pid() const noexcept;
    int control_fd() const noexcept;
    // In a fork child: drops this process's copy of the control socket (async-signal-safe).
    void forget_after_fork() noexcept {
        control_.reset();
        pid_ = -1;
    }

private:
    int ensure_running_locked();

    mutable std::mutex mu_;
    const bool forked_;
    platform::UniqueFd control_;
    pid_t pid_ = -1;
};

// The forkserver process's loop; never returns.
[[noreturn]] void forkserver_main(int control_fd) noexcept;
pid_t forkserver_pid() noexcept;
void stop_forkserver() noexcept;

void flush_std_streams() noexcept;

namespace pool {
// This thread's eventfd for waiting on pool results, -1 when it has none (it is kept for the
// thread's life, so the test suite's descriptor check counts it as persistent).
int waiter_fd_if_open() noexcept;
}
// Runs this executable again as `--mproc-<role> <fd>` (role: "spawn", "forkserver" or
// "tracker"; init() sends each to its job), with fd kept open in it and the signals in
// `blocked` blocked from its start (platform::spawn_process).
pid_t spawn_self(const char* role, int fd, std::span<const int> blocked = {});

}  // namespace mproc::detail
