// Connections: small-object round trip and 1 MiB one-way throughput, mproc beside a bare
// socketpair and a bare pipe pair (the OS limit) and Python's multiprocessing.Pipe.
#include <fcntl.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <iomanip>
#include <new>
#include <sstream>
#include <string>
#include <algorithm>
#include <vector>

#include <mproc/mproc.hpp>

#include "bench.hpp"
#include "harness.hpp"

namespace {

void mproc_echo(mproc::Connection c) {
    for (;;) {
        const int x = c.recv<int>();
        if (x < 0) return;
        c.send(x);
    }
}

void mproc_sink(mproc::Connection c, int messages) {
    std::string buf(1 << 20, '\0');
    for (int i = 0; i < messages; ++i) c.recv_bytes_into(std::span<char>(buf));
    c.send(1);
}

// A bare echo child over raw descriptors: read 8 bytes, write them back; the OS limit. It
// closes the parent's ends, or it would never see end of file.
}  // namespace

pid_t bench::bare_echo(int in, int out, std::initializer_list<int> parents_ends) {
    const pid_t pid = fork();
    if (pid == 0) {
        for (int fd : parents_ends) close(fd);
        char b[8];
        for (;;) {
            std::size_t got = 0;
            while (got < sizeof b) {
                const ssize_t n = read(in, b + got, sizeof b - got);
                if (n <= 0) _exit(0);
                got += static_cast<std::size_t>(n);
            }
            if (write(out, b, sizeof b) != sizeof b) _exit(1);
        }
    }
    return pid;
}

void bench::bare_rt(int out, int in) {
    char b[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    if (write(out, b, sizeof b) != sizeof b) std::abort();
    std::size_t got = 0;
    while (got < sizeof b) got += static_cast<std::size_t>(read(in, b + got, sizeof b - got));
}

namespace {
// Medians of interleaved round trips with a bare echo child (over a pipe pair, or one Unix
// stream socketpair), then ours().
std::vector<double> beside_bare_echo(bool socketpair_kind, int runs, const std::function<void()>& ours) {
    int up[2], down[2];
    if (socketpair_kind) {
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, up) != 0) std::abort();
        down[0] = up[1];  // the child reads and writes its end; the parent its own
        down[1] = up[0];
    } else if (pipe2(up, O_CLOEXEC) != 0 || pipe2(down, O_CLOEXEC) != 0) {
        std::abort();
    }
    const pid_t echo = socketpair_kind ? bench::bare_echo(up[1], up[1], {up[0]}) : bench::bare_echo(down[0], up[1], {down[1], up[0]});
    close(up[1]);
    if (!socketpair_kind) close(down[0]);
    const std::vector<double> m = bench::interleaved_medians(runs, {[&] { bench::bare_rt(down[1], up[0]); }, ours}, 200);
    if (!socketpair_kind) close(down[1]);
    close(up[0]);
    waitpid(echo, nullptr, 0);
    return m;
}
}  // namespace

std::vector<double> bench::round_trips_beside_bare_pipe(int runs, const std::function<void()>& ours) {
    return beside_bare_echo(false, runs, ours);
}

std::vector<double> bench::round_trips_beside_bare_socketpair(int runs, const std::function<void()>& ours) {
    return beside_bare_echo(true, runs, ours);
}

std::vector<double> bench::spin_floor_round_trips(int batches) {
    void* page = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED) std::abort();
    // Each word on a cache line of its own, as the two sides of a real hand-off are.
    auto* ping = new (page) std::atomic<std::uint64_t>(0);
    auto* pong = new (static_cast<char*>(page) + 64) std::atomic<std::uint64_t>(0);
    auto relax = [] {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
    };
    constexpr std::uint64_t kStop = ~std::uint64_t{0};
    const pid_t child = fork();
    if (child < 0) std::abort();
    if (child == 0) {
        std::uint64_t seen = 0;
        for (;;) {
            std::uint64_t v;
            while ((v = ping->load(std::memory_order_acquire)) == seen) relax();
            if (v == kStop) _exit(0);
            seen = v;
            pong->store(v, std::memory_order_release);
        }
    }
    std::uint64_t n = 0;
    auto hand_off = [&] {
        ping->store(++n, std::memory_order_release);
        while (pong->load(std::memory_order_acquire) != n) relax();
    };
    for (int i = 0; i < 2000; ++i) hand_off();  // the child is running and spinning
    constexpr int kPer = 100;
    std::vector<double> per_round_trip;
    for (int b = 0; b < batches; ++b) {
        const auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < kPer; ++i) hand_off();
        per_round_trip.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / kPer);
    }
    ping->store(kStop, std::memory_order_release);
    waitpid(child, nullptr, 0);
    munmap(page, 4096);
    return per_round_trip;
}

