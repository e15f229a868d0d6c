#include "leak_check.hpp"

#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include <mproc/mproc.hpp>

#include <mproc/detail/introspect.hpp>

namespace mproc_test {
namespace {

// The test process itself (children run main too, then leave in mproc::init).
const pid_t main_pid = getpid();

// The children this process created itself since the current test started, as opposed to
// orphans re-parented to it (it is a subreaper): a zombie of the first kind was never joined
// (a leak); one of the second kind has ended as it should and only we can reap it.
std::mutex created_mu;
std::set<int> created;

void note_created(pid_t pid) {
    // Only the test process keeps the list: a forked child may hold a copy of the mutex locked
    // by another thread at the fork.
    if (pid <= 0 || getpid() != main_pid) return;
    std::lock_guard lk(created_mu);
    created.insert(pid);
}

bool was_created(int pid) {
    std::lock_guard lk(created_mu);
    return created.count(pid) != 0;
}

template <class F>
F real(const char* name) {
    return reinterpret_cast<F>(dlsym(RTLD_NEXT, name));
}

int shm_log_fd = -1;  // the test process's own descriptor on the log, for reading
constexpr const char* shm_log_env = "MPROC_TEST_SHM_LOG";

void log_shm_name(const char* name) {
    const char* path = std::getenv(shm_log_env);
    if (!path || !*path) return;
    // No allocation: this may run in a forked child of a threaded process.
    char line[512];
    const std::size_t n = strnlen(name, sizeof line - 2);
    memcpy(line, name, n);
    line[n] = '\n';
    const int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd < 0) return;
    [[maybe_unused]] const ssize_t w = write(fd, line, n + 1);  // O_APPEND: one line, whole
    close(fd);
}

}  // namespace
}  // namespace mproc_test

// Interposed for the whole test binary (a definition in the executable wins over libc's, for
// mproc's calls as for the tests'): the leak check learns which children this process made
// and which /dev/shm names any process of this tree created.
extern "C" pid_t fork() noexcept {
    static const auto f = mproc_test::real<pid_t (*)()>("fork");
    const pid_t pid = f();
    mproc_test::note_created(pid);
    return pid;
}

extern "C" int posix_spawn(pid_t* pid, const char* path, const posix_spawn_file_actions_t* fa,
                           const posix_spawnattr_t* attr, char* const argv[], char* const envp[]) {
    using F = int (*)(pid_t*, const char*, const posix_spawn_file_actions_t*, const posix_spawnattr_t*,
                      char* const*, char* const*);
    static const auto f = mproc_test::real<F>("posix_spawn");
    const int e = f(pid, path, fa, attr, argv, envp);
    if (e == 0 && pid) mproc_test::note_created(*pid);
    return e;
}

extern "C" int posix_spawnp(pid_t* pid, const char* file, const posix_spawn_file_actions_t* fa,
                            const posix_spawnattr_t* attr, char* const argv[], char* const envp[]) {
    using F = int (*)(pid_t*, const char*, const posix_spawn_file_actions_t*, const posix_spawnattr_t*,
                      char* const*, char* const*);
    static const auto f = mproc_test::real<F>("posix_spawnp");
    const int e = f(pid, file, fa, attr, argv, envp);
    if (e == 0 && pid) mproc_test::note_created(*pid);
    return e;
}

extern "C" int shm_open(const char* name, int oflag, mode_t mode) {
    static const auto f = mproc_test::real<int (*)(const char*, int, mode_t)>("shm_open");
    const int fd = f(name, oflag, mode);
    if (fd >= 0 && (oflag & O_CREAT)) mproc_test::log_shm_name(name);
    return fd;
}

