// mproc/detail/mpi_core.hpp: the MPI pool's core (not API): chunks of pool calls sent to the
// worker ranks of an MPI job, each of which runs them in processes it supervises (a process
// pool of its own). Its parts are in src/mpi/ (docs/design.md, MPI). Started without mpiexec,
// or with no worker rank, it runs on local worker processes instead (a ProcessCore), and says
// so on stderr.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "mproc/detail/pool_core.hpp"
#include "mproc/detail/process_core.hpp"

namespace mproc::detail::pool {

// What an MPI pool is made with (mproc/mpi.hpp).
struct MpiCoreOptions;

class MpiCore : public CoreBase {
public:
    // Opens a pool on every worker rank used (each starts its processes); returns without
    // waiting for them. std::invalid_argument for ranks < 1, tasks_per_rank 0, a deadline that
    // is not positive or maxtasksperchild 0; std::logic_error for an initializer that cannot
    // travel.
    explicit MpiCore(const MpiCoreOptions& options);
    ~MpiCore();
    MpiCore(const MpiCore&) = delete;
    MpiCore& operator=(const MpiCore&) = delete;

    // Whether tasks go to worker ranks (false: to local processes).
    bool distributed() const noexcept { return local_ == nullptr; }

    template <class R, class F, class Tuple>
    std::shared_ptr<const std::string> prepare(const F& f) const {
        return chunk_prefix<R, F, Tuple>(f);
    }

    template <class R, class Tuple>
    void submit_items(const std::shared_ptr<Job<R>>& job, std::size_t first,
                      const std::shared_ptr<const std::string>& prefix, std::span<Tuple> items,
                      const Timeout& timeout, bool stream) {
        if (local_) return local_->submit_items<R, Tuple>(job, first, prefix, items, timeout, stream);
        std::vector<int> fds;
        std::vector<Lent> lent;
        auto c = make_chunk(job, first, prefix, items, timeout ? timeout : default_timeout_, fds,
                            [](std::size_t size) { return std::string(size, '\0'); }, &lent);
        if (!c) return;
        if (!lent.empty()) {
            // Long arguments go to MPI from their own buffers (a 1 GiB one is not copied here):
            // the tuples, ours to move from (the caller's copies), keep them until it is sent.
            auto keep = std::make_shared<std::vector<Tuple>>(std::make_move_iterator(items.begin()),
                                                             std::make_move_iterator(items.end()));
            c->loan = std::make_shared<const Loan>(Loan{std::move(lent), std::move(keep)});
        }
        submit(std::move(*c), !fds.empty(), stream);
    }

    // A thread that waits for the call, on another CPU than rank 0's engine, looks for its
    // result a while before it sleeps (as a process pool's caller reads the workers' results
    // itself); beside the engine it sleeps at once.
    void adopt(JobBase& job) const;
    // Asks the rank running a chunk of job to kill its process (it is replaced); true when a
    // chunk of job was out on a rank.
    bool stop(const JobBase& job);
    bool unqueue(const JobBase& job);
    // terminate_workers / kill_workers: every rank's processes are sent SIGTERM (SIGKILL); the
    // calls they ran fail with BrokenProcessPool. Returns once every rank's pool has ended.
    void stop_workers(bool kill);
    void set_finish_at_exit();
    static constexpr bool can_stop_running = true;
    static constexpr bool crosses_processes = true;
    void cancel_pending();
    void terminate();
    void join();

    struct Impl;

private:
    void submit(Chunk&& c, bool carries_fds, bool stream);
    Timeout default_timeout_;
    std::unique_ptr<ProcessCore> local_;
    std::shared_ptr<Impl> impl_;
};

static_assert(StoppableCore<MpiCore>);

}  // namespace mproc::detail::pool
