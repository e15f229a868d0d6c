// mproc/detail/process_core.hpp: the process pool's core (not API): worker processes fed
// chunks of pool calls over the wire protocol of detail/pool_wire.hpp. Its parts are in
// src/pool/ (docs/design.md, Architecture).
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "mproc/context.hpp"
#include "mproc/detail/pool_core.hpp"
#include "mproc/process.hpp"

namespace mproc {
struct PoolOptions;
}

namespace mproc::detail::pool {

class ProcessCore : public CoreBase {
public:
    explicit ProcessCore(const PoolOptions& options);
    ~ProcessCore();
    ProcessCore(const ProcessCore&) = delete;
    ProcessCore& operator=(const ProcessCore&) = delete;

    // Once per call: what every chunk of it starts with.
    template <class R, class F, class Tuple>
    std::shared_ptr<const std::string> prepare(const F& f) const {
        std::string prefix;
        OutputArchive ar(prefix);
        ar(encode_function(static_cast<ChunkFn>(&run_chunk<F, Tuple, R>)));
        save_callable(ar, f);
        return std::make_shared<const std::string>(std::move(prefix));
    }

    template <class R, class Tuple>
    void submit_items(const std::shared_ptr<Job<R>>& job, std::size_t first,
                      const std::shared_ptr<const std::string>& prefix, std::span<Tuple> items,
                      const Timeout& timeout, bool stream) {
        Chunk c;
        c.job = job;
        c.first = first;
        c.count = items.size();
        c.prefix = prefix;
        c.timeout = timeout ? timeout : default_timeout_;
        if constexpr (packed_args<Tuple>::value) {
            constexpr std::size_t size = packed_args<Tuple>::size;
            c.items = take_buffer(items.size() * size);
            for (std::size_t i = 0; i < items.size(); ++i) pack_args(c.items.data() + i * size, items[i]);
            c.fixed = static_cast<std::uint32_t>(size);
            return submit(std::move(c), {}, stream);
        }
        OutputArchive ar(c.items);
        c.sizes.reserve(items.size());
        bool alike = true;
        try {
            for (auto& t : items) {
                const std::size_t before = c.items.size();
                ar(t);
                c.sizes.push_back(static_cast<std::uint32_t>(c.items.size() - before));
                alike = alike && c.sizes.back() == c.sizes.front();
            }
        } catch (...) {
            // Python's pools pickle a task in a feeder thread and set what that raises on the
            // task's future or result (the pool goes on): the chunk's items fail with it, as
            // it is, and the call that submitted them returns.
            const std::exception_ptr e = std::current_exception();
            for (std::size_t i = 0; i < c.count; ++i) job->set_error(first + i, e);
            return;
        }
        if (alike && !c.sizes.empty() && c.sizes.front() > 0) {
            c.fixed = c.sizes.front();
            c.sizes.clear();
        }
        submit(std::move(c), ar.fds(), stream);
    }

    // A new call's job: a thread that waits for it may read the workers' results itself.
    void adopt(JobBase& job) const;
    // Kills the worker running a chunk of job (it is replaced); true when there was one.
    bool stop(const JobBase& job);
    // Takes job's chunks out of the queue if none has gone to a worker: true when it did (the
    // caller then cancels the job; no worker will run it). False once it is out (running).
    bool unqueue(const JobBase& job);
    // Python 3.14's terminate_workers / kill_workers: no more tasks, the queued ones cancelled,
    // every worker sent SIGTERM (or SIGKILL); the calls they ran fail. Returns once they are gone.
    void stop_workers(bool kill);
    // An executor's pool: at the exit of its process, the work submitted finishes (Python's
    // ProcessPoolExecutor); a Pool's is terminated (Python's Pool finalizer).
    void set_finish_at_exit();
    static constexpr bool can_stop_running = true;
    static constexpr bool crosses_processes = true;
    // Cancels every call none of whose chunks has gone to a worker yet.
    void cancel_pending();
    void terminate();
    void join();

private:
    void submit(Chunk&& c, const std::vector<int>& fds, bool stream);
    // A buffer of `size` bytes, reusing one of a finished chunk's when large.
    std::string take_buffer(std::size_t size);

public:
    struct Impl;

private:
    static void register_live(const std::shared_ptr<Impl>& impl);
    static void stop_live_pools() noexcept;
    Timeout default_timeout_;
    std::shared_ptr<Impl> impl_;
};

static_assert(StoppableCore<ProcessCore>);

}  // namespace mproc::detail::pool
