// src/pool/thread_core.cpp: the thread pool's core: threads of this process that run chunks
// of pool calls and an executor's tasks.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <deque>
#include <mutex>
#include <thread>
#include <condition_variable>

#include "mproc/pool.hpp"
#include "platform/platform.hpp"
#include "pool/gate.hpp"
#include "pool/pool_internal.hpp"
#include "threading_internal.hpp"

namespace mproc::detail::pool {

namespace {
// A pool call's chunk in a thread pool's queue.
class ChunkTask final : public TaskNode {
public:
    ChunkTask(std::function<void()> run, std::shared_ptr<JobBase> job, std::size_t first, std::size_t count)
        : run_(std::move(run)), job_(std::move(job)), first_(first), count_(count) {}
    void run() noexcept override { run_(); }
    void cancel_pending() noexcept override {
        if (!job_->started()) job_->cancel();
    }
    void fail(const std::exception_ptr& e) noexcept override { fail_items(job_, first_, count_, e); }

private:
    std::function<void()> run_;
    std::shared_ptr<JobBase> job_;
    std::size_t first_, count_;
};
}  // namespace

namespace {
// The busy count of the on-demand pool whose task this thread is running (task_finishing).
thread_local std::atomic<std::size_t>* t_busy = nullptr;
}  // namespace

void task_finishing() noexcept {
    if (t_busy) std::exchange(t_busy, nullptr)->fetch_sub(1, std::memory_order_release);
}

struct ThreadCore::Impl : Gate {
    using Queue = std::deque<std::shared_ptr<TaskNode>>;
    PoolOptions opts;
    std::condition_variable cv;   // with mu
    Queue tasks;                  // guarded by mu
    std::deque<std::thread> threads;
    std::size_t idle = 0;  // threads asleep on cv (under mu)
    std::mutex join_mu;
    // Wake-ups sent and not yet taken up (under mu). A sleeper takes a few microseconds to
    // run after notify_one, during which a submitter may queue many tasks: one wake-up per
    // sleeper is enough, and each more was a wasted system call (and a second thread woken
    // for a task the first would take). Measured with 2 threads, submit then result of 500k
    // trivial tasks: 2.4M/s before, 5.6-5.8M/s after. (Threads that spin or yield a while
    // before sleeping were tried too, and were slower: on 2 CPUs they take the submitter's.)
    std::size_t wakes_pending = 0;

    // Under mu: whether a submitter (or a worker leaving work behind) should wake a sleeper.
    bool claim_wake() {
        if (idle <= wakes_pending || tasks.empty()) return false;
        ++wakes_pending;
        return true;
    }

    void wake() noexcept override { cv.notify_all(); }

    std::size_t started = 0;
    // Start::OnDemand: threads are started as submissions need them, up to max_threads.
    bool on_demand = false;
    std::size_t max_threads = 0;
    std::size_t live = 0;  // threads started whose work() has not returned (under mu)
    // Threads holding a task: taken from the queue, outcome not yet published (task_finishing).
    std::atomic<std::size_t> busy{0};

    void start_thread() {
        const std::string name = (opts.thread_name_prefix.empty() ? std::string("ThreadPool") : opts.thread_name_prefix) +
                                  "_" + std::to_string(started++);
        threads.emplace_back([this, name] {
            platform::set_thread_name(name);
            threading::detail::adopt_current_thread(name);
            work();
            std::lock_guard lk(mu);
            --live;
        });
        ++live;  // under mu, which the thread takes before it counts itself out
    }

    // Under mu, after a task was queued: Python's _adjust_thread_count. Every free thread (asleep,
    // or about to look at the queue) takes one queued task; a task none will take gets a new
    // thread. A thread that frees up meanwhile only makes one more than needed, never one less.
    // A thread that cannot start when none runs: the task is taken back and the error thrown.
    void start_on_demand() {
        if (!on_demand || live >= max_threads || state == State::Terminating || broken) return;
        if (tasks.size() + busy.load(std::memory_order_acquire) <= live) return;
        try {
            start_thread();
        } catch (...) {
            if (live > 0) return;  // the threads there are will run it, later
            tasks.pop_back();      // nothing would: the submitter hears why, and keeps its task
            throw;
        }
    }

    // Under mu: this thread took a task (counted busy until task_finishing).
    void hold_task() {
        busy.fetch_add(1, std::memory_order_relaxed);
        t_busy = &busy;
    }

    // Fails what is queued; the caller has released mu (failing runs completions and callbacks).
    static void fail_all(Queue&& q, const std::exception_ptr& e) {
        for (auto& t : q) t->fail(e);
    }

