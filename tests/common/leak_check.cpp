#include "leak_check.hpp"

#include <dirent.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include <mproc/mproc.hpp>

#include <mproc/detail/introspect.hpp>

namespace mproc_test {

std::vector<int> child_pids() {
    // /proc/<pid>/task/<tid>/children lists children per thread; walk every thread.
    std::vector<int> pids;
    const std::string base = "/proc/" + std::to_string(getpid()) + "/task";
    if (DIR* d = opendir(base.c_str())) {
        while (dirent* e = readdir(d)) {
            if (e->d_name[0] == '.') continue;
            std::ifstream f(base + "/" + e->d_name + "/children");
            int pid;
            while (f >> pid) pids.push_back(pid);
        }
        closedir(d);
    }
    // The forkserver and the shared-memory tracker are children the library keeps on purpose.
    std::erase(pids, mproc::detail::forkserver_pid());
    std::erase(pids, mproc::detail::tracker_pid());
    return pids;
}

std::set<std::string> open_fd_targets() {
    std::set<std::string> out;
    if (DIR* d = opendir("/proc/self/fd")) {
        const int own = dirfd(d);
        while (dirent* e = readdir(d)) {
            if (e->d_name[0] == '.' || atoi(e->d_name) == own) continue;
            char buf[512];
            const std::string path = std::string("/proc/self/fd/") + e->d_name;
            const ssize_t n = readlink(path.c_str(), buf, sizeof buf - 1);
            out.insert(std::string(e->d_name) + " -> " + (n > 0 ? std::string(buf, n) : "?"));
        }
        closedir(d);
    }
    return out;
}

std::string shm_prefix() {
    static const std::string prefix = [] {
        const char* env = getenv("MPROC_SHM_NAME_PREFIX");  // set by the test main, inherited
        return std::string(env && *env ? env : "mproc_t" + std::to_string(getpid()) + "_");
    }();
    return prefix;
}

std::set<std::string> shm_entries() {
    std::set<std::string> out;
    if (DIR* d = opendir("/dev/shm")) {
        while (dirent* e = readdir(d)) {
            const std::string n = e->d_name;
            if (n.rfind(shm_prefix(), 0) == 0) out.insert(n);
        }
        closedir(d);
    }
    return out;
}

std::vector<int> settle_children(double seconds) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    for (;;) {
        int status;
        while (waitpid(-1, &status, WNOHANG) > 0) {
        }
        // The forkserver is a child we keep; never reap it here.
        std::vector<int> left = child_pids();
        if (left.empty() || std::chrono::steady_clock::now() >= until) return left;
        // Wait on the first one's exit rather than sleeping blindly.
        const long fd = syscall(SYS_pidfd_open, left.front(), 0);
        if (fd >= 0) {
            pollfd p{static_cast<int>(fd), POLLIN, 0};
            poll(&p, 1, 50);
            close(static_cast<int>(fd));
        }
    }
}

void LeakCheck::OnTestStart(const testing::TestInfo&) {
    fds_ = open_fd_targets();
    shm_ = shm_entries();
}

void LeakCheck::OnTestEnd(const testing::TestInfo& info) {
    if (info.result()->Skipped()) return;
    const std::vector<int> left = settle_children(5.0);
    for (int pid : left) {
        ADD_FAILURE() << "leak check: child process " << pid << " is still running after the test";
        kill(pid, SIGKILL);
    }
    settle_children(5.0);
    // Descriptors the library keeps for the life of the process (its own pidfd, the
    // forkserver's control socket) may first appear during a test; any other new one is a leak.
    const std::vector<int> keep = mproc::detail::persistent_fds();
    for (const auto& fd : open_fd_targets()) {
        if (fds_.count(fd)) continue;
        if (std::find(keep.begin(), keep.end(), std::atoi(fd.c_str())) != keep.end()) continue;
        ADD_FAILURE() << "leak check: descriptor left open: " << fd;
    }
    for (const auto& s : shm_entries())
        if (!shm_.count(s)) ADD_FAILURE() << "leak check: /dev/shm entry left: " << s;
}

}  // namespace mproc_test
