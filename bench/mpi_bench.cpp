// The mpi section: mproc::mpi's executor beside mpi4py.futures on the same two ranks (one
// worker rank, one task at a time), and a bare MPI ping-pong between them (the floor). Each runs
// as its own job of `mpiexec -n 2`, launched from here, alternately, twice; medians of each.
//   mproc:   mproc-bench --mpi-job [--quick]   (rank 0: run_mpi_job; rank 1 serves tasks)
//   mpi4py:  /usr/bin/python3 -m mpi4py.futures bench/python/mpi_bench.py ...
//   floor:   mproc-mpi-floor [--quick]
// Every job prints "name value" lines.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <map>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include <mproc/mpi.hpp>
#include <mproc/mproc.hpp>

#include "bench.hpp"
#include "harness.hpp"

namespace {
using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

long ident(long x) { return x; }
std::size_t length(const std::string& s) { return s.size(); }

std::string mpiexec() {
    std::string cmd = "mpiexec --oversubscribe --bind-to none -n 2 ";
    if (geteuid() == 0) cmd += "--allow-run-as-root ";
    return cmd;
}

std::string exe_dir() { return bench::python_dir().substr(0, bench::python_dir().rfind('/')); }
}  // namespace

int run_mpi_job(bool quick) {
    namespace cf = mproc::futures;
    mproc::mpi::MPIPoolExecutor ex;
    if (!ex.distributed()) {
        std::printf("# no worker rank: run under mpiexec -n 2\n");
        return 2;
    }
    const int rts = quick ? 2000 : 10000, n_map = quick ? 20000 : 100000, arg_runs = quick ? 3 : 5;
    const std::size_t arg_bytes = std::size_t{1} << 30;
    for (int i = 0; i < 200; ++i) (void)ex.submit(ident, 7L).result();  // warm: the task process is up
    // Timed one by one, and the median taken, as mpi4py's script does: a median of five means
    // (as this was) let the slowest trips count here but not there. The mean is printed too.
    std::vector<double> rt;
    rt.reserve(static_cast<std::size_t>(rts));
    for (int i = 0; i < rts; ++i) {
        const auto t = Clock::now();
        (void)ex.submit(ident, 7L).result();
        rt.push_back(since(t));
    }
    std::printf("mproc_mpi_rt %.9f\n", bench::median(rt));
    std::printf("mproc_mpi_rt_mean %.9f\n", std::accumulate(rt.begin(), rt.end(), 0.0) / static_cast<double>(rt.size()));
    std::fflush(stdout);
    std::vector<long> in(static_cast<std::size_t>(n_map));
    std::iota(in.begin(), in.end(), 0L);
    std::vector<double> rates;
    for (int r = 0; r < 3; ++r) {
        const auto t = Clock::now();
        long sum = 0;
        for (long v : ex.map(cf::ExecutorMapOptions{.chunksize = 1}, ident, in)) sum += v;
        rates.push_back(n_map / since(t));
        if (sum != static_cast<long>(n_map) * (n_map - 1) / 2) std::printf("# map: wrong sum\n");
    }
    std::printf("mproc_mpi_map %.1f\n", bench::median(rates));
    std::fflush(stdout);
    std::vector<double> bw;
    for (int r = 0; r < arg_runs; ++r) {
        std::string arg(arg_bytes, 'x');  // made outside the timing, moved in (mpi4py passes a reference)
        const auto t = Clock::now();
        const std::size_t got = ex.submit(length, std::move(arg)).result();
        bw.push_back(static_cast<double>(arg_bytes) / (1 << 30) / since(t));
        if (got != arg_bytes) std::printf("# 1 GiB argument: wrong length\n");
    }
    std::printf("mproc_mpi_arg %.4f\n", bench::median(bw));
    return 0;
}

