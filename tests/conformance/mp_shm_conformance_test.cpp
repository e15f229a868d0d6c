// CPython's Lib/test/_test_multiprocessing.py, ported: _TestSharedMemory and
// TestResourceTracker, where mproc's segment tracker has the matching behaviour, under fork,
// spawn and forkserver. Suites are named for the CPython class without its leading underscore.
//
// Segments this file names itself start with the test process's prefix (leak_check.hpp), so
// the leak check after each test sees any that is left behind.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <system_error>
#include <thread>

#include <mproc/detail/introspect.hpp>
#include <mproc/mproc.hpp>

#include "leak_check.hpp"
#include "wait_removed.hpp"

extern char** environ;

using namespace std::chrono_literals;
namespace sm = mproc::shared_memory;

namespace {

const auto kStartMethods = testing::Values("fork", "spawn", "forkserver");
auto param_name = [](const auto& info) { return std::string(info.param); };

std::string new_shm_name(const std::string& prefix) { return mproc_test::shm_prefix() + prefix; }

int errno_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const std::system_error& e) {
        return e.code().value();
    }
    return 0;
}

void write_bytes(std::span<std::byte> buf, const std::string& data) { std::memcpy(buf.data(), data.data(), data.size()); }
std::string read_bytes(std::span<std::byte> buf, std::size_t n) { return std::string(reinterpret_cast<const char*>(buf.data()), n); }

// CPython runs the creator of a leaked segment as a separate interpreter (its own tree, its
// own resource tracker). A mproc child shares its parent's tracker (test_resource_tracker_reused),
// which cleans up when the whole tree is gone, so the separate program here is this test binary
// run again, into the HelperProgram test below.
constexpr const char* kHelperEnv = "MPROC_CONF_SHM_HELPER";
constexpr const char* kSignalTrackerEnv = "MPROC_CONF_SHM_HELPER_SIGNAL_TRACKER";

// Not a test of its own: the separate program. Creates the segments, prints their names,
// sleeps until it is terminated.
TEST(HelperProgram, create_segments_and_sleep) {
    const char* count = getenv(kHelperEnv);
    if (!count) GTEST_SKIP() << "the separate program of the tracker tests; runs only as that";
    std::vector<sm::SharedMemory> keep;
    for (int i = 0; i < std::atoi(count); ++i) {
        if (i == 1 && getenv(kSignalTrackerEnv)) {  // check_resource_tracker_death
            const int sig = std::atoi(getenv(kSignalTrackerEnv));
            const pid_t tracker = mproc::detail::tracker_pid();
            ::kill(tracker, sig);
            if (sig == SIGKILL) {
                int st;
                waitpid(tracker, &st, 0);
            } else {
                std::this_thread::sleep_for(1s);  // CPython: "give it time to die"
                siginfo_t info{};
                waitid(P_PID, static_cast<id_t>(tracker), &info, WEXITED | WNOHANG | WNOWAIT);
                std::printf("TRACKER %s\n", info.si_pid == 0 ? "alive" : "dead");
            }
        }
        keep.emplace_back(sm::SharedMemoryOptions{.create = true, .size = 10});
        std::printf("SEGMENT %s\n", keep.back().name().c_str());
    }
    std::fflush(stdout);
    std::this_thread::sleep_for(100s);
}

// Runs the separate program, reads the names of its `count` segments, then SIGTERMs it, as
// CPython's p.terminate(), and reaps it.
class SeparateCreator {
public:
    explicit SeparateCreator(int count, int signal_tracker = 0) {
        int p[2];
        if (pipe2(p, O_CLOEXEC) != 0) throw std::system_error(errno, std::generic_category());
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, p[1], 1);
        std::vector<std::string> env_strings = {std::string(kHelperEnv) + "=" + std::to_string(count)};
        if (signal_tracker) env_strings.push_back(std::string(kSignalTrackerEnv) + "=" + std::to_string(signal_tracker));
        for (char** e = environ; *e; ++e) env_strings.emplace_back(*e);
        std::vector<char*> envp;
        for (auto& e : env_strings) envp.push_back(e.data());
        envp.push_back(nullptr);
        std::string exe = "/proc/self/exe", filter = "--gtest_filter=HelperProgram.create_segments_and_sleep";
        char* argv[] = {exe.data(), filter.data(), nullptr};
        const int e = posix_spawn(&pid_, exe.c_str(), &fa, nullptr, argv, envp.data());
        posix_spawn_file_actions_destroy(&fa);
        close(p[1]);
        if (e != 0) throw std::system_error(e, std::generic_category());
        FILE* out = fdopen(p[0], "r");
        char* line = nullptr;
        std::size_t cap = 0;
        while (static_cast<int>(names.size()) < count && getline(&line, &cap, out) > 0) {
            std::string l(line);
            if (l.rfind("SEGMENT ", 0) == 0) names.push_back(l.substr(8, l.size() - 9));
            if (l.rfind("TRACKER ", 0) == 0) tracker_status = l.substr(8, l.size() - 9);
        }
        std::free(line);
        std::fclose(out);
    }
    void terminate_and_wait() {
        ::kill(pid_, SIGTERM);
        int st;
        waitpid(pid_, &st, 0);
        pid_ = -1;
    }
    ~SeparateCreator() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            int st;
            waitpid(pid_, &st, 0);
        }
    }
    std::vector<std::string> names;
    std::string tracker_status;

