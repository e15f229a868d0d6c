// concurrent.futures: the process executor's round trip and map (chunksize 1), the thread
// executor's submit throughput beside oneTBB's task_group, each beside Python's executors.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <iomanip>
#include <iostream>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include <mproc/mproc.hpp>

#if __has_include(<tbb/task_group.h>)
#include <tbb/global_control.h>
#include <tbb/task_group.h>
#define MPROC_HAVE_TBB 1
#endif

#include "bench.hpp"
#include "harness.hpp"

namespace cf = mproc::futures;

namespace {
using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

long square(long x) { return x * x; }

std::string rate(double x) {
    std::ostringstream o;
    o << std::fixed << std::setprecision(2);
    if (x >= 1e6)
        o << x / 1e6 << "M tasks/s";
    else
        o << x / 1e3 << "k tasks/s";
    return o.str();
}
}  // namespace

void run_futures_bench(bool quick) {
    const long map_n = quick ? 50'000 : 200'000;
    const int rts = quick ? 2000 : 10000;
    const long thread_n = quick ? 100'000 : 500'000;

    cf::ProcessPoolExecutor pex({.max_workers = 2, .start_method = "fork"});
    std::vector<long> inputs(static_cast<std::size_t>(map_n));
    std::iota(inputs.begin(), inputs.end(), 0L);  // not std::views::iota: clang 14 rejects it
    std::vector<double> maps;
    for (int r = 0; r < 5; ++r) {
        const auto t = Clock::now();
        long last = 0;
        for (long y : pex.map(square, inputs)) last = y;
        if (last != (map_n - 1) * (map_n - 1)) std::abort();
        if (r >= 2) maps.push_back(map_n / since(t));  // two warm-up rounds
    }
    const std::vector<double> rt =
        bench::round_trips_beside_floors(rts, [&] { (void)pex.submit(square, 7L).result(); });

    // Thread executor: submit n trivial tasks, then wait for all; oneTBB the same with run().
    cf::ThreadPoolExecutor tex(2);
    std::vector<double> ours, tbb_rates;
    for (int r = 0; r < 5; ++r) {
        std::vector<cf::Future<long>> fs;
        fs.reserve(static_cast<std::size_t>(thread_n));
        auto t = Clock::now();
        for (long i = 0; i < thread_n; ++i) fs.push_back(tex.submit([](long x) { return x + 1; }, i));
        for (auto& f : fs) (void)f.result();
        ours.push_back(thread_n / since(t));
#ifdef MPROC_HAVE_TBB
        tbb::global_control limit(tbb::global_control::max_allowed_parallelism, 2);
        std::vector<long> out(static_cast<std::size_t>(thread_n));
        tbb::task_group g;
        t = Clock::now();
        for (long i = 0; i < thread_n; ++i) g.run([&out, i] { out[static_cast<std::size_t>(i)] = i + 1; });
        g.wait();
        tbb_rates.push_back(thread_n / since(t));
#endif
    }

    auto py = bench::run_python(bench::python_dir() + "/futures_bench.py",
                                std::to_string(quick ? 5000 : 20000) + " " + std::to_string(quick ? 500 : 2000) + " " +
                                    std::to_string(quick ? 20000 : 50000));
    const double m = bench::median(maps);
    std::cout << "concurrent.futures, 2 workers (medians)\n";
    std::cout << "  ProcessPoolExecutor.map, chunksize 1   " << std::setw(16) << std::left << rate(m);
    if (py.count("python_process_map")) std::cout << bench::ratio(m, py["python_process_map"]) << " Python (" << rate(py["python_process_map"]) << ")";
    std::cout << "   goal: >= 100x Python\n";
    std::cout << "  submit().result() round trip           " << bench::human_time(rt[1]) << " = " << bench::ratio(rt[1], rt[0])
              << " bare pipe (" << bench::human_time(rt[0]) << ")";
    if (py.count("python_process_rt")) std::cout << "  " << bench::ratio(py["python_process_rt"], rt[1]) << " faster than Python (" << bench::human_time(py["python_process_rt"]) << ")";
    std::cout << "\n    = " << std::fixed << std::setprecision(1) << rt[1] / rt[2] << "x the spinning shared-memory hand-off ("
              << bench::human_time(rt[2]) << ")   goal: within 1.5x bare pipe; within 10x the floor\n";
    const double th = bench::median(ours);
    std::cout << "  ThreadPoolExecutor, submit then result " << std::setw(16) << std::left << rate(th);
#ifdef MPROC_HAVE_TBB
    const double tb = bench::median(tbb_rates);
    std::cout << bench::ratio(th, tb) << " oneTBB task_group (" << rate(tb) << ")";
#else
    std::cout << "(oneTBB not installed: scripts/setup.sh installs libtbb-dev)";
#endif
    if (py.count("python_thread_submit")) std::cout << "  " << bench::ratio(th, py["python_thread_submit"]) << " Python (" << rate(py["python_thread_submit"]) << ")";
    std::cout << "   goal: >= 1.0x oneTBB\n";
    using bench::Rival;
    bench::record("ProcessPoolExecutor(2).map, chunksize 1", "tasks/s",
                  {{Rival::mproc, "mproc ProcessPoolExecutor.map", m, 3, maps},
                   bench::from(py, "python_process_map", Rival::python, "Python ProcessPoolExecutor.map")});
    bench::record("ProcessPoolExecutor(2): submit().result() round trip", "s",
                  {{Rival::bare, "bare pipe round trip", rt[0], rts},
                   {Rival::bare, "spinning shared-memory hand-off (the floor)", rt[2], rts / 100},
                   {Rival::mproc, "mproc submit().result()", rt[1], rts},
                   bench::from(py, "python_process_rt", Rival::python, "Python submit().result()")});
    bench::record("ThreadPoolExecutor(2): submit every task, then every result", "tasks/s",
                  {{Rival::library, "oneTBB task_group (2 threads)", bench::median(tbb_rates), 5, tbb_rates},
                   {Rival::mproc, "mproc ThreadPoolExecutor", th, 5, ours},
                   bench::from(py, "python_thread_submit", Rival::python, "Python ThreadPoolExecutor")});
}