void run_mpi_bench(bool quick) {
    const std::string self = exe_dir() + "/mproc-bench --mpi-job" + (quick ? " --quick" : "");
    const std::string floor = exe_dir() + "/mproc-mpi-floor" + (quick ? " --quick" : "");
    const std::string py = "/usr/bin/python3 -m mpi4py.futures '" + bench::python_dir() + "/mpi_bench.py' " +
                           (quick ? "1000 2000 1024 2 1 0" : "2000 5000 1024 3 1 0");
    std::map<std::string, std::vector<double>> all;
    for (int round = 0; round < 2; ++round)
        for (const std::string* cmd : {&self, &py, &floor})
            for (auto& [k, v] : bench::run_figures(mpiexec() + *cmd)) all[k].push_back(v);
    auto med = [&](const char* k) { return all.count(k) ? bench::median(all[k]) : 0.0; };
    std::cout << "mproc::mpi, mpiexec -n 2: one worker rank, one task at a time (medians of two jobs each)\n";
    const double rt = med("mproc_mpi_rt"), py_rt = med("mpi4py_futures_rt"), floor_rt = med("mpi_floor_rt_8b");
    if (rt == 0) {
        std::cout << "  (the mproc job gave no figures: is Open MPI installed? scripts/setup.sh installs it)\n";
        return;
    }
    std::cout << "  submit().result() round trip       " << std::setw(12) << std::left << bench::human_time(rt);
    if (py_rt > 0) std::cout << bench::ratio(py_rt, rt) << " faster than mpi4py.futures (" << bench::human_time(py_rt) << ")";
    if (floor_rt > 0) std::cout << "; bare MPI ping-pong " << bench::human_time(floor_rt);
    std::cout << "   goal: >= 20x mpi4py\n";
    if (const double mean = med("mproc_mpi_rt_mean"); mean > 0)
        std::cout << "    (medians of single round trips on both sides; mproc's mean " << bench::human_time(mean) << ")\n";
    const double map = med("mproc_mpi_map"), py_map = med("mpi4py_futures_map");
    std::cout << "  map, chunksize 1                   " << std::setw(12) << std::left
              << (std::to_string(static_cast<long>(map)) + "/s");
    if (py_map > 0) std::cout << bench::ratio(map, py_map) << " mpi4py.futures (" << static_cast<long>(py_map) << "/s)";
    std::cout << "   goal: >= 25x mpi4py\n";
    const double arg = med("mproc_mpi_arg"), py_arg = med("mpi4py_futures_arg"), floor_bw = med("mpi_floor_bw_1gib");
    std::ostringstream a;
    a << std::fixed << std::setprecision(2) << arg << " GiB/s";
    std::cout << "  a 1 GiB argument                   " << std::setw(12) << std::left << a.str();
    if (py_arg > 0) std::cout << bench::ratio(arg, py_arg) << " mpi4py.futures (" << std::setprecision(2) << py_arg << " GiB/s)";
    if (floor_bw > 0) std::cout << "; bare MPI " << std::setprecision(2) << floor_bw << " GiB/s";
    std::cout << "   goal: >= 5x mpi4py\n";
    // Each figure is the median of the jobs' own medians (two jobs of each kind).
    using bench::Rival;
    auto entry = [&](Rival rival, const char* key, const char* name) -> bench::Entry {
        return {rival, name, med(key), static_cast<long>(all[key].size()), all[key]};
    };
    bench::record("submit().result() round trip, one worker rank", "s",
                  {entry(Rival::mproc, "mproc_mpi_rt", "mproc::mpi MPIPoolExecutor"),
                   entry(Rival::python, "mpi4py_futures_rt", "mpi4py.futures MPIPoolExecutor"),
                   entry(Rival::bare, "mpi_floor_rt_8b", "bare MPI ping-pong, 8 bytes")});
    bench::record("map, chunksize 1, one worker rank", "tasks/s",
                  {entry(Rival::mproc, "mproc_mpi_map", "mproc::mpi MPIPoolExecutor"),
                   entry(Rival::python, "mpi4py_futures_map", "mpi4py.futures MPIPoolExecutor")});
    bench::record("A 1 GiB argument (submit(len, s))", "GiB/s",
                  {entry(Rival::mproc, "mproc_mpi_arg", "mproc::mpi MPIPoolExecutor"),
                   entry(Rival::python, "mpi4py_futures_arg", "mpi4py.futures MPIPoolExecutor"),
                   entry(Rival::bare, "mpi_floor_bw_1gib", "bare MPI send/recv")});
}
