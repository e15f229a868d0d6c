// Locks and shared values: mproc beside a bare robust process-shared pthread mutex, a bare
// futex, and Python's multiprocessing.Value and Event.
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cstdint>
#include <iostream>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <mproc/mproc.hpp>

#include "bench.hpp"
#include "harness.hpp"

namespace {
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Two processes (the caller and a forked child) each run body() at once; returns the wall
// seconds from the start they share to the later of their ends. Both wait at a gate first: timed
// from the fork, the parent ran most of a short body before the child was scheduled, and the
// figure was the fork's skew more than contention (bare mutex figures from 13M to 45M ops/s in
// one session).
template <class F>
double two_processes(F body) {
    struct Gate {
        std::atomic<int> ready{0}, go{0};
        std::atomic<std::int64_t> child_end{0};
    };
    void* mem = mmap(nullptr, sizeof(Gate), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) throw std::runtime_error("bench: mmap failed");
    Gate* gate = new (mem) Gate;
    auto now_ns = [] { return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count(); };
    const pid_t pid = fork();
    if (pid == 0) {
        gate->ready.store(1);
        while (gate->go.load() == 0) {
        }
        body();
        gate->child_end.store(now_ns());
        _exit(0);
    }
    while (gate->ready.load() == 0) std::this_thread::yield();
    const std::int64_t t0 = now_ns();
    gate->go.store(1);
    body();
    const std::int64_t parent_end = now_ns();
    waitpid(pid, nullptr, 0);
    const std::int64_t end = std::max(parent_end, gate->child_end.load());
    munmap(mem, sizeof(Gate));
    return static_cast<double>(end - t0) * 1e-9;
}

// Anonymous shared memory for the bare baselines (a forked child shares it).
template <class T>
T* shared_new() {
    return static_cast<T*>(mmap(nullptr, sizeof(T), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
}

struct BareRobust {
    pthread_mutex_t m;
    long counter;
};

BareRobust* new_bare_robust() {
    auto* b = shared_new<BareRobust>();
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&b->m, &a);
    b->counter = 0;
    return b;
}

// A bare process-shared pthread condition variable and its mutex: the OS limit for a
// condition-variable ping-pong (a lock changes hands at every turn, which a futex alone avoids).
struct BareCond {
    pthread_mutex_t m;
    pthread_cond_t c;
    int turn;
};

BareCond* new_bare_cond() {
    auto* b = shared_new<BareCond>();
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
    pthread_mutex_init(&b->m, &ma);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setpshared(&ca, PTHREAD_PROCESS_SHARED);
    pthread_cond_init(&b->c, &ca);
    b->turn = 0;
    return b;
}

void bare_cond_turn(BareCond* b, int mine, int theirs) {
    pthread_mutex_lock(&b->m);
    b->turn = theirs;
    pthread_cond_signal(&b->c);
    while (b->turn != mine) pthread_cond_wait(&b->c, &b->m);
    pthread_mutex_unlock(&b->m);
}

long futex(std::uint32_t* w, int op, std::uint32_t v) { return syscall(SYS_futex, w, op, v, nullptr, nullptr, 0); }

// A bare futex ping-pong: word 0 means "ping pending", the peer flips it back.
double bare_futex_rt(std::uint32_t* word) {
    const auto t0 = Clock::now();
    std::atomic_ref<std::uint32_t> w(*word);
    w.store(1);
    futex(word, FUTEX_WAKE, 1);
    while (w.load() == 1) futex(word, FUTEX_WAIT, 1);
    return seconds_since(t0);
}

void pin_to_cpu0(bool on, cpu_set_t& saved) {
    if (on) {
        sched_getaffinity(0, sizeof saved, &saved);
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(0, &one);
        sched_setaffinity(0, sizeof one, &one);
    } else {
        sched_setaffinity(0, sizeof saved, &saved);
    }
}

// The other side of a Condition ping-pong: waits for turn 1, sets turn 0, notifies.
void pong_condition(mproc::Condition c, mproc::Value<int> turn, int n) {
    for (int i = 0; i < n; ++i) {
        std::unique_lock g(c);
        c.wait_for([&] { return turn.get_obj() == 1; });
        turn.get_obj() = 0;
        c.notify();
    }
}

void pong_events(mproc::Event ping, mproc::Event pong, int n) {
    for (int i = 0; i < n; ++i) {
        ping.wait();
        ping.clear();
        pong.set();
    }
}
}  // namespace

void run_sync_bench(bool quick) {
    // Runs long enough (tens of ms) that the two processes contend for most of each.
    const long n = quick ? 1000000 : 5000000;

    // 1. Two processes each add 1 under the lock, n times; alternating runs of n/5, medians.
    BareRobust* bare = new_bare_robust();
    mproc::Value<long> v(0), w(0);
    std::vector<double> bare_runs, mproc_runs, idiom_runs;
    const long part = n / 5;
    for (int r = 0; r < 5; ++r) {
        bare_runs.push_back(two_processes([&] {
            for (long i = 0; i < part; ++i) {
                pthread_mutex_lock(&bare->m);
                ++bare->counter;
                pthread_mutex_unlock(&bare->m);
            }
        }));
        mproc_runs.push_back(two_processes([&] {
            for (long i = 0; i < part; ++i) {
                std::lock_guard g(v.get_lock());
                ++v.get_obj();
            }
        }));
        // Python's `with v.get_lock(): v.value += 1`: value() and set_value() take the lock
        // again, re-entrantly, inside the held one.
        idiom_runs.push_back(two_processes([&] {
            for (long i = 0; i < part; ++i) {
                std::lock_guard g(w.get_lock());
                w.set_value(w.value() + 1);
            }
        }));
    }
    std::sort(bare_runs.begin(), bare_runs.end());
    std::sort(mproc_runs.begin(), mproc_runs.end());
    std::sort(idiom_runs.begin(), idiom_runs.end());
    const double bare_s = bare_runs[2] * 5, mproc_s = mproc_runs[2] * 5, idiom_s = idiom_runs[2] * 5;
    const bool idiom_ok = w.value() == 10 * part;
    const bool bare_ok = bare->counter == 10 * part;
    const bool mproc_ok = v.value() == 10 * part;

    // 2. Uncontended acquire + release, one thread.
    const int reps = quick ? 2000000 : 20000000;
    auto t0 = Clock::now();
    for (int i = 0; i < reps; ++i) {
        pthread_mutex_lock(&bare->m);
        pthread_mutex_unlock(&bare->m);
    }
    const double bare_pair = seconds_since(t0) / reps;
    mproc::Lock lk;
    t0 = Clock::now();
    for (int i = 0; i < reps; ++i) {
        lk.acquire();
        lk.release();
    }
    const double lock_pair = seconds_since(t0) / reps;
    munmap(bare, sizeof(BareRobust));

    // 3. Wake round trip between two processes on CPU 0: a bare futex, and mproc Events.
    const int rts = quick ? 2000 : 20000;
    cpu_set_t saved;
    pin_to_cpu0(true, saved);
    auto* word = static_cast<std::uint32_t*>(mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
    const pid_t ponger = fork();
    if (ponger == 0) {
        std::atomic_ref<std::uint32_t> w(*word);
        for (int i = 0; i < rts + 200; ++i) {
            while (w.load() == 0) futex(word, FUTEX_WAIT, 0);
            w.store(0);
            futex(word, FUTEX_WAKE, 1);
        }
        _exit(0);
    }
    BareCond* bc = new_bare_cond();
    const pid_t cond_ponger = fork();
    if (cond_ponger == 0) {
        for (int i = 0; i < rts + 200; ++i) {
            pthread_mutex_lock(&bc->m);
            while (bc->turn != 1) pthread_cond_wait(&bc->c, &bc->m);
            bc->turn = 0;
            pthread_cond_signal(&bc->c);
            pthread_mutex_unlock(&bc->m);
        }
        _exit(0);
    }
    mproc::Event ping, pong;
    mproc::Process events({.start_method = "fork"}, pong_events, ping, pong, rts + 200);
    events.start();
    mproc::Condition cond;
    mproc::Value<int> turn(0);
    mproc::Process conds({.start_method = "fork"}, pong_condition, cond, turn, rts + 200);
    conds.start();
    const std::vector<double> m = bench::interleaved_medians(
        rts, {[&] { bare_futex_rt(word); },
              [&] {
                  ping.set();
                  pong.wait();
                  pong.clear();
              },
              [&] {
                  std::unique_lock g(cond);
                  turn.get_obj() = 1;
                  cond.notify();
                  cond.wait_for([&] { return turn.get_obj() == 0; });
              },
              [&] { bare_cond_turn(bc, 0, 1); }},
        200);
    waitpid(ponger, nullptr, 0);
    waitpid(cond_ponger, nullptr, 0);
    munmap(bc, sizeof(BareCond));
    events.join();
    conds.join();
    munmap(word, 4096);
    pin_to_cpu0(false, saved);

    auto py = bench::run_python(bench::python_dir() + "/sync_bench.py",
                                std::to_string(quick ? 50000 : 200000) + " " + std::to_string(quick ? 1000 : 5000));
    const double bare_ops = 2.0 * n / bare_s, mproc_ops = 2.0 * n / mproc_s, idiom_ops = 2.0 * n / idiom_s;
    auto ops = [](double x) { return std::to_string(static_cast<long>(x / 1000)) + "k ops/s"; };
    std::string py_ops = "(python3 not available)";
    if (py.count("python_value_ops"))
        py_ops = bench::ratio(mproc_ops, py["python_value_ops"]) + " faster than Python (" + ops(py["python_value_ops"]) + ")";
    std::cout << "Two processes each doing locked += 1 on a shared value (" << n << " each)\n";
    std::cout << "  bare robust pthread mutex     " << ops(bare_ops) << (bare_ok ? "" : "  WRONG TOTAL") << "\n";
    std::cout << "  mproc Value<long> get_lock()  " << ops(mproc_ops) << (mproc_ok ? "" : "  WRONG TOTAL") << "  = "
              << bench::ratio(mproc_ops, bare_ops) << " bare  " << py_ops << "\n";
    std::cout << "  mproc set_value(value() + 1)  " << ops(idiom_ops) << (idiom_ok ? "" : "  WRONG TOTAL") << "  = "
              << bench::ratio(idiom_ops, bare_ops) << " bare  (Python's idiom: the lock taken again inside)\n";
    std::cout << "  goal: at least 0.7x of the bare robust mutex\n";
    std::cout << "Uncontended acquire+release, one thread (" << reps << " pairs)\n";
    std::cout << "  bare robust pthread mutex     " << bench::human_time(bare_pair) << "\n";
    std::cout << "  mproc Lock                    " << bench::human_time(lock_pair) << "  = "
              << bench::ratio(lock_pair, bare_pair) << " bare (goal: within 2x)\n";
    bench::print_table("Wake round trip between two processes on one CPU (median of " + std::to_string(rts) + " interleaved)",
                       {
                           {"bare futex ping-pong", m[0], "1.00x (the limit)", ""},
                           {"mproc Event ping-pong", m[1], bench::ratio(m[1], m[0]) + " bare futex",
                            py.count("python_event_rt_pinned")
                                ? bench::ratio(py["python_event_rt_pinned"], m[1]) + " faster than Python (" +
                                      bench::human_time(py["python_event_rt_pinned"]) + ")"
                                : "(python3 not available)"},
                           {"bare pthread condvar ping-pong", m[3], bench::ratio(m[3], m[0]) + " bare futex", ""},
                           {"mproc Condition ping-pong", m[2], bench::ratio(m[2], m[3]) + " bare condvar", ""},
                       });
    std::cout << "  goal: within 1.3x of the bare futex (an Event; a Condition is held to a bare condvar)\n";
    using bench::Rival;
    auto ops_of_run = [&](double seconds) { return 2.0 * static_cast<double>(part) / seconds; };
    bench::record("Two processes each doing locked += 1 on a shared value", "ops/s",
                  {{Rival::bare, "bare robust pthread mutex", bare_ops, 5, bench::each(bare_runs, ops_of_run)},
                   {Rival::mproc, "mproc Value<long> get_lock()", mproc_ops, 5, bench::each(mproc_runs, ops_of_run)},
                   {Rival::mproc, "mproc set_value(value() + 1) under get_lock()", idiom_ops, 5,
                    bench::each(idiom_runs, ops_of_run)},
                   bench::from(py, "python_value_ops", Rival::python, "Python Value get_lock()")});
    bench::record("Uncontended acquire+release, one thread (the mean of one run of many pairs)", "s",
                  {{Rival::bare, "bare robust pthread mutex", bare_pair, 1}, {Rival::mproc, "mproc Lock", lock_pair, 1}});
    bench::record("Wake round trip between two processes on one CPU", "s",
                  {{Rival::bare, "bare futex ping-pong", m[0], rts},
                   {Rival::mproc, "mproc Event ping-pong", m[1], rts},
                   bench::from(py, "python_event_rt_pinned", Rival::python, "Python Event ping-pong"),
                   {Rival::bare, "bare pthread condvar ping-pong", m[3], rts},
                   {Rival::mproc, "mproc Condition ping-pong", m[2], rts}});
}
