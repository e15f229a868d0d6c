// Process start+join: mproc under fork, spawn and forkserver, beside the bare OS operations
// (fork+waitpid; fork+exec of this same binary+waitpid; posix_spawn of it) and beside Python's
// multiprocessing on this machine. Prints medians and ratios.
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include <mproc/mproc.hpp>

#include "bench.hpp"
#include "harness.hpp"

extern char** environ;

namespace {
void noop() {}

std::string self_exe() {
    char buf[4096];
    const ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
}

void bare_fork_wait() {
    const pid_t pid = fork();
    if (pid == 0) _exit(0);
    int st;
    waitpid(pid, &st, 0);
}

void bare_fork_exec_wait(const char* exe) {
    const pid_t pid = fork();
    if (pid == 0) {
        char* const argv[] = {const_cast<char*>(exe), const_cast<char*>("--bench-noop"), nullptr};
        execve(exe, argv, environ);
        _exit(127);
    }
    int st;
    waitpid(pid, &st, 0);
}

void bare_posix_spawn_wait(const char* exe) {
    char* const argv[] = {const_cast<char*>(exe), const_cast<char*>("--bench-noop"), nullptr};
    pid_t pid;
    if (posix_spawn(&pid, exe, nullptr, nullptr, argv, environ) != 0) return;
    int st;
    waitpid(pid, &st, 0);
}

void mproc_start_join(const char* method) {
    mproc::Process p({.start_method = method}, noop);
    p.start();
    p.join();
}

}  // namespace

void run_process_bench(bool quick) {
    const int runs = quick ? 30 : 200;

    const std::string exe = self_exe();
    const std::vector<double> m = bench::interleaved_medians(
        runs, {bare_fork_wait, [&] { bare_fork_exec_wait(exe.c_str()); },
               [&] { bare_posix_spawn_wait(exe.c_str()); }, [] { mproc_start_join("fork"); },
               [] { mproc_start_join("spawn"); }, [] { mproc_start_join("forkserver"); }});
    const double fork_os = m[0], exec_os = m[1], pspawn_os = m[2];
    const double m_fork = m[3], m_spawn = m[4], m_fs = m[5];
    auto py = bench::run_python(bench::python_dir() + "/process_bench.py", std::to_string(quick ? 12 : 40));

    auto vs_py = [&](const char* key, double ours) -> std::string {
        auto it = py.find(key);
        if (it == py.end()) return "(python3 not available)";
        return bench::ratio(it->second, ours) + " faster than Python (" + bench::human_time(it->second) + ")";
    };
    bench::print_table(
        "Process start+join (median of " + std::to_string(runs) +
            " interleaved runs; a child that does nothing)",
        {
            {"bare fork+waitpid", fork_os, "1.00x (the limit)", ""},
            {"bare fork+exec(self)+waitpid", exec_os, "1.00x (the limit)", ""},
            {"bare posix_spawn(self)+waitpid", pspawn_os, bench::ratio(pspawn_os, exec_os) + " bare fork+exec", ""},
            {"mproc fork", m_fork, bench::ratio(m_fork, fork_os) + " bare fork", vs_py("python_fork", m_fork)},
            {"mproc spawn", m_spawn, bench::ratio(m_spawn, exec_os) + " bare fork+exec", vs_py("python_spawn", m_spawn)},
            {"mproc forkserver", m_fs, bench::ratio(m_fs, fork_os) + " bare fork", vs_py("python_forkserver", m_fs)},
        });
    std::cout << "  goals: mproc fork within 1.3x of bare fork+waitpid; mproc spawn within 2x of bare fork+exec\n";
    using bench::Rival;
    bench::record("Process start+join, a child that does nothing", "s",
                  {{Rival::bare, "bare fork+waitpid", fork_os, runs},
                   {Rival::bare, "bare fork+exec(self)+waitpid", exec_os, runs},
                   {Rival::bare, "bare posix_spawn(self)+waitpid", pspawn_os, runs},
                   {Rival::mproc, "mproc fork", m_fork, runs},
                   {Rival::mproc, "mproc spawn", m_spawn, runs},
                   {Rival::mproc, "mproc forkserver", m_fs, runs},
                   bench::from(py, "python_fork", Rival::python, "Python fork"),
                   bench::from(py, "python_spawn", Rival::python, "Python spawn"),
                   bench::from(py, "python_forkserver", Rival::python, "Python forkserver")});
}
