// CPython's Lib/test/_test_multiprocessing.py, ported: _TestBarrier (adapted there from
// lock_tests.py), in its 'processes' flavour, under fork, spawn and forkserver.
//
// CPython's run_threads starts N-1 processes (its Bunch) running f and runs f in the test
// process too; its DummyList, a shared counter, is a Value<int> here. A check that fails in a
// child throws, so the child's exitcode is 1, which the test asserts.
#include <gtest/gtest.h>

#include <chrono>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <mproc/mproc.hpp>

using namespace std::chrono_literals;

namespace {

constexpr int N = 5;
constexpr auto kDefaultTimeout = 30s;  // "Slow Windows buildbots need generous timeout"

using Counter = mproc::Value<int>;  // CPython's _DummyList: append() and len()

void append(Counter c) {
    std::lock_guard g(c.get_lock());
    c.get_obj() += 1;
}
int len(const Counter& c) { return c.value(); }

void require(bool ok, const char* what) {
    if (!ok) throw std::logic_error(what);
}

struct Raised {};  // CPython's RuntimeError, raised by one party on purpose

class TestBarrier : public testing::TestWithParam<std::string> {
protected:
    void TearDown() override { barrier_.abort(); }

    // run_threads(f, args): f in N-1 processes and here; every process exits 0.
    template <class... A>
    void run_threads(void (*f)(A...), A... args) {
        std::vector<mproc::Process> procs;
        for (int i = 0; i < N - 1; ++i) {
            procs.emplace_back(mproc::ProcessOptions{.daemon = true, .start_method = GetParam()}, f, args...);
            procs.back().start();
        }
        std::exception_ptr failure;
        try {
            f(args...);
        } catch (...) {
            failure = std::current_exception();
            barrier_.abort();  // let the children go
        }
        for (auto& p : procs) p.join();
        for (auto& p : procs) EXPECT_EQ(p.exitcode(), 0);
        if (failure) std::rethrow_exception(failure);
    }

