// src/pool/thread_core.cpp: the thread pool's core: threads of this process that run chunks
// of pool calls and an executor's tasks.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <memory>
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

// The waiting tasks' ring (Vyukov's bounded queue for many producers and consumers): a
// task is taken with one compare-and-swap, with no lock. A slot's sequence number says whose
// turn it is (the producer of position p waits for p, its consumer for p + 1), so a slot's
// task is touched by one thread at a time, and a full or empty ring is seen at once.
class TaskRing {
public:
    static constexpr std::uint64_t kSlots = 1024;  // a power of two (64 KiB)

    TaskRing() : slots_(new Slot[kSlots]) {
        for (std::uint64_t i = 0; i < kSlots; ++i) slots_[i].seq.store(i, std::memory_order_relaxed);
    }
    // False when full (the task stays with the caller).
    bool push(std::shared_ptr<TaskNode>& task) noexcept {
        std::uint64_t pos = tail_.load(std::memory_order_relaxed);
        for (;;) {
            Slot& s = slots_[pos & (kSlots - 1)];
            const auto d = static_cast<std::int64_t>(s.seq.load(std::memory_order_acquire) - pos);
            if (d == 0) {
                if (tail_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
                    s.task = std::move(task);
                    s.seq.store(pos + 1, std::memory_order_release);
                    return true;
                }
            } else if (d < 0) {
                return false;
            } else {
                pos = tail_.load(std::memory_order_relaxed);
            }
        }
    }
    // False when empty (or its next task not yet published).
    bool pop(std::shared_ptr<TaskNode>& task) noexcept {
        std::uint64_t pos = head_.load(std::memory_order_relaxed);
        for (;;) {
            Slot& s = slots_[pos & (kSlots - 1)];
            const auto d = static_cast<std::int64_t>(s.seq.load(std::memory_order_acquire) - (pos + 1));
            if (d == 0) {
                if (head_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
                    task = std::move(s.task);
                    s.seq.store(pos + kSlots, std::memory_order_release);
                    return true;
                }
            } else if (d < 0) {
                return false;
            } else {
                pos = head_.load(std::memory_order_relaxed);
            }
        }
    }
    // Whether the next task is there to take: a look at its slot, which the producer writes
    // anyway, not at the producers' position (a looker spinning on that took it from the
    // producer's cache at every push: a third of submit's time).
    bool ready() const noexcept {
        const std::uint64_t pos = head_.load(std::memory_order_relaxed);
        return slots_[pos & (kSlots - 1)].seq.load(std::memory_order_acquire) == pos + 1;
    }
    // Tasks claimed and not yet taken (a moment's count).
    std::uint64_t size() const noexcept {
        const std::uint64_t h = head_.load(std::memory_order_seq_cst);
        const std::uint64_t t = tail_.load(std::memory_order_seq_cst);
        return t > h ? t - h : 0;
    }

private:
    // A line each: a producer filling one slot while a consumer empties the one beside it
    // would otherwise pass the line back and forth.
    struct alignas(64) Slot {
        std::atomic<std::uint64_t> seq;
        std::shared_ptr<TaskNode> task;
    };
    std::unique_ptr<Slot[]> slots_;
    alignas(64) std::atomic<std::uint64_t> tail_{0};  // producers'
    alignas(64) std::atomic<std::uint64_t> head_{0};  // consumers'
};

