// Pools: many trivial tasks (default chunksize and chunksize 1), the apply_async round trip
// beside a bare pipe round trip, and CPU-bound work on 2 workers against one process; each
// beside the same workload in Python's multiprocessing.Pool.
#include <fcntl.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <iomanip>
#include <iostream>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include <mproc/mproc.hpp>

#include "bench.hpp"
#include "harness.hpp"

namespace {
using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

long square(long x) { return x * x; }

// About 20 ms of arithmetic the compiler cannot fold away.
double burn(int seed) {
    double acc = seed;
    for (int i = 1; i < 6'000'000; ++i) acc += std::sqrt(static_cast<double>(i) + acc * 1e-9);
    return acc;
}

// 0, 1, ..., n - 1 (std::views::iota would do, but clang 14 rejects libstdc++ 12's).
std::vector<long> numbers(long n) {
    std::vector<long> v(static_cast<std::size_t>(n));
    std::iota(v.begin(), v.end(), 0L);
    return v;
}

double tasks_per_second(mproc::Pool& pool, long n, std::optional<std::size_t> chunksize) {
    const std::vector<long> in = numbers(n);  // Python's side maps a range, read as it goes
    const auto t = Clock::now();
    const auto r = pool.map(square, in, chunksize);
    const double s = since(t);
    if (r.back() != (n - 1) * (n - 1)) std::abort();
    return n / s;
}

std::string rate(double x) {
    std::ostringstream o;
    o << std::fixed << std::setprecision(x >= 1e6 ? 2 : 1);
    if (x >= 1e6)
        o << x / 1e6 << "M tasks/s";
    else
        o << x / 1e3 << "k tasks/s";
    return o.str();
}
}  // namespace

