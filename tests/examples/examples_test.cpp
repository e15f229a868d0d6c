// Every example prints what SEED.md says, under every start method (MPROC_START_METHOD).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <regex>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace {

struct Output {
    int code = -1;
    std::string out;
    std::vector<std::string> lines;
    bool has(const std::string& line) const {
        for (const auto& l : lines)
            if (l == line) return true;
        return false;
    }
    bool contains(const std::string& part) const { return out.find(part) != std::string::npos; }
    int count(const std::string& prefix) const {
        int n = 0;
        for (const auto& l : lines) n += l.rfind(prefix, 0) == 0;
        return n;
    }
};

Output run_example(const std::string& name, const std::string& method) {
    const std::string cmd = "MPROC_START_METHOD=" + method + " '" MPROC_EXAMPLES_DIR "/" + name + "' 2>&1";
    Output r;
    FILE* f = popen(cmd.c_str(), "r");
    if (!f) return r;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) r.out.append(buf, n);
    const int status = pclose(f);
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    std::istringstream in(r.out);
    for (std::string l; std::getline(in, l);) r.lines.push_back(l);
    return r;
}

class Examples : public testing::TestWithParam<std::string> {
protected:
    Output run(const std::string& name) {
        Output r = run_example(name, GetParam());
        EXPECT_EQ(r.code, 0) << r.out;
        return r;
    }
};

TEST_P(Examples, S01MemoryIsolation) {
    const Output r = run("s01_memory_isolation");
    EXPECT_EQ(r.lines, (std::vector<std::string>{"Result(in process p1): [1, 4, 9, 16]",
                                                  "Result(in main program): []"}));
}

TEST_P(Examples, S02SharedArrayValue) {
    const Output r = run("s02_shared_array_value");
    EXPECT_EQ(r.lines, (std::vector<std::string>{
                           "Result(in process p1): [1, 4, 9, 16]", "Sum of squares(in process p1): 30.0",
                           "Result(in main program): [1, 4, 9, 16]", "Sum of squares(in main program): 30.0"}))
        << r.out;
}

TEST_P(Examples, S03ValueInitial) {
    const Output r = run("s03_value_initial");
    EXPECT_EQ(r.lines, (std::vector<std::string>{"initial value: 10.0",
                                                  "after 4 processes added 1.0 a hundred times each: 410.0"}))
        << r.out;
}

TEST_P(Examples, S04ManagerList) {
    const Output r = run("s04_manager_list");
    EXPECT_EQ(r.lines, (std::vector<std::string>{"New record added!", "Name: Sam: 10", "Name: Adam: 9",
                                                  "Name: Kevin: 9", "Name: John: 9"}))
        << r.out;
}

TEST_P(Examples, S04ManagerAcrossPrograms) {
    const Output r = run("s04_manager_network");
    EXPECT_TRUE(std::regex_search(r.out, std::regex("serving jobs, results and stop on 127\\.0\\.0\\.1:[1-9][0-9]*\n"))) << r.out;
    EXPECT_TRUE(r.has("Name: Adam, score 9")) << r.out;
    EXPECT_TRUE(r.has("Name: Kevin, score 9")) << r.out;
    EXPECT_TRUE(r.has("Name: Sam, score 10")) << r.out;
    EXPECT_TRUE(r.has("a client asked the server to stop; results held: 3")) << r.out;
}

TEST_P(Examples, S20ProcessLock) {
    const Output r = run("s20_process_lock");
    EXPECT_EQ(r.lines, (std::vector<std::string>{
                           "process 0 holds the lock", "process 1 holds the lock", "process 2 holds the lock",
                           "holder is daemonic: True", "holder has the lock; acquire(timeout=0.1) -> False",
                           "holder killed: exitcode -9", "acquire after the holder died -> True; owner_died() -> True"}))
        << r.out;
}

TEST_P(Examples, S05Queue) {
    const Output r = run("s05_queue");
    EXPECT_EQ(r.lines, (std::vector<std::string>{
                           "Queue elements:", "1", "4", "9", "16", "Queue is now empty!",
                           "a child put 64 MiB and exited before anyone read; the queue holds 64 messages"}))
        << r.out;
}

