// concurrent.futures conformance: shutdown and initializers. Sources:
//   CPython Lib/test/test_concurrent_futures/test_shutdown.py (ExecutorShutdownTest,
//     ThreadPoolShutdownTest, ProcessPoolShutdownTest)
//   CPython Lib/test/test_concurrent_futures/test_init.py (InitializerMixin,
//     FailingInitializerMixin)
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <cerrno>
#include <fstream>
#include <memory>
#include <mutex>

#include "futures_conformance.hpp"
#include "ranges.hpp"

namespace futures_conformance {
namespace {

// Threads of this process now (/proc/self/status), to see an executor's threads end.
int thread_count() {
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("Threads:", 0) == 0) return std::stoi(line.substr(8));
    return -1;
}

// The kernel lists a joined thread a moment longer (its task is reaped after join returns),
// and a thread of the previous test may still be ending when `before` is read: the threads are
// gone once the count comes back to at most what it was, which it must within seconds.
bool threads_back_to(int before) {
    const auto until = std::chrono::steady_clock::now() + 10s;
    while (thread_count() > before) {
        if (std::chrono::steady_clock::now() > until) return false;
        std::this_thread::sleep_for(1ms);
    }
    return true;
}

std::vector<int> abs_of_range() {
    std::vector<int> r = mproc_test::numbers(-5, 5), out;
    for (int v : r) out.push_back(iabs(v));
    return out;
}

int return_zero() { return 0; }  // Python's int()

// ================================================================ ExecutorShutdownTest

using ExecutorShutdownTest = ExecutorParam;

// ExecutorShutdownTest.test_run_after_shutdown: submit after shutdown raises RuntimeError;
// std::logic_error in mproc (python_differences.md, "submit after shutdown").
TEST_P(ExecutorShutdownTest, test_run_after_shutdown) {
    with_executor(5, [&](auto& ex) {
        ex.shutdown();
        EXPECT_THROW((void)ex.submit(ipow, 2, 5), std::logic_error);
    });
}

// ExecutorShutdownTest.test_hang_issue12364 (bpo-12364): shutdown() with 50 queued tasks
// waits for them; every result is there.
TEST_P(ExecutorShutdownTest, test_hang_issue12364) {
    with_executor(5, [&](auto& ex) {
        std::vector<cf::Future<int>> fs;
        for (int i = 0; i < 50; ++i) fs.push_back(ex.submit(sleep_ms, 100));
        ex.shutdown();
        for (auto& f : fs) EXPECT_EQ(f.result(0s), 100);
    });
}

int started_then_sleep(mproc::Event started, int ms) {
    started.set();
    return sleep_ms(ms);
}

// ExecutorShutdownTest.test_cancel_futures: shutdown(cancel_futures=True) with 50 queued
// tasks on 5 workers cancels more than 20; the rest finished without an exception, and at
// least one did. CPython counts on a worker having taken the first task by the time its
// 50 submits return (its thread start waits for the thread); mproc's workers wake on their
// own time, so the test waits until the first task runs before submitting the other 49.
TEST_P(ExecutorShutdownTest, test_cancel_futures) {
    with_executor(5, [&](auto& ex) {
        std::vector<cf::Future<int>> fs;
        mproc::Event first_started;
        fs.push_back(ex.submit(started_then_sleep, first_started, 100));
        ASSERT_TRUE(first_started.wait(kShortTimeout));
        for (int i = 1; i < 50; ++i) fs.push_back(ex.submit(sleep_ms, 100));
        ex.shutdown(true, /*cancel_futures=*/true);
        int cancelled = 0, others = 0;
        for (auto& fut : fs) {
            if (fut.cancelled()) {
                ++cancelled;
                continue;
            }
            ++others;
            EXPECT_TRUE(fut.done());
            EXPECT_EQ(fut.exception(0s), nullptr);
        }
        EXPECT_GT(cancelled, 20);
        EXPECT_GT(others, 0);
    });
}

// ExecutorShutdownTest.test_hang_gh94440 (gh-94440): shutdown(wait=True) right after a submit
// that was cancelled at once does not hang (Python: SIGALRM after 5 s).
TEST_P(ExecutorShutdownTest, test_hang_gh94440) {
    auto run = [](auto& executor) {
        executor.submit(return_zero).result();
        executor.submit(return_zero).cancel();
        const auto t0 = std::chrono::steady_clock::now();
        executor.shutdown(true);
        EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s) << "timed out waiting for shutdown";
    };
    if (is_thread()) {
        cf::ThreadPoolExecutor executor(1);
        run(executor);
    } else {
        cf::ProcessPoolExecutor executor(process_options(1));
        run(executor);
    }
}

FUTURES_ALL_EXECUTORS(ExecutorShutdownTest);

