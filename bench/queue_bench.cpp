// Queues: small messages and 1 MiB messages between processes, mproc beside Boost.Interprocess
// message_queue (a shared-memory queue in C++: the rival), a bare socketpair (the OS limit for
// moving bytes) and Python's multiprocessing.Queue.
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <mproc/mproc.hpp>

#if __has_include(<boost/interprocess/ipc/message_queue.hpp>)
#include <boost/interprocess/ipc/message_queue.hpp>
#define MPROC_HAVE_BOOST 1
#endif

#include "bench.hpp"
#include "harness.hpp"

namespace {
using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

void put_ints(mproc::Queue<long> q, long n) {
    for (long i = 0; i < n; ++i) q.put(i);
}

void put_mib(mproc::Queue<std::string> q, long n) {
    const std::string payload(1 << 20, 'x');
    for (long i = 0; i < n; ++i) q.put(payload);
}

void drain(mproc::Queue<long> q, long n) {
    for (long i = 0; i < n; ++i) (void)q.get();
}

// Seconds for a producer process to put n items into a new queue and this process to get them.
template <class T, class Producer>
double one_producer_to_here(Producer producer, long n) {
    mproc::Queue<T> q;
    mproc::Process p({.start_method = "fork"}, producer, q, n);
    const auto t = Clock::now();
    p.start();
    for (long i = 0; i < n; ++i) (void)q.get();
    const double s = since(t);
    p.join();
    return s;
}

// Messages per second, one producer process to this process.
double mproc_small(long n) { return n / one_producer_to_here<long>(put_ints, n); }

// Two producers and two consumers, all child processes: total messages per second.
double mproc_small_2x2(long n) {
    mproc::Queue<long> q;
    std::vector<mproc::Process> ps;
    for (int i = 0; i < 2; ++i) ps.emplace_back(mproc::ProcessOptions{.start_method = "fork"}, put_ints, q, n / 2);
    for (int i = 0; i < 2; ++i) ps.emplace_back(mproc::ProcessOptions{.start_method = "fork"}, drain, q, n / 2);
    const auto t = Clock::now();
    for (auto& p : ps) p.start();
    for (auto& p : ps) p.join();
    return n / since(t);
}

double mproc_mib(int n) { return one_producer_to_here<std::string>(put_mib, n) / n; }

#ifdef MPROC_HAVE_BOOST
double boost_small(long n) {
    namespace bi = boost::interprocess;
    const std::string name = "mproc_bench_mq_" + std::to_string(getpid());
    bi::message_queue::remove(name.c_str());
    bi::message_queue mq(bi::create_only, name.c_str(), 1024, sizeof(long));
    const auto t = Clock::now();
    const pid_t pid = fork();
    if (pid == 0) {
        bi::message_queue child(bi::open_only, name.c_str());
        for (long i = 0; i < n; ++i) child.send(&i, sizeof i, 0);
        _exit(0);
    }
    long v;
    bi::message_queue::size_type got;
    unsigned prio;
    for (long i = 0; i < n; ++i) mq.receive(&v, sizeof v, got, prio);
    const double s = since(t);
    waitpid(pid, nullptr, 0);
    bi::message_queue::remove(name.c_str());
    return n / s;
}
#endif

std::string per_second(double x) {
    std::ostringstream o;
    o << std::fixed << std::setprecision(2) << x / 1e6 << "M msg/s";
    return o.str();
}
std::string gbps(double seconds_per_mib) {
    std::ostringstream o;
    o << std::fixed << std::setprecision(2) << (1 << 20) / 1e9 / seconds_per_mib << " GB/s";
    return o.str();
}
}  // namespace

void run_queue_bench(bool quick) {
    const long n = quick ? 200000 : 2000000;
    const int mib = quick ? 128 : 1024;
    // Alternate the rivals, 3 runs each, and take medians.
    std::vector<double> ours, ours2x2, theirs, ours_mib, bare_mib;
    for (int r = 0; r < 3; ++r) {
        ours.push_back(mproc_small(n));
        ours2x2.push_back(mproc_small_2x2(n));
#ifdef MPROC_HAVE_BOOST
        theirs.push_back(boost_small(n));
#endif
        ours_mib.push_back(mproc_mib(mib / 3));
        bare_mib.push_back(bench::bare_socketpair_seconds_per_mib(mib / 3));
    }
    auto py = bench::run_python(bench::python_dir() + "/queue_bench.py",
                                std::to_string(quick ? 50000 : 200000) + " " + std::to_string(quick ? 64 : 256));
    const double small = bench::median(ours), small2 = bench::median(ours2x2), boost = bench::median(theirs);
    const double m = bench::median(ours_mib), bare = bench::median(bare_mib);
    std::cout << "Queue, small messages (a long), one producer process to one consumer (" << n << ", median of 3)\n";
#ifdef MPROC_HAVE_BOOST
    std::cout << "  Boost.Interprocess message_queue  " << per_second(boost) << "  (the rival)\n";
#else
    std::cout << "  Boost.Interprocess message_queue  (not installed: scripts/setup.sh installs libboost-dev)\n";
#endif
    std::cout << "  mproc Queue<long>                 " << per_second(small);
    if (boost > 0) std::cout << "  = " << bench::ratio(small, boost) << " Boost";
    if (py.count("python_queue_small"))
        std::cout << "  " << bench::ratio(small, py["python_queue_small"]) << " faster than Python (" << per_second(py["python_queue_small"]) << ")";
    std::cout << "\n  mproc, 2 producers + 2 consumers  " << per_second(small2) << " in total = " << bench::ratio(small2, small)
              << " of 1P/1C\n";
    std::cout << "  goals: at least Boost's rate; 2P/2C no slower than 1P/1C\n";
    std::cout << "Queue, 1 MiB messages, one producer process to one consumer (median of 3 runs of " << mib / 3 << ")\n";
    std::cout << "  bare socketpair, byte stream      " << gbps(bare) << "\n";
    std::cout << "  mproc Queue<std::string>          " << gbps(m) << "  = " << bench::ratio(bare, m) << " bare";
    if (py.count("python_queue_1mib"))
        std::cout << "  " << bench::ratio(py["python_queue_1mib"], m) << " faster than Python (" << gbps(py["python_queue_1mib"]) << ")";
    std::cout << "\n  goal: at least 3 GB/s\n";
    using bench::Rival;
    bench::record("Queue, small messages (a long), one producer process to one consumer", "msg/s",
                  {{Rival::library, "Boost.Interprocess message_queue", boost, 3, theirs},
                   {Rival::mproc, "mproc Queue<long>", small, 3, ours},
                   {Rival::mproc, "mproc, 2 producers + 2 consumers, total", small2, 3, ours2x2},
                   bench::from(py, "python_queue_small", Rival::python, "Python Queue")});
    bench::record("Queue, 1 MiB messages, one producer process to one consumer", "GB/s",
                  {{Rival::bare, "bare socketpair, byte stream", bench::gb_per_s(bare), 3, bench::each(bare_mib, bench::gb_per_s)},
                   {Rival::mproc, "mproc Queue<std::string>", bench::gb_per_s(m), 3, bench::each(ours_mib, bench::gb_per_s)},
                   bench::from(py, "python_queue_1mib", Rival::python, "Python Queue", bench::gb_per_s)});
}
