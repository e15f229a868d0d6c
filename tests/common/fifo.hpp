// A named pipe in a fresh temporary directory: children (under any start method) get its path
// as a string argument and write to it; the test reads until every writer has closed, with a
// deadline. Waiting is poll(2) on the pipe, never a sleep.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace mproc_test {

class Fifo {
public:
    Fifo() {
        char tmpl[] = "/tmp/mproc-test-XXXXXX";
        if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp");
        dir_ = tmpl;
        path_ = dir_ + "/fifo";
        if (mkfifo(path_.c_str(), 0600) != 0) throw std::runtime_error("mkfifo");
        fd_ = open(path_.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        if (fd_ < 0) throw std::runtime_error("open fifo");
    }
    ~Fifo() {
        close(fd_);
        unlink(path_.c_str());
        rmdir(dir_.c_str());
    }
    Fifo(const Fifo&) = delete;
    Fifo& operator=(const Fifo&) = delete;

    const std::string& path() const { return path_; }

    // Everything written until all writers closed, or what arrived by the deadline.
    std::string read_all(double seconds = 20) {
        const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
        std::string out;
        for (;;) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                until - std::chrono::steady_clock::now());
            if (left.count() <= 0) return out;
            pollfd p{fd_, POLLIN, 0};
            if (poll(&p, 1, static_cast<int>(left.count()) + 1) <= 0) continue;
            char buf[4096];
            const ssize_t n = read(fd_, buf, sizeof buf);
            if (n > 0) {
                out.append(buf, n);
                continue;
            }
            if (p.revents & POLLHUP) return out;  // a writer came and every writer left
        }
    }

    std::vector<int> read_ints(double seconds = 20) {
        std::istringstream in(read_all(seconds));
        std::vector<int> v;
        int x;
        while (in >> x) v.push_back(x);
        return v;
    }

private:
    std::string dir_, path_;
    int fd_ = -1;
};

// Child side.
inline void write_fifo(const std::string& path, const std::string& data) {
    const int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) std::abort();
    if (write(fd, data.data(), data.size()) != static_cast<ssize_t>(data.size())) std::abort();
    close(fd);
}

}  // namespace mproc_test