private:
    pid_t pid_ = -1;
};

class TestSharedMemory : public testing::TestWithParam<std::string> {
protected:
    mproc::ProcessOptions opts() { return {.daemon = true, .start_method = GetParam()}; }
};

// _TestSharedMemory.test_shared_memory_name_with_embedded_null: a name holding a NUL is
// refused (ValueError: std::invalid_argument) rather than cut short at the NUL.
// Was a divergence (issue 14), now fixed: mproc cuts the name at the NUL and attaches to the segment named by its first
// part: no error.
TEST_P(TestSharedMemory, test_shared_memory_name_with_embedded_null) {
    const std::string name = new_shm_name("test01_null");
    sm::SharedMemory sms({.name = name, .create = true, .size = 512});
    EXPECT_THROW(sm::SharedMemory({.name = name + std::string("\0a", 2), .size = 512}), std::invalid_argument);
    sms.unlink();
}

// _TestSharedMemory.test_shared_memory_basics: name and size, writes seen through a second
// handle, a size given when attaching is ignored, attaching without a name is refused, a
// second unlink raises FileNotFoundError, creating a name in use raises FileExistsError,
// attaching to a missing name raises FileNotFoundError.
TEST_P(TestSharedMemory, test_shared_memory_basics) {
    const std::string name_tsmb = new_shm_name("test01_tsmb");
    sm::SharedMemory sms({.name = name_tsmb, .create = true, .size = 512});
    EXPECT_EQ(sms.name(), name_tsmb);
    EXPECT_GE(sms.size(), 512u);
    EXPECT_GE(sms.buf().size(), sms.size());
    sms.buf()[0] = std::byte{42};
    EXPECT_EQ(sms.buf()[0], std::byte{42});
    {
        sm::SharedMemory also_sms({.name = name_tsmb});
        EXPECT_EQ(also_sms.buf()[0], std::byte{42});
        also_sms.close();
    }
    {
        sm::SharedMemory same_sms({.name = name_tsmb, .size = 20 * sms.size()});
        EXPECT_LT(same_sms.size(), 20 * sms.size());  // the size was ignored
        same_sms.close();
    }
    EXPECT_THROW(sm::SharedMemory({.create = false}), std::invalid_argument);
    {
        const std::string name_dblunlink = new_shm_name("test01_dblunlink");
        sm::SharedMemory sms_uno({.name = name_dblunlink, .create = true, .size = 5000});
        EXPECT_GE(sms_uno.size(), 5000u);
        sm::SharedMemory sms_duo({.name = name_dblunlink});
        sms_duo.unlink();  // the first shm_unlink
        sms_duo.close();
        sms_uno.close();
        EXPECT_EQ(errno_of([&] { sms_uno.unlink(); }), ENOENT);  // a second one is an error
    }
    EXPECT_EQ(errno_of([&] { sm::SharedMemory({.name = name_tsmb, .create = true, .size = 512}); }), EEXIST);
    EXPECT_EQ(errno_of([&] { sm::SharedMemory({.name = new_shm_name("test01_notthere")}); }), ENOENT);
    sms.close();
    sms.unlink();
}

// _TestSharedMemory.test_invalid_shared_memory_creation: creating with size 0, or with no size,
// raises (ValueError: std::invalid_argument). (A negative size cannot be written: size_t.)
TEST_P(TestSharedMemory, test_invalid_shared_memory_creation) {
    EXPECT_THROW(sm::SharedMemory({.create = true, .size = 0}), std::invalid_argument);
    EXPECT_THROW(sm::SharedMemory({.create = true}), std::invalid_argument);
}

