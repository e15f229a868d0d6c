// S15: an exception in a pool.map function. In Python the seed's pool goes down with it; here
// the exception reaches the caller with its type and message, and the pool keeps working. A
// worker that crashes outright fails only the task it held.
#include <csignal>
#include <iostream>
#include <stdexcept>
#include <vector>

#include <mproc/mproc.hpp>

#include "print.hpp"

int inverse_percent(int x) {
    if (x == 0) throw std::domain_error("division by zero");
    return 100 / x;
}

int crash_on_three(int x) {
    if (x == 3) std::raise(SIGKILL);  // the worker dies, as by the OOM killer
    return x;
}

int main(int argc, char** argv) {
    mproc::init(argc, argv);
    mproc::Pool pool(2);
    try {
        pool.map(inverse_percent, std::vector<int>{5, 0, 2});
    } catch (const std::domain_error& e) {
        std::cout << "map raised std::domain_error: " << e.what() << std::endl;
    }
    std::cout << "the pool keeps working: " << py::repr(pool.map(inverse_percent, std::vector<int>{1, 2, 4})) << std::endl;

    std::vector<mproc::AsyncResult<int>> rs;
    for (int x = 1; x <= 4; ++x) rs.push_back(pool.apply_async(crash_on_three, x));
    for (int x = 1; x <= 4; ++x) {
        try {
            const int v = rs[x - 1].get();
            std::cout << "task " << x << ": " << v << std::endl;
        } catch (const mproc::WorkerLostError& e) {
            std::cout << "task " << x << ": WorkerLostError (" << e.what() << ")" << std::endl;
        }
    }
}