namespace mproc_test {

namespace {
std::vector<int> children_of(int parent) {
    // /proc/<pid>/task/<tid>/children lists children per thread; walk every thread.
    std::vector<int> pids;
    const std::string base = "/proc/" + std::to_string(parent) + "/task";
    if (DIR* d = opendir(base.c_str())) {
        while (dirent* e = readdir(d)) {
            if (e->d_name[0] == '.') continue;
            std::ifstream f(base + "/" + e->d_name + "/children");
            int pid;
            while (f >> pid) pids.push_back(pid);
        }
        closedir(d);
    }
    return pids;
}

bool is_daemon(int pid) { return pid == mproc::detail::forkserver_pid() || pid == mproc::detail::tracker_pid(); }

// 'Z' for a zombie, 0 when the process is gone.
char state_of(int pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
    std::string s;
    std::getline(f, s);
    const auto p = s.rfind(')');
    return p == std::string::npos || p + 2 >= s.size() ? 0 : s[p + 2];
}

// Every process below this one but the library's daemons (the forkserver, the shm tracker),
// which live across tests. The daemons' own children are included: a process started by the
// forkserver is the forkserver's child, and a test's as much as a forked one.
std::vector<int> descendants() {
    std::vector<int> out, todo = children_of(getpid());
    while (!todo.empty()) {
        const int pid = todo.back();
        todo.pop_back();
        if (!is_daemon(pid)) out.push_back(pid);
        for (int c : children_of(pid)) todo.push_back(c);
    }
    return out;
}

bool wait_exit(int pid, int ms) {
    const long fd = syscall(SYS_pidfd_open, pid, 0);
    if (fd < 0) return true;
    pollfd p{static_cast<int>(fd), POLLIN, 0};
    const bool gone = poll(&p, 1, ms) == 1;
    close(static_cast<int>(fd));
    return gone;
}

void reap_if_ours(int pid) {
    int st;
    waitpid(pid, &st, WNOHANG);
}

std::set<std::string> all_shm() {
    std::set<std::string> out;
    if (DIR* d = opendir("/dev/shm")) {
        while (dirent* e = readdir(d))
            if (e->d_name[0] != '.') out.insert(e->d_name);
        closedir(d);
    }
    return out;
}

long shm_log_size() {
    struct stat st;
    return shm_log_fd >= 0 && fstat(shm_log_fd, &st) == 0 ? static_cast<long>(st.st_size) : 0;
}

// The names logged since `offset`, without their leading '/'.
std::set<std::string> shm_logged_since(long offset) {
    std::set<std::string> out;
    const long end = shm_log_size();
    if (end <= offset) return out;
    std::string buf(static_cast<std::size_t>(end - offset), '\0');
    const ssize_t n = pread(shm_log_fd, buf.data(), buf.size(), offset);
    if (n <= 0) return out;
    buf.resize(static_cast<std::size_t>(n));
    std::istringstream in(buf);
    for (std::string l; std::getline(in, l);)
        if (!l.empty()) out.insert(l[0] == '/' ? l.substr(1) : l);
    return out;
}
}  // namespace

void open_shm_log() {
    // One log per test binary run, shared by its whole process tree through the environment
    // (spawned children and the forkserver inherit it). The file is unlinked at once and reached
    // by /proc/<pid>/fd/<n>, so nothing is left in /tmp when the test binary ends, however.
    if (!std::getenv(shm_log_env)) {
        char path[] = "/tmp/mproc-test-shm-log-XXXXXX";
        const int fd = mkostemp(path, O_CLOEXEC);
        if (fd < 0) return;
        unlink(path);
        const std::string proc = "/proc/" + std::to_string(getpid()) + "/fd/" + std::to_string(fd);
        setenv(shm_log_env, proc.c_str(), 1);
        shm_log_fd = fd;
    }
}

std::vector<int> child_pids() {
    std::vector<int> pids = children_of(getpid());
    // The forkserver and the shared-memory tracker are children the library keeps on purpose.
    std::erase_if(pids, is_daemon);
    return pids;
}

// Every descriptor open in this process (the listing's own aside), in order.
static std::vector<int> open_fds() {
    std::vector<int> out;
    if (DIR* d = opendir("/proc/self/fd")) {
        const int own = dirfd(d);
        while (dirent* e = readdir(d))
            if (e->d_name[0] != '.' && atoi(e->d_name) != own) out.push_back(atoi(e->d_name));
        closedir(d);
    }
    return out;
}

static std::string target_of(int fd) {
    char buf[512];
    const std::string path = "/proc/self/fd/" + std::to_string(fd);
    const ssize_t n = readlink(path.c_str(), buf, sizeof buf - 1);
    return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "?";
}

std::set<std::string> open_fd_targets() {
    std::set<std::string> out;
    for (int fd : open_fds()) out.insert(std::to_string(fd) + " -> " + target_of(fd));
    return out;
}

std::set<std::string> open_fd_identities() {
    std::set<std::string> out;
    for (int fd : open_fds()) {
        struct stat st{};
        if (fstat(fd, &st) != 0) continue;  // closed meanwhile (another thread)
        out.insert(std::to_string(fd) + " " + std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino));
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
    for (const auto& n : all_shm())
        if (n.rfind(shm_prefix(), 0) == 0) out.insert(n);
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
        wait_exit(left.front(), 50);
    }
}