TEST_P(Examples, S06Pipe) {
    const Output r = run("s06_pipe");
    std::vector<std::string> sent, received;
    for (const auto& l : r.lines) {
        if (l.rfind("Sent the message: ", 0) == 0) sent.push_back(l.substr(18));
        if (l.rfind("Received the message: ", 0) == 0) received.push_back(l.substr(22));
    }
    EXPECT_EQ(sent, (std::vector<std::string>{"hello", "hey", "hru?", "END"})) << r.out;
    EXPECT_EQ(received, (std::vector<std::string>{"hello", "hey", "hru?"})) << r.out;
    EXPECT_TRUE(r.has("two senders on one end, 200 messages each: 400 arrived whole, 0 interleaved")) << r.out;
}

TEST_P(Examples, S06PythonPeer) {
    const Output r = run("s06_python_peer");
    const std::vector<std::string> dialogue(r.lines.begin() + (r.lines.empty() ? 0 : 1), r.lines.end());
    EXPECT_EQ(dialogue, (std::vector<std::string>{
                            "python sends:  What is 6 times 7?", "mproc got:     What is 6 times 7?",
                            "mproc replies: 42", "python got:    42", "python sends:  Which language are you?",
                            "mproc got:     Which language are you?", "mproc replies: C++, speaking Python's wire format",
                            "python got:    C++, speaking Python's wire format", "python sends:  END",
                            "python exited with 0"}))
        << r.out;
}

TEST_P(Examples, S07ProcessApi) {
    const Output r = run("s07_process_api");
    EXPECT_TRUE(r.has("name=worker-1 daemon=False pid=None exitcode=None")) << r.out;
    EXPECT_TRUE(r.has("authkey is 32 bytes, the same as the parent's: True")) << r.out;
    EXPECT_TRUE(r.has("hello from worker-1: 3 x apples (daemon=False)")) << r.out;
    EXPECT_TRUE(r.has("exitcode=0 is_alive=False")) << r.out;
    EXPECT_TRUE(r.has("after join(0.2): is_alive=True")) << r.out;
    EXPECT_TRUE(r.has("sentinel readable while running: False")) << r.out;
    EXPECT_TRUE(std::regex_search(r.out, std::regex("after kill: <Process name='sleeper' pid=\\d+ parent=\\d+ stopped exitcode=-SIGKILL daemon>"))) << r.out;
    EXPECT_TRUE(std::regex_search(r.out, std::regex("terminated: <Process name='parent' pid=\\d+ parent=\\d+ stopped exitcode=-SIGTERM>"))) << r.out;
    EXPECT_TRUE(r.has("grandchild still running after terminate: False")) << r.out;
}

TEST_P(Examples, S08TwoWays) {
    const Output r = run("s08_two_ways");
    EXPECT_TRUE(r.has("hello bob from Process-1")) << r.out;
    EXPECT_TRUE(r.has("7 squared is 49 in Squarer")) << r.out;
    EXPECT_TRUE(r.has("exit codes: 0 0")) << r.out;
}

TEST_P(Examples, S09ParallelJoin) {
    const Output r = run("s09_parallel_join");
    EXPECT_TRUE(r.has("ran in parallel: True")) << r.out;
}

TEST_P(Examples, S10Terminate) {
    const Output r = run("s10_terminate");
    ASSERT_EQ(r.lines.size(), 5u) << r.out;
    EXPECT_TRUE(std::regex_match(r.lines[0], std::regex("<Process name='Process-1' parent=\\d+ initial> False")));
    EXPECT_TRUE(std::regex_match(r.lines[1], std::regex("<Process name='Process-1' pid=\\d+ parent=\\d+ started> True")));
    // Right after terminate() the child may or may not have died yet; both are honest.
    EXPECT_TRUE(std::regex_match(r.lines[2], std::regex("after terminate: <Process .*> (True|False)")));
    EXPECT_TRUE(std::regex_match(r.lines[3], std::regex("<Process name='Process-1' pid=\\d+ parent=\\d+ stopped exitcode=-SIGTERM> False")));
    EXPECT_EQ(r.lines[4], "p.exitcode == -signal.SIGTERM: True");
}

