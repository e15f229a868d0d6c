// mproc/mpi.hpp: pools and executors over the ranks of an MPI job (mpi4py.futures and
// mpi4py.util.pool). Component `mpi`: find_package(mproc COMPONENTS mpi), target mproc::mpi,
// pkg-config mproc-mpi; built when Open MPI is found.
//
// Launch as mpi4py's static mode: `mpiexec -n N ./prog`. Rank 0 runs main; every other rank
// serves tasks inside mproc::init and never returns. Each worker rank runs a task in a process
// it supervises (a process pool of its own), so a task that crashes, aborts or is killed fails
// only its own future (mproc::WorkerLostError naming the rank, host, pid and signal), and a
// task past its deadline is killed wherever it runs (mproc::TimeoutError). A rank that goes
// silent (its process killed, its host gone) is taken for lost after
// MPROC_MPI_LIVENESS_TIMEOUT seconds (default 5): the tasks it held fail with WorkerLostError
// naming it, and the pool goes on with the other ranks. All ranks must run the same build of
// the program (checked when they meet). Started without mpiexec, or with no worker rank, the
// same program runs its pools on local processes and says so on stderr. docs/mpi.md has the
// launch lines (hostfile, flags) and what each failure does.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>

#include <mpi.h>

#include "mproc/detail/mpi_core.hpp"
#include "mproc/futures.hpp"
#include "mproc/pool.hpp"

namespace mproc::detail::mpi {
class Engine;
}

namespace mproc::detail::pool {
struct MpiCoreOptions {
    mpi::Engine* engine = nullptr;   // MPICommExecutor's; null: the job's (mproc::init)
    std::optional<int> ranks;        // worker ranks to use; empty: all
    std::size_t tasks_per_rank = 1;  // tasks one rank runs side by side, each in a process
    Initializer initializer;
    std::optional<std::size_t> maxtasksperchild;
    Timeout task_timeout;
    std::size_t max_result_bytes = std::size_t{1} << 30;
};
}  // namespace mproc::detail::pool

namespace mproc::mpi {

// This process in its MPI job: rank 0 of 1 when it was not started by mpiexec. Valid after
// mproc::init.
int rank() noexcept;
int world_size() noexcept;
// Whether this program was started by mpiexec (and so joined an MPI job in mproc::init).
bool in_job() noexcept;
// The host a rank runs on and its pid, as it reported them (rank 0's own when r is out of
// range, or outside a job).
std::string host_of(int r);
long pid_of(int r);

// Python (mpi4py.futures): MPIPoolExecutor(max_workers=None, initializer=None, initargs=()).
struct MPIPoolExecutorOptions {
    // Worker ranks to use (mpi4py: the number of workers); empty: every rank but 0; locally,
    // the number of processes (default process_cpu_count()). Below 1: std::invalid_argument.
    std::optional<int> max_workers = {};
    Initializer initializer = {};  // runs in every process that runs tasks, before them
    // mproc's own: every task's deadline, counted from when it begins on its rank (submit and
    // map may set their own). Past it the task's process is killed and replaced, and its
    // future fails with mproc::TimeoutError. Empty: none. Not positive: std::invalid_argument.
    Timeout task_timeout = {};
    // mproc's own: tasks a worker rank runs side by side, each in a process of its own
    // (mpi4py: one). 0: std::invalid_argument.
    std::size_t tasks_per_rank = 1;
    // A task whose serialized result is larger fails with mproc::ProcessError; its rank lives.
    std::size_t max_result_bytes = std::size_t{1} << 30;
};

// ProcessPoolExecutor's interface over the worker ranks: submit, map (ExecutorMapOptions),
// shutdown(wait, cancel_futures), terminate_workers, kill_workers; futures::Future with wait,
// as_completed and callbacks. Contracts are ProcessPoolExecutor's (futures.hpp); callbacks run
// on the MPI engine's thread. Submit after shutdown: std::logic_error.
class MPIPoolExecutor : public futures::detail::Executor<detail::pool::MpiCore> {
    friend class MPICommExecutor;

public:
    explicit MPIPoolExecutor(MPIPoolExecutorOptions options = {});
    explicit MPIPoolExecutor(int max_workers) : MPIPoolExecutor(MPIPoolExecutorOptions{.max_workers = max_workers}) {}
    // Whether tasks go to worker ranks (false: to local processes: no mpiexec, or -n 1).
    bool distributed() const noexcept;
    void terminate_workers() { stop_workers(false); }
    void kill_workers() { stop_workers(true); }

private:
    explicit MPIPoolExecutor(std::unique_ptr<detail::pool::MpiCore>&& core);
    MPIPoolExecutor(const detail::pool::MpiCore* raw, std::unique_ptr<detail::pool::MpiCore>&& core);
    const detail::pool::MpiCore* core_ = nullptr;
};

// For programs that already use MPI (mpi4py: MPICommExecutor(comm, root)): an executor over
// the other ranks of a communicator the program gives. The program initializes MPI itself, with
// MPI_THREAD_MULTIPLE (the executor's MPI calls run in a thread of their own beside the
// program's); the executor works on a duplicate of the communicator. A program that
// initializes MPI before mproc::init is left to run MPI itself: no rank serves in mproc::init.
//
//   MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
//   mproc::init(argc, argv);   // not under mpiexec's static mode unless linked for it
//   {
//       mproc::mpi::MPICommExecutor ex(MPI_COMM_WORLD, 0);
//       if (ex) ex->submit(...);   // root only; the other ranks served inside the constructor
//   }
//   MPI_Finalize();
class MPICommExecutor {
public:
    // Collective over comm: every rank of it calls this. On root: an executor over the other
    // ranks. Elsewhere: serves tasks until root's executor is destroyed, then returns, empty.
    // std::invalid_argument without MPI_THREAD_MULTIPLE or for a root out of range;
    // ProcessError when a rank runs another build of the program.
    MPICommExecutor(MPI_Comm comm, int root = 0, MPIPoolExecutorOptions options = {});
    // Root: shuts the executor down (waiting for its tasks), then releases the other ranks.
    ~MPICommExecutor();
    MPICommExecutor(const MPICommExecutor&) = delete;
    MPICommExecutor& operator=(const MPICommExecutor&) = delete;

    explicit operator bool() const noexcept { return executor_ != nullptr; }
    MPIPoolExecutor& operator*() const { return *executor_; }
    MPIPoolExecutor* operator->() const { return executor_.get(); }

private:
    detail::mpi::Engine* engine_ = nullptr;
    std::unique_ptr<MPIPoolExecutor> executor_;
};

// multiprocessing.Pool's options over ranks (mpi4py.util.pool.Pool).
struct PoolOptions {
    std::optional<int> processes = {};  // worker ranks to use (locally: processes); empty: all
    Initializer initializer = {};
    std::optional<std::size_t> maxtasksperchild = {};
    Timeout task_timeout = {};
    std::size_t tasks_per_rank = 1;
    std::size_t max_result_bytes = std::size_t{1} << 30;
};

// multiprocessing.Pool's interface (map, starmap, imap, imap_unordered, apply_async, progress,
// close, terminate, join) over the worker ranks; contracts are mproc::Pool's (pool.hpp).
class Pool : public detail::pool::BasicPool<detail::pool::MpiCore> {
public:
    explicit Pool(PoolOptions options = {});
    explicit Pool(int processes) : Pool(PoolOptions{.processes = processes}) {}
    // Whether tasks go to worker ranks (false: to local processes: no mpiexec, or -n 1).
    bool distributed() const noexcept { return core().distributed(); }
};

}  // namespace mproc::mpi
