// mproc/detail/process_core.hpp: the process pool's core (not API): worker processes fed
// chunks of pool calls over the wire protocol of detail/pool_wire.hpp. Its parts are in
// src/pool/ (docs/design.md, Architecture).
#pragma once

#include <algorithm>
#include <cstddef>
#include <memory>
#include <optional>
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
        return chunk_prefix<R, F, Tuple>(f);
    }

    template <class R, class Tuple>
    void submit_items(const std::shared_ptr<Job<R>>& job, std::size_t first,
                      const std::shared_ptr<const std::string>& prefix, std::span<Tuple> items,
                      const Timeout& timeout, bool stream) {
        if constexpr (packed_args<Tuple>::value) {
            submit_packed(job, first, prefix, packed_items(items), timeout, stream);
        } else {
            std::vector<int> fds;
            auto c = make_chunk(job, first, prefix, items, timeout ? timeout : default_timeout_, fds,
                                [this](std::size_t size) { return take_buffer(size); });
            if (c) submit(std::move(*c), fds, stream);
        }
    }
    // Items first... of a call, known together (a Pool::map's list, the next part of a
    // stream): chunks of `chunk` items, made here and queued kGroup at a time, each group
    // under one lock and with at most one wake-up.
    // Chunk by chunk (submit_items), a map's caller and the pool's thread met on the pool's
    // mutex at every chunk, and the queue held too few chunks for full batches while the
    // workers emptied it: chunksize-1 maps ran at 0.6-1.2M tasks/s, 2-3M when the caller
    // happened to get ahead. A group also goes once it holds kGroupBytes of items, so that
    // workers start on large items while the rest are written. What cannot be sent fails its
    // items, as in submit_items.
    template <class R, class Tuple>
    void submit_all(const std::shared_ptr<Job<R>>& job, std::size_t first, const std::shared_ptr<const std::string>& prefix,
                    std::span<Tuple> items, std::size_t chunk, const Timeout& timeout, bool stream) {
        const Timeout t = timeout ? timeout : default_timeout_;
        if (chunk == 1) return submit_units(job, first, prefix, items, t, stream);
        std::vector<Chunk> group;
        group.reserve(std::min(kGroup, (items.size() + chunk - 1) / chunk));
        std::size_t bytes = 0;  // of the items in group
        for (std::size_t at = 0; at < items.size(); at += chunk) {
            const auto part = items.subspan(at, std::min(chunk, items.size() - at));
            std::vector<int> fds;
            auto c = make_chunk(job, first + at, prefix, part, t, fds, [this](std::size_t size) { return take_buffer(size); });
            if (!c) continue;
            if (!fds.empty()) {  // descriptors are copied as the chunk is queued: on its own
                submit_group(group, stream);
                bytes = 0;
                submit(std::move(*c), fds, stream);
                continue;
            }
            bytes += c->items.size();
            group.push_back(std::move(*c));
            if (group.size() == kGroup || bytes >= kGroupBytes) {
                submit_group(group, stream);
                bytes = 0;
            }
        }
        submit_group(group, stream);
    }
    // A chunk already serialized (a relay's: an MPI worker rank's, src/mpi/), carrying no
    // descriptors; its job receives each record as run_chunk wrote it.
    void submit_chunk(Chunk&& c) { submit(std::move(c), {}, false); }
    // For a thread that polls anyway (an MPI worker rank's engine, src/mpi/server.cpp): reads
    // the results the workers have published, without waiting; their jobs' deliveries run on
    // this thread. True when it read any. Never blocks: false at once when the pool is not
    // polled (set_polled) or its mutex is held (its dispatcher or a waiting thread is reading).
    bool read_results();
    // While `on`, such a thread polls read_results() often, and the dispatcher leaves the
    // workers' results to it, as it does for a thread waiting for a result (it looks only every
    // kBlindCheck, and at deaths); turned off, the dispatcher is woken to read them again.
    // Lock-free: safe under the caller's own locks.
    void set_polled(bool on) noexcept;

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

    // A full batch (TaskQueue::kMaxBatch, kBatchBytes); as many items in a unit chunk.
    static constexpr std::size_t kGroup = 256, kGroupBytes = std::size_t{1} << 20, kUnits = kGroup;

private:
    // submit_all with chunksize 1: the items in unit chunks (Chunk::units) of up to kUnits
    // items or kGroupBytes of them, each queued as it is made (under one lock, as a group). An
    // item that cannot be serialized fails alone; one that carries descriptors goes in a chunk
    // of its own (its archive numbers them from 0).
    template <class Tuple>
    void submit_units(const std::shared_ptr<JobBase>& job, std::size_t first, const std::shared_ptr<const std::string>& prefix,
                      std::span<Tuple> items, const Timeout& t, bool stream) {
        std::vector<Chunk> group;
        if constexpr (packed_args<Tuple>::value) {
            for (std::size_t at = 0; at < items.size(); at += kUnits) {
                const auto part = items.subspan(at, std::min(kUnits, items.size() - at));
                group.push_back(packed_chunk(job, first + at, prefix, packed_items(part), t,
                                             take_buffer(part.size() * packed_args<Tuple>::size)));
                group.back().units = true;
                submit_group(group, stream);
            }
            return;
        }
        for (std::size_t at = 0; at < items.size();) {
            Chunk c = chunk_head(job, first + at, prefix, 0, t);
            c.units = true;
            std::optional<Chunk> alone;  // an item carrying descriptors
            std::vector<int> fds;
            {
                OutputArchive ar(c.items);
                while (at < items.size() && c.count < kUnits && c.items.size() < kGroupBytes) {
                    const std::size_t before = c.items.size();
                    try {
                        ar(items[at]);
                    } catch (...) {
                        c.items.resize(before);
                        job->set_error(first + at++, std::current_exception());
                        break;  // a chunk's items are consecutive: the next starts after this one
                    }
                    if (!ar.fds().empty()) {
                        alone = chunk_head(job, first + at, prefix, 1, t);
                        alone->items = c.items.substr(before);
                        alone->sizes.push_back(static_cast<std::uint32_t>(alone->items.size()));
                        settle_sizes(*alone);
                        fds = ar.fds();
                        c.items.resize(before);
                        ++at;
                        break;
                    }
                    c.sizes.push_back(static_cast<std::uint32_t>(c.items.size() - before));
                    ++c.count;
                    ++at;
                }
            }
            if (c.count > 0) {
                settle_sizes(c);
                group.push_back(std::move(c));
                submit_group(group, stream);
            }
            if (alone) submit(std::move(*alone), fds, stream);
        }
    }
    void submit(Chunk&& c, const std::vector<int>& fds, bool stream);
    // Queues the chunks of group (none carrying descriptors) in order, under one lock; leaves
    // group empty.
    void submit_group(std::vector<Chunk>& group, bool stream);
    // submit_items for packed arguments, out of line.
    void submit_packed(std::shared_ptr<JobBase> job, std::size_t first, const std::shared_ptr<const std::string>& prefix,
                       const PackedItems& items, const Timeout& timeout, bool stream);
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
