// S12: Pool. map returns a list; apply_async(...).get() returns one result; CPU-bound work on a
// pool against one process, timed, with the speedup printed.
//
// Python:
//   with Pool(4) as pool:
//       print(pool.map(square, [1, 2, 3, 4, 5]))
//       print(pool.apply_async(square, (10,)).get(timeout=1))
#include <chrono>
#include <cmath>
#include <iomanip>
#include <iostream>
#include <numeric>
#include <vector>

#include <mproc/mproc.hpp>

#include "print.hpp"

int square(int x) { return x * x; }

// CPU-bound: about 20 ms of arithmetic.
double burn(int seed) {
    double acc = seed;
    for (int i = 1; i < 5'000'000; ++i) acc += std::sqrt(static_cast<double>(i) + acc * 1e-9);
    return acc;
}

int main(int argc, char** argv) {
    mproc::init(argc, argv);
    mproc::Pool pool(4);
    std::cout << py::repr(pool.map(square, std::vector<int>{1, 2, 3, 4, 5})) << std::endl;
    std::cout << pool.apply_async(square, 10).get(std::chrono::seconds(1)) << std::endl;

    const int cores = mproc::process_cpu_count();
    std::vector<int> seeds(static_cast<std::size_t>(4 * cores));
    std::iota(seeds.begin(), seeds.end(), 1);
    using Clock = std::chrono::steady_clock;
    auto t = Clock::now();
    double one = 0;
    for (int s : seeds) one += burn(s);
    const double serial = std::chrono::duration<double>(Clock::now() - t).count();

    mproc::Pool workers(cores);
    t = Clock::now();
    const std::vector<double> r = workers.map(burn, seeds, 1);
    const double pooled = std::chrono::duration<double>(Clock::now() - t).count();
    const bool same = std::accumulate(r.begin(), r.end(), 0.0) == one;
    std::cout << std::fixed << std::setprecision(2) << seeds.size() << " CPU-bound tasks: one process " << serial
              << " s, Pool(" << cores << ") " << pooled << " s, speedup " << serial / pooled << "x on " << cores
              << " cores (same results: " << py::repr(same) << ")" << std::endl;
}
