// The child side of every start method, the job transport, and the fork and spawn launchers.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>

#include "exit_hooks.hpp"
#include "job.hpp"
#include "launch.hpp"
#include "mproc/detail/code_address.hpp"
#include "mproc/errors.hpp"
#include "mproc/process.hpp"
#include "mproc/serialize.hpp"
#include "platform/io.hpp"
#include "platform/net.hpp"
#include "platform/signal.hpp"
#include "popen.hpp"
#include "process_registry.hpp"
#include "shm_tracker.hpp"
#include "threading_internal.hpp"

namespace mproc::detail {

void flush_std_streams() noexcept {
    try {
        std::cout.flush();
        std::cerr.flush();
        std::clog.flush();
    } catch (...) {
    }
    std::fflush(nullptr);
}

namespace {
// Python prints "Process <name>:" and a traceback; C++ has no traceback, so the type and
// message stand in for its last line.
void report_escaped_exception(const std::string& process_name) noexcept {
    std::string text = "Process " + process_name + ":\n";
    try {
        throw;
    } catch (const std::exception& e) {
        text += type_name(typeid(e)) + ": " + e.what() + "\n";
    } catch (...) {
        text += "an exception that is not a std::exception\n";
    }
    flush_std_streams();
    std::fputs(text.c_str(), stderr);
    std::fflush(stderr);
}
}  // namespace

void run_child(const ChildConfig& cfg, int parent_pidfd, const std::function<void()>& body,
               bool fresh_program) noexcept {
    int code = 0;
    try {
        if (cfg.death_signal_parent > 0) {
            // Measured: a watchdog thread adds 60-100 us to a 200 us fork+exit; this, 10 us.
            if (!platform::set_death_signal(cfg.death_signal_parent)) platform::send_signal(platform::get_pid(), platform::kSigKill);
            set_current_from_config(cfg, parent_pidfd);
        } else {
            // Two handles on the parent: the watchdog owns one, parent_process() the other.
            platform::UniqueFd for_handle = platform::dup_fd(parent_pidfd);
            platform::start_parent_watchdog(parent_pidfd);
            set_current_from_config(cfg, for_handle.release());
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "mproc: child %s could not set up: %s\n", cfg.name.c_str(), e.what());
        platform::exit_now(70);
    }
    try {
        body();
    } catch (...) {
        report_escaped_exception(cfg.name);
        code = 1;
    }
    run_child_exit_hooks();
    exit_function();
    // Then the child's own non-daemon threads, as Python's process bootstrap does.
    threading::detail::wait_for_non_daemon_threads();
    flush_std_streams();
    if (fresh_program) std::exit(code);  // a fresh program: run its own static destructors
    platform::exit_now(code);            // a copy of the parent: its destructors are not ours
}

namespace {
struct JobHeader {
    std::uint64_t size;
    std::uint32_t fd_count;
    std::uint32_t magic;
};
constexpr std::uint32_t kJobMagic = 0x6d70726f;  // "mpro"
}  // namespace

bool recv_exact(int sock, void* data, std::size_t size, std::vector<platform::UniqueFd>* fds) {
    const std::size_t got = platform::recv_all(sock, data, size, fds);
    if (got == size) return true;
    if (got == 0) return false;
    throw EOFError("mproc: end of file in the middle of a message (" + std::to_string(got) + " of " +
                   std::to_string(size) + " bytes)");
}

void send_job(int sock, const std::string& job, std::span<const int> fds) {
    const JobHeader h{job.size(), static_cast<std::uint32_t>(fds.size()), kJobMagic};
    platform::send_all(sock, &h, sizeof h, fds);
    platform::send_all(sock, job.data(), job.size());
}

void run_job(int sock, bool fresh_program, pid_t forkserver) noexcept {
    std::string job;
    std::vector<platform::UniqueFd> fds;
    try {
        JobHeader h{};
        if (!recv_exact(sock, &h, sizeof h, &fds) || h.magic != kJobMagic ||
            fds.size() != h.fd_count || fds.empty())
            throw SerializationError("mproc: malformed job from the parent");
        job.resize(h.size);
        if (!recv_exact(sock, job.data(), job.size()))
            throw SerializationError("mproc: the parent closed before sending the whole job");
    } catch (const std::exception& e) {
        std::fprintf(stderr, "mproc: child could not read its job: %s\n", e.what());
        platform::exit_now(70);
    }
    platform::UniqueFd(sock).reset();  // the job is read: the socket has done its work

    ChildConfig cfg;
    // The arguments take ownership of their descriptors (Connections, shared memory); any not
    // taken stay open for the child's life, which is short.
    std::vector<int> arg_fds;
    for (std::size_t i = 1; i < fds.size(); ++i) arg_fds.push_back(fds[i].release());
    InputArchive ar(job, arg_fds);
    bool has_target = false;
    EntryFn entry = nullptr;
    try {
        ar(cfg, has_target);
        // A forkserver child follows its logical parent (the process that asked for it, whose
        // pidfd came with the job), not the server: a server that dies (killed, say) leaves its
        // children running, as Python's do, and the next start starts another server.
        if (forkserver > 0) cfg.death_signal_parent = -1;
        if (cfg.has_tracker) {
            if (arg_fds.empty()) throw SerializationError("mproc: the job lacks its tracker descriptor");
            adopt_tracker(arg_fds.back());  // after the arguments' descriptors, never one of them
            arg_fds.back() = -1;
        }
        if (has_target) {
            entry = load_function<void(InputArchive&)>(ar);
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "mproc: child could not read its job: %s\n", e.what());
        platform::exit_now(70);
    }
    run_child(cfg, fds[0].release(), [&] {
        if (entry) entry(ar);
    }, fresh_program);
}

namespace {
// fork and spawn children are ours to reap; their pidfd is the sentinel.
class ChildPopen final : public Popen {
public:
    ChildPopen(pid_t pid, platform::UniqueFd pidfd) : pid_(pid), pidfd_(std::move(pidfd)) {}
    pid_t pid() const noexcept override { return pid_; }
    int sentinel() const noexcept override { return pidfd_.get(); }
    std::optional<int> poll() override {
        if (!code_) code_ = platform::try_reap(pid_);
        return code_;
    }
    void send_signal(int sig) override {
        if (!code_) platform::pidfd_signal(pidfd_.get(), sig);
    }
    int wait_ended() override {
        if (!code_) code_ = platform::reap(pid_);
        return *code_;
    }

private:
    pid_t pid_;
    platform::UniqueFd pidfd_;
    std::optional<int> code_;
};
}  // namespace

pid_t fork_child() {
    flush_std_streams();  // else buffered output would be written twice, by parent and child
    std::lock_guard lk(fork_mutex());
    const pid_t pid = platform::fork_process();
    if (pid == 0) {
        platform::forget_self_pidfd_after_fork();
        forget_children_after_fork();
    }
    return pid;
}

std::unique_ptr<Popen> start_fork(const ChildConfig& cfg, const std::function<void()>& body) {
    const int lifeline = platform::self_pidfd();  // opened before fork so the child inherits it
    const pid_t pid = fork_child();
    if (pid == 0) run_child(cfg, lifeline, body, false);
    return std::make_unique<ChildPopen>(pid, platform::pidfd_open(pid));
}

std::unique_ptr<Popen> start_spawn(const std::string& job, std::span<const int> fds) {
    auto [mine, theirs] = platform::socket_pair(platform::SocketKind::Stream);
    const pid_t pid = spawn_self("spawn", theirs.get());
    theirs.reset();
    auto popen = std::make_unique<ChildPopen>(pid, platform::pidfd_open(pid));
    try {
        send_job(mine.get(), job, fds);
    } catch (...) {
        popen->send_signal(platform::kSigKill);
        popen->wait_ended();
        throw;
    }
    return popen;
}

}  // namespace mproc::detail