void LeakCheck::OnTestStart(const testing::TestInfo&) {
    // A test binary started by a test shares its parent's log; it reads it with its own
    // descriptor, opened here (never in the children, which leave in mproc::init).
    if (shm_log_fd < 0)
        if (const char* path = std::getenv(shm_log_env)) shm_log_fd = open(path, O_RDONLY | O_CLOEXEC);
    {
        std::lock_guard lk(created_mu);
        created.clear();
    }
    fds_ = open_fd_identities();
    shm_ = all_shm();
    shm_log_offset_ = shm_log_size();
}

// Skipped tests are checked too: what a test leaks before GTEST_SKIP is leaked all the same.
void LeakCheck::OnTestEnd(const testing::TestInfo&) {
    // 1. Children this process created during the test and nobody joined: reported whether they
    // still run or have ended (a zombie), then killed and reaped so the next test starts clean.
    // No grace period: a test that joined its children has reaped them by now.
    for (int pid : child_pids()) {
        if (!was_created(pid)) continue;
        const char st = state_of(pid);
        if (!st) continue;
        ADD_FAILURE() << "leak check: child process " << pid
                      << (st == 'Z' ? " ended but was never joined (a zombie)" : " is still running after the test")
                      << "; killed and reaped";
        kill(pid, SIGKILL);
        wait_exit(pid, 5000);
        reap_if_ours(pid);
    }
    // 2. Any other descendant: orphans re-parented to us, children of the forkserver, their
    // children. An orphan that has ended is ours to reap, and no leak; one may still be on its
    // way out (a killed parent's children follow it within two seconds), so each gets 5 s.
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    std::vector<int> running;
    for (;;) {
        running.clear();
        for (int pid : descendants()) {
            if (state_of(pid) == 'Z')
                reap_if_ours(pid);  // the forkserver reaps its own
            else
                running.push_back(pid);
        }
        if (running.empty() || std::chrono::steady_clock::now() >= until) break;
        wait_exit(running.front(), 50);
    }
    // Killing one may orphan its children onto us: repeat until none is left (bounded).
    for (int round = 0; round < 5 && !running.empty(); ++round) {
        for (int pid : running) {
            ADD_FAILURE() << "leak check: process " << pid << " (a descendant: an orphan, or started by the forkserver)"
                          << " is still running after the test; killed";
            kill(pid, SIGKILL);
        }
        for (int pid : running) {
            wait_exit(pid, 5000);
            reap_if_ours(pid);
        }
        running.clear();
        for (int pid : descendants()) {
            if (state_of(pid) == 'Z')
                reap_if_ours(pid);
            else
                running.push_back(pid);
        }
    }
    // Descriptors the library keeps for the life of the process (its own pidfd, the
    // forkserver's control socket) may first appear during a test; any other new one is a leak.
    // Compared by what they are (device and inode), not by their targets' names: CTest leaves
    // its own log file open in the tests it starts, and once it removes the file the same
    // descriptor reads "LastTest.log.tmp (deleted)" (the ASan stage reported it so once).
    const std::vector<int> keep = mproc::detail::persistent_fds();
    for (const auto& id : open_fd_identities()) {
        if (fds_.count(id)) continue;
        const int fd = std::atoi(id.c_str());
        if (std::find(keep.begin(), keep.end(), fd) != keep.end()) continue;
        ADD_FAILURE() << "leak check: descriptor left open: " << fd << " -> " << target_of(fd);
    }
    // /dev/shm is shared with every other test binary running at the same time, so a new entry
    // there is not necessarily ours. Ours are (a) the names any process of this tree created,
    // as logged by the shm_open above, whatever the name, and (b) names with this process's
    // prefix (mproc's default names, in case a process of ours reached shm_open some other way).
    // Entries there before the test are not counted. A leaked entry is removed after the report.
    const auto now = all_shm();
    std::set<std::string> ours = shm_logged_since(shm_log_offset_);
    for (const auto& n : now)
        if (n.rfind(shm_prefix(), 0) == 0) ours.insert(n);
    for (const auto& s : ours) {
        if (!now.count(s) || shm_.count(s)) continue;
        ADD_FAILURE() << "leak check: /dev/shm entry left: " << s << " (removed)";
        shm_unlink(("/" + s).c_str());
    }
}

}  // namespace mproc_test