    mproc::Barrier barrier_{N, nullptr, kDefaultTimeout};
};

void multipass(mproc::Barrier barrier, Counter r0, Counter r1, int n) {
    const int m = barrier.parties();
    require(m == N, "parties");
    for (int i = 0; i < n; ++i) {
        append(r0);
        require(len(r1) == i * m, "results[1] before the first wait");
        barrier.wait();
        append(r1);
        require(len(r0) == (i + 1) * m, "results[0] after the first wait");
        barrier.wait();
    }
    require(barrier.n_waiting() == 0, "n_waiting");
    require(!barrier.broken(), "broken");
}

// _TestBarrier.test_barrier: the parties pass the barrier in lockstep.
TEST_P(TestBarrier, test_barrier) { run_threads(multipass, barrier_, Counter(0), Counter(0), 1); }

// _TestBarrier.test_barrier_10: ten passes in a row.
TEST_P(TestBarrier, test_barrier_10) { run_threads(multipass, barrier_, Counter(0), Counter(0), 10); }

void wait_return_f(mproc::Barrier barrier, mproc::Queue<int> queue) { queue.put(barrier.wait()); }

// _TestBarrier.test_wait_return: exactly one party gets 0 from wait().
TEST_P(TestBarrier, test_wait_return) {
    mproc::Queue<int> queue;
    run_threads(wait_return_f, barrier_, queue);
    int zeros = 0;
    for (int i = 0; i < N; ++i) zeros += queue.get(true, 30s) == 0;
    EXPECT_EQ(zeros, 1);
}

// The action's counter: each party sets it from its argument before it waits, so the action,
// a plain function (python_differences.md, Barrier row), finds it in whichever process runs it.
std::optional<Counter> g_action_results;
void append_true() { append(*g_action_results); }

void action_f(mproc::Barrier barrier, Counter results) {
    g_action_results = results;
    barrier.wait();
    require(len(results) == 1, "the action ran once, before anyone was released");
}

// _TestBarrier.test_action: the action runs once, before the parties are released.
TEST_P(TestBarrier, test_action) {
    Counter results(0);
    mproc::Barrier barrier(N, append_true);
    barrier_ = barrier;
    run_threads(action_f, barrier, results);
    EXPECT_EQ(len(results), 1);
    g_action_results.reset();
}

void abort_f(mproc::Barrier barrier, Counter results1, Counter results2) {
    try {
        const int i = barrier.wait();
        if (i == N / 2) throw Raised{};
        barrier.wait();
        append(results1);
    } catch (const mproc::BrokenBarrierError&) {
        append(results2);
    } catch (const Raised&) {
        barrier.abort();
    }
}

// _TestBarrier.test_abort: abort() breaks the barrier for the parties waiting in it.
TEST_P(TestBarrier, test_abort) {
    Counter results1(0), results2(0);
    run_threads(abort_f, barrier_, results1, results2);
    EXPECT_EQ(len(results1), 0);
    EXPECT_EQ(len(results2), N - 1);
    EXPECT_TRUE(barrier_.broken());
}

void reset_f(mproc::Barrier barrier, Counter results1, Counter results2, Counter results3) {
    const int i = barrier.wait();
    if (i == N / 2) {
        while (barrier.n_waiting() < N - 1) std::this_thread::sleep_for(1ms);  // CPython's
        barrier.reset();
    } else {
        try {
            barrier.wait();
            append(results1);
        } catch (const mproc::BrokenBarrierError&) {
            append(results2);
        }
    }
    barrier.wait();
    append(results3);
}

// _TestBarrier.test_reset: reset() releases the waiting parties with BrokenBarrierError, and
// the barrier works again afterwards.
TEST_P(TestBarrier, test_reset) {
    Counter results1(0), results2(0), results3(0);
    run_threads(reset_f, barrier_, results1, results2, results3);
    EXPECT_EQ(len(results1), 0);
    EXPECT_EQ(len(results2), N - 1);
    EXPECT_EQ(len(results3), N);
}

void abort_and_reset_f(mproc::Barrier barrier, mproc::Barrier barrier2, Counter results1, Counter results2,
                       Counter results3) {
    try {
        const int i = barrier.wait();
        if (i == N / 2) throw Raised{};
        barrier.wait();
        append(results1);
    } catch (const mproc::BrokenBarrierError&) {
        append(results2);
    } catch (const Raised&) {
        barrier.abort();
    }
    if (barrier2.wait() == N / 2) barrier.reset();
    barrier2.wait();
    barrier.wait();
    append(results3);
}

// _TestBarrier.test_abort_and_reset: a broken barrier can be reset and used again.
TEST_P(TestBarrier, test_abort_and_reset) {
    Counter results1(0), results2(0), results3(0);
    mproc::Barrier barrier2(N);
    run_threads(abort_and_reset_f, barrier_, barrier2, results1, results2, results3);
    EXPECT_EQ(len(results1), 0);
    EXPECT_EQ(len(results2), N - 1);
    EXPECT_EQ(len(results3), N);
}

void timeout_f(mproc::Barrier barrier, Counter results) {
    const int i = barrier.wait();
    if (i == N / 2) std::this_thread::sleep_for(1s);  // "One thread is late!"
    try {
        barrier.wait(500ms);
    } catch (const mproc::BrokenBarrierError&) {
        append(results);
    }
}

// _TestBarrier.test_timeout: wait(0.5) times out while one party is late, which breaks the
// barrier for every party.
TEST_P(TestBarrier, test_timeout) {
    Counter results(0);
    run_threads(timeout_f, barrier_, results);
    EXPECT_EQ(len(results), barrier_.parties());
}

void default_timeout_f(mproc::Barrier barrier, Counter results) {
    const int i = barrier.wait(kDefaultTimeout);
    if (i == N / 2) std::this_thread::sleep_for(1s);  // later than the default timeout
    try {
        barrier.wait();
    } catch (const mproc::BrokenBarrierError&) {
        append(results);
    }
}

// _TestBarrier.test_default_timeout: the barrier's own timeout (0.5 s) applies to wait().
TEST_P(TestBarrier, test_default_timeout) {
    mproc::Barrier barrier(N, nullptr, 500ms);
    barrier_ = barrier;
    Counter results(0);
    run_threads(default_timeout_f, barrier, results);
    EXPECT_EQ(len(results), barrier.parties());
}

// _TestBarrier.test_single_thread: a barrier of one party never blocks.
TEST_P(TestBarrier, test_single_thread) {
    mproc::Barrier b(1);
    EXPECT_EQ(b.wait(), 0);
    EXPECT_EQ(b.wait(), 0);
}

void thousand_f(mproc::Barrier barrier, int passes, mproc::Connection conn, mproc::Lock lock) {
    for (int i = 0; i < passes; ++i) {
        barrier.wait();
        std::lock_guard g(lock);
        conn.send(i);
    }
}

// _TestBarrier.test_thousand: N processes pass the barrier 1000 times; every pass's messages
// arrive before the next pass's.
TEST_P(TestBarrier, test_thousand) {
    const int passes = 1000;
    mproc::Lock lock;
    auto [conn, child_conn] = mproc::Pipe(false);
    std::vector<mproc::Process> procs;
    for (int j = 0; j < N; ++j) {
        procs.emplace_back(mproc::ProcessOptions{.start_method = GetParam()}, thousand_f, barrier_, passes,
                           child_conn.dup(), lock);
        procs.back().start();
    }
    child_conn.close();
    for (int i = 0; i < passes; ++i)
        for (int j = 0; j < N; ++j) ASSERT_EQ(conn.recv<int>(), i);
    for (auto& p : procs) p.join();
    for (auto& p : procs) EXPECT_EQ(p.exitcode(), 0);
}

INSTANTIATE_TEST_SUITE_P(StartMethods, TestBarrier, testing::Values("fork", "spawn", "forkserver"),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