// ================================================================ ThreadPoolShutdownTest

// ThreadPoolShutdownTest.test_threads_terminate: three tasks block on a semaphore (three
// threads run at once); after release and shutdown() the executor's threads are gone.
TEST(ThreadPoolShutdownTest, test_threads_terminate) {
    const int before = thread_count();
    mproc::threading::Semaphore sem(0), started(0);
    cf::ThreadPoolExecutor executor(5);
    Finally release{[&] { sem.release(3); }};
    for (int i = 0; i < 3; ++i)
        (void)executor.submit([&] {
            started.release();
            sem.acquire();
        });
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(started.acquire(true, kShortTimeout));
    sem.release(3);
    executor.shutdown();
    EXPECT_TRUE(threads_back_to(before)) << thread_count() << " threads, " << before << " before";
}

// ThreadPoolShutdownTest.test_context_manager_shutdown: a `with` block (a scope) maps, then
// shuts the executor down; its threads are gone after it.
TEST(ThreadPoolShutdownTest, test_context_manager_shutdown) {
    const int before = thread_count();
    {
        cf::ThreadPoolExecutor e(5);
        std::vector<int> got;
        for (int y : e.map(iabs, mproc_test::numbers(-5, 5))) got.push_back(y);
        EXPECT_EQ(got, (std::vector{5, 4, 3, 2, 1, 0, 1, 2, 3, 4}));
    }
    EXPECT_TRUE(threads_back_to(before)) << thread_count() << " threads, " << before << " before";
}

// ThreadPoolShutdownTest.test_del_shutdown: deleting the executor while map()'s result
// iterator lives shuts it down (its threads end), and the results were all computed.
// Was a divergence (issue 14), now fixed: destroying the executor (shutdown(wait=True)) while a map iterator is alive
// blocks forever: join() waits for the open map stream, which has submitted nothing yet.
TEST(ThreadPoolShutdownTest, test_del_shutdown) {
    const int before = thread_count();
    auto executor = std::make_unique<cf::ThreadPoolExecutor>(5);
    auto res = executor->map(iabs, mproc_test::numbers(-5, 5));
    executor.reset();
    EXPECT_TRUE(threads_back_to(before)) << thread_count() << " threads, " << before << " before";
    std::vector<int> got;
    for (int y : res) got.push_back(y);
    EXPECT_EQ(got, abs_of_range());
}

// ThreadPoolShutdownTest.test_shutdown_no_wait: shutdown(wait=False) after map(); the
// threads end and the results are all there.
TEST(ThreadPoolShutdownTest, test_shutdown_no_wait) {
    const int before = thread_count();
    std::vector<int> got;
    {
        cf::ThreadPoolExecutor executor(5);
        auto res = executor.map(iabs, mproc_test::numbers(-5, 5));
        executor.shutdown(false);
        for (int y : res) got.push_back(y);
    }
    EXPECT_TRUE(threads_back_to(before)) << thread_count() << " threads, " << before << " before";
    EXPECT_EQ(got, abs_of_range());
}

// ThreadPoolShutdownTest.test_thread_names_assigned: with thread_name_prefix='SpecialPool'
// the workers are named SpecialPool_0 .. SpecialPool_4 (Python reads threading.Thread.name).
// Was a divergence (issue 14), now fixed: ThreadPoolExecutor workers are not threading threads: current_thread() in a
// task is a dummy ("Dummy-N").
TEST(ThreadPoolShutdownTest, test_thread_names_assigned) {
    cf::ThreadPoolExecutor executor({.max_workers = 5, .thread_name_prefix = "SpecialPool"});
    std::vector<cf::Future<std::string>> fs;
    for (int i = 0; i < 10; ++i) fs.push_back(executor.submit([] { return mproc::threading::current_thread().name(); }));
    for (auto& f : fs) EXPECT_THAT(f.result(kShortTimeout), testing::MatchesRegex("^SpecialPool_[0-4]$"));
}

// ThreadPoolShutdownTest.test_thread_names_default: without a prefix the workers are named
// ThreadPoolExecutor-<n>_<0..4>.
// Was a divergence (issue 14), now fixed: as above, current_thread() in a task is a dummy ("Dummy-N").
TEST(ThreadPoolShutdownTest, test_thread_names_default) {
    cf::ThreadPoolExecutor executor(5);
    std::vector<cf::Future<std::string>> fs;
    for (int i = 0; i < 10; ++i) fs.push_back(executor.submit([] { return mproc::threading::current_thread().name(); }));
    for (auto& f : fs) EXPECT_THAT(f.result(kShortTimeout), testing::MatchesRegex("ThreadPoolExecutor-[0-9]+_[0-4]$"));
}

