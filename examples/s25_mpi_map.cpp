// S25: S12's CPU-bound map, spread over the ranks of an MPI job: the same tasks in one process,
// then on mproc::mpi's Pool (one task at a time on each worker rank), timed, with the speedup.
// Run under mpiexec (the tour runs it so, with 3 ranks: rank 0 runs main, ranks 1 and 2 run
// tasks); started alone it runs the same pool on local processes and says so.
//
// Python (mpi4py):
//   with MPIPoolExecutor() as ex:                     # mpiexec -n 3 python -m mpi4py.futures s25.py
//       print(list(ex.map(burn, seeds, chunksize=1)))
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <iomanip>
#include <iostream>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include <mproc/mpi.hpp>
#include <mproc/mproc.hpp>

#include "print.hpp"

// CPU-bound: about 20 ms of arithmetic (S12's).
double burn(int seed) {
    double acc = seed;
    for (int i = 1; i < 5'000'000; ++i) acc += std::sqrt(static_cast<double>(i) + acc * 1e-9);
    return acc;
}

std::string where() {
    char host[256] = {};
    gethostname(host, sizeof host - 1);
    return std::string(host) + " pid " + std::to_string(getppid());  // the task's rank's process tree
}

int main(int argc, char** argv) {
    mproc::init(argc, argv);  // ranks 1.. serve tasks in here and never return
    mproc::mpi::Pool pool;
    const int workers = static_cast<int>(pool.processes());
    std::cout << "rank " << mproc::mpi::rank() << " of " << mproc::mpi::world_size() << " on "
              << mproc::mpi::host_of(0) << ": " << (pool.distributed() ? "tasks go to " : "no worker rank: tasks go to ")
              << workers << (pool.distributed() ? " worker rank(s)" : " local process(es)") << std::endl;
    std::cout << py::repr(pool.map([](int x) { return x * x; }, std::vector<int>{1, 2, 3, 4, 5})) << std::endl;

    std::vector<int> seeds(static_cast<std::size_t>(4 * workers));
    std::iota(seeds.begin(), seeds.end(), 1);
    using Clock = std::chrono::steady_clock;
    auto t = Clock::now();
    double one = 0;
    for (int s : seeds) one += burn(s);
    const double serial = std::chrono::duration<double>(Clock::now() - t).count();

    t = Clock::now();
    const std::vector<double> r = pool.map(burn, seeds, 1);
    const double spread = std::chrono::duration<double>(Clock::now() - t).count();
    const bool same = std::accumulate(r.begin(), r.end(), 0.0) == one;
    std::set<std::string> ranks;
    for (const auto& w : pool.map([](int) { return where(); }, std::vector<int>(static_cast<std::size_t>(8 * workers))))
        ranks.insert(w);
    std::cout << std::fixed << std::setprecision(2) << seeds.size() << " CPU-bound tasks: one process " << serial
              << " s, " << workers << " worker rank(s) " << spread << " s, speedup " << serial / spread
              << "x (same results: " << py::repr(same) << "; tasks ran in " << ranks.size() << " rank(s))" << std::endl;
}