struct ThreadCore::Impl : Gate {
    using Queue = std::deque<std::shared_ptr<TaskNode>>;
    PoolOptions opts;
    std::condition_variable cv;   // with mu
    // The waiting tasks. Queued under mu (the submitter holds it for the pool's state anyway);
    // taken by the threads without it, so that a submitter and the threads do not meet on a
    // lock at every task. (Measured, 2 threads, submit then result of 500k trivial tasks: with
    // one mutex for queue and state, the submitter was the bottleneck at 0.7-2.4M/s, its mutex
    // contended by both threads; queued alone with the threads held busy it ran at 2.8-4.7M/s.)
    // Past the ring's slots, tasks wait in `overflow` (under mu), and while any does, new ones
    // queue behind them there: first in, first out either way.
    TaskRing ring;
    Queue overflow;                        // under mu
    std::atomic<std::size_t> overflow_n{0};  // overflow.size(), for a look without mu
    std::deque<std::thread> threads;
    std::size_t idle = 0;  // threads asleep on cv (under mu)
    std::atomic<std::size_t> idle_n{0};  // idle, for a look without mu
    std::mutex join_mu;
    // Wake-ups sent and not yet taken up (under mu). A sleeper takes a few microseconds to
    // run after notify_one, during which a submitter may queue many tasks: one wake-up per
    // sleeper is enough, and each more was a wasted system call (and a second thread woken
    // for a task the first would take). Measured with 2 threads, submit then result of 500k
    // trivial tasks: 2.4M/s before, 5.6-5.8M/s after.
    std::size_t wakes_pending = 0;
    std::atomic<std::size_t> wakes_n{0};  // wakes_pending, for a look without mu
    // A thread that runs out of work looks for more for kLook before it sleeps, spinning on the
    // ring without a lock; one thread at a time, so that with few CPUs the looker takes no CPU
    // but its own from the submitter, and the others sleep. While one looks, a submitter
    // wakes nobody: the looker takes the task. (All threads spinning before sleep was tried
    // before, and was slower: on 2 CPUs they took the submitter's.)
    alignas(64) std::atomic<bool> looking{false};  // a line of its own: see busy
    char looking_line_end_[64 - sizeof(std::atomic<bool>)] = {};
    // Past kSpinAlone the looker yields every 32 looks: the submitter may share its CPU (three
    // threads on two CPUs), and a looker spinning there for 50 us held up the very submission it
    // waited for. (ThreadPoolExecutor submit-then-result, six alternated runs of mproc-bench
    // --quick futures: 0.67-1.20x oneTBB spinning, 1.07-1.43x yielding.)
    static constexpr auto kLook = std::chrono::microseconds(50);
    static constexpr auto kSpinAlone = std::chrono::microseconds(5);
    bool may_look = true;  // not with one CPU: there the looker only delays the submitter
    // Terminating or broken (set under mu): threads take no more tasks.
    std::atomic<bool> stopping{false};

    bool queue_empty() const noexcept { return ring.size() == 0 && overflow_n.load(std::memory_order_seq_cst) == 0; }
    // Without mu, for a thread at every task: whether a task waits, by the next slot, not the
    // ring's size (that would read the producers' position, taking it from the submitter's
    // cache at every task).
    bool work_in_sight() const noexcept { return ring.ready() || overflow_n.load(std::memory_order_relaxed) != 0; }
    std::size_t queue_size() const noexcept { return static_cast<std::size_t>(ring.size()) + overflow_n.load(); }

    // Under mu: queues a task.
    void push_locked(std::shared_ptr<TaskNode> task) {
        if (overflow.empty() && ring.push(task)) return;
        overflow.push_back(std::move(task));
        overflow_n.store(overflow.size());
    }
    // Under mu: the oldest task, from the ring, else from the overflow.
    bool pop_locked(std::shared_ptr<TaskNode>& t) {
        if (ring.pop(t)) return true;
        if (overflow.empty()) return false;
        t = std::move(overflow.front());
        overflow.pop_front();
        overflow_n.store(overflow.size());
        return true;
    }
    // Without mu: the oldest task; mu is taken only when the ring is empty and the overflow not.
    bool take(std::shared_ptr<TaskNode>& t) {
        if (ring.pop(t)) return true;
        if (overflow_n.load() == 0) return false;
        std::lock_guard lk(mu);
        return pop_locked(t);
    }
    // Under mu: every waiting task, oldest first, out of the queue.
    Queue drain_locked() {
        Queue all;
        for (std::shared_ptr<TaskNode> t; ring.pop(t);) all.push_back(std::move(t));
        for (auto& t : overflow) all.push_back(std::move(t));
        overflow.clear();
        overflow_n.store(0);
        return all;
    }

    // Under mu: whether a submitter (or a thread leaving work behind) should wake a sleeper.
    // Not while a thread looks: it takes the work (the fence pairs with the looker's, after it
    // stops looking: either this sees it stopped, or it sees the work).
    bool claim_wake() {
        if (idle <= wakes_pending) return false;  // no sleeper to wake: the common case, first
        std::atomic_thread_fence(std::memory_order_seq_cst);
        if (looking.load(std::memory_order_relaxed) || queue_empty()) return false;
        ++wakes_pending;
        wakes_n.store(wakes_pending, std::memory_order_relaxed);
        return true;
    }
    // A thread that took a task, without mu: more waiting and a sleeper with no wake-up under
    // way: wake one, so that a burst does not run on one thread (and a task that waits for
    // another queued after it finds a thread for that one).
    void pass_wake_on() {
        if (idle_n.load(std::memory_order_relaxed) <= wakes_n.load(std::memory_order_relaxed)) return;
        std::atomic_thread_fence(std::memory_order_seq_cst);
        if (!work_in_sight()) return;
        bool wake;
        {
            std::lock_guard lk(mu);
            wake = claim_wake();
        }
        if (wake) cv.notify_one();
    }

