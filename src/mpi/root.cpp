// src/mpi/root.cpp: rank 0's side of an MPI pool (MpiCore, detail/mpi_core.hpp): the queue of
// chunks, which rank holds which, and what arrives from the ranks (the root Role).
//
// No thread of its own: a submitting thread sends chunks to ranks with room (through the
// engine's outbox), and the engine's thread hands results to the calls and sends the next
// chunks. Each worker rank holds at most tasks_per_rank + 1 chunks of a pool (Python's call
// queue: max_workers + 1), so the rest wait here, where cancel() can still take them back.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <deque>
#include <map>
#include <thread>

#include "mpi/engine.hpp"
#include "mpi/wire.hpp"
#include "mproc/futures.hpp"
#include "mproc/mpi.hpp"
#include "platform/thread.hpp"
#include "pool/channel.hpp"
#include "pool/gate.hpp"
#include "exit_hooks.hpp"

namespace mproc::detail::pool {

using mpi::Engine;

// Chunks out on ranks, over every pool of this process: the engine polls on while some are.
std::atomic<long> chunks_out{0};

struct MpiCore::Impl final : Gate, std::enable_shared_from_this<Impl> {
    struct Rank {
        int rank = 0;
        bool lost = false;
        bool closed = false;  // its pool has ended (kClosed)
        std::size_t out = 0;          // chunks it holds
        std::size_t out_futures = 0;  // of which an executor's futures
    };
    struct Out {
        std::size_t rank = 0;  // index in ranks
        bool future = false;   // counts against the rank's futures
        Chunk chunk;
        std::vector<char> done;
        std::size_t left = 0;
    };

    Impl(Engine& e, std::uint64_t core_id) : engine(e), id(core_id) {}

    Engine& engine;
    const std::uint64_t id;
    // Chunks of an executor's futures a rank may hold: tasks_per_rank + 1 (Python's call queue:
    // a future is running once sent, so the rest wait here, cancellable). Other calls' chunks
    // (map, imap, a Pool's) fill a deeper window, so that the next is there when one ends.
    std::size_t capacity = 2;
    std::size_t window = 16;
    std::vector<Rank> ranks;
    std::size_t next_rank = 0;
    std::deque<Chunk> queue;
    std::map<std::uint64_t, Out> out;
    std::uint64_t next_seq = 1;
    bool finish_at_exit = false;
    bool close_sent = false;
    bool ended = false;
    std::exception_ptr stop_reason;  // terminate_workers / kill_workers
    std::condition_variable ended_cv;
    Deferred deferred;

    void wake() noexcept override {
        std::unique_lock lk(mu);
        progress(lk);
    }

    // Under mu: sends what can go, ends the pool when it is done; then runs what the calls'
    // completions left to do, outside mu.
    void progress(std::unique_lock<std::mutex>& lk) {
        if (state == State::Terminating) {
            end_all_locked();
        } else {
            dispatch_locked();
            if (state == State::Closed && streams == 0 && queue.empty() && out.empty() && !close_sent) {
                close_sent = true;
                for (auto& r : ranks)
                    if (!r.lost && !r.closed) post(r.rank, mpi::kClose, [&](OutputArchive& ar) { ar(id); });
            }
        }
        check_ended_locked();
        run_deferred(lk, deferred);
    }

    template <class Body>
    void post(int rank, std::uint8_t kind, Body&& body) {
        std::string msg = mpi::begin_message(kind);
        OutputArchive ar(msg);
        body(ar);
        engine.post(rank, std::move(msg));
    }