TEST_P(Examples, S11NamesAndPids) {
    const Output r = run("s11_names_and_pids");
    std::smatch m;
    ASSERT_TRUE(std::regex_search(r.out, m, std::regex("ID of main process: (\\d+)"))) << r.out;
    const std::string main_pid = m[1];
    EXPECT_TRUE(std::regex_search(r.out, std::regex("running worker1: \\d+; its parent: " + main_pid + " \\(MainProcess\\)"))) << r.out;
    EXPECT_TRUE(std::regex_search(r.out, std::regex("running worker2: \\d+; its parent: " + main_pid + " \\(MainProcess\\)"))) << r.out;
    EXPECT_TRUE(r.has("Both processes finished execution!"));
    EXPECT_TRUE(r.has("Process p1 is alive: False"));
}

TEST_P(Examples, S14Lambdas) {
    const Output r = run("s14_lambdas");
    for (const char* m : {"fork", "spawn", "forkserver"})
        EXPECT_TRUE(r.has(std::string("captureless lambda under ") + m + ": 12 squared is 144")) << r.out;
    EXPECT_TRUE(r.has("capturing lambda under fork: base + x = 105")) << r.out;
    EXPECT_TRUE(r.contains("capturing lambda under spawn refused: mproc: the target is a lambda with captures")) << r.out;
}

TEST_P(Examples, S12Pool) {
    const Output r = run("s12_pool");
    EXPECT_TRUE(r.has("[1, 4, 9, 16, 25]")) << r.out;
    EXPECT_TRUE(r.has("100")) << r.out;
    // The speedup itself is the benchmark's to judge (mproc-bench pool), not a timed test's.
    EXPECT_TRUE(std::regex_search(r.out, std::regex("speedup [0-9.]+x on \\d+ cores \\(same results: True\\)"))) << r.out;
}

TEST_P(Examples, S13PoolAnywhere) {
    const Output r = run("s13_pool_anywhere");
    EXPECT_TRUE(r.has("pool inside a method: [1, 4, 9]")) << r.out;
    EXPECT_TRUE(r.has("pools inside pool tasks: [14, 30]")) << r.out;
}

TEST_P(Examples, S15PoolException) {
    const Output r = run("s15_pool_exception");
    EXPECT_TRUE(r.has("map raised std::domain_error: division by zero")) << r.out;
    EXPECT_TRUE(r.has("the pool keeps working: [100, 50, 25]")) << r.out;
    EXPECT_TRUE(r.has("task 1: 1") && r.has("task 2: 2") && r.has("task 4: 4")) << r.out;
    EXPECT_TRUE(r.contains("task 3: WorkerLostError (mproc: the worker process (pid ")) << r.out;
    EXPECT_TRUE(r.contains("was killed by signal SIGKILL)")) << r.out;
}

TEST_P(Examples, S16Starmap) {
    const Output r = run("s16_starmap");
    ASSERT_EQ(r.lines.size(), 2u) << r.out;
    EXPECT_EQ(r.lines[0], "[3, 7, 11]");
    EXPECT_EQ(r.lines[1], "3");
}

TEST_P(Examples, S17LeaveCoreFree) {
    const Output r = run("s17_leave_core_free");
    std::smatch m;
    ASSERT_TRUE(std::regex_search(r.out, m, std::regex("cpu_count=(\\d+), pool of (\\d+)"))) << r.out;
    EXPECT_EQ(std::stoi(m[2]), std::max(1, std::stoi(m[1]) - 1));
    EXPECT_TRUE(r.has("[1, 4, 9, 16]")) << r.out;
}

TEST_P(Examples, S18QueueToPool) {
    const Output r = run("s18_queue_to_pool");
    EXPECT_TRUE(r.has("a plain Queue went to pool tasks: 4 messages")) << r.out;
    EXPECT_TRUE(r.has("get with a timeout on an empty queue: Empty")) << r.out;
}