// ThreadPoolShutdownTest.test_cancel_futures_wait_false: shutdown(wait=False,
// cancel_futures=True) with a task just submitted, then the end of the executor (Python: of
// the interpreter): no error, and the task either ran ("apple") or was cancelled ("").
TEST(ThreadPoolShutdownTest, test_cancel_futures_wait_false) {
    std::mutex mu;
    std::string out;
    std::optional<cf::Future<int>> f;
    {
        cf::ThreadPoolExecutor t;
        f = t.submit([&] {
            std::this_thread::sleep_for(100ms);
            std::lock_guard lk(mu);
            out = "apple";
            return 0;
        });
        t.shutdown(false, true);
    }
    EXPECT_TRUE(f->done());
    if (f->cancelled())
        EXPECT_EQ(out, "");
    else
        EXPECT_EQ(out, "apple");
}

// ================================================================ ProcessPoolShutdownTest

using ProcessPoolShutdownTest = ExecutorParam;

int acquire_then_pid(mproc::Semaphore started, mproc::Semaphore sem) {
    started.release();
    sem.acquire();
    return my_pid();
}

// ProcessPoolShutdownTest.test_processes_terminate: after three tasks that waited on a
// semaphore are released and shutdown() returns, the worker processes are gone. (Its count of
// the processes started, one per blocked task, is the next test.)
TEST_P(ProcessPoolShutdownTest, test_processes_terminate) {
    cf::ProcessPoolExecutor executor(process_options(5));
    mproc::Semaphore sem(0), started(0);
    Finally release{[&] { sem.release(3); }};
    std::vector<cf::Future<int>> fs;
    for (int i = 0; i < 3; ++i) fs.push_back(executor.submit(acquire_then_pid, started, sem));
    sem.release(3);
    std::vector<int> pids;
    for (auto& f : fs) pids.push_back(f.result(kShortTimeout));
    executor.shutdown();
    for (int pid : pids) {
        errno = 0;
        EXPECT_EQ(::kill(pid, 0), -1) << "worker " << pid << " still there";
        EXPECT_EQ(errno, ESRCH);
    }
}

// ProcessPoolShutdownTest.test_processes_terminate, its count: with five workers, three tasks
// blocked on a semaphore each have a process (Python: len(executor._processes) is 3, or 5
// under fork, which starts them all): all three start.
// Was a divergence (issue 14), now fixed: only two start. The process executor sends a worker a second task while it runs
// the first (two batches in flight per worker) even though other workers are idle, so the
// third task waits behind a blocked one.
TEST_P(ProcessPoolShutdownTest, test_processes_terminate_one_process_per_blocked_task) {
    cf::ProcessPoolExecutor executor(process_options(5));
    mproc::Semaphore sem(0), started(0);
    Finally release{[&] { sem.release(3); }};
    for (int i = 0; i < 3; ++i) (void)executor.submit(acquire_then_pid, started, sem);
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(started.acquire(true, 10s)) << i << " of 3 tasks started";
}

// ProcessPoolShutdownTest.test_context_manager_shutdown: a scope maps, then shuts down (the
// leak check after the test sees any worker left).
TEST_P(ProcessPoolShutdownTest, test_context_manager_shutdown) {
    cf::ProcessPoolExecutor e(process_options(5));
    std::vector<int> got;
    for (int y : e.map(iabs, mproc_test::numbers(-5, 5))) got.push_back(y);
    EXPECT_EQ(got, (std::vector{5, 4, 3, 2, 1, 0, 1, 2, 3, 4}));
}

// ProcessPoolShutdownTest.test_del_shutdown: deleting the executor while map()'s result
// iterator lives shuts it down cleanly, and the results were all computed.
// Was a divergence (issue 14), now fixed: destroying the executor while a map iterator is alive blocks forever (join()
// waits for the open map stream, which has submitted nothing yet).
TEST_P(ProcessPoolShutdownTest, test_del_shutdown) {
    auto executor = std::make_unique<cf::ProcessPoolExecutor>(process_options(5));
    auto res = executor->map(iabs, mproc_test::numbers(-5, 5));
    executor.reset();
    std::vector<int> got;
    for (int y : res) got.push_back(y);
    EXPECT_EQ(got, abs_of_range());
}

// ProcessPoolShutdownTest.test_shutdown_no_wait: shutdown(wait=False) after map(); the
// results are all there and the executor cleans up.
TEST_P(ProcessPoolShutdownTest, test_shutdown_no_wait) {
    std::vector<int> got;
    {
        cf::ProcessPoolExecutor executor(process_options(5));
        auto res = executor.map(iabs, mproc_test::numbers(-5, 5));
        executor.shutdown(false);
        for (int y : res) got.push_back(y);
    }
    EXPECT_EQ(got, abs_of_range());
}

