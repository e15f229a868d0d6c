// src/platform/platform.hpp: the one internal interface to the operating system.
//
// Everything above this layer is written against these functions; the Linux implementation is
// in src/platform/linux/. Conventions: every descriptor is created close-on-exec and owned by a
// UniqueFd; every failure of a system call is std::system_error with the real errno; every
// blocking wait takes a Deadline and resumes after EINTR with the time that remains.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mproc/detail/deadline.hpp"
#include "mproc/detail/timeout.hpp"

namespace mproc::platform {

// A move-only owner of one file descriptor.
class UniqueFd {
public:
    UniqueFd() noexcept = default;
    explicit UniqueFd(int fd) noexcept : fd_(fd) {}
    UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    UniqueFd& operator=(UniqueFd&& o) noexcept {
        if (this != &o) reset(std::exchange(o.fd_, -1));
        return *this;
    }
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;
    ~UniqueFd() { reset(); }

    int get() const noexcept { return fd_; }
    explicit operator bool() const noexcept { return fd_ >= 0; }
    int release() noexcept { return std::exchange(fd_, -1); }
    void reset(int fd = -1) noexcept;

private:
    int fd_ = -1;
};

// A spin-wait hint to the CPU (x86 pause): lets the sibling hyperthread run and saves power.
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield" ::: "memory");
#endif
}

// The one deadline type (mproc/detail/deadline.hpp): built once per blocking call; every wait
// inside that call asks it for the time that remains, so retries never extend the timeout.
using Deadline = mproc::detail::Deadline;

// Waits until fd is readable (or has hung up) or the deadline passes. True when readable.
bool wait_readable(int fd, const Deadline& deadline);
// Waits for any of fds to become readable (a negative one is skipped, as poll(2) does); returns
// the indices of the ready ones (empty on
// timeout).
std::vector<std::size_t> wait_any_readable(std::span<const int> fds, const Deadline& deadline);

std::pair<UniqueFd, UniqueFd> socket_pair(int type);  // SOCK_STREAM or SOCK_SEQPACKET
void set_cloexec(int fd, bool on);
bool is_cloexec(int fd);

// Writes all bytes to a socket (MSG_NOSIGNAL: a closed peer is EPIPE, never SIGPIPE), with the
// descriptors attached to the first byte.
void send_all(int sock, const void* data, std::size_t size, std::span<const int> fds = {});
// Reads exactly size bytes. Returns false on end of file before the first byte; end of file in
// the middle throws EOFError. Descriptors that arrive are appended to fds (when non-null).
bool recv_exact(int sock, void* data, std::size_t size, std::vector<UniqueFd>* fds = nullptr);
// One datagram (SOCK_SEQPACKET) with its descriptors; returns 0 at end of file.
std::size_t recv_message(int sock, void* data, std::size_t size, std::vector<UniqueFd>& fds);

// Processes.
pid_t get_pid() noexcept;
// A number that changes in a forked child (no system call): state kept per process compares it.
unsigned fork_generation() noexcept;
pid_t get_ppid() noexcept;
pid_t get_tid() noexcept;
// fork(2); the child's return is 0. Callers flush their streams first. Each signal in
// The one registry of fork handlers: pthread_atfork(3) is called by this layer only, once.
// Handlers run as pthread_atfork's do: `prepare` in the reverse order of registration (so a
// subsystem registered later, which may use an earlier one, locks first), `parent` and `child`
// in order. `child` runs in the single-threaded child: async-signal-safe work only. Any of the
// three may be null. Registrations last for the life of the process (at most 32).
void at_fork(void (*prepare)(), void (*parent)(), void (*child)());
// `blocked` is blocked in the child from its first instruction (in this thread across the fork).
pid_t fork_process(std::span<const int> blocked = {});
// Starts `path` with argv and the current environment; each fd in keep stays open in the child
// (at the same number). Signals start unblocked in the child, but for those in `blocked`: they
// stay blocked from its start across exec, for a child that must not die of one before it has
// set it up (see ignore_signals). Exec failure throws system_error.
pid_t spawn_process(const std::string& path, const std::vector<std::string>& argv,
                    std::span<const int> keep, std::span<const int> blocked = {});
