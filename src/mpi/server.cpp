// src/mpi/server.cpp: a worker rank's side (the server Role): the pools rank 0 opens, each a
// process pool of this rank's (ProcessCore, started by the forkserver method, so that no task
// process is a fork of a process inside MPI), fed the chunks rank 0 sends as they came, their
// results sent back as the task processes wrote them (RelayJob). A task that crashes or runs
// past its deadline is the process pool's business: its item fails, the rank goes on.

#include <cstdio>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "mpi/engine.hpp"
#include "mpi/wire.hpp"
#include "mproc/mpi.hpp"

namespace mproc::detail::mpi {

namespace {

using pool::Chunk;
using pool::Deferred;
using pool::ProcessCore;

// One chunk, relayed: each record of results the process pool reads goes to rank 0 as it is.
class RelayJob final : public pool::JobBase {
public:
    RelayJob(Engine& e, std::uint64_t core, std::uint64_t seq, std::uint32_t n)
        : engine_(e), core_(core), seq_(seq), left_(n) {}

    void deliver(std::size_t first, std::uint32_t count, InputArchive& ar, Deferred&) override {
        std::string msg = begin_message(kResult);
        OutputArchive out(msg);
        out(core_, seq_, static_cast<std::uint32_t>(first), count);
        const std::string_view results = ar.rest();
        std::string tail;
        reserve_bytes(tail, results.size());  // a long result's copy in huge pages
        tail.assign(results);
        engine_.post(engine_.root_rank(), std::move(msg), std::move(tail));
        ar.skip(results.size());
        account(count);
    }

    void set_error(std::size_t index, std::exception_ptr e, Deferred&) override {
        std::string msg = begin_message(kItemFailed);
        OutputArchive out(msg);
        out(core_, seq_, static_cast<std::uint32_t>(index));
        save_exception(out, name_the_rank(std::move(e)));
        engine_.post(engine_.root_rank(), std::move(msg));
        account(1);
    }

    using JobBase::set_error;
    bool cancel() override { return false; }  // only rank 0 cancels

private:
    // What ended a task here says where: a rank, a host and a pid mean something to rank 0.
    std::exception_ptr name_the_rank(std::exception_ptr e) const {
        const std::string where = "mproc: on MPI " + engine_.describe(engine_.rank()) + ": ";
        auto said = [](const char* what) {
            const std::string_view w(what);
            return std::string(w.starts_with("mproc: ") ? w.substr(7) : w);
        };
        try {
            std::rethrow_exception(e);
        } catch (const WorkerLostError& x) {
            return std::make_exception_ptr(WorkerLostError(where + said(x.what())));
        } catch (const TimeoutError& x) {
            return std::make_exception_ptr(TimeoutError(where + said(x.what())));
        } catch (...) {
            return e;
        }
    }
    void account(std::uint32_t n) noexcept {
        if (left_.fetch_sub(n) <= n) finished_.store(true, std::memory_order_release);
    }

    Engine& engine_;
    const std::uint64_t core_, seq_;
    std::atomic<std::uint32_t> left_;
};

// An initializer as rank 0 sent it: its entry function and its serialized arguments, passed
// on to the task processes as they are.
class RelayedTarget final : public Target {
public:
    RelayedTarget(EntryFn entry, std::string args) : entry_(entry), args_(std::move(args)) {}
    void call() override { throw std::logic_error("mproc: a relayed initializer runs only in a worker process"); }
    const char* refusal() const noexcept override { return nullptr; }
    EntryFn entry() const noexcept override { return entry_; }
    void save(OutputArchive& ar) const override { ar.saveBinary(args_.data(), args_.size()); }

private:
    EntryFn entry_;
    std::string args_;
};

class Server final : public Role {
public:
    explicit Server(Engine& e) : engine_(e) {}
    ~Server() override { end_all(); }

