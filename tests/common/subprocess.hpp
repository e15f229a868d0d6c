// A child program (python3, an example) run by a test: its stdout read line by line with a
// deadline, its exit awaited with a deadline, and killed and reaped if the test ends first.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

extern char** environ;

namespace mproc_test {

class Subprocess {
public:
    explicit Subprocess(const std::vector<std::string>& argv) {
        int p[2];
        if (pipe2(p, O_CLOEXEC) != 0) throw std::runtime_error("pipe2");
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, p[1], 1);
        std::vector<char*> args;
        for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        const int e = posix_spawnp(&pid_, args[0], &fa, nullptr, args.data(), environ);
        posix_spawn_file_actions_destroy(&fa);
        close(p[1]);
        out_ = p[0];
        if (e != 0) {
            close(out_);
            throw std::runtime_error("cannot start " + argv[0]);
        }
        pidfd_ = static_cast<int>(syscall(SYS_pidfd_open, pid_, 0));
    }
    ~Subprocess() {
        if (!reaped_) {
            kill(pid_, SIGKILL);
            int st;
            waitpid(pid_, &st, 0);
        }
        close(out_);
        if (pidfd_ >= 0) close(pidfd_);
    }
    Subprocess(const Subprocess&) = delete;
    Subprocess& operator=(const Subprocess&) = delete;

    // The next line of output, without its newline; empty optional at end of output or timeout.
    std::optional<std::string> read_line(double seconds = 20) {
        const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
        for (;;) {
            const auto nl = buf_.find('\n');
            if (nl != std::string::npos) {
                std::string line = buf_.substr(0, nl);
                buf_.erase(0, nl + 1);
                return line;
            }
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
            if (left.count() <= 0) return std::nullopt;
            pollfd p{out_, POLLIN, 0};
            if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
            char b[4096];
            const ssize_t n = read(out_, b, sizeof b);
            if (n <= 0) return std::nullopt;
            buf_.append(b, static_cast<std::size_t>(n));
        }
    }
    std::string rest(double seconds = 20) {
        std::string all;
        while (auto l = read_line(seconds)) all += *l + "\n";
        return all + buf_;
    }
    // The exit code (-N for signal N), or empty if it did not end in time.
    std::optional<int> wait(double seconds = 20) {
        pollfd p{pidfd_, POLLIN, 0};
        if (poll(&p, 1, static_cast<int>(seconds * 1000)) <= 0) return std::nullopt;
        int st;
        waitpid(pid_, &st, 0);
        reaped_ = true;
        return WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
    }

private:
    pid_t pid_ = -1;
    int pidfd_ = -1;
    int out_ = -1;
    std::string buf_;
    bool reaped_ = false;
};

}  // namespace mproc_test