int good_task_gh_132969(int n) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100 * n));
    return n;
}
int failing_task_gh_132969(int) { throw std::invalid_argument("failing task"); }

int run_test_issue_gh_132969(const cf::ProcessPoolExecutorOptions& base, int max_workers) {
    auto o = base;
    o.max_workers = max_workers;
    o.max_tasks_per_child = 1;
    cf::ProcessPoolExecutor executor(o);
    cf::Future<int> f1 = executor.submit(good_task_gh_132969, 1);
    cf::Future<int> f2 = executor.submit(failing_task_gh_132969, 2);
    cf::Future<int> f3 = executor.submit(good_task_gh_132969, 3);
    int result = 0;
    try {
        result += f1.result();
        result += f2.result();
        result += f3.result();
    } catch (const std::invalid_argument&) {
        // stop processing results upon first exception
    }
    executor.shutdown(false);
    std::this_thread::sleep_for(200ms);  // CPython's
    return result;
}

// ProcessPoolShutdownTest.test_shutdown_gh_132969_case_1: max_tasks_per_child=1, a failing
// task, shutdown(wait=False) with 2 workers: no error, the result before the failure counts.
// CPython skips fork (it refuses max_tasks_per_child there; mproc does not).
TEST_P(ProcessPoolShutdownTest, test_shutdown_gh_132969_case_1) {
    EXPECT_EQ(run_test_issue_gh_132969(process_options(2), 2), 1);
}

// ProcessPoolShutdownTest.test_shutdown_gh_132969_case_2: the same with 4 workers, which hung.
TEST_P(ProcessPoolShutdownTest, test_shutdown_gh_132969_case_2) {
    EXPECT_EQ(run_test_issue_gh_132969(process_options(4), 4), 1);
}

FUTURES_PROCESS_EXECUTORS(ProcessPoolShutdownTest);

// ================================================================ test_init.py

std::mutex g_status_mu;
std::string g_initializer_status = "uninitialized";  // INITIALIZER_STATUS

void init(std::string x) {
    std::lock_guard lk(g_status_mu);
    g_initializer_status = std::move(x);
}
std::string get_init_status() {
    std::lock_guard lk(g_status_mu);
    return g_initializer_status;
}
void init_fail() {
    std::this_thread::sleep_for(100ms);  // let some futures be scheduled
    throw std::invalid_argument("error in initializer");
}

class InitializerTests : public ExecutorParam {
protected:
    void SetUp() override { init("uninitialized"); }
    template <class Body>
    void with_initializer(mproc::Initializer initializer, Body&& body) {
        if (is_thread()) {
            cf::ThreadPoolExecutor ex({.max_workers = 2, .initializer = std::move(initializer)});
            body(ex);
        } else {
            auto o = process_options(2);
            o.initializer = std::move(initializer);
            cf::ProcessPoolExecutor ex(o);
            body(ex);
        }
    }
};

// InitializerMixin.test_initializer: initializer(*initargs) runs in every worker before its
// tasks: each of worker_count (2) tasks sees 'initialized'.
TEST_P(InitializerTests, test_initializer) {
    with_initializer(mproc::Initializer(init, std::string("initialized")), [&](auto& ex) {
        std::vector<cf::Future<std::string>> futures;
        for (int i = 0; i < 2; ++i) futures.push_back(ex.submit(get_init_status));
        for (auto& f : futures) EXPECT_EQ(f.result(kShortTimeout), "initialized");
    });
}

using FailingInitializerTests = InitializerTests;

// FailingInitializerMixin.test_initializer: an initializer that raises breaks the executor:
// submit() raises BrokenExecutor, or its future does; from then on submit() raises it. Python
// also looks for 'ValueError: error in initializer' in the log; mproc puts the cause in the
// exception's message.
TEST_P(FailingInitializerTests, test_initializer) {
    with_initializer(mproc::Initializer(init_fail), [&](auto& ex) {
        try {
            cf::Future<std::string> future = ex.submit(get_init_status);
            try {
                future.result(kShortTimeout);
                ADD_FAILURE() << "BrokenExecutor not raised";
            } catch (const cf::BrokenExecutor& e) {
                EXPECT_THAT(e.what(), testing::HasSubstr("error in initializer"));
            }
        } catch (const cf::BrokenExecutor& e) {
            // Perhaps the executor is already broken.
            EXPECT_THAT(e.what(), testing::HasSubstr("error in initializer"));
        }
        EXPECT_THROW((void)ex.submit(get_init_status), cf::BrokenExecutor);
    });
}

FUTURES_ALL_EXECUTORS(InitializerTests);
FUTURES_ALL_EXECUTORS(FailingInitializerTests);

}  // namespace
}  // namespace futures_conformance
