// Waits, with inotify, until a file is removed, or the deadline passes: no sleeping.
#pragma once

#include <poll.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <chrono>
#include <string>

namespace mproc_test {

inline bool exists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }

inline bool wait_until_removed(const std::string& path, double seconds) {
    const int in = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    const std::string dir = path.substr(0, path.rfind('/'));
    inotify_add_watch(in, dir.c_str(), IN_DELETE);
    const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    bool gone = !exists(path);
    while (!gone) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
        if (left.count() <= 0) break;
        pollfd p{in, POLLIN, 0};
        if (poll(&p, 1, static_cast<int>(left.count())) > 0) {
            char buf[4096];
            while (read(in, buf, sizeof buf) > 0) {
            }
        }
        gone = !exists(path);
    }
    close(in);
    return gone;
}

}  // namespace mproc_test