TEST_P(Examples, S19Threading) {
    const Output r = run("s19_threading");
    EXPECT_TRUE(r.has("main thread: MainThread")) << r.out;
    EXPECT_TRUE(r.has("counter raised by 4 threads x 100000 under a Lock: 400000 (exact: True)")) << r.out;
    EXPECT_TRUE(r.has("RLock taken 5 deep by one thread: 5")) << r.out;
    EXPECT_TRUE(r.has("Condition: the consumer got [0, 1, 4, 9, 16, 25, 36, 49, 64, 81]")) << r.out;
    EXPECT_TRUE(r.has("threads alive: 3; heartbeat is daemon: True, writer is daemon: False")) << r.out;
    // The non-daemon thread finishes after main returns, and the program waits for it.
    ASSERT_GE(r.lines.size(), 2u) << r.out;
    EXPECT_EQ(r.lines[r.lines.size() - 2], "main returns") << r.out;
    EXPECT_EQ(r.lines.back(), "writer (non-daemon) finished after main returned; the program waited for it") << r.out;
}

TEST_P(Examples, S21ManagerGlobals) {
    const Output r = run("s21_manager_globals");
    EXPECT_EQ(r.lines, (std::vector<std::string>{"title: shared settings",
                                                  "last_message (set by a child): hello from worker 0",
                                                  "worker-0 = 100", "worker-1 = 101", "worker-2 = 102"}))
        << r.out;
}

TEST_P(Examples, S22Futures) {
    const Output r = run("s22_futures");
    for (const char* line : {
             "submit(add, 1, 2).result() = 3; done() = True, running() = False, cancelled() = False",
             "exception() = std::invalid_argument: not positive: -1",
             "result(timeout=0.05) on an unfinished future: TimeoutError",
             "cancel() on it while it runs = False",
             "terminate() on it = True, cancelled() = True",
             "result() of a cancelled future: CancelledError",
             "done callback: 81",
             "late callback: 81",
             "map(square, [1..5]) = [1, 4, 9, 16, 25]",
             "future: 11",
             "future: WorkerLostError (its worker was killed; only this future fails)",
             "future: 22",
             "the executor heals: submit(add, 2, 3).result() = 5",
             "wait(ALL_COMPLETED): 3 done, 0 not done",
             "submit after shutdown: std::logic_error (Python: RuntimeError)",
             "ThreadPoolExecutor, lambdas with captures, as_completed: total 406",
             "ThreadPoolExecutor map: [1, 2, 3]",
         })
        EXPECT_TRUE(r.has(line)) << line << "\n" << r.out;
}

TEST_P(Examples, S23ThreadCount) {
    const Output r = run("s23_thread_count");
    EXPECT_TRUE(r.has("CPU-bound (wait/CPU = 0) on 4 CPUs: 4")) << r.out;
    EXPECT_TRUE(r.has("wait/CPU = 4 on 2 CPUs: 10")) << r.out;
    EXPECT_TRUE(r.has("wait 8 ms, CPU 2 ms, on 8 CPUs: 40")) << r.out;
    std::smatch m;
    ASSERT_TRUE(std::regex_search(r.out, m, std::regex("this machine: (\\d+) CPUs; tasks of 1 ms CPU \\+ 4 ms wait -> (\\d+) threads")))
        << r.out;
    EXPECT_EQ(std::stoi(m[2]), 5 * std::stoi(m[1]));
    // How much faster is the benchmark's business on a loaded machine; that it ran is ours.
    EXPECT_TRUE(std::regex_search(r.out, std::regex("\\d+ tasks: \\d+ threads \\d+ ms, \\d+ threads \\d+ ms"))) << r.out;
}

TEST_P(Examples, S24MainGuard) {
    const Output r = run("s24_main_guard");
    EXPECT_EQ(r.count("main body runs once"), 1) << r.out;
    std::smatch m;
    ASSERT_TRUE(std::regex_search(r.out, m, std::regex("process_cpu_count=(\\d+)"))) << r.out;
    const int n = std::stoi(m[1]);
    EXPECT_EQ(r.count("worker "), n) << r.out;
    EXPECT_TRUE(r.has("started " + std::to_string(n) + " workers, one per core")) << r.out;
}

// S25: S12's map over MPI ranks, as the tour runs it (mpiexec -n 3): two worker ranks take the
// tasks, the results are those of one process. Its timing is the machine's business.
TEST_P(Examples, EventLoop) {
    const Output r = run("event_loop");
    EXPECT_EQ(r.lines, (std::vector<std::string>{
                           "co_await ex.submit(add, 1, 2) = 3",
                           "co_await pool.apply_async(square, 7) = 49",
                           "co_await a failing task: std::invalid_argument: odd: 7",
                           "epoll: the queue gave 10 20 30; the future gave 144; the process ended with exitcode 0",
                           "wait(..., timeout=0.05) with nothing ready: 0 ready",
                           "wait after a put, a send and a result: 3 ready: hello world 42"}))
        << r.out;
}