// SIG_IGN for each signal, then unblocks them: one that arrived while they were blocked is
// dropped, never delivered (Python's resource tracker: signal(SIG_IGN), then pthread_sigmask).
void ignore_signals(std::span<const int> sigs) noexcept;
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
// kill(2); a process that is already gone is not an error.
void send_signal(pid_t pid, int sig);
// Starts a thread that kills this process (SIGKILL) when the process behind parent_pidfd ends.
// The pidfd is owned by the thread from here on.
void start_parent_watchdog(int parent_pidfd);
// PR_SET_PDEATHSIG(SIGKILL): the kernel kills this process when the thread that created it
// exits. Returns false when the parent is already gone (getppid() is no longer expected_parent).
bool set_death_signal(pid_t expected_parent) noexcept;
bool is_main_thread() noexcept;
// The calling thread's name as the OS shows it (truncated to 15 bytes, the kernel's limit).
void set_thread_name(const std::string& name) noexcept;
// Keeps freed memory in this process for reuse instead of handing it back to the system at once
// (glibc: no mmap for large blocks, no trimming): a process that handles one large buffer after
// another then reuses the same pages instead of faulting fresh ones in each time.
void keep_freed_memory() noexcept;
// madvise(MADV_HUGEPAGE) on the 2 MiB-aligned part of [p, p + bytes), when that is at least
// one huge page: the memory faults in 2 MiB at a time where the system's transparent huge
// pages allow it ("madvise" or "always"). A hint: failures are ignored.
void advise_huge_pages(void* p, std::size_t bytes) noexcept;
[[noreturn]] void exit_now(int code) noexcept;  // _exit(2)

// "SEGV" for SIGSEGV; empty for a number that names no signal.
std::string signal_name(int sig);
// isatty(3).
bool is_terminal(int fd) noexcept;

// Machine facts.
int cpu_count() noexcept;
int process_cpu_count() noexcept;
void random_bytes(void* out, std::size_t size);
std::vector<int> open_fds();  // this process's open descriptors, from /proc/self/fd

}  // namespace mproc::platform

namespace mproc::platform {
// dup(2) with close-on-exec.
UniqueFd dup_fd(int fd);
// pidfd_send_signal(2): no pid-reuse race. A process that has ended is not an error.
void pidfd_signal(int pidfd, int sig);
}  // namespace mproc::platform

// Connections: byte streams, sockets, shared lock pages.
namespace mproc::platform {

std::pair<UniqueFd, UniqueFd> make_pipe();  // {read end, write end}
// An eventfd (close-on-exec, non-blocking): a wake-up word a poll loop can wait on beside its
// descriptors. notify adds one; drain resets it to zero.
UniqueFd make_event();
void event_notify(int fd) noexcept;
void event_drain(int fd) noexcept;
bool is_socket(int fd);

// Reads up to size bytes (at least one, unless end of file: 0). EINTR is retried.
std::size_t read_some(int fd, void* data, std::size_t size, std::vector<UniqueFd>* fds = nullptr);
// Writes every byte of the pieces, the descriptors attached to the first byte (sockets only).
// A closed peer is std::system_error(EPIPE), never SIGPIPE, for sockets and pipes alike.
void write_all(int fd, bool socket, std::span<const std::string_view> pieces, std::span<const int> fds = {});
// SOCK_SEQPACKET: one record (one sendmsg) made of the pieces; descriptors attached.
void send_record(int fd, std::span<const std::string_view> pieces, std::span<const int> fds = {});
// One record into data (at most size bytes); 0 at end of file. A record longer than size is
// an error (the stream is not one of ours).
std::size_t recv_record(int fd, void* data, std::size_t size, std::vector<UniqueFd>& fds);
// SOCK_STREAM, SOCK_SEQPACKET, ... of a socket; 0 for anything else (a pipe).
int socket_type(int fd);
// SO_SNDBUF: asks for `bytes` (the kernel caps it at wmem_max); reads what is in force.
void set_send_buffer_size(int fd, int bytes) noexcept;
std::size_t send_buffer_size(int fd);

struct SocketAddress {
    std::string host;  // numeric, for TCP
    int port = 0;
    std::string path;  // Unix; a leading '\0' is an abstract name
};
// A listening socket, close-on-exec. TCP when path is empty (host may be a name; port 0 picks
// a free port); `bound` receives the address actually bound.
UniqueFd listen_socket(const SocketAddress& addr, int backlog, SocketAddress& bound);
// accept(2) with a deadline; empty on timeout.
std::optional<UniqueFd> accept_socket(int listener, const Deadline& deadline, SocketAddress& peer);
UniqueFd connect_socket(const SocketAddress& addr);
// Whether the peer of a connected socket has closed or shut down its end (looks, never waits).
bool peer_closed(int fd) noexcept;
// shutdown(2): a thread blocked reading the socket gets end-of-file (and a thread blocked in
// accept on a listening socket wakes). With read_only, what is being written still goes out.
void shutdown_socket(int fd, bool read_only = false) noexcept;
// TCP keepalive, so that a peer whose machine vanished (no reset ever arrives) is noticed:
// after `idle_s` of silence, probes every `interval_s`, given up after `count`. No-op for a
// socket that is not TCP.
void set_keepalive(int fd, int idle_s, int interval_s, int count) noexcept;
// Whether a numeric host is a loopback address (127.0.0.0/8, ::1, ::ffff:127.x.x.x).
bool is_loopback(const std::string& numeric_host) noexcept;
void unlink_path(const std::string& path) noexcept;
std::string make_temp_dir(const char* prefix);
void remove_dir(const std::string& path) noexcept;

// A page of memory shared by every process that maps its memfd.
class SharedPage {
public:
    SharedPage() = default;
    static SharedPage create(std::size_t size);   // a new memfd, mapped
    static SharedPage attach(UniqueFd fd);         // map a received memfd
    SharedPage(SharedPage&&) noexcept;
    SharedPage& operator=(SharedPage&&) noexcept;
    ~SharedPage();
    void* data() const noexcept { return data_; }
    int fd() const noexcept { return fd_.get(); }
    std::size_t size() const noexcept { return size_; }

private:
    UniqueFd fd_;
    void* data_ = nullptr;
    std::size_t size_ = 0;
};

// A process-shared, robust mutex living in shared memory (PTHREAD_PROCESS_SHARED,
// PTHREAD_MUTEX_ROBUST). lock returns true when the previous owner died holding it (the mutex
// has been made consistent again).
constexpr std::size_t kRobustMutexSize = 64;
void robust_mutex_init(void* at);
bool robust_mutex_lock(void* at);
void robust_mutex_unlock(void* at) noexcept;

}  // namespace mproc::platform

