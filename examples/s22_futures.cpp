// S22: concurrent.futures. Executor, ThreadPoolExecutor and ProcessPoolExecutor; submit returns
// a Future; cancel, cancelled, running, done, result(timeout), exception, add_done_callback;
// map; shutdown. Beyond Python: a worker that crashes fails only its own future, and the
// executor heals (Python's would be broken for good).
#include <csignal>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

#include <mproc/mproc.hpp>

#include "print.hpp"

namespace cf = mproc::futures;
using namespace std::chrono_literals;

int add(int a, int b) { return a + b; }
int square(int x) { return x * x; }
int check_positive(int x) {
    if (x <= 0) throw std::invalid_argument("not positive: " + std::to_string(x));
    return x;
}
int wait_for(mproc::Event e) {
    e.wait();
    return 1;
}
int crash(int) {
    std::raise(SIGKILL);  // the worker dies, as by the OOM killer
    return 0;
}

int main(int argc, char** argv) {
    mproc::init(argc, argv);
    {
        cf::ProcessPoolExecutor ex(2);
        cf::Future<int> f = ex.submit(add, 1, 2);
        std::cout << "submit(add, 1, 2).result() = " << f.result() << "; done() = " << py::repr(f.done())
                  << ", running() = " << py::repr(f.running()) << ", cancelled() = " << py::repr(f.cancelled())
                  << std::endl;

        cf::Future<int> bad = ex.submit(check_positive, -1);
        try {
            std::rethrow_exception(bad.exception());
        } catch (const std::invalid_argument& e) {
            std::cout << "exception() = std::invalid_argument: " << e.what() << std::endl;
        }

        // One worker kept busy on an Event shows result(timeout) and cancel.
        mproc::Event release;
        cf::Future<int> slow = ex.submit(wait_for, release);
        try {
            slow.result(50ms);
        } catch (const mproc::TimeoutError&) {
            std::cout << "result(timeout=0.05) on an unfinished future: TimeoutError" << std::endl;
        }
        // Python's cancel(): a running future is not cancelled and runs on. mproc's terminate()
        // also stops a running task: its worker is killed and replaced.
        std::cout << "cancel() on it while it runs = " << py::repr(slow.cancel()) << std::endl;
        std::cout << "terminate() on it = " << py::repr(slow.terminate()) << ", cancelled() = "
                  << py::repr(slow.cancelled()) << std::endl;
        try {
            slow.result();
        } catch (const cf::CancelledError&) {
            std::cout << "result() of a cancelled future: CancelledError" << std::endl;
        }

        cf::Future<int> sq = ex.submit(square, 9);
        mproc::threading::Event called;
        sq.add_done_callback([called](cf::Future<int>& g) mutable {
            std::cout << "done callback: " << g.result() << std::endl;
            called.set();
        });
        called.wait();
        // Added once done, a callback runs at once, in this thread.
        sq.add_done_callback([](cf::Future<int>& g) { std::cout << "late callback: " << g.result() << std::endl; });

        std::vector<int> squares;
        for (int y : ex.map(square, std::vector<int>{1, 2, 3, 4, 5})) squares.push_back(y);
        std::cout << "map(square, [1..5]) = " << py::repr(squares) << std::endl;

        std::vector<cf::Future<int>> fs;
        fs.push_back(ex.submit(add, 10, 1));
        fs.push_back(ex.submit(crash, 0));
        fs.push_back(ex.submit(add, 20, 2));
        for (auto& g : fs) {
            try {
                const int v = g.result();
                std::cout << "future: " << v << std::endl;
            } catch (const mproc::WorkerLostError&) {
                std::cout << "future: WorkerLostError (its worker was killed; only this future fails)" << std::endl;
            }
        }
        std::cout << "the executor heals: submit(add, 2, 3).result() = " << ex.submit(add, 2, 3).result() << std::endl;

        auto [done, not_done] = cf::wait(fs, {}, cf::ALL_COMPLETED);
        std::cout << "wait(ALL_COMPLETED): " << done.size() << " done, " << not_done.size() << " not done" << std::endl;
        ex.shutdown();
        try {
            ex.submit(add, 1, 1);
        } catch (const std::logic_error&) {
            std::cout << "submit after shutdown: std::logic_error (Python: RuntimeError)" << std::endl;
        }
    }

    // Threads: any callable, captures included.
    cf::ThreadPoolExecutor tex(4);
    int offset = 100;  // captured by value
    std::vector<cf::Future<int>> tf;
    for (int i = 0; i < 4; ++i) tf.push_back(tex.submit([offset, i] { return offset + i; }));
    int total = 0;
    for (auto& g : cf::as_completed(tf)) total += g.result();
    std::cout << "ThreadPoolExecutor, lambdas with captures, as_completed: total " << total << std::endl;
    std::vector<int> lens;
    for (int n : tex.map([](const std::string& s) { return static_cast<int>(s.size()); },
                         std::vector<std::string>{"a", "bb", "ccc"}))
        lens.push_back(n);
    std::cout << "ThreadPoolExecutor map: " << py::repr(lens) << std::endl;
    tex.shutdown(true, /*cancel_futures*/ true);
}