    void dispatch_locked() {
        while (!queue.empty()) {
            Chunk& c = queue.front();
            if (c.job->finished()) {
                queue.pop_front();
                continue;
            }
            // The rank with the fewest chunks out, in turn.
            const bool future = c.job->executor_future();
            std::size_t best = ranks.size();
            for (std::size_t k = 0; k < ranks.size(); ++k) {
                const std::size_t i = (next_rank + k) % ranks.size();
                if (ranks[i].lost || ranks[i].out >= window || (future && ranks[i].out_futures >= capacity)) continue;
                if (best == ranks.size() || ranks[i].out < ranks[best].out) best = i;
            }
            if (best == ranks.size()) return;
            next_rank = (best + 1) % ranks.size();
            const std::uint64_t seq = next_seq++;
            c.job->mark_running();
            send_task(ranks[best].rank, seq, c);
            ++ranks[best].out;
            ranks[best].out_futures += future;
            chunks_out.fetch_add(1, std::memory_order_relaxed);
            Out o;
            o.rank = best;
            o.future = future;
            o.done.assign(c.count, 0);
            o.left = c.count;
            o.chunk = std::move(c);
            queue.pop_front();
            out.emplace(seq, std::move(o));
        }
    }

    // The items go as the message's tail: rank 0 has no more use for them (a task is never
    // run again from here), so they are moved, not copied; their long runs (Chunk::loan) go
    // from the arguments' own buffers.
    void send_task(int rank, std::uint64_t seq, Chunk& c) {
        std::string msg = mpi::begin_message(mpi::kTask);
        msg.reserve(64 + c.prefix->size() + c.sizes.size() * 4 + c.items.size());
        OutputArchive ar(msg);
        const double timeout = c.timeout ? c.timeout->count() : -1.0;
        ar(id, seq, timeout, *c.prefix, static_cast<std::uint32_t>(c.count), c.fixed);
        if (!c.fixed) ar.saveBinary(c.sizes.data(), c.sizes.size() * sizeof(std::uint32_t));
        engine.post(rank, std::move(msg), std::move(c.items), std::move(c.loan));
    }

    void fail_locked(const Chunk& c, const std::vector<char>* done, const std::exception_ptr& e) {
        for (std::size_t i = 0; i < c.count; ++i)
            if (!done || !(*done)[i]) c.job->set_error(c.first + i, e, deferred);
    }

    // Terminating: every call not finished fails; the ranks end their pools.
    void end_all_locked() {
        const std::exception_ptr e = stop_reason ? stop_reason : Gate::terminated_error();
        for (auto& c : queue) fail_locked(c, nullptr, e);
        queue.clear();
        for (auto& [seq, o] : out) fail_locked(o.chunk, &o.done, e);
        chunks_out.fetch_sub(static_cast<long>(out.size()), std::memory_order_relaxed);
        out.clear();
        for (auto& r : ranks) r.out = r.out_futures = 0;
        if (!close_sent) {
            close_sent = true;
            const std::uint8_t how = !stop_reason ? mpi::kTerminateNow : stop_kill ? mpi::kKillWorkers : mpi::kStopWorkers;
            for (auto& r : ranks)
                if (!r.lost && !r.closed) post(r.rank, mpi::kTerminate, [&](OutputArchive& ar) { ar(id, how); });
        }
    }
    bool stop_kill = false;

    void check_ended_locked() {
        if (ended || !close_sent) return;
        if (std::all_of(ranks.begin(), ranks.end(), [](const Rank& r) { return r.lost || r.closed; })) {
            ended = true;
            ended_cv.notify_all();
        }
    }

    // --- the engine's thread ---

    void on_result(std::size_t rank_index, std::uint64_t seq, std::uint32_t first, std::uint32_t n,
                   InputArchive& ar) {
        std::shared_ptr<JobBase> job;
        std::size_t base = 0;
        {
            std::unique_lock lk(mu);
            const auto it = out.find(seq);
            if (it == out.end() || it->second.rank != rank_index) return;  // failed meanwhile
            Out& o = it->second;
            if (std::size_t{first} + n > o.chunk.count)
                throw SerializationError("results for items the chunk does not have");
            for (std::uint32_t i = first; i < first + n; ++i) {
                if (o.done[i]) throw SerializationError("results sent twice for one item");
                o.done[i] = 1;
            }
            o.left -= n;
            job = o.chunk.job;
            base = o.chunk.first;
            if (o.left == 0) finish_chunk_locked(it);
        }
        Deferred later;
        try {
            job->deliver(base + first, n, ar, later);
        } catch (...) {
            // Not results a rank of ours writes: the items fail with what was wrong.
            const std::exception_ptr e = std::make_exception_ptr(SerializationError(
                "mproc: " + engine.describe(ranks[rank_index].rank) + " sent results that do not decode: " +
                describe_exception(std::current_exception())));
            for (std::uint32_t i = 0; i < n; ++i) job->set_error(base + first + i, e, later);
        }
        for (auto& f : later) f();
        std::unique_lock lk(mu);
        progress(lk);
    }

