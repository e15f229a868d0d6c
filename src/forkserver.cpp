// The forkserver start method: a small single-threaded process, started from this executable on
// first use, forks each child (Python: multiprocessing.forkserver).
//
// Protocol, per child:
//   1. client -> server, on the control socket (SOCK_SEQPACKET): one byte, with a new stream
//      socket's far end attached (SCM_RIGHTS). This is the child's request socket.
//   2. server: fork(). The child reads its job (send_job's format) from the request socket and
//      runs it; the server writes the child's pid (int32, or -errno if fork failed) to it.
//   3. client: writes the job, reads the pid.
//   4. server, when the child ends (platform::ChildReaper tells it): writes the exit code (int32,
//      -N for signal N) to the request socket and closes it. The client's end is the sentinel.
// The server exits when the control socket reaches end of file: the client process is gone.
#include "forkserver.hpp"

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <map>
#include <optional>
#include <system_error>
#include <vector>

#include "mproc/detail/introspect.hpp"
#include "mproc/errors.hpp"
#include "job.hpp"
#include "launch.hpp"
#include "persistent_fds.hpp"
#include "platform/io.hpp"
#include "platform/net.hpp"

namespace mproc::detail {

namespace {
std::int32_t read_int(int fd, bool& eof) {
    std::int32_t v = 0;
    eof = !recv_exact(fd, &v, sizeof v);
    return v;
}

// Every server's control socket, so that a fork child of this process can close its copies:
// a server must see end of file when the process it serves is gone, not when every fork
// child of that process is gone too.
std::mutex& servers_mu() {
    static auto* m = new std::mutex;
    return *m;
}
std::vector<ForkServer*>& servers() {
    static auto* v = new std::vector<ForkServer*>;
    return *v;
}
// A server's own mutex is not taken here: a forked server is started with it held.
void prepare() noexcept { servers_mu().lock(); }
void parent_after() noexcept { servers_mu().unlock(); }
void child_after() noexcept {
    // close(2) is async-signal-safe, as a fork handler needs. The child is single-threaded,
    // and the servers are the parent's: it never uses them.
    for (ForkServer* s : servers()) s->forget_after_fork();
    servers_mu().unlock();
}
void register_server(ForkServer* s) {
    static std::once_flag once;
    std::call_once(once, [] { platform::at_fork(prepare, parent_after, child_after); });
    std::lock_guard lk(servers_mu());
    servers().push_back(s);
}

class ForkserverPopen final : public Popen {
public:
    ForkserverPopen(pid_t pid, platform::UniqueFd sock) : pid_(pid), sock_(std::move(sock)) {}
    pid_t pid() const noexcept override { return pid_; }
    int sentinel() const noexcept override { return sock_.get(); }
    std::optional<int> poll() override {
        if (code_) return code_;
        if (!platform::wait_readable(sock_.get(), platform::Deadline::after(Timeout(0.0))))
            return std::nullopt;
        bool eof = false;
        const std::int32_t v = read_int(sock_.get(), eof);
        code_ = eof ? 255 : v;  // the server died: the code is lost (Python says 255 too)
        return code_;
    }
    void send_signal(int sig) override {
        if (!code_) platform::send_signal(pid_, sig);
    }
    int wait_ended() override {
        if (code_) return *code_;
        bool eof = false;
        const std::int32_t v = read_int(sock_.get(), eof);
        code_ = eof ? 255 : v;
        return *code_;
    }

private:
    pid_t pid_;
    platform::UniqueFd sock_;
    std::optional<int> code_;
};
}  // namespace

ForkServer::ForkServer(bool forked) : forked_(forked) { register_server(this); }

ForkServer::~ForkServer() {
    stop();
    std::lock_guard lk(servers_mu());
    std::erase(servers(), this);
}

pid_t ForkServer::pid() const noexcept {
    std::lock_guard lk(mu_);
    return pid_;
}

int ForkServer::control_fd() const noexcept {
    std::lock_guard lk(mu_);
    return control_.get();
}

int ForkServer::ensure_running_locked() {
    if (control_) return control_.get();
    auto [mine, theirs] = platform::socket_pair(platform::SocketKind::Packets);
    if (forked_) {
        // A copy of this process as it is now, which then only forks: its children see the
        // memory of this moment (the fork start method's promise), and this process never
        // forks again once it runs threads of its own.
        const pid_t pid = fork_child();
        if (pid == 0) {
            mine.reset();
            forkserver_main(theirs.release());
        }
        pid_ = pid;
    } else {
        pid_ = spawn_self("forkserver", theirs.get());
    }
    control_ = std::move(mine);
    return control_.get();
}

void ForkServer::start() {
    std::lock_guard lk(mu_);
    ensure_running_locked();
}

void ForkServer::stop() noexcept {
    pid_t pid;
    {
        std::lock_guard lk(mu_);
        if (!control_) return;
        control_.reset();  // the server sees end of file and exits
        pid = std::exchange(pid_, -1);
    }
    try {
        platform::reap(pid);
    } catch (const std::system_error&) {
        // Not ours to reap after all: nothing is left to wait for.
    }
}

std::unique_ptr<Popen> ForkServer::start_child(const std::string& job, std::span<const int> fds) {
    auto [mine, theirs] = platform::socket_pair(platform::SocketKind::Stream);
    {
        std::lock_guard lk(mu_);
        const char op = 'F';
        const int fd = theirs.get();
        for (int attempt = 0;; ++attempt) {
            const int control = ensure_running_locked();
            try {
                platform::send_all(control, &op, 1, std::span<const int>(&fd, 1));
                break;
            } catch (const std::system_error& e) {
                const int err = e.code().value();
                if (attempt > 0 || (err != EPIPE && err != ECONNRESET)) throw;
                // The server is gone (killed): reap it and start another, as Python does
                // (bpo-31308). Its children live on: they follow us, not it.
                control_.reset();
                platform::reap(std::exchange(pid_, -1));
            }
        }
    }
    theirs.reset();
    send_job(mine.get(), job, fds);
    bool eof = false;
    const std::int32_t pid = read_int(mine.get(), eof);
    if (eof) throw ProcessError("mproc: the forkserver closed the request without starting a child");
    if (pid < 0) throw std::system_error(-pid, std::generic_category(), "fork (in the forkserver)");
    return std::make_unique<ForkserverPopen>(pid, std::move(mine));
}

namespace {
// Tells a client a number on its request socket; the client may be gone, which is its business.
void tell(int sock, std::int32_t v) noexcept {
    try {
        platform::send_all(sock, &v, sizeof v);
    } catch (const std::system_error&) {
    }
}
}  // namespace

void forkserver_main(int control_fd) noexcept {
    platform::UniqueFd control(control_fd);
    // Children's ends arrive as a descriptor, so the loop below is the only place anything
    // happens: no handler runs between fork and the child's own setup.
    std::optional<platform::ChildReaper> reaper;
    try {
        reaper.emplace();
    } catch (const std::system_error& e) {
        std::fprintf(stderr, "mproc forkserver: %s\n", e.what());
        platform::exit_now(70);
    }
    std::map<pid_t, platform::UniqueFd> requests;  // child pid -> its request socket
    const pid_t server_pid = platform::get_pid();

    for (;;) {
        const int watched[2] = {control.get(), reaper->fd()};
        std::vector<std::size_t> ready;
        try {
            ready = platform::wait_any_readable(watched, platform::Deadline::never());
        } catch (const std::system_error&) {
            platform::exit_now(70);
        }
        bool request = false, ended = false;
        for (const std::size_t i : ready) (i == 0 ? request : ended) = true;
        if (ended) {
            reaper->clear();
            while (const auto ended = reaper->reap_one()) {
                auto it = requests.find(ended->first);
                if (it == requests.end()) continue;
                tell(it->second.get(), ended->second);
                requests.erase(it);  // closes the request socket: the client's sentinel
            }
        }
        if (request) {
            char op = 0;
            std::vector<platform::UniqueFd> got;
            std::size_t n = 0;
            try {
                n = platform::recv_message(control.get(), &op, 1, got);
            } catch (...) {
                n = 0;
            }
            if (n == 0) platform::exit_now(0);  // the client is gone
            if (op != 'F' || got.size() != 1) continue;
            const int req = got[0].get();
            pid_t pid;
            try {
                pid = platform::fork_process();
            } catch (const std::system_error& e) {
                pid = -e.code().value();
            }
            if (pid == 0) {
                // The server is single-threaded, so its child may do anything; still, only
                // close(2) and sigprocmask(2) run before the job takes over.
                control.reset();
                for (auto& [_, fd] : requests) fd.reset();
                reaper->release_in_child();
                run_job(got[0].release(), false, server_pid);
            }
            tell(req, pid);  // the child's pid, or -errno
            if (pid > 0) requests.emplace(pid, std::move(got[0]));
        }
    }
}

}  // namespace mproc::detail

namespace mproc::detail {
ForkServer& global_forkserver() {
    static auto* s = new ForkServer(false);  // never destroyed: stop_forkserver runs at exit
    return *s;
}
pid_t forkserver_pid() noexcept { return global_forkserver().pid(); }
void stop_forkserver() noexcept { global_forkserver().stop(); }
std::unique_ptr<Popen> start_forkserver(const std::string& job, std::span<const int> fds) {
    return global_forkserver().start_child(job, fds);
}

namespace {
int global_control_fd() noexcept { return global_forkserver().control_fd(); }
const bool g_control_kept = (keep_fd_source(&global_control_fd), true);
}  // namespace
}  // namespace mproc::detail