TEST(ExamplesMpi, S25MpiMap) {
    const std::string exe = MPROC_EXAMPLES_DIR "/s25_mpi_map";
    if (access(exe.c_str(), X_OK) != 0) GTEST_SKIP() << "mproc was built without MPI";
    // As the tour runs it; tests/mpi/run.sh adds --allow-run-as-root only as root, and what
    // LeakSanitizer needs to tell Open MPI's own allocations in the sanitizer build.
    const std::string cmd = std::string("'" MPROC_MPI_RUN "' 3 '") + exe + "' 2>&1";
    FILE* f = popen(cmd.c_str(), "r");
    ASSERT_NE(f, nullptr);
    std::string out;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
    const int status = pclose(f);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << out;
    EXPECT_NE(out.find("rank 0 of 3 on "), std::string::npos) << out;
    EXPECT_NE(out.find("tasks go to 2 worker rank(s)"), std::string::npos) << out;
    EXPECT_NE(out.find("[1, 4, 9, 16, 25]"), std::string::npos) << out;
    EXPECT_TRUE(std::regex_search(out, std::regex("8 CPU-bound tasks: one process [0-9.]+ s, 2 worker rank\\(s\\) "
                                                  "[0-9.]+ s, speedup [0-9.]+x \\(same results: True; tasks ran in 2 rank\\(s\\)\\)")))
        << out;
}

// S4 across two machines, as far as one machine allows: the server program in one network
// namespace and the client program in another, joined by a veth pair, so they talk over a real
// network address (not loopback). Needs root and iproute2; elsewhere it is skipped, saying why.
class NetworkNamespaces : public testing::Test {
protected:
    std::string tag = std::to_string(getpid() % 100000);
    std::string server_ns = "mproc-s-" + tag, client_ns = "mproc-c-" + tag;
    std::string veth_a = "mpa" + tag, veth_b = "mpb" + tag;
    std::string subnet = "10.231." + std::to_string(getpid() % 250) + ".";
    bool made = false;

    static int sh(const std::string& cmd) {
        const int status = std::system((cmd + " >/dev/null 2>&1").c_str());
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    FILE* server = nullptr;  // the server program's output, while it runs
    FILE* probe = nullptr;

    void TearDown() override {
        if (!made) return;
        // After a failed assertion the programs may still run: end whatever is in the namespaces.
        for (const auto& ns : {server_ns, client_ns}) sh("ip netns pids " + ns + " | xargs -r kill -9");
        for (FILE* f : {server, probe})
            if (f) pclose(f);
        sh("ip netns del " + server_ns);  // the veth pair goes with its namespaces
        sh("ip netns del " + client_ns);
    }

    // Makes the two namespaces and the veth pair; false (and why) where the machine does not allow it.
    bool make_network(std::string& why) {
        if (geteuid() != 0) {
            why = "making network namespaces needs root, and this runs as uid " + std::to_string(geteuid());
            return false;
        }
        if (sh("command -v ip") != 0) {
            why = "iproute2's ip command is not installed";
            return false;
        }
        made = true;
        const std::vector<std::string> setup = {
            "ip netns add " + server_ns,
            "ip netns add " + client_ns,
            "ip link add " + veth_a + " type veth peer name " + veth_b,
            "ip link set " + veth_a + " netns " + server_ns,
            "ip link set " + veth_b + " netns " + client_ns,
            "ip -n " + server_ns + " addr add " + subnet + "1/24 dev " + veth_a,
            "ip -n " + client_ns + " addr add " + subnet + "2/24 dev " + veth_b,
            "ip -n " + server_ns + " link set " + veth_a + " up",
            "ip -n " + client_ns + " link set " + veth_b + " up",
            "ip -n " + server_ns + " link set lo up",
            "ip -n " + client_ns + " link set lo up",
        };
        for (const auto& cmd : setup)
            if (sh(cmd) != 0) {
                why = "this machine does not allow it (`" + cmd + "` failed)";
                return false;
            }
        return true;
    }

    // Starts the server program in its namespace; its port, read from its first line.
    std::string start_server() {
        server = popen(("ip netns exec " + server_ns + " '" MPROC_EXAMPLES_DIR "/s04_manager_server' " + subnet +
                        "1 0 netns-key 2>&1").c_str(), "r");
        if (!server) return {};
        char line[512] = {};
        if (!std::fgets(line, sizeof line, server)) return {};
        const std::string first = line;
        const std::string prefix = "serving jobs, results and stop on " + subnet + "1:";
        if (first.rfind(prefix, 0) != 0) return {};
        return std::to_string(std::stoi(first.substr(prefix.size())));
    }

    // Runs the client program in the other namespace: what it printed, and its exit code.
    Output run_client(const std::string& port) {
        Output r;
        FILE* f = popen(("ip netns exec " + client_ns + " '" MPROC_EXAMPLES_DIR "/s04_manager_client' " + subnet + "1 " +
                         port + " netns-key --stop 2>&1").c_str(), "r");
        char buf[4096];
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, f)) > 0) r.out.append(buf, n);
        const int status = pclose(f);
        r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        return r;
    }

    // Reads the rest of the server's output; whether it exited with 0.
    bool server_ended_well(std::string& rest) {
        char line[512];
        while (std::fgets(line, sizeof line, server)) rest += line;
        const int served = pclose(std::exchange(server, nullptr));
        return WIFEXITED(served) && WEXITSTATUS(served) == 0;
    }
};

