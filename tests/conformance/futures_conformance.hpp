// What the concurrent.futures conformance tests share: CPython's fixture futures (util.py), the
// executor parameter (its ExecutorMixin subclasses), and the task functions, which are plain
// functions so that they reach spawn and forkserver workers.
// Source: CPython Lib/test/test_concurrent_futures/util.py.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <mproc/mproc.hpp>

namespace futures_conformance {

namespace cf = mproc::futures;
using namespace std::chrono_literals;

// test.support.SHORT_TIMEOUT (30 s): "it happens eventually" deadlines.
inline constexpr std::chrono::seconds kShortTimeout{30};

// ---------------------------------------------------------------- task functions

inline int mul(int x, int y) { return x * y; }
// pow(x, y), wrapping (unsigned) where Python's would grow past an int.
inline int ipow(int x, int y) {
    unsigned r = 1;
    for (int i = 0; i < y; ++i) r *= static_cast<unsigned>(x);
    return static_cast<int>(r);
}
// Python's divmod(a, b) raises ZeroDivisionError for b == 0; std::domain_error stands for it.
inline std::pair<int, int> divmod(int a, int b) {
    if (b == 0) throw std::domain_error("integer division or modulo by zero");
    return {a / b, a % b};
}
inline int div_or_raise(int a, int b) { return divmod(a, b).first; }
// event.wait() in a task: True once set.
inline int wait_event(mproc::Event e) { return e.wait() ? 1 : 0; }
inline int wait_and_raise(mproc::Event e) {
    e.wait();
    throw std::runtime_error("this is an exception");
}
// time.sleep(seconds) as a task; returns its argument in milliseconds.
inline int sleep_ms(int ms) {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return ms;
}
inline int my_pid() { return static_cast<int>(::getpid()); }
inline int iabs(int x) { return x < 0 ? -x : x; }

// Runs f at the end of the scope: releases what blocked tasks wait for even when an assertion
// or an exception leaves the test early, so that the executor's shutdown cannot hang.
template <class F>
struct Finally {
    F f;
    ~Finally() { f(); }
};
template <class F>
Finally(F) -> Finally<F>;

// ---------------------------------------------------------------- fixture futures

// util.py's PENDING_FUTURE, RUNNING_FUTURE, CANCELLED_FUTURE, CANCELLED_AND_NOTIFIED_FUTURE,
// EXCEPTION_FUTURE and SUCCESSFUL_FUTURE: free-standing futures, as Python's. Python forges
// them by setting _state; these are brought there by the promise side (running:
// set_running_or_notify_cancel; cancelled_and_notified: cancel, then
// set_running_or_notify_cancel; exception: set_exception(OSError(EIO)); successful:
// set_result(42)).
// Python's wait() and as_completed() count a CANCELLED future (not yet notified) as not done;
// mproc's cancel() notifies waiters at once, so it is done for them as soon as it is
// cancelled. Where a CPython test relies on the unnoticed CANCELLED state, that future is left
// out of the port and the test says so.
class StateFutures {
public:
    StateFutures();
    StateFutures(const StateFutures&) = delete;
    StateFutures& operator=(const StateFutures&) = delete;

    cf::Future<int> pending, running, cancelled, cancelled_and_notified, exception, successful;
};

// What a future shows, for comparing the sets wait() and as_completed() return (mproc's
// Future has no identity to compare): "returned 42", "raised <what>", "cancelled", "not done".
std::string label(const cf::Future<int>& f);
std::multiset<std::string> labels(const std::vector<cf::Future<int>>& fs);
using Labels = std::multiset<std::string>;

// ---------------------------------------------------------------- executors

// The executor under test, as CPython's mixins choose it: "thread" (ThreadPoolMixin) or a start
// method (ProcessPoolForkMixin, ProcessPoolSpawnMixin, ProcessPoolForkserverMixin).
class ExecutorParam : public testing::TestWithParam<std::string> {
protected:
    bool is_thread() const { return GetParam() == "thread"; }
    cf::ProcessPoolExecutorOptions process_options(int workers) const {
        return {.max_workers = workers, .start_method = GetParam()};
    }
    // body(executor) on a fresh executor of `workers` (ExecutorMixin.worker_count: 5); the
    // executor is shut down (wait=True) when body returns, as ExecutorMixin.tearDown does.
    template <class Body>
    void with_executor(int workers, Body&& body) {
        if (is_thread()) {
            cf::ThreadPoolExecutor ex(workers);
            body(ex);
        } else {
            cf::ProcessPoolExecutor ex(process_options(workers));
            body(ex);
        }
    }
};

inline std::string param_name(const testing::TestParamInfo<std::string>& info) { return info.param; }

}  // namespace futures_conformance

#define FUTURES_ALL_EXECUTORS(Suite)                                                                \
    INSTANTIATE_TEST_SUITE_P(Executors, Suite, testing::Values("thread", "fork", "spawn", "forkserver"), \
                             ::futures_conformance::param_name)
#define FUTURES_PROCESS_EXECUTORS(Suite)                                                              \
    INSTANTIATE_TEST_SUITE_P(StartMethods, Suite, testing::Values("fork", "spawn", "forkserver"), \
                             ::futures_conformance::param_name)
