// Managers: a proxy call's round trip beside a bare socketpair round trip (the OS limit: the
// same two wake-ups, no server work), and calls per second from 1 and from 4 client processes
// at once; Python's SyncManager dict proxy on the same workloads.
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <mproc/mproc.hpp>

#include "bench.hpp"
#include "harness.hpp"

namespace {
namespace mm = mproc::managers;
using Clock = std::chrono::steady_clock;
using Dict = mm::DictProxy<std::string, long>;

std::string us(double seconds) {
    std::ostringstream o;
    o << std::fixed << std::setprecision(1) << seconds * 1e6 << " us";
    return o.str();
}
std::string per_second(double x) {
    std::ostringstream o;
    o << std::fixed << std::setprecision(0) << x / 1e3 << "k calls/s";
    return o.str();
}

// A client process: n calls (a set and a get, alternating) on its own key, then reports.
void client(Dict d, int id, long n, mproc::Event go) {
    const std::string key = "client-" + std::to_string(id);
    go.wait();
    for (long i = 0; i < n; i += 2) {
        d.set(key, i);
        if (d.get(key) != i) std::abort();
    }
}

// Calls per second of `clients` client processes at once on one dict.
double calls_per_second(mm::SyncManager& m, int clients, long n_each) {
    Dict d = m.dict<std::string, long>();
    mproc::Event go;
    std::vector<mproc::Process> ps;
    for (int i = 0; i < clients; ++i) ps.emplace_back(mproc::ProcessOptions{.start_method = "fork"}, client, d, i, n_each, go);
    for (auto& p : ps) p.start();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // let every client connect first
    const auto t = Clock::now();
    go.set();
    for (auto& p : ps) p.join();
    return static_cast<double>(clients * n_each) / std::chrono::duration<double>(Clock::now() - t).count();
}
}  // namespace

void run_managers_bench(bool quick) {
    const int rts = quick ? 2000 : 20000;
    // The round trips with every process on CPU 0, as the connection benchmark does: unpinned,
    // a round trip mostly measures whether the scheduler woke the peer on the same CPU (~10 us
    // here) or the other one (~40-50 us).
    cpu_set_t old, one_cpu;
    sched_getaffinity(0, sizeof old, &old);
    CPU_ZERO(&one_cpu);
    CPU_SET(0, &one_cpu);
    sched_setaffinity(0, sizeof one_cpu, &one_cpu);  // the manager and the echo child inherit it
    std::vector<double> rt;
    long sink = 0;
    {
        mm::SyncManager pinned = mproc::Manager({.start_method = "fork"});
        Dict d = pinned.dict<std::string, long>({{"k", 7}});
        rt = bench::round_trips_beside_bare_socketpair(rts, [&] { sink += d.get("k"); });
    }
    sched_setaffinity(0, sizeof old, &old);

    mm::SyncManager m = mproc::Manager({.start_method = "fork"});
    const long n_each = quick ? 10000 : 40000;
    std::vector<double> one, four;
    for (int r = 0; r < 3; ++r) {
        one.push_back(calls_per_second(m, 1, n_each));
        four.push_back(calls_per_second(m, 4, n_each));
    }
    auto py = bench::run_python(bench::python_dir() + "/managers_bench.py", std::to_string(quick ? 2000 : 10000));
    const double c1 = bench::median(one), c4 = bench::median(four);
    std::cout << "Managers: a proxy call (dict.get of a small int), all processes on one CPU, median of "
              << rts << " interleaved round trips\n";
    std::cout << "  bare socketpair round trip        " << us(rt[0]) << "  (the limit)\n";
    std::cout << "  mproc proxy call                  " << us(rt[1]) << "  = " << bench::ratio(rt[1], rt[0]) << " bare";
    if (py.count("python_call")) std::cout << "  " << bench::ratio(py["python_call"], rt[1]) << " faster than Python (" << us(py["python_call"]) << ")";
    std::cout << "\n  goal: within 1.3x of the bare socketpair round trip\n";
    std::cout << "Managers: calls per second on one dict (set then get), median of 3 runs\n";
    std::cout << "  mproc, 1 client process           " << per_second(c1);
    if (py.count("python_1_client")) std::cout << "  " << bench::ratio(c1, py["python_1_client"]) << " Python (" << per_second(py["python_1_client"]) << ")";
    std::cout << "\n  mproc, 4 client processes         " << per_second(c4) << "  = " << bench::ratio(c4, c1) << " of 1 client";
    if (py.count("python_4_clients")) std::cout << "  " << bench::ratio(c4, py["python_4_clients"]) << " Python (" << per_second(py["python_4_clients"]) << ")";
    std::cout << "\n  goal: 4 clients at least 1.5x the calls per second of 1\n";
    using bench::Rival;
    bench::record("A proxy call (dict.get of a small int), all processes on one CPU", "s",
                  {{Rival::bare, "bare socketpair round trip", rt[0], rts},
                   {Rival::mproc, "mproc proxy call", rt[1], rts},
                   bench::from(py, "python_call", Rival::python, "Python proxy call")});
    bench::record("Calls per second on one dict (set then get)", "calls/s",
                  {{Rival::mproc, "mproc, 1 client process", c1, 3, one},
                   bench::from(py, "python_1_client", Rival::python, "Python, 1 client process"),
                   {Rival::mproc, "mproc, 4 client processes", c4, 3, four},
                   bench::from(py, "python_4_clients", Rival::python, "Python, 4 client processes")});
    if (sink == 42) std::cout << "";
}