TEST_F(NetworkNamespaces, ServerAndClientProgramsOnTwoNetworkNamespaces) {
    std::string why;
    if (!make_network(why)) GTEST_SKIP() << "skipped: " << why;
    const std::string port = start_server();
    ASSERT_FALSE(port.empty()) << "the server program did not say where it listens";
    // From the client's namespace the server is reachable only over the veth pair.
    const Output client = run_client(port);
    std::string rest;
    EXPECT_TRUE(server_ended_well(rest)) << rest;
    EXPECT_EQ(client.code, 0) << client.out;
    EXPECT_TRUE(client.contains("Name: Sam, score 10")) << client.out;
    EXPECT_NE(rest.find("a client asked the server to stop; results held: 3"), std::string::npos) << rest;
}

// The server's machine vanishes from the network (its link goes down: no reset, no end of
// file ever arrives): a client blocked in a call fails within a bounded time, naming the
// manager, instead of hanging (Python's would wait forever).
TEST_F(NetworkNamespaces, AClientOfAServerThatVanishedFailsInBoundedTime) {
    std::string why;
    if (!make_network(why)) GTEST_SKIP() << "skipped: " << why;
    const std::string port = start_server();
    ASSERT_FALSE(port.empty()) << "the server program did not say where it listens";
    probe = popen(("ip netns exec " + client_ns + " '" MPROC_EXAMPLES_DIR "/manager_probe' " + subnet + "1 " + port +
                         " netns-key 2>&1").c_str(), "r");
    ASSERT_NE(probe, nullptr);
    char line[1024] = {};
    ASSERT_NE(std::fgets(line, sizeof line, probe), nullptr);
    ASSERT_EQ(std::string(line), "waiting\n");
    ASSERT_EQ(sh("ip -n " + server_ns + " link set " + veth_a + " down"), 0);
    std::string ended;
    while (std::fgets(line, sizeof line, probe)) ended += line;
    pclose(std::exchange(probe, nullptr));
    std::smatch m;
    ASSERT_TRUE(std::regex_search(ended, m, std::regex("failed after ([0-9.]+) s: .*manager at " + subnet + "1:" + port)))
        << ended;
    EXPECT_LT(std::stod(m[1]), 30.0) << ended;
    std::cout << "the probe: " << ended;
    // Bring the link back and stop the server.
    ASSERT_EQ(sh("ip -n " + server_ns + " link set " + veth_a + " up"), 0);
    const Output client = run_client(port);
    std::string rest;
    EXPECT_TRUE(server_ended_well(rest)) << rest << client.out;
}

INSTANTIATE_TEST_SUITE_P(StartMethods, Examples, testing::Values("fork", "spawn", "forkserver"),
                         [](const auto& info) { return info.param; });

}  // namespace