void run_pool_bench(bool quick) {
    const long many = quick ? 200'000 : 1'000'000;
    const long ones = quick ? 50'000 : 200'000;
    const int rts = quick ? 2000 : 10000;
    const int cpu_tasks = quick ? 8 : 16;

    mproc::Pool pool({.processes = 2, .start_method = "fork"});
    std::vector<double> chunked, single;
    // Two warm-up rounds (here and in Python): the first maps pay for fresh memory and for the
    // pool learning how long a chunk takes (it sizes its batches by that).
    for (int r = 0; r < 7; ++r) {
        if (r < 2) {
            (void)tasks_per_second(pool, many, std::nullopt);
            (void)tasks_per_second(pool, ones, 1);
            continue;
        }
        chunked.push_back(tasks_per_second(pool, many, std::nullopt));
        single.push_back(tasks_per_second(pool, ones, 1));
    }

    // Round trips: apply_async(...).get() and a bare pipe echo child, interleaved; then the
    // same with every process and thread on CPU 0, where the figures are the software's cost
    // (unpinned, they mostly say whether the scheduler woke the peer on this core or the
    // other, docs/benchmarks.md).
    auto round_trip = [](mproc::Pool& p) { return [&p] { (void)p.apply_async(square, 7L).get(); }; };
    // Unpinned, beside the spinning shared-memory floor too (which pinned would only measure
    // the scheduler's time slice).
    const std::vector<double> rt = bench::round_trips_beside_floors(rts, round_trip(pool));
    std::vector<double> rt_pinned;
    {
        cpu_set_t old, one;
        sched_getaffinity(0, sizeof old, &old);
        CPU_ZERO(&one);
        CPU_SET(0, &one);
        sched_setaffinity(0, sizeof one, &one);  // the pool's workers and the echo child inherit it
        mproc::Pool pinned({.processes = 2, .start_method = "fork"});
        rt_pinned = bench::round_trips_beside_bare_pipe(rts, round_trip(pinned));
        sched_setaffinity(0, sizeof old, &old);
    }

    // CPU-bound: the same tasks in this process, then on the pool.
    std::vector<int> seeds(static_cast<std::size_t>(cpu_tasks));
    std::iota(seeds.begin(), seeds.end(), 1);
    double serial_sum = 0;
    const double serial = bench::median_seconds(3, [&] {
        serial_sum = 0;
        for (int s : seeds) serial_sum += burn(s);
    }, 1);
    double pooled_sum = 0;
    const double pooled = bench::median_seconds(3, [&] {
        const auto r = pool.map(burn, seeds, 1);
        pooled_sum = std::accumulate(r.begin(), r.end(), 0.0);
    }, 1);
    if (pooled_sum != serial_sum) std::abort();

    auto py = bench::run_python(bench::python_dir() + "/pool_bench.py",
                                std::to_string(quick ? 200'000 : 1'000'000) + " " + std::to_string(quick ? 10'000 : 20'000) +
                                    " " + std::to_string(quick ? 500 : 2000));
    const double c = bench::median(chunked), o = bench::median(single);
    std::cout << "Pool(2), trivial tasks (x*x) through map (median of 5, after 2 warm-up rounds)\n";
    auto line = [&](const char* what, double ours, const char* key, const char* goal) {
        std::cout << "  " << std::left << std::setw(34) << what << std::setw(18) << rate(ours);
        if (py.count(key))
            std::cout << bench::ratio(ours, py[key]) << " Python (" << rate(py[key]) << ")";
        std::cout << "   goal: " << goal << "\n";
    };
    line("map, default chunksize", c, "python_map_default", ">= 10x Python");
    line("map, chunksize 1", o, "python_map_chunksize1", ">= 150x Python");
    std::cout << "apply_async(...).get() round trip (median of " << rts << ", interleaved)\n";
    std::cout << "  spinning shared-memory hand-off   " << bench::human_time(rt[2]) << "  (the floor)\n";
    std::cout << "  bare pipe round trip              " << bench::human_time(rt[0]) << "  (all on CPU 0: "
              << bench::human_time(rt_pinned[0]) << ")\n";
    std::cout << "  mproc apply_async + get           " << bench::human_time(rt[1]) << "  = " << bench::ratio(rt[1], rt[0])
              << " bare pipe  (all on CPU 0: " << bench::human_time(rt_pinned[1]) << " = "
              << bench::ratio(rt_pinned[1], rt_pinned[0]) << ")";
    if (py.count("python_apply_rt"))
        std::cout << "  " << bench::ratio(py["python_apply_rt"], rt[1]) << " faster than Python ("
                  << bench::human_time(py["python_apply_rt"]) << ")";
    std::cout << "\n    = " << std::fixed << std::setprecision(1) << rt[1] / rt[2]
              << "x the spinning floor   goal: within 1.5x bare pipe; within 10x the floor\n";
    std::cout << "CPU-bound work, " << cpu_tasks << " tasks of ~" << bench::human_time(serial / cpu_tasks)
              << " (median of 3)\n";
    std::cout << "  one process                       " << bench::human_time(serial) << "\n";
    std::cout << "  Pool(2).map                       " << bench::human_time(pooled) << "  = " << std::fixed
              << std::setprecision(2) << serial / pooled << "x faster";
    if (py.count("python_cpu_speedup"))
        std::cout << "  (Python's Pool(2): " << py["python_cpu_speedup"] << "x)";
    std::cout << "   goal: >= 1.8x\n";
    using bench::Rival;
    bench::record("Pool(2).map of x*x, after 2 warm-up rounds", "tasks/s",
                  {{Rival::mproc, "mproc map, default chunksize", c, 5, chunked},
                   bench::from(py, "python_map_default", Rival::python, "Python map, default chunksize"),
                   {Rival::mproc, "mproc map, chunksize 1", o, 5, single},
                   bench::from(py, "python_map_chunksize1", Rival::python, "Python map, chunksize 1")});
    bench::record("apply_async(...).get() round trip", "s",
                  {{Rival::bare, "bare pipe round trip", rt[0], rts},
                   {Rival::bare, "spinning shared-memory hand-off (the floor)", rt[2], rts / 100},
                   {Rival::mproc, "mproc apply_async + get", rt[1], rts},
                   bench::from(py, "python_apply_rt", Rival::python, "Python apply_async + get"),
                   {Rival::bare, "bare pipe round trip, all on CPU 0", rt_pinned[0], rts},
                   {Rival::mproc, "mproc apply_async + get, all on CPU 0", rt_pinned[1], rts}});
    bench::record("CPU-bound tasks on Pool(2): speed-up over one process", "x",
                  {{Rival::mproc, "mproc Pool(2).map", serial / pooled, 3},
                   bench::from(py, "python_cpu_speedup", Rival::python, "Python Pool(2).map")});
}