// _TestSharedMemory.test_shared_memory_pickle_unpickle: a handle that went through
// serialization (here a Pipe, since a handle carries its descriptor) is the same segment:
// same name, and writes on either side are seen on the other.
TEST_P(TestSharedMemory, test_shared_memory_pickle_unpickle) {
    sm::SharedMemory sms({.create = true, .size = 512});
    write_bytes(sms.buf(), "pickle");
    auto [a, b] = mproc::Pipe();
    a.send(sms);
    sm::SharedMemory sms2 = b.recv<sm::SharedMemory>();
    EXPECT_EQ(sms.name(), sms2.name());
    EXPECT_EQ(read_bytes(sms.buf(), 6), "pickle");
    EXPECT_EQ(read_bytes(sms2.buf(), 6), "pickle");
    write_bytes(sms.buf(), "newval");
    EXPECT_EQ(read_bytes(sms2.buf(), 6), "newval");
    write_bytes(sms2.buf(), "oldval");
    EXPECT_EQ(read_bytes(sms.buf(), 6), "oldval");
    sms.unlink();
}

void attach_then_write(std::string name, std::string data) {
    sm::SharedMemory local({.name = name});
    write_bytes(local.buf(), data);
    local.close();
}
void write_through(sm::SharedMemory local, std::string data) {
    write_bytes(local.buf(), data);
    local.close();
}

// _TestSharedMemory.test_shared_memory_across_processes (bpo-40135): a child attaches by name
// and writes; a child given the handle itself writes.
TEST_P(TestSharedMemory, test_shared_memory_across_processes) {
    sm::SharedMemory sms({.create = true, .size = 512});
    {
        mproc::Process p(opts(), attach_then_write, sms.name(), std::string("howdy"));
        p.start();
        p.join();
        EXPECT_EQ(p.exitcode(), 0);
        EXPECT_EQ(read_bytes(sms.buf(), 5), "howdy");
    }
    {
        mproc::Process p(opts(), write_through, sm::SharedMemory({.name = sms.name()}), std::string("HELLO"));
        p.start();
        p.join();
        EXPECT_EQ(p.exitcode(), 0);
        EXPECT_EQ(read_bytes(sms.buf(), 5), "HELLO");
    }
    sms.close();
    sms.unlink();
}

// _TestSharedMemory.test_shared_memory_ShareableList_basics, typed (python_differences.md,
// ShareableList row: one trivially copyable type, so the format and mixed-type cases are
// Python's): indices out of range raise IndexError (std::out_of_range), len, index (ValueError
// when absent: std::invalid_argument), get and set, count, a copy under a given name is a
// separate list, a second handle by name shares it, an empty list.
TEST_P(TestSharedMemory, test_shared_memory_ShareableList_basics) {
    sm::ShareableList<long> sl(std::vector<long>{7, 5, -273, 100, 0, 1, 42});
    EXPECT_THROW(sl.get(7), std::out_of_range);
    EXPECT_THROW(sl.set(7, 2), std::out_of_range);
    EXPECT_EQ(sl.size(), 7u);
    EXPECT_THROW(sl.index(101), std::invalid_argument);
    EXPECT_EQ(sl.index(100), 3u);
    EXPECT_EQ(sl.get(0), 7);
    EXPECT_EQ(sl.get(5), 1);
    EXPECT_EQ(sl.to_vector(), (std::vector<long>{7, 5, -273, 100, 0, 1, 42}));
    sl.set(3, 42);
    EXPECT_EQ(sl.get(3), 42);
    EXPECT_EQ(sl.count(42), 2u);
    EXPECT_EQ(sl.count(5), 1u);
    EXPECT_EQ(sl.count(-1), 0u);
    {
        const std::string name_duplicate = new_shm_name("test03_duplicate");
        sm::ShareableList<long> sl_copy(sl.to_vector(), name_duplicate);
        EXPECT_NE(sl.shm().name(), sl_copy.shm().name());
        EXPECT_EQ(sl_copy.shm().name(), name_duplicate);
        EXPECT_EQ(sl.to_vector(), sl_copy.to_vector());
        sl_copy.set(6, 77);
        EXPECT_EQ(sl_copy.get(6), 77);
        EXPECT_NE(sl.get(6), 77);
        sl_copy.shm().unlink();
    }
    {
        sm::ShareableList<long> sl_tethered(sl.shm().name());
        EXPECT_EQ(sl.shm().name(), sl_tethered.shm().name());
        sl_tethered.set(6, 880);
        EXPECT_EQ(sl.get(6), 880);
    }
    sl.shm().unlink();
    sm::ShareableList<long> empty_sl(std::vector<long>{});
    EXPECT_EQ(empty_sl.size(), 0u);
    EXPECT_EQ(empty_sl.count(0), 0u);
    EXPECT_THROW(empty_sl.index(0), std::invalid_argument);
    empty_sl.shm().unlink();
}

