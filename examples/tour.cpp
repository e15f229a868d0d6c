// mproc-tour: the main job. Runs the example of every seed scenario built so far (SEED.md),
// each under a heading that says what it shows, then the short speed comparison with Python.
//   mproc-tour            everything
//   mproc-tour --no-bench the scenarios only
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include <mproc/mproc.hpp>

#include "print.hpp"

namespace {
struct Scenario {
    const char* id;
    const char* program;
    const char* shows;
    int ranks = 0;  // an MPI program: run under mpiexec with this many ranks
};

const Scenario kScenarios[] = {
    {"S1", "s01_memory_isolation", "each process has its own memory"},
    {"S2", "s02_shared_array_value", "Array and Value written by a child, read by the parent"},
    {"S3", "s03_value_initial", "Value('d', 10), changed by four processes under its lock"},
    {"S4", "s04_manager_list", "a Manager's list: one process appends a record, another prints them all"},
    {"S4", "s04_manager_network", "a manager shared over TCP with an authkey: a server program and a client program"},
    {"S5", "s05_queue", "Queue: squares come out in order; a child that put 64 MiB exits unread"},
    {"S6", "s06_pipe", "Pipe: messages until \"END\"; two senders on one end never interleave"},
    {"S6", "s06_python_peer", "a C++ program and a Python program exchange messages"},
    {"S7", "s07_process_api", "every parameter, method and attribute of Process; no orphans after terminate"},
    {"S8", "s08_two_ways", "a target function, or a subclass overriding run()"},
    {"S9", "s09_parallel_join", "start all, then join all: children run in parallel"},
    {"S10", "s10_terminate", "terminate, is_alive, join, exitcode -SIGTERM"},
    {"S11", "s11_names_and_pids", "names and pids; each child's parent is the main process"},
    {"S12", "s12_pool", "Pool: map returns a list; apply_async().get(); CPU-bound speedup"},
    {"S13", "s13_pool_anywhere", "a pool in a method, and pools inside pool tasks (Python refuses)"},
    {"S14", "s14_lambdas", "lambdas go to children (Python cannot send them)"},
    {"S15", "s15_pool_exception", "a task's exception reaches map's caller; a crashed worker fails only its task"},
    {"S16", "s16_starmap", "starmap over tuples; apply_async with several arguments"},
    {"S17", "s17_leave_core_free", "Pool(cpu_count() - 1)"},
    {"S18", "s18_queue_to_pool", "a plain Queue passed to pool tasks (Python needs a Manager)"},
    {"S19", "s19_threading", "threading: a Lock keeps a shared counter exact; RLock, Condition, daemon threads"},
    {"S20", "s20_process_lock", "a process Lock; daemon processes; a holder killed with the lock does not wedge it"},
    {"S21", "s21_manager_globals", "a Manager's Namespace and dict as globals shared by processes"},
    {"S22", "s22_futures", "concurrent.futures: every Future method; a crashed worker fails only its future"},
    {"S23", "s23_thread_count", "the best thread count for tasks that wait: ((wait + CPU) / CPU) x CPUs"},
    {"S24", "s24_main_guard", "mproc::init is the main guard; one process per core"},
    {"S25", "s25_mpi_map", "S12's CPU-bound map over MPI ranks (mpiexec -n 3), timed against one process", 3},
};

// Open MPI's launcher as the MPI examples need it: more ranks than cores, no binding (a rank's
// task processes would inherit it), and root only when we are root.
std::string mpiexec(int ranks) {
    std::string cmd = "mpiexec --oversubscribe --bind-to none -n " + std::to_string(ranks);
    if (geteuid() == 0) cmd += " --allow-run-as-root";
    return cmd;
}

int run(const std::string& path, const std::vector<std::string>& args = {}, int ranks = 0) {
    std::string cmd = (ranks ? mpiexec(ranks) + " " : std::string()) + "'" + path + "'";
    for (const auto& a : args) cmd += " " + a;
    std::cout.flush();
    const int status = std::system(cmd.c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
}  // namespace

int main(int argc, char** argv) {
    mproc::init(argc, argv);
    bool bench = true;
    for (int i = 1; i < argc; ++i)
        if (std::strcmp(argv[i], "--no-bench") == 0) bench = false;

    const std::string dir = py::here();
    int failures = 0;
    std::cout << "mproc " << MPROC_VERSION << " tour: the seed scenarios built so far\n";
    for (const auto& s : kScenarios) {
        std::cout << "\n=== " << s.id << ": " << s.shows << " (" << s.program << ")\n";
        if (s.ranks && access((dir + "/" + s.program).c_str(), X_OK) != 0) {
            std::cout << "(not built: mproc::mpi needs Open MPI, which scripts/setup.sh installs)\n";
            continue;
        }
        if (const int rc = run(dir + "/" + s.program, {}, s.ranks); rc != 0) {
            std::cout << "!!! " << s.program << " exited with " << rc << "\n";
            ++failures;
        }
    }
    if (bench) {
        std::cout << "\n=== Speed: mproc beside Python's multiprocessing and the bare OS, on this machine\n";
        if (const int rc = run(dir + "/mproc-bench", {"--quick"}); rc != 0) {
            std::cout << "!!! mproc-bench exited with " << rc << "\n";
            ++failures;
        }
    }
    std::cout << "\n" << (failures ? "tour finished with failures" : "tour finished: every scenario ran") << "\n";
    return failures ? 1 : 0;
}