    // Without mu: becomes the looker (none other is) and looks for up to kLook; the task, if
    // one came. A looker that found nothing sleeps next (sleep_for_task), under mu.
    bool look_for_work(std::shared_ptr<TaskNode>& t) {
        bool expected = false;
        if (!may_look || !looking.compare_exchange_strong(expected, true)) return false;
        const auto until = std::chrono::steady_clock::now() + kLook;
        const auto alone_until = std::chrono::steady_clock::now() + kSpinAlone;
        for (unsigned i = 1; !work_in_sight() && !stopping.load(std::memory_order_relaxed); ++i) {
            if (i % 32 == 0) {
                const auto now = std::chrono::steady_clock::now();
                if (now > until) break;
                if (now > alone_until) std::this_thread::yield();
            }
            platform::cpu_relax();
        }
        looking.store(false, std::memory_order_relaxed);
        std::atomic_thread_fence(std::memory_order_seq_cst);  // pairs with claim_wake's
        return !stopping.load(std::memory_order_acquire) && take(t);
    }

    // Under mu: sleeps until a task comes (true, in t) or the thread should end (false).
    bool sleep_for_task(std::unique_lock<std::mutex>& lk, std::shared_ptr<TaskNode>& t) {
        for (;;) {
            if (state == State::Terminating || broken) return false;
            if (pop_locked(t)) return true;
            if (state == State::Closed && streams == 0) return false;
            // Each wake-up takes back the one it may have been: one that finds the work gone
            // (a busy thread took it) sleeps again, and a count left standing made claim_wake()
            // believe a wake-up under way, so later work woke nobody (a sleeper stayed asleep
            // with tasks queued).
            idle_n.store(++idle);
            cv.wait(lk);
            idle_n.store(--idle);
            if (wakes_pending > 0) wakes_n.store(--wakes_pending, std::memory_order_relaxed);
        }
    }

    void wake() noexcept override { cv.notify_all(); }

    std::size_t started = 0;
    // Start::OnDemand: threads are started as submissions need them, up to max_threads.
    bool on_demand = false;
    std::size_t max_threads = 0;
    std::size_t live = 0;  // threads started whose work() has not returned (under mu)
    // Threads holding a task: taken from the queue, outcome not yet published (task_finishing).
    // On a line of its own: the threads write it at every task, and the submitter's fields
    // beside it (on_demand, live) had a cache miss at every submit (perf: 6% of its time).
    alignas(64) std::atomic<std::size_t> busy{0};
    char busy_line_end_[64 - sizeof(std::atomic<std::size_t>)] = {};

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
    // looking, or about to look at the queue) takes one queued task; a task none will take gets
    // a new thread. A thread that frees up meanwhile only makes one more than needed, never one
    // less. A thread that cannot start when none runs: the task is taken back and the error
    // thrown.
    void start_on_demand() {
        if (!on_demand || live >= max_threads || state == State::Terminating || broken) return;
        if (queue_size() + busy.load(std::memory_order_acquire) <= live) return;
        try {
            start_thread();
        } catch (...) {
            if (live > 0) return;  // the threads there are will run it, later
            // Nothing would: the submitter hears why, and keeps its task (no thread took it:
            // none runs).
            Queue all = drain_locked();
            all.pop_back();
            for (auto& t : all) push_locked(std::move(t));
            throw;
        }
    }

    // This thread took a task (counted busy until task_finishing).
    void hold_task() {
        busy.fetch_add(1, std::memory_order_relaxed);
        t_busy = &busy;
    }

    // Under mu: no more tasks are taken (terminated, or broken); what waits is returned, to fail.
    Queue stop_locked() {
        stopping.store(true, std::memory_order_release);
        return drain_locked();
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
                    dropped = stop_locked();
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
            const bool taken = (!stopping.load(std::memory_order_acquire) && take(t)) || look_for_work(t);
            if (!taken) {
                std::unique_lock lk(mu);
                if (!sleep_for_task(lk, t)) return;
            }
            if (on_demand) hold_task();
            pass_wake_on();
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
    impl_->may_look = process_cpu_count() > 1;
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
            impl_->push_locked(std::make_shared<ChunkTask>(std::move(task), job, first, count));
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
            impl_->push_locked(std::move(task));  // a copy was an atomic add on a shared line
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
        // Out of the ring and back behind the overflow's front, in order, so that they can be
        // gone through here while the threads take them (a ring's slots cannot be read in place).
        std::lock_guard lk(impl_->mu);
        queued = impl_->drain_locked();
        impl_->overflow = queued;
        impl_->overflow_n.store(queued.size());
    }
    for (auto& t : queued) t->cancel_pending();
}

void ThreadCore::terminate() {
    Impl::Queue dropped;
    {
        std::lock_guard lk(impl_->mu);
        impl_->state = Impl::State::Terminating;
        dropped = impl_->stop_locked();
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