    void on_item_failed(std::size_t rank_index, std::uint64_t seq, std::uint32_t index, std::exception_ptr e) {
        std::unique_lock lk(mu);
        const auto it = out.find(seq);
        if (it == out.end() || it->second.rank != rank_index) return;
        Out& o = it->second;
        if (index >= o.chunk.count || o.done[index]) throw SerializationError("a failure for an item it does not hold");
        o.done[index] = 1;
        --o.left;
        o.chunk.job->set_error(o.chunk.first + index, std::move(e), deferred);
        if (o.left == 0) finish_chunk_locked(it);
        progress(lk);
    }

    void finish_chunk_locked(std::map<std::uint64_t, Out>::iterator it) {
        chunks_out.fetch_sub(1, std::memory_order_relaxed);
        --ranks[it->second.rank].out;
        ranks[it->second.rank].out_futures -= it->second.future;
        out.erase(it);
    }

    void on_closed(std::size_t rank_index) {
        std::unique_lock lk(mu);
        ranks[rank_index].closed = true;
        progress(lk);
    }

    // A rank taken for dead (or one that sent what no rank of ours writes): what it held
    // fails, and the pool goes on without it.
    void on_lost(std::size_t rank_index, const std::string& why) {
        std::unique_lock lk(mu);
        Rank& r = ranks[rank_index];
        if (r.lost) return;
        r.lost = true;
        const auto e = std::make_exception_ptr(WorkerLostError("mproc: " + why));
        for (auto it = out.begin(); it != out.end();) {
            if (it->second.rank != rank_index) {
                ++it;
                continue;
            }
            fail_locked(it->second.chunk, &it->second.done, e);
            chunks_out.fetch_sub(1, std::memory_order_relaxed);
            it = out.erase(it);
        }
        r.out = r.out_futures = 0;
        if (std::all_of(ranks.begin(), ranks.end(), [](const Rank& x) { return x.lost; }) && !broken) {
            broken = std::make_exception_ptr(futures::BrokenProcessPool(
                "mproc: every worker rank of the MPI pool was lost (the last: " + why + ")"));
            for (auto& c : queue) fail_locked(c, nullptr, broken);
            queue.clear();
        }
        progress(lk);
    }

    std::size_t index_of(int rank) const {
        for (std::size_t i = 0; i < ranks.size(); ++i)
            if (ranks[i].rank == rank) return i;
        return ranks.size();
    }
};

namespace {

// The pools alive in this process, by id: what the ranks send names its pool.
struct Registry {
    std::mutex mu;
    std::uint64_t next_id = 1;
    std::map<std::uint64_t, std::weak_ptr<MpiCore::Impl>> cores;

    std::vector<std::shared_ptr<MpiCore::Impl>> all() {
        std::lock_guard lk(mu);
        std::vector<std::shared_ptr<MpiCore::Impl>> v;
        for (auto& [id, w] : cores)
            if (auto p = w.lock()) v.push_back(std::move(p));
        return v;
    }
    bool made(std::uint64_t id) {
        std::lock_guard lk(mu);
        return id > 0 && id < next_id;
    }
    std::shared_ptr<MpiCore::Impl> find(std::uint64_t id) {
        std::lock_guard lk(mu);
        const auto it = cores.find(id);
        return it == cores.end() ? nullptr : it->second.lock();
    }
};
Registry& registry() {
    static auto* r = new Registry;  // never destroyed: the exit hook runs after static destructors
    return *r;
}

class Root final : public mpi::Role {
public:
    explicit Root(Engine& e) : engine_(e) {}