// Synchronization primitives in shared memory.
namespace mproc::platform {
// FUTEX_WAIT on a shared (not process-private) word: sleeps while *word == expected, until
// woken, the deadline passes or a signal interrupts. `cap_ms` bounds one sleep (0: none), for
// callers that must look around now and then (a lock checking that its owner still lives).
// Woken: woken by a wake (or a signal) after sleeping; Changed: *word no longer held `expected`,
// so it never slept.
enum class Wake { Woken, Changed, Capped, Deadline };
Wake futex_wait(std::uint32_t* word, std::uint32_t expected, const Deadline& deadline, int cap_ms = 0);
// Wakes up to n waiters (INT_MAX: all).
void futex_wake(std::uint32_t* word, int n) noexcept;
// FUTEX_CMP_REQUEUE: if *from still equals expected, moves up to n of its waiters to wait on
// `to` instead, waking none.
void futex_requeue(std::uint32_t* from, std::uint32_t expected, int n, std::uint32_t* to) noexcept;
// Whether a thread with this id (as gettid() returns) is alive: it exists and is not a zombie
// (a killed process's main thread stays a zombie until its parent reaps it).
bool thread_alive(pid_t tid) noexcept;
// This thread's id, cached per thread (and refreshed in a forked child).
pid_t current_tid() noexcept;
}  // namespace mproc::platform

// Named shared memory segments (/dev/shm).
namespace mproc::platform {
// shm_open with O_CREAT|O_EXCL and the size set, or without O_CREAT; name starts with '/'.
UniqueFd shm_create(const std::string& name, std::size_t size);
UniqueFd shm_attach(const std::string& name);
void shm_remove(const std::string& name);  // shm_unlink; ENOENT is std::system_error
std::size_t file_size(int fd);
void* map_shared(int fd, std::size_t size);
void unmap(void* data, std::size_t size) noexcept;
// flock(2): a shared lock held while a handle is open, and the exclusive lock the tracker takes
// (blocking) before it removes a name.
void lock_file_shared(int fd);
void lock_file_exclusive(int fd);
}  // namespace mproc::platform

// Rings for queues.
namespace mproc::platform {
// A memfd of `size` bytes (sparse: no memory until touched).
UniqueFd memfd(const char* name, std::size_t size);
// Maps the memfd twice, back to back, so that bytes [capacity, 2 * capacity) alias [0,
// capacity): a message that wraps around the end is contiguous. capacity: a page multiple.
void* map_ring(int fd, std::size_t capacity);
void unmap_ring(void* base, std::size_t capacity) noexcept;
// Gives the pages of [offset, offset + size) back to the system (they read as zero after).
void release_range(int fd, std::size_t offset, std::size_t size) noexcept;
}  // namespace mproc::platform
