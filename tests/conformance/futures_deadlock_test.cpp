// concurrent.futures conformance: crashes, exits and errors injected at each step of a task's
// trip through a ProcessPoolExecutor; the executor must never deadlock. Source:
//   CPython Lib/test/test_concurrent_futures/test_deadlock.py (ExecutorDeadlockTest)
// Run under each start method, as CPython does. Python's pickling hooks (__reduce__) are
// mproc's serialize() member, which runs when the value is written (Python: pickled) and when
// it is read (unpickled).
//
// Where a worker dies, Python breaks the pool (BrokenProcessPool for the future); mproc fails
// only that future, with mproc::WorkerLostError, and replaces the worker (python_differences.md,
// "a ProcessPoolExecutor worker that dies breaks the executor (BrokenProcessPool)"). Python's
// sys.exit() is an exception (SystemExit) that the worker sends back; C++'s std::exit() ends
// the worker, which is the same dying worker for mproc.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>

#include <cstdlib>

#include "futures_conformance.hpp"

namespace futures_conformance {
namespace {

// Python's test.support.LONG_TIMEOUT is 5 minutes; the hard timeout of a test here is 60 s.
constexpr auto kTimeout = 45s;

// faulthandler._sigsegv(): a segfault (no core file).
[[noreturn]] void crash() {
    const rlimit none{0, 0};
    ::setrlimit(RLIMIT_CORE, &none);
    ::raise(SIGSEGV);
    std::abort();
}
void crash_after_ms(int delay_ms) {
    if (delay_ms) sleep_ms(delay_ms);
    crash();
}
int crash_task(int delay_ms) {
    crash_after_ms(delay_ms);
    return 0;
}
int exit_task() { std::exit(1); }  // Python: sys.exit(1)
int raise_error_task() { throw std::runtime_error("RuntimeError"); }

// Python's pickle errors; registered so that they cross processes as themselves.
struct PicklingError : std::runtime_error {
    using std::runtime_error::runtime_error;
};
struct UnpicklingError : std::runtime_error {
    using std::runtime_error::runtime_error;
};
MPROC_REGISTER_EXCEPTION(PicklingError);
MPROC_REGISTER_EXCEPTION(UnpicklingError);

// Values whose serialization misbehaves on the way out (pickle) or in (unpickle).
enum class When { Saving, Loading };
enum class What { Error, Crash, Exit };
template <When when, What what>
struct Bad {
    int pad = 0;
    template <class Ar>
    void serialize(Ar& ar) {
        constexpr bool now = when == When::Saving ? Ar::is_saving::value : Ar::is_loading::value;
        if constexpr (now) {
            if constexpr (what == What::Error)
            {
                if constexpr (when == When::Saving)
                    throw PicklingError("Error in pickle");
                else
                    throw UnpicklingError("Error in unpickle");
            }
            else if constexpr (what == What::Crash)
                crash();
            else
                std::exit(1);
        }
        ar(pad);
    }
};
using ErrorAtPickle = Bad<When::Saving, What::Error>;
using ErrorAtUnpickle = Bad<When::Loading, What::Error>;
using CrashAtPickle = Bad<When::Saving, What::Crash>;
using CrashAtUnpickle = Bad<When::Loading, What::Crash>;
using ExitAtPickle = Bad<When::Saving, What::Exit>;
using ExitAtUnpickle = Bad<When::Loading, What::Exit>;

template <class T>
int id(T) {  // Python's id(obj): takes the value
    return 1;
}
template <class T>
T return_instance() {
    return T{};
}
int crash_with_data(std::string data) {
    (void)data;
    crash();
}

using ExecutorDeadlockTest = ExecutorParam;

// _check_error: a fresh executor of 2 workers runs func(args...); its result raises E within
// the timeout (not a deadlock).
template <class E, class F, class... A>
void check_error(const cf::ProcessPoolExecutorOptions& options, F func, A... args) {
    cf::ProcessPoolExecutor executor(options);
    auto res = executor.submit(func, args...);
    try {
        res.result(kTimeout);
        ADD_FAILURE() << "no exception";
    } catch (const mproc::TimeoutError& e) {
        if (typeid(e) == typeid(mproc::TimeoutError)) ADD_FAILURE() << "Executor deadlock";
    } catch (const std::exception& e) {
        EXPECT_EQ(mproc::detail::demangle(typeid(e).name()), mproc::detail::demangle(typeid(E).name()))
            << e.what();
    }
    executor.shutdown(true);
}

// ExecutorDeadlockTest.test_error_at_task_pickle: an error while the task's argument is
// written comes out of the future (Python: PicklingError).
TEST_P(ExecutorDeadlockTest, test_error_at_task_pickle) {
    check_error<PicklingError>(process_options(2), id<ErrorAtPickle>, ErrorAtPickle{});
}

// ExecutorDeadlockTest.test_exit_at_task_unpickle: the worker exits while reading the task.
// Python: BrokenProcessPool; mproc: WorkerLostError (see the top of this file).
TEST_P(ExecutorDeadlockTest, test_exit_at_task_unpickle) {
    check_error<mproc::WorkerLostError>(process_options(2), id<ExitAtUnpickle>, ExitAtUnpickle{});
}

// ExecutorDeadlockTest.test_error_at_task_unpickle: an error while the worker reads the task.
// Python: BrokenProcessPool (its worker dies of it); mproc's worker lives and the error comes
// out of that future only (closest row of python_differences.md: "a ProcessPoolExecutor worker
// that dies breaks the executor"; no row names errors while reading a task).
TEST_P(ExecutorDeadlockTest, test_error_at_task_unpickle) {
    check_error<UnpicklingError>(process_options(2), id<ErrorAtUnpickle>, ErrorAtUnpickle{});
}

// ExecutorDeadlockTest.test_crash_at_task_unpickle: the worker segfaults reading the task.
// Python: BrokenProcessPool; mproc: WorkerLostError.
TEST_P(ExecutorDeadlockTest, test_crash_at_task_unpickle) {
    check_error<mproc::WorkerLostError>(process_options(2), id<CrashAtUnpickle>, CrashAtUnpickle{});
}

// ExecutorDeadlockTest.test_crash_during_func_exec_on_worker: the task segfaults. Python:
// BrokenProcessPool; mproc: WorkerLostError, and BrokenProcessPool with
// .break_on_worker_death = true.
TEST_P(ExecutorDeadlockTest, test_crash_during_func_exec_on_worker) {
    check_error<mproc::WorkerLostError>(process_options(2), crash_task, 0);
    auto o = process_options(2);
    o.break_on_worker_death = true;
    check_error<cf::BrokenProcessPool>(o, crash_task, 0);
}

// ExecutorDeadlockTest.test_exit_during_func_exec_on_worker: the task exits. Python:
// SystemExit comes back; mproc: WorkerLostError (see the top of this file).
TEST_P(ExecutorDeadlockTest, test_exit_during_func_exec_on_worker) {
    check_error<mproc::WorkerLostError>(process_options(2), exit_task);
}

// ExecutorDeadlockTest.test_error_during_func_exec_on_worker: the task raises RuntimeError.
TEST_P(ExecutorDeadlockTest, test_error_during_func_exec_on_worker) {
    check_error<std::runtime_error>(process_options(2), raise_error_task);
}

// ExecutorDeadlockTest.test_crash_during_result_pickle_on_worker: the worker segfaults writing
// the result. Python: BrokenProcessPool; mproc: WorkerLostError.
TEST_P(ExecutorDeadlockTest, test_crash_during_result_pickle_on_worker) {
    check_error<mproc::WorkerLostError>(process_options(2), return_instance<CrashAtPickle>);
}

// ExecutorDeadlockTest.test_exit_during_result_pickle_on_worker: the worker exits writing the
// result. Python: SystemExit; mproc: WorkerLostError (see the top of this file).
TEST_P(ExecutorDeadlockTest, test_exit_during_result_pickle_on_worker) {
    check_error<mproc::WorkerLostError>(process_options(2), return_instance<ExitAtPickle>);
}

// ExecutorDeadlockTest.test_error_during_result_pickle_on_worker: an error writing the result
// comes out of the future (Python: PicklingError).
TEST_P(ExecutorDeadlockTest, test_error_during_result_pickle_on_worker) {
    check_error<PicklingError>(process_options(2), return_instance<ErrorAtPickle>);
}

// ExecutorDeadlockTest.test_error_during_result_unpickle_in_result_handler: an error while the
// parent reads the result. Python: BrokenProcessPool (its result thread fails); mproc: the
// error comes out of that future only (closest row: "a ProcessPoolExecutor worker that dies
// breaks the executor"; no row names errors while reading a result).
TEST_P(ExecutorDeadlockTest, test_error_during_result_unpickle_in_result_handler) {
    check_error<UnpicklingError>(process_options(2), return_instance<ErrorAtUnpickle>);
}

// ExecutorDeadlockTest.test_shutdown_deadlock: shutdown(wait=True) while a task is about to
// segfault returns, and the future reports it. Python: BrokenProcessPool; mproc:
// WorkerLostError.
TEST_P(ExecutorDeadlockTest, test_shutdown_deadlock) {
    cf::ProcessPoolExecutor executor(process_options(2));
    cf::Future<int> f = executor.submit(crash_task, 100);
    executor.shutdown(true);
    EXPECT_THROW(f.result(0s), mproc::WorkerLostError);
}

// ExecutorDeadlockTest.test_shutdown_deadlock_pickle (bpo-39104): shutdown(wait=False) with a
// task whose argument fails to be written: the future raises the error, nothing hangs.
TEST_P(ExecutorDeadlockTest, test_shutdown_deadlock_pickle) {
    cf::ProcessPoolExecutor executor(process_options(2));
    executor.submit(id<int>, 42).result(kTimeout);
    cf::Future<int> f = executor.submit(id<ErrorAtPickle>, ErrorAtPickle{});
    executor.shutdown(false);
    EXPECT_THROW(f.result(kTimeout), PicklingError);
}

// ExecutorDeadlockTest.test_crash_big_data (gh-94777): workers that crash with big arguments
// (support.PIPE_MAX_SIZE: 4 MiB + 1) being sent: a clean exception, no deadlock. Python:
// BrokenProcessPool; mproc: WorkerLostError from the map.
TEST_P(ExecutorDeadlockTest, test_crash_big_data) {
    const std::string data(4 * 1024 * 1024 + 1, 'a');
    cf::ProcessPoolExecutor executor(process_options(2));
    EXPECT_THROW(
        {
            for (int y : executor.map(crash_with_data, std::vector<std::string>(10, data))) (void)y;
        },
        mproc::WorkerLostError);
    executor.shutdown(true);
}

FUTURES_PROCESS_EXECUTORS(ExecutorDeadlockTest);

}  // namespace
}  // namespace futures_conformance
