// src/pool/process_core_impl.hpp: ProcessCore's state, and the parts that act on it (private).
//
// One mutex (Gate::mu) guards it all. The parts, each in a file of its own:
//   task_queue.cpp     which tasks wait, and in what batches they go to which worker
//   workers.cpp        which workers live and what each holds: starting, stopping, deaths,
//                      deadlines, and failing what a broken pool held
//   process_loop.cpp   the loop that moves messages: the dispatcher thread's, and the round a
//                      thread waiting for a result runs itself
//   process_core.cpp   ProcessCore's public members, over the above
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <deque>
#include <mutex>
#include <thread>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "mproc/connection.hpp"
#include "mproc/detail/process_core.hpp"
#include "mproc/detail/shared_region.hpp"
#include "mproc/pool.hpp"
#include "platform/platform.hpp"
#include "pool/channel.hpp"
#include "pool/gate.hpp"
#include "pool/pool_internal.hpp"
#include "pool/task_queue.hpp"
#include "exit_hooks.hpp"
#include "forkserver.hpp"

namespace mproc::detail::pool {

// A worker process, and what it holds.
struct PoolWorker {
    enum class Kill { None, Deadline, Pool, Cancel };  // why the pool killed it, if it did
    Process proc;
    Channel chan;  // its line to the pool
    std::uint64_t id = 0;  // stays unique when a replacement reuses the slot
    std::uint32_t slot = 0;
    std::deque<InFlight> inflight;  // sent, in the order the worker runs them
    std::size_t batches_out = 0;    // messages sent whose results have not come back
    bool big_out = false;           // one of them is large
    std::size_t chunks = 0;  // tasks sent to it (maxtasksperchild counts them)
    bool hello = false;
    bool stopping = false;
    bool dead = false;
    Kill killed = Kill::None;
    double killed_after = 0;

    bool usable() const noexcept { return !stopping && !dead && killed == Kill::None; }
};

struct ProcessCore::Impl : Gate {
    using Worker = PoolWorker;
    using Kill = PoolWorker::Kill;

    PoolOptions opts;
    std::string method;
    std::shared_ptr<ForkServer> server;
    RegionRef slots;  // a Slot per worker position (detail/pool_wire.hpp)

    platform::UniqueFd wake_fd;
    std::thread thread;
    std::once_flag joined;
    bool stopped = false;  // the dispatcher has shut the workers down
    bool finish_at_exit = false;  // an executor's: its work finishes at exit (under mu)
    // stop_workers(): how the workers are ended, and what the calls they ran fail with
    // (under mu; terminate() kills and fails them with terminated_error()).
    bool stop_signal_term = false;
    std::exception_ptr stop_reason;
    std::size_t helpers = 0;  // threads in round() for a result they wait for (under mu)
    std::atomic<bool> polled{false};  // set_polled(): another thread reads the results
    std::vector<int> helper_fds;  // their wake-up eventfds (under mu)

    // Everything below is guarded by mu.
    Deferred deferred;  // job updates to finish once mu is released
    std::uint64_t next_worker_id = 1;
    std::vector<std::unique_ptr<Worker>> workers;
    TaskQueue tasks;

    void wake() noexcept override { platform::event_notify(wake_fd.get()); }

    // --- which tasks go where (task_queue.cpp) ---

    // Sends queued chunks, in batches, to the workers that can take them.
    void dispatch();

    // --- workers: life, deaths, deadlines (workers.cpp) ---

    Slot& slot_of(const Worker& w) const { return static_cast<Slot*>(slots.data())[w.slot]; }
    std::unique_ptr<Worker> start_worker(std::uint32_t slot);
    // Asks w to finish what it holds and exit (kStop).
    void stop_worker(Worker& w);
    // Items [from, to) of c as a chunk of their own (the rest of a dead worker's chunk).
    static Chunk slice(const Chunk& c, std::size_t from, std::size_t to);
    // c's first n items as a chunk of their own; c keeps the rest (a unit chunk split to fill
    // a batch).
    static Chunk take_front(Chunk& c, std::size_t n);
    // Which of w's chunks the worker is running, and which item of it; empty when it is not
    // running any of them (between batches).
    std::optional<std::pair<std::size_t, std::size_t>> running(const Worker& w) const;
    // workers[index] died: the item it ran fails, the rest of what it held runs again, and a
    // replacement starts (unless the pool is broken or terminating).
    void on_death(std::size_t index);
    // Kills workers whose running item is past its deadline; returns when to look again.
    platform::Deadline enforce_deadlines();
    Worker* find(std::uint64_t id);
    void fail_later(const Chunk& c, const std::exception_ptr& e);
    // Fails everything queued and held with e, and stops the workers: nothing more runs.
    void make_broken(std::exception_ptr e);
    void fail_queued();

    // --- the loop that moves messages (process_loop.cpp) ---

    // Every message waiting on w's channel.
    void read_messages(Worker& w);
    void handle_message(Worker& w, const std::string& msg, std::vector<int>& fds);

    // Runs the deferred job updates without the lock (they may run callbacks that submit).
    void flush(std::unique_lock<std::mutex>& lk);

    // One round, with mu held on entry and exit: send what can go, wait (without the lock)
    // for a worker's message or death, the deadline, or `extra` (the dispatcher's wake-up, or
    // a waiting thread's job), and handle what came.
    //
    // While a thread waiting for a result runs rounds (a helper), the dispatcher leaves the
    // workers' connections to it and wakes only for deaths, its wake-up, and every kBlindCheck
    // to look again: else both would wake for every result and fight over the mutex, which
    // costs more than the hand-off the helper saves. A result nobody waits for is therefore
    // read at most kBlindCheck after the last helper left. The same while the pool is polled
    // (set_polled), whose end wakes the dispatcher.
    static constexpr double kBlindCheck = 0.002;  // s
    // job: the result a waiting thread waits for (it looks at the rings and at it a while
    // before it sleeps, when answer_soon() says so); null for the dispatcher.
    void round(std::unique_lock<std::mutex>& lk, int extra, platform::Deadline until, const JobBase* job = nullptr);
    // Whether a worker should answer within a look (kLookBeforeSleep): the first batch one of
    // them holds is that short, by the pool's measure of an item's time. A thread waiting for a
    // map whose batches take 200 us sleeps at once: looking, it would only take a CPU from the
    // workers (2 CPUs, 2 workers: chunksize-1 maps ran at 0.7-1.0M tasks/s looking, 1.3-2.8M not).
    bool answer_soon() const;
    static const platform::Deadline& earlier(const platform::Deadline& a, const platform::Deadline& b);

    // A thread waiting for job: one round for it. False once the pool has stopped.
    bool help(JobBase& job, const Timeout& timeout);
    static bool pump(const std::shared_ptr<void>& core, JobBase& job, const Timeout& timeout);

    // The dispatcher thread.
    void run();
    void shutdown(std::unique_lock<std::mutex>& lk, bool now);
};

}  // namespace mproc::detail::pool