    void on_message(int source, std::string& msg, std::string& tail) override {
        try {
            if (msg.size() < 2) throw SerializationError("an empty message");
            const auto kind = static_cast<std::uint8_t>(msg[1]);
            if (kind == mpi::kAlive) return;
            InputArchive ar(std::string_view(msg).substr(2));
            std::uint64_t id = 0;
            ar(id);
            const auto core = registry().find(id);
            if (!core) {
                if (registry().made(id)) return;  // a pool that has ended
                throw SerializationError("a message for a pool that never was");
            }
            const std::size_t r = core->index_of(source);
            if (&core->engine != &engine_ || r == core->ranks.size())
                throw SerializationError("a message for a pool it is not part of");
            if (kind == mpi::kResult) {
                std::uint64_t seq = 0;
                std::uint32_t first = 0, n = 0;
                ar(seq, first, n);
                if (!tail.empty()) {
                    InputArchive results(tail);
                    core->on_result(r, seq, first, n, results);
                } else {
                    core->on_result(r, seq, first, n, ar);
                }
            } else if (kind == mpi::kItemFailed) {
                std::uint64_t seq = 0;
                std::uint32_t index = 0;
                ar(seq, index);
                core->on_item_failed(r, seq, index, load_exception(ar));
            } else if (kind == mpi::kClosed) {
                core->on_closed(r);
            } else {
                throw SerializationError("a message of unknown kind " + std::to_string(kind));
            }
        } catch (const std::exception& e) {
            // Not what a rank of ours writes: it cannot be trusted any more.
            const std::string why = engine_.describe(source) + " sent a malformed message (" + e.what() +
                                    "); it is no longer used";
            std::fprintf(stderr, "mproc: %s\n", why.c_str());
            engine_.forsake(source);
            lost(source, why);
        }
    }

    void on_lost(int source) override {
        const std::string why = engine_.describe(source) + " was lost: no word from it for " +
                                engine_.liveness_text() + " (its process killed, or its host gone)";
        std::fprintf(stderr, "mproc: %s\n", why.c_str());
        lost(source, why);
    }