    void on_message(int source, std::string& msg, std::string& tail) override {
        if (source != engine_.root_rank() || msg.size() < 2) return;
        const auto kind = static_cast<std::uint8_t>(msg[1]);
        InputArchive ar(std::string_view(msg).substr(2));
        try {
            switch (kind) {
                case kAlive: return;
                case kRefused: return refused(ar);
                case kOpen: return open(ar);
                case kTask: return task(ar, msg, tail);
                case kStopTask: return stop_task(ar);
                case kClose: return close(ar, std::nullopt);
                case kTerminate: {
                    std::uint64_t id = 0;
                    std::uint8_t how = 0;
                    ar(id, how);
                    return close_pool(id, how);
                }
                case kExit:
                    end_all();
                    done_ = true;
                    return;
                default: throw SerializationError("unknown message kind " + std::to_string(kind));
            }
        } catch (const std::exception& e) {
            std::fprintf(stderr, "mproc: MPI %s: a malformed message from rank 0 (%s); ignored\n",
                         engine_.describe(engine_.rank()).c_str(), e.what());
        }
    }

    void on_lost(int) override {
        std::fprintf(stderr, "mproc: MPI %s: rank 0 is gone (no word from it for %s); this rank ends\n",
                     engine_.describe(engine_.rank()).c_str(), engine_.liveness_text().c_str());
        end_all();
        done_ = true;
        exit_code_ = 1;
    }

    bool done() const override { return done_.load(); }
    int exit_code() const override { return exit_code_.load(); }

    // The engine polls anyway: it reads the task processes' results itself while it is awake,
    // and the pools' own threads, which would each have to be woken for a result, leave them
    // to it. (4000 round trips per job, four jobs alternated: medians of 32.6-58.1 us before,
    // 15.5-21.1 us after; 90th percentiles 71-90 us before, 31-42 us after: the way back held
    // the tail.)
    bool poll() override {
        std::lock_guard lk(polled_mu_);
        bool any = false;
        for (auto& p : polled_) any = p->read_results() || any;
        return any;
    }
    // Asleep, the engine leaves the results to the pools' threads (set_polled(false) wakes the
    // one it had taken them from); awake again, it takes a pool's over with its next task (an
    // idle rank's engine sleeps and wakes a thousand times a second, and its pools' threads
    // should sleep through that).
    void resting(bool r) override {
        std::lock_guard lk(polled_mu_);
        awake_ = !r;
        if (r)
            for (auto& p : polled_) p->set_polled(false);
    }

private:
    struct Open {
        std::shared_ptr<ProcessCore> pool;
        std::exception_ptr error;  // it could not be made: its tasks fail with this
        std::map<std::uint64_t, std::weak_ptr<RelayJob>> jobs;
    };

    void refused(InputArchive& ar) {
        std::string why;
        ar(why);
        (void)why;  // rank 0 prints it
        done_ = true;
        exit_code_ = 1;
    }

    void open(InputArchive& ar) {
        std::uint64_t id = 0, cap = 0, maxtasks = 0;
        std::uint32_t processes = 1;
        std::string init;
        ar(id, processes, cap, maxtasks, init);
        Open& o = pools_[id];
        try {
            PoolOptions po;
            po.processes = static_cast<int>(processes);
            po.max_result_bytes = cap;
            if (maxtasks) po.maxtasksperchild = maxtasks;
            po.start_method = "forkserver";
            if (!init.empty()) {
                InputArchive ia(init);
                const auto entry = load_function<void(InputArchive&)>(ia);
                std::string args;
                ia(args);
                po.initializer = Initializer(std::make_shared<RelayedTarget>(entry, std::move(args)));
            }
            o.pool = std::make_shared<ProcessCore>(po);
            std::lock_guard lk(polled_mu_);
            polled_.push_back(o.pool);
        } catch (...) {
            o.error = std::current_exception();
        }
    }