std::vector<double> bench::round_trips_beside_floors(int runs, const std::function<void()>& ours) {
    const int batches = std::max(10, runs / 100);
    std::vector<double> spin = spin_floor_round_trips(batches);
    std::vector<double> m = round_trips_beside_bare_pipe(runs, ours);
    const std::vector<double> after = spin_floor_round_trips(batches);
    spin.insert(spin.end(), after.begin(), after.end());
    m.push_back(median(spin));
    return m;
}

namespace {
using bench::bare_echo;
using bench::bare_rt;

// 1 MiB messages over a bare socketpair: a byte stream with default buffers (what Python's
// Pipe uses), or records of up to 1 MiB with the send buffer mproc asks for (what mproc's Pipe
// uses): the OS limit of each method.
double bare_socketpair_mib(int mib, bool records) {
    int sv[2];
    socketpair(AF_UNIX, (records ? SOCK_SEQPACKET : SOCK_STREAM) | SOCK_CLOEXEC, 0, sv);
    if (records) {
        const int want = 4 << 20;
        setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &want, sizeof want);
    }
    int sndbuf = 0;
    socklen_t len = sizeof sndbuf;
    getsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, &len);
    const std::size_t chunk = records ? std::min<std::size_t>(1 << 20, static_cast<std::size_t>(sndbuf) / 2) : (1 << 20);
    const pid_t pid = fork();
    if (pid == 0) {
        close(sv[0]);
        std::vector<char> b(1 << 20);
        std::size_t total = 0;
        const std::size_t want = static_cast<std::size_t>(mib) << 20;
        while (total < want) {
            const ssize_t n = read(sv[1], b.data(), b.size());
            if (n <= 0) _exit(1);
            total += static_cast<std::size_t>(n);
        }
        if (write(sv[1], "k", 1) != 1) _exit(1);
        _exit(0);
    }
    close(sv[1]);
    std::vector<char> payload(1 << 20, 'x');
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < mib; ++i) {
        std::size_t off = 0;
        while (off < payload.size())
            off += static_cast<std::size_t>(write(sv[0], payload.data() + off, std::min(chunk, payload.size() - off)));
    }
    char k;
    if (read(sv[0], &k, 1) != 1) std::abort();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    close(sv[0]);
    waitpid(pid, nullptr, 0);
    return s / mib;
}

double mproc_pipe_mib(int mib) {
    auto [mine, theirs] = mproc::Pipe();
    mproc::Process p(mproc_sink, std::move(theirs), mib);
    p.start();
    const std::string payload(1 << 20, 'x');
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < mib; ++i) mine.send_bytes(payload);
    (void)mine.recv<int>();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    p.join();
    return s / mib;
}

std::string gbps(double seconds_per_mib) {
    std::ostringstream o;
    o << std::fixed << std::setprecision(2) << static_cast<double>(1 << 20) / 1e9 / seconds_per_mib << " GB/s";
    return o.str();
}


struct RoundTrips {
    double socketpair, pipes, mproc;
};

// Round trips: an mproc echo child, a bare socketpair echo child and a bare pipe-pair echo
// child, all alive at once, measured round-robin. Pinned, every process runs on CPU 0: the
// figures are then the software's cost. Unpinned, a round trip mostly measures whether the
// scheduler woke the peer on the same core (~10 us here) or the other one (~40 us): useful to
// know, useless for comparing.
RoundTrips round_trips(int rts, bool pinned) {
    cpu_set_t old;
    sched_getaffinity(0, sizeof old, &old);
    if (pinned) {
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(0, &one);
        sched_setaffinity(0, sizeof one, &one);  // the children inherit it
    }
    auto ends = mproc::Pipe();  // not a structured binding: clang 14 cannot capture those
    auto& mine = ends.first;
    auto& theirs = ends.second;
    mproc::Process echo({.start_method = "fork"}, mproc_echo, std::move(theirs));
    echo.start();
    int sp[2];
    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp);
    const pid_t sp_child = bare_echo(sp[1], sp[1], {sp[0]});
    close(sp[1]);
    int up[2], down[2];
    pipe2(up, O_CLOEXEC);
    pipe2(down, O_CLOEXEC);
    const pid_t pipe_child = bare_echo(down[0], up[1], {sp[0], down[1], up[0]});
    close(down[0]);
    close(up[1]);
    const std::vector<double> m = bench::interleaved_medians(
        rts, {[&] { bare_rt(sp[0], sp[0]); }, [&] { bare_rt(down[1], up[0]); },
              [&] {
                  mine.send(7);
                  (void)mine.recv<int>();
              }},
        200);
    mine.send(-1);
    echo.join();
    close(sp[0]);
    close(down[1]);
    close(up[0]);
    waitpid(sp_child, nullptr, 0);
    waitpid(pipe_child, nullptr, 0);
    sched_setaffinity(0, sizeof old, &old);
    return {m[0], m[1], m[2]};
}
}  // namespace

double bench::bare_socketpair_seconds_per_mib(int mib) { return bare_socketpair_mib(mib, false); }

