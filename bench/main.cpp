// mproc-bench: mproc beside Python's multiprocessing and the bare OS, on this machine.
//   mproc-bench [--quick] [--data FILE [--commit TEXT]] [process|connection|queue|pool|futures|managers|sync|mpi ...]
// (default: every section; mpi only where mproc was built with MPI, and it launches its own jobs
// with mpiexec). --data also writes every figure as JSON to FILE (scripts/charts.py draws them;
// scripts/charts.sh runs both), with TEXT as the source version it was measured on.
#include <cstring>
#include <iostream>
#include <set>
#include <string>

#include <mproc/mproc.hpp>

#include "bench.hpp"
#include "harness.hpp"

int main(int argc, char** argv) {
    mproc::init(argc, argv);
    if (argc > 1 && std::strcmp(argv[1], "--bench-noop") == 0) return 0;  // a bare exec target
#ifdef MPROC_BENCH_MPI
    // Rank 0 of the mpi section's own job (the other rank serves tasks inside mproc::init).
    if (argc > 1 && std::strcmp(argv[1], "--mpi-job") == 0)
        return run_mpi_job(argc > 2 && std::strcmp(argv[2], "--quick") == 0);
#endif
    bool quick = false;
    std::string data, commit;
    std::set<std::string> only;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--quick") == 0) {
            quick = true;
        } else if (std::strcmp(argv[i], "--data") == 0 && i + 1 < argc) {
            data = argv[++i];
        } else if (std::strcmp(argv[i], "--commit") == 0 && i + 1 < argc) {
            commit = argv[++i];
        } else {
            only.insert(argv[i]);
        }
    }
    const std::pair<const char*, void (*)(bool)> sections[] = {
        {"process", run_process_bench}, {"connection", run_connection_bench}, {"queue", run_queue_bench},
        {"pool", run_pool_bench},       {"futures", run_futures_bench},       {"managers", run_managers_bench},
        {"sync", run_sync_bench},
#ifdef MPROC_BENCH_MPI
        {"mpi", run_mpi_bench},
#endif
    };
    bool first = true;
    for (const auto& [name, run] : sections) {
        if (!only.empty() && !only.count(name)) continue;
        if (!first) std::cout << "\n";
        first = false;
        bench::results().section = name;
        run(quick);
    }
    if (!data.empty() && !bench::write_data(data, quick, commit)) {
        std::cerr << "mproc-bench: cannot write " << data << "\n";
        return 1;
    }
    return 0;
}