    void task(InputArchive& ar, const std::string& msg, std::string& tail) {
        std::uint64_t id = 0, seq = 0;
        double timeout = -1;
        std::string prefix;
        std::uint32_t n = 0, fixed = 0;
        ar(id, seq, timeout, prefix, n, fixed);
        Chunk c;
        c.first = 0;
        c.count = n;
        c.prefix = std::make_shared<const std::string>(std::move(prefix));
        c.fixed = fixed;
        if (!fixed) {
            c.sizes.resize(n);
            ar.loadBinary(c.sizes.data(), std::size_t{n} * sizeof(std::uint32_t));
        }
        if (!tail.empty())
            c.items = std::move(tail);
        else
            c.items.assign(msg, msg.size() - ar.remaining(), ar.remaining());
        if (timeout >= 0) c.timeout = Timeout(timeout);
        auto job = std::make_shared<RelayJob>(engine_, id, seq, n);
        c.job = job;
        const auto it = pools_.find(id);
        std::exception_ptr error = it == pools_.end() ? std::make_exception_ptr(ProcessError(
                                                            "mproc: a task for a pool this rank does not have"))
                                                      : it->second.error;
        if (error) {
            for (std::uint32_t i = 0; i < n; ++i) job->set_error(i, error);
            return;
        }
        std::erase_if(it->second.jobs, [](const auto& p) { return p.second.expired(); });
        it->second.jobs.emplace(seq, job);
        {
            // One task out: its result is the round trip's way back, read here at once. More
            // (a map's window): the pool's thread reads them, beside this one, which has the
            // next tasks to receive (a map ran 20% slower with the engine reading them all).
            std::lock_guard lk(polled_mu_);
            it->second.pool->set_polled(awake_ && it->second.jobs.size() == 1);
        }
        it->second.pool->submit_chunk(std::move(c));
    }

    void stop_task(InputArchive& ar) {
        std::uint64_t id = 0, seq = 0;
        ar(id, seq);
        const auto it = pools_.find(id);
        if (it == pools_.end() || !it->second.pool) return;
        const auto j = it->second.jobs.find(seq);
        if (j == it->second.jobs.end()) return;
        if (auto job = j->second.lock()) it->second.pool->stop(*job);
    }

    void close(InputArchive& ar, std::optional<std::uint8_t> how) {
        std::uint64_t id = 0;
        ar(id);
        close_pool(id, how);
    }

    // Ends a pool in a thread of its own (joining it waits for its tasks), then tells rank 0.
    void close_pool(std::uint64_t id, std::optional<std::uint8_t> how) {
        const auto it = pools_.find(id);
        std::shared_ptr<ProcessCore> pool = it == pools_.end() ? nullptr : it->second.pool;
        if (it != pools_.end()) pools_.erase(it);
        unpoll(pool);
        closers_.emplace_back([this, pool, id, how] {
            if (pool) {
                if (!how) {
                    pool->close();
                    pool->join();
                } else if (*how == kTerminateNow) {
                    pool->terminate();
                } else {
                    pool->stop_workers(*how == kKillWorkers);
                }
            }
            std::string msg = begin_message(kClosed);
            OutputArchive ar(msg);
            ar(id);
            engine_.post(engine_.root_rank(), std::move(msg));
        });
    }

    // No longer polled: its own thread reads its results (a closing pool's join waits for them).
    void unpoll(const std::shared_ptr<ProcessCore>& pool) {
        if (!pool) return;
        std::lock_guard lk(polled_mu_);
        std::erase(polled_, pool);
        pool->set_polled(false);
    }

    void end_all() {
        for (auto& [id, o] : pools_) unpoll(o.pool);
        for (auto& [id, o] : pools_)
            if (o.pool) o.pool->terminate();
        pools_.clear();
        for (auto& t : closers_)
            if (t.joinable()) t.join();
        closers_.clear();
    }

    Engine& engine_;
    std::map<std::uint64_t, Open> pools_;
    // The pools poll() reads: pools_ is changed by on_message, which may run on the engine's
    // helper thread while poll() runs on the engine's.
    std::mutex polled_mu_;
    std::vector<std::shared_ptr<ProcessCore>> polled_;
    bool awake_ = true;  // under polled_mu_
    std::vector<std::thread> closers_;
    std::atomic<bool> done_{false};  // read by the engine's thread
    std::atomic<int> exit_code_{0};
};

}  // namespace

std::shared_ptr<Role> make_server(Engine& engine) { return std::make_shared<Server>(engine); }

}  // namespace mproc::detail::mpi
