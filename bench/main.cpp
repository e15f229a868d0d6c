// mproc-bench: mproc beside Python's multiprocessing and the bare OS, on this machine.
//   mproc-bench [--quick] [process|connection|queue|pool|futures|managers|sync|mpi ...]   (default: every
//   section; mpi only where mproc was built with MPI, and it launches its own jobs with mpiexec)
#include <cstring>
#include <iostream>
#include <set>
#include <string>

#include <mproc/mproc.hpp>

#include "bench.hpp"

int main(int argc, char** argv) {
    mproc::init(argc, argv);
    if (argc > 1 && std::strcmp(argv[1], "--bench-noop") == 0) return 0;  // a bare exec target
#ifdef MPROC_BENCH_MPI
    // Rank 0 of the mpi section's own job (the other rank serves tasks inside mproc::init).
    if (argc > 1 && std::strcmp(argv[1], "--mpi-job") == 0)
        return run_mpi_job(argc > 2 && std::strcmp(argv[2], "--quick") == 0);
#endif
    bool quick = false;
    std::set<std::string> only;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--quick") == 0)
            quick = true;
        else
            only.insert(argv[i]);
    }
    auto want = [&](const char* s) { return only.empty() || only.count(s); };
    if (want("process")) run_process_bench(quick);
    if (want("connection")) {
        std::cout << "\n";
        run_connection_bench(quick);
    }
    if (want("queue")) {
        std::cout << "\n";
        run_queue_bench(quick);
    }
    if (want("pool")) {
        std::cout << "\n";
        run_pool_bench(quick);
    }
    if (want("futures")) {
        std::cout << "\n";
        run_futures_bench(quick);
    }
    if (want("managers")) {
        std::cout << "\n";
        run_managers_bench(quick);
    }
    if (want("sync")) {
        std::cout << "\n";
        run_sync_bench(quick);
    }
#ifdef MPROC_BENCH_MPI
    if (want("mpi")) {
        std::cout << "\n";
        run_mpi_bench(quick);
    }
#endif
    return 0;
}