    void work() {
        if (opts.initializer) {
            try {
                opts.initializer.run_here();
            } catch (...) {
                Queue dropped;
                std::exception_ptr why;
                {
                    std::lock_guard lk(mu);
                    if (!broken)
                        broken = std::make_exception_ptr(futures::BrokenThreadPool(
                            "mproc: the pool's initializer failed in a worker thread: " +
                            describe_exception(std::current_exception())));
                    dropped.swap(tasks);
                    why = broken;
                }
                cv.notify_all();
                fail_all(std::move(dropped), why);
                return;
            }
        }
        std::size_t done = 0;
        for (;;) {
            std::shared_ptr<TaskNode> t;
            bool more = false;
            {
                std::unique_lock lk(mu);
                auto ready = [&] {
                    return !tasks.empty() || state == State::Terminating || broken ||
                           (state == State::Closed && streams == 0);
                };
                if (!ready()) {
                    // Each wake-up takes back the one it may have been: one that finds the work
                    // gone (a busy thread took it) sleeps again, and a count left standing made
                    // claim_wake() believe a wake-up under way, so later work woke nobody (a
                    // sleeper stayed asleep with tasks queued).
                    ++idle;
                    do {
                        cv.wait(lk);
                        if (wakes_pending > 0) --wakes_pending;
                    } while (!ready());
                    --idle;
                }
                if (tasks.empty() || state == State::Terminating || broken) return;
                t = std::move(tasks.front());
                tasks.pop_front();
                if (on_demand) hold_task();
                // More work than this thread: pass the wake-up on, so a burst that arrived
                // while one wake-up was under way does not run on one thread.
                more = claim_wake();
            }
            if (more) cv.notify_one();
            t->run();
            task_finishing();  // when run() did not
            t.reset();  // before the next wait: its result and arguments go now
            if (opts.maxtasksperchild && ++done >= *opts.maxtasksperchild) {
                std::lock_guard lk(mu);
                if (state != State::Terminating) start_thread();  // this one retires
                return;
            }
        }
    }
};

ThreadCore::ThreadCore(const PoolOptions& options, Start start) : impl_(std::make_shared<Impl>()) {
    gate_ = impl_;
    const int p = options.processes.value_or(process_cpu_count());
    if (p < 1) throw std::invalid_argument("mproc: a pool needs at least one thread (processes = " + std::to_string(p) + ")");
    if (options.task_timeout)
        throw std::invalid_argument("mproc: a thread cannot be stopped from outside, so a ThreadPool task cannot have a deadline");
    processes_ = static_cast<std::size_t>(p);
    impl_->opts = options;
    impl_->max_threads = processes_;
    impl_->on_demand = start == Start::OnDemand;
    if (impl_->on_demand) return;
    std::lock_guard lk(impl_->mu);
    for (int i = 0; i < p; ++i) impl_->start_thread();
}

ThreadCore::~ThreadCore() { terminate(); }

void ThreadCore::submit(std::function<void()> task, std::shared_ptr<JobBase> job, std::size_t first,
                        std::size_t count, bool stream) {
    std::exception_ptr refused;
    bool wake = false;
    {
        std::lock_guard lk(impl_->mu);
        refused = impl_->admit_locked(stream);
        if (!refused) {
            impl_->tasks.push_back(std::make_shared<ChunkTask>(std::move(task), job, first, count));
            impl_->start_on_demand();
        }
        // Busy threads take the next task without a wake-up (a system call each).
        wake = impl_->claim_wake();
    }
    if (refused) return fail_items(job, first, count, refused);
    if (wake) impl_->cv.notify_one();
}

void ThreadCore::submit_task(std::shared_ptr<TaskNode> task) {
    std::exception_ptr refused;
    bool wake = false;
    {
        std::lock_guard lk(impl_->mu);
        refused = impl_->admit_locked(false);
        if (!refused) {
            impl_->tasks.push_back(task);
            impl_->start_on_demand();
        }
        wake = impl_->claim_wake();
    }
    if (refused) return task->fail(refused);
    if (wake) impl_->cv.notify_one();
}

void ThreadCore::cancel_pending() {
    Impl::Queue queued;
    {
        std::lock_guard lk(impl_->mu);
        queued = impl_->tasks;
    }
    for (auto& t : queued) t->cancel_pending();
}

void ThreadCore::terminate() {
    Impl::Queue dropped;
    {
        std::lock_guard lk(impl_->mu);
        impl_->state = Impl::State::Terminating;
        dropped.swap(impl_->tasks);
    }
    impl_->cv.notify_all();
    Impl::fail_all(std::move(dropped), Gate::terminated_error());
    join();
}

void ThreadCore::join() {
    impl_->check_joinable();
    std::lock_guard jl(impl_->join_mu);
    for (;;) {
        std::thread t;
        {
            std::lock_guard lk(impl_->mu);
            if (impl_->threads.empty()) return;
            t = std::move(impl_->threads.front());
            impl_->threads.pop_front();
        }
        if (t.get_id() == std::this_thread::get_id()) {
            t.detach();  // join() from one of its own tasks: it ends when the task returns
            continue;
        }
        t.join();
    }
}

}  // namespace mproc::detail::pool