void run_connection_bench(bool quick) {
    const int rts = quick ? 2000 : 20000;
    const int mib = quick ? 256 : 2048;
    const RoundTrips pinned = round_trips(rts, true);
    const RoundTrips free = round_trips(rts, false);

    // 1 MiB messages, one way: alternate bare and mproc runs, keep the better half's median.
    std::vector<double> bare_t, rec_t, mproc_t;
    for (int r = 0; r < 5; ++r) {
        bare_t.push_back(bare_socketpair_mib(mib / 5, false));
        rec_t.push_back(bare_socketpair_mib(mib / 5, true));
        mproc_t.push_back(mproc_pipe_mib(mib / 5));
    }
    std::sort(bare_t.begin(), bare_t.end());
    std::sort(rec_t.begin(), rec_t.end());
    std::sort(mproc_t.begin(), mproc_t.end());
    const double bare_mib = bare_t[2], rec_mib = rec_t[2], mproc_mib = mproc_t[2];

    auto py = bench::run_python(bench::python_dir() + "/connection_bench.py",
                                std::to_string(quick ? 1000 : 5000) + " " + std::to_string(quick ? 128 : 512));
    auto vs_py = [&](const char* key, double ours) -> std::string {
        auto it = py.find(key);
        if (it == py.end()) return "(python3 not available)";
        return bench::ratio(it->second, ours) + " faster than Python (" + bench::human_time(it->second) + ")";
    };
    bench::print_table(
        "Pipe round trip of a small object, all processes on one CPU (median of " + std::to_string(rts) + " interleaved)",
        {
            {"bare socketpair, 8 bytes", pinned.socketpair, "1.00x (the limit)", ""},
            {"bare pipe pair, 8 bytes", pinned.pipes, bench::ratio(pinned.pipes, pinned.socketpair) + " bare socketpair", ""},
            {"mproc Pipe send<int>/recv<int>", pinned.mproc, bench::ratio(pinned.mproc, pinned.socketpair) + " bare socketpair",
             vs_py("python_pipe_rt_pinned", pinned.mproc)},
        });
    std::cout << "  goal: within 1.2x of the bare socketpair round trip\n";
    bench::print_table("The same, processes placed by the scheduler (for information: placement dominates)",
                       {
                           {"bare socketpair, 8 bytes", free.socketpair, "1.00x", ""},
                           {"bare pipe pair, 8 bytes", free.pipes, bench::ratio(free.pipes, free.socketpair), ""},
                           {"mproc Pipe send<int>/recv<int>", free.mproc, bench::ratio(free.mproc, free.socketpair),
                            "(Python's run lands elsewhere: not comparable)"},
                       });
    bench::print_table("1 MiB messages, one way (median of 5 runs of " + std::to_string(mib / 5) + " MiB)",
                       {
                           {"bare socketpair, byte stream", bare_mib, gbps(bare_mib), ""},
                           {"bare socketpair, 1 MiB records", rec_mib, gbps(rec_mib), ""},
                           {"mproc send_bytes/recv_bytes_into", mproc_mib,
                            gbps(mproc_mib) + " = " + bench::ratio(bare_mib, mproc_mib) + " stream, " +
                                bench::ratio(rec_mib, mproc_mib) + " records",
                            py.count("python_pipe_1mib") ? vs_py("python_pipe_1mib", mproc_mib) + ", " + gbps(py["python_pipe_1mib"]) : ""},
                       });
    std::cout << "  goal: at least 0.8x of the bare socketpair (byte stream, as Python's Pipe)\n";
    using bench::Rival;
    bench::record("Pipe round trip of a small object, all processes on one CPU", "s",
                  {{Rival::bare, "bare socketpair, 8 bytes", pinned.socketpair, rts},
                   {Rival::bare, "bare pipe pair, 8 bytes", pinned.pipes, rts},
                   {Rival::mproc, "mproc Pipe send<int>/recv<int>", pinned.mproc, rts},
                   bench::from(py, "python_pipe_rt_pinned", Rival::python, "Python Pipe send/recv")});
    bench::record("Pipe round trip, processes placed by the scheduler", "s",
                  {{Rival::bare, "bare socketpair, 8 bytes", free.socketpair, rts},
                   {Rival::bare, "bare pipe pair, 8 bytes", free.pipes, rts},
                   {Rival::mproc, "mproc Pipe send<int>/recv<int>", free.mproc, rts}});
    bench::record("1 MiB messages, one way", "GB/s",
                  {{Rival::bare, "bare socketpair, byte stream", bench::gb_per_s(bare_mib), 5, bench::each(bare_t, bench::gb_per_s)},
                   {Rival::bare, "bare socketpair, 1 MiB records", bench::gb_per_s(rec_mib), 5, bench::each(rec_t, bench::gb_per_s)},
                   {Rival::mproc, "mproc send_bytes/recv_bytes_into", bench::gb_per_s(mproc_mib), 5,
                    bench::each(mproc_t, bench::gb_per_s)},
                   bench::from(py, "python_pipe_1mib", Rival::python, "Python send_bytes/recv_bytes", bench::gb_per_s)});
}