    bool done() const override { return false; }
    bool expecting() const override { return chunks_out.load(std::memory_order_relaxed) > 0; }

private:
    void lost(int source, const std::string& why) {
        for (auto& core : registry().all()) {
            if (&core->engine != &engine_) continue;
            const std::size_t r = core->index_of(source);
            if (r < core->ranks.size()) core->on_lost(r, why);
        }
    }
    Engine& engine_;
};

// At exit: an executor's pool finishes its work, a Pool is terminated (as the process pools
// do), then the worker ranks are told to leave and MPI is finalized.
void stop_at_exit() noexcept {
    for (auto& core : registry().all()) {
        {
            std::lock_guard lk(core->mu);
            if (core->finish_at_exit) {
                if (core->state == Gate::State::Running) core->state = Gate::State::Closed;
            } else {
                core->state = Gate::State::Terminating;
            }
        }
        core->wake();
        std::unique_lock lk(core->mu);
        core->ended_cv.wait(lk, [&] { return core->ended; });
    }
    if (Engine* e = Engine::root()) e->stop();
}

void say_local_once(std::size_t processes) {
    static std::once_flag once;
    std::call_once(once, [&] {
        std::fprintf(stderr,
                     "mproc: %s: the MPI pool runs its tasks on %zu local processes\n",
                     Engine::launched_by_mpiexec() ? "no worker rank (mpiexec -n 1)" : "not started by mpiexec",
                     processes);
    });
}
}  // namespace

std::shared_ptr<mpi::Role> make_root_role(Engine& engine) {
    add_exit_hook(&stop_at_exit);
    install_exit_function();
    return std::make_shared<Root>(engine);
}

MpiCore::MpiCore(const MpiCoreOptions& options) {
    if (options.ranks && *options.ranks < 1)
        throw std::invalid_argument("mproc: an MPI pool needs at least one worker (max_workers = " +
                                    std::to_string(*options.ranks) + ")");
    if (options.tasks_per_rank == 0) throw std::invalid_argument("mproc: tasks_per_rank must be 1 or more");
    if (options.task_timeout && options.task_timeout->count() <= 0)
        throw std::invalid_argument("mproc: a task deadline must be positive");
    if (options.maxtasksperchild && *options.maxtasksperchild == 0)
        throw std::invalid_argument("mproc: maxtasksperchild must be 1 or more, or empty for no limit");
    if (options.initializer && options.initializer.target()->refusal())
        throw std::logic_error(options.initializer.target()->refusal());
    Engine* engine = options.engine ? options.engine : Engine::root();
    if (!engine || engine->size() < 2) {
        PoolOptions po;
        if (options.ranks) po.processes = static_cast<int>(*options.ranks * options.tasks_per_rank);
        po.initializer = options.initializer;
        po.maxtasksperchild = options.maxtasksperchild;
        po.task_timeout = options.task_timeout;
        po.max_result_bytes = options.max_result_bytes;
        // Inside MPI (mpiexec -n 1) no task process is forked from this process, as on a worker
        // rank: MPI's threads and state would be copied half-way (a child stuck at exit was seen).
        if (engine) po.start_method = "forkserver";
        local_ = std::make_unique<ProcessCore>(po);
        share_gate(*local_);
        say_local_once(processes_);
        return;
    }
    default_timeout_ = options.task_timeout;
    std::uint64_t id = 0;
    {
        Registry& reg = registry();
        std::lock_guard lk(reg.mu);
        id = reg.next_id++;
    }
    impl_ = std::make_shared<Impl>(*engine, id);
    gate_ = impl_;
    Impl& im = *impl_;
    im.capacity = options.tasks_per_rank + 1;
    im.window = std::max<std::size_t>(16, 4 * options.tasks_per_rank);
    const int want = options.ranks.value_or(engine->size() - 1);
    for (int r = 0; r < engine->size() && static_cast<int>(im.ranks.size()) < want; ++r)
        if (r != engine->root_rank() && !engine->peer(r).lost) im.ranks.push_back(Impl::Rank{r});
    if (im.ranks.empty()) throw futures::BrokenProcessPool("mproc: every worker rank of the MPI job was lost");
    processes_ = im.ranks.size() * options.tasks_per_rank;
    std::string init;
    if (options.initializer) {
        OutputArchive ar(init);
        save_function(ar, options.initializer.target()->entry());
        std::string args;
        OutputArchive aa(args);
        options.initializer.target()->save(aa);
        ar(args);
    }
    {
        Registry& reg = registry();
        std::lock_guard lk(reg.mu);
        reg.cores.emplace(id, impl_);
    }
    for (auto& r : im.ranks)
        im.post(r.rank, mpi::kOpen, [&](OutputArchive& ar) {
            ar(id, static_cast<std::uint32_t>(options.tasks_per_rank), static_cast<std::uint64_t>(options.max_result_bytes),
               static_cast<std::uint64_t>(options.maxtasksperchild.value_or(0)), init);
        });
}

MpiCore::~MpiCore() {
    if (local_) return;
    terminate();
    Registry& reg = registry();
    std::lock_guard lk(reg.mu);
    reg.cores.erase(impl_->id);
}

// A caller on a CPU other than its engine's looks for its result for kLookBeforeSleep,
// yielding its CPU between looks, before it sleeps on the call's condition variable. The
// engine's thread that completes the call would wake it across CPUs, onto a CPU that on a small
// machine another rank's engine holds, polling MPI: whole jobs ran their round trips at 55-60
// us where the caller sat beside the other rank's engine, 16-20 us beside its own (threads
// placed by hand, sched_setaffinity, four jobs each). Beside its own engine it sleeps: woken
// on its own CPU it costs less than a looker that halves the engine's polls (19-20 us).
namespace {
// The look ends when the call is complete (CallJob::ready), not when it is finished: a call's
// value callback runs after finished, and a caller that took `finished` for done came straight
// back here and spun for as long as the callback ran (Mpi.ACallerSleepsWhileALongCallbackRuns);
// a failed map is complete before it is finished.
bool look_for_result(const std::shared_ptr<void>& core, JobBase& job, const Timeout& timeout) {
    using Clock = std::chrono::steady_clock;
    if (static_cast<MpiCore::Impl*>(core.get())->engine.cpu() == platform::current_cpu()) return false;
    auto& call = static_cast<CallJob&>(job);  // pumps are called by CallJob::wait only
    Clock::duration window = kLookBeforeSleep;
    if (timeout) window = std::min(window, std::chrono::duration_cast<Clock::duration>(*timeout));
    const auto until = Clock::now() + window;
    while (!call.ready()) {
        if (Clock::now() >= until) return false;
        std::this_thread::yield();
    }
    return true;
}
}  // namespace

void MpiCore::adopt(JobBase& job) const {
    if (local_) return local_->adopt(job);
    job.set_pump(impl_, &look_for_result);
}

void MpiCore::submit(Chunk&& c, bool carries_fds, bool stream) {
    if (carries_fds) {
        // A descriptor means nothing on another host.
        const auto e = std::make_exception_ptr(std::invalid_argument(
            "mproc: a task for an MPI pool cannot carry a file descriptor (a Connection, a Queue, a lock): "
            "it would mean nothing on another host"));
        for (std::size_t i = 0; i < c.count; ++i) c.job->set_error(c.first + i, e);
        return;
    }
    std::exception_ptr refused;
    {
        std::unique_lock lk(impl_->mu);
        refused = impl_->admit_locked(stream);
        if (!refused) {
            impl_->queue.push_back(std::move(c));
            impl_->progress(lk);
            return;
        }
    }
    for (std::size_t i = 0; i < c.count; ++i) c.job->set_error(c.first + i, refused);
}

bool MpiCore::stop(const JobBase& job) {
    if (local_) return local_->stop(job);
    std::lock_guard lk(impl_->mu);
    bool any = false;
    for (auto& [seq, o] : impl_->out) {
        if (o.chunk.job.get() != &job) continue;
        const std::uint64_t s = seq;
        impl_->post(impl_->ranks[o.rank].rank, mpi::kStopTask, [&](OutputArchive& ar) { ar(impl_->id, s); });
        any = true;
    }
    return any;
}

bool MpiCore::unqueue(const JobBase& job) {
    if (local_) return local_->unqueue(job);
    std::lock_guard lk(impl_->mu);
    if (job.started()) return false;
    const auto before = impl_->queue.size();
    std::erase_if(impl_->queue, [&](const Chunk& c) { return c.job.get() == &job; });
    return impl_->queue.size() != before;
}

void MpiCore::stop_workers(bool kill) {
    if (local_) return local_->stop_workers(kill);
    cancel_pending();
    {
        std::unique_lock lk(impl_->mu);
        if (impl_->state != Gate::State::Terminating) {
            impl_->stop_kill = kill;
            impl_->stop_reason = std::make_exception_ptr(futures::BrokenProcessPool(
                std::string("mproc: the executor's workers were ") + (kill ? "killed" : "terminated") + " (" +
                (kill ? "kill_workers" : "terminate_workers") + "()) while this task ran"));
            impl_->state = Gate::State::Terminating;
        }
        impl_->progress(lk);
    }
    join();
}

void MpiCore::set_finish_at_exit() {
    if (local_) return local_->set_finish_at_exit();
    std::lock_guard lk(impl_->mu);
    impl_->finish_at_exit = true;
}

void MpiCore::cancel_pending() {
    if (local_) return local_->cancel_pending();
    std::vector<std::shared_ptr<JobBase>> jobs;
    {
        std::lock_guard lk(impl_->mu);
        for (auto& c : impl_->queue)
            if (!c.job->started()) jobs.push_back(c.job);
    }
    for (auto& j : jobs) j->cancel();
}

void MpiCore::terminate() {
    if (local_) return local_->terminate();
    {
        std::unique_lock lk(impl_->mu);
        impl_->state = Gate::State::Terminating;
        impl_->progress(lk);
    }
    join();
}

void MpiCore::join() {
    if (local_) return local_->join();
    impl_->check_joinable();
    std::unique_lock lk(impl_->mu);
    impl_->ended_cv.wait(lk, [&] { return impl_->ended; });
}

}  // namespace mproc::detail::pool

namespace mproc::detail::mpi {
std::shared_ptr<Role> make_root(Engine& engine) { return pool::make_root_role(engine); }
}  // namespace mproc::detail::mpi