// _TestSharedMemory.test_shared_memory_ShareableList_pickling: a list that went through
// serialization (a Pipe) is the same list: changes on either side are seen on the other.
TEST_P(TestSharedMemory, test_shared_memory_ShareableList_pickling) {
    sm::ShareableList<long> sl(std::vector<long>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
    auto [a, b] = mproc::Pipe();
    a.send(sl);
    auto deserialized_sl = b.recv<sm::ShareableList<long>>();
    EXPECT_EQ(deserialized_sl.get(9), 9);
    deserialized_sl.set(4, -4);
    EXPECT_EQ(sl.get(4), -4);
    sl.set(3, -3);
    EXPECT_EQ(deserialized_sl.get(3), -3);
    sl.shm().unlink();
}

// _TestSharedMemory.test_shared_memory_cleaned_after_process_termination: a segment whose
// creator (a separate program) is terminated without unlinking it is removed. (Python's
// tracker also warns on stderr about the leak; mproc's says nothing.)
TEST_P(TestSharedMemory, test_shared_memory_cleaned_after_process_termination) {
    SeparateCreator p(1);
    ASSERT_EQ(p.names.size(), 1u);
    const std::string name = p.names[0];
    ASSERT_TRUE(mproc_test::exists("/dev/shm/" + name));
    p.terminate_and_wait();
    EXPECT_TRUE(mproc_test::wait_until_removed("/dev/shm/" + name, 300))
        << "A SharedMemory segment was leaked after a process was abruptly terminated";
}

void attach_and_close(std::string name, bool track) {
    sm::SharedMemory mem({.name = name, .track = track});
    mem.close();
}

// _TestSharedMemory.test_shared_memory_untracking (gh-82300): a process that attaches with
// track=False and exits leaves the segment in place.
TEST_P(TestSharedMemory, test_shared_memory_untracking) {
    sm::SharedMemory mem({.create = true, .size = 10});
    mproc::Process p(opts(), attach_and_close, mem.name(), false);
    p.start();
    p.join();
    EXPECT_EQ(p.exitcode(), 0);
    EXPECT_NO_THROW(sm::SharedMemory({.name = mem.name()}));
    mem.unlink();
}

// _TestSharedMemory.test_shared_memory_tracking (gh-82300): in Python a process that attaches
// with track=True registers the segment, so its tracker removes it when it exits. mproc
// registers only the creator (python_differences.md, "SharedMemory(name) registers the
// attacher" row): the segment stays for its creator.
TEST_P(TestSharedMemory, test_shared_memory_tracking) {
    sm::SharedMemory mem({.create = true, .size = 10});
    mproc::Process p(opts(), attach_and_close, mem.name(), true);
    p.start();
    p.join();
    EXPECT_EQ(p.exitcode(), 0);
    EXPECT_NO_THROW(sm::SharedMemory({.name = mem.name()}));
    mem.unlink();
}

INSTANTIATE_TEST_SUITE_P(StartMethods, TestSharedMemory, kStartMethods, param_name);

// ---------------------------------------------------------------------------------------------
// TestResourceTracker

class TestResourceTracker : public testing::TestWithParam<std::string> {
protected:
    mproc::ProcessOptions opts() { return {.daemon = true, .start_method = GetParam()}; }
};

// TestResourceTracker.test_resource_tracker: a separate program makes two segments; one is
// unlinked by hand, the program is terminated, and its tracker removes the other. (Python's
// semaphores are named and tracked too; mproc's are anonymous memory that cannot leak. Its
// stderr warnings: mproc has none.)
TEST_P(TestResourceTracker, test_resource_tracker) {
    SeparateCreator p(2);
    ASSERT_EQ(p.names.size(), 2u);
    sm::SharedMemory({.name = p.names[0]}).unlink();
    p.terminate_and_wait();
    EXPECT_TRUE(mproc_test::wait_until_removed("/dev/shm/" + p.names[1], 30))
        << "A shared_memory resource was leaked after a process was abruptly terminated";
}

// Removes what a test's separate program left, so that a failing test leaks nothing.
void remove_leftovers(const std::vector<std::string>& names) {
    for (const auto& n : names)
        if (mproc_test::exists("/dev/shm/" + n)) sm::SharedMemory({.name = n}).unlink();
}

// TestResourceTracker.check_resource_tracker_death (bpo-31310) for a catchable signal: the
// tracker, signalled right after it started (CPython: ensure_running() then os.kill), ignores
// it (should_die False), and still removes the segments of its terminated program. The
// separate program signals its own tracker after its first segment, as CPython's test does.
void check_resource_tracker_ignores(int signum) {
    SeparateCreator p(2, signum);
    ASSERT_EQ(p.names.size(), 2u);
    EXPECT_EQ(p.tracker_status, "alive") << "the tracker died of signal " << signum;
    p.terminate_and_wait();
    if (p.tracker_status != "alive") return remove_leftovers(p.names);  // nobody will remove them
    for (const auto& n : p.names) EXPECT_TRUE(mproc_test::wait_until_removed("/dev/shm/" + n, 30)) << n;
    remove_leftovers(p.names);
}

// TestResourceTracker.test_resource_tracker_sigint: SIGINT is ignored.
TEST_P(TestResourceTracker, test_resource_tracker_sigint) { check_resource_tracker_ignores(SIGINT); }

// TestResourceTracker.test_resource_tracker_sigterm: SIGTERM is ignored.
TEST_P(TestResourceTracker, test_resource_tracker_sigterm) { check_resource_tracker_ignores(SIGTERM); }

// TestResourceTracker.test_resource_tracker_sigkill (check_resource_tracker_death, SIGKILL):
// after its tracker is killed, a program's next segment is still tracked (Python restarts the
// tracker on next use, with a warning), so it is removed when the program is terminated.
TEST_P(TestResourceTracker, test_resource_tracker_sigkill) {
    SeparateCreator p(2, SIGKILL);
    ASSERT_EQ(p.names.size(), 2u);
    sm::SharedMemory({.name = p.names[0]}).unlink();  // registered with the dead tracker
    p.terminate_and_wait();
    EXPECT_TRUE(mproc_test::wait_until_removed("/dev/shm/" + p.names[1], 30))
        << "a segment made after the tracker was killed was leaked";
    remove_leftovers(p.names);
}

void report_tracker(mproc::Queue<int> q) {
    sm::SharedMemory s({.create = true, .size = 10});  // ensure_running() in the child
    s.unlink();
    q.put(mproc::detail::tracker_pid());
}

// TestResourceTracker.test_resource_tracker_reused: a child uses its parent's tracker: it has
// none of its own (or, under fork, the one it inherited).
TEST_P(TestResourceTracker, test_resource_tracker_reused) {
    {
        sm::SharedMemory s({.create = true, .size = 10});
        s.unlink();
    }
    const pid_t pid = mproc::detail::tracker_pid();
    mproc::Queue<int> q;
    mproc::Process p(opts(), report_tracker, q);
    p.start();
    const int childs = q.get(true, 30s);
    p.join();
    EXPECT_TRUE(childs == -1 || childs == pid) << childs << " vs " << pid;
}

void check_sigmask_kept(int sig) {
    sigset_t set, now;
    sigemptyset(&set);
    sigaddset(&set, sig);
    pthread_sigmask(SIG_SETMASK, &set, nullptr);
    sm::SharedMemory s({.create = true, .size = 10});  // may start a tracker
    s.unlink();
    pthread_sigmask(SIG_BLOCK, nullptr, &now);
    for (int k = 1; k < NSIG; ++k)
        if (sigismember(&now, k) != (k == sig)) std::_Exit(1);
    std::_Exit(0);
}

// TestResourceTracker.test_resource_tracker_blocked_signals (gh-127586): starting the tracker
// leaves the caller's blocked signals as they were (checked in a fresh child for each signal).
TEST_P(TestResourceTracker, test_resource_tracker_blocked_signals) {
    for (int sig : {SIGTERM, SIGINT, SIGUSR1}) {
        mproc::Process p(opts(), check_sigmask_kept, sig);
        p.start();
        p.join();
        EXPECT_EQ(p.exitcode(), 0) << sig;
    }
}

INSTANTIATE_TEST_SUITE_P(StartMethods, TestResourceTracker, kStartMethods, param_name);

}  // namespace
