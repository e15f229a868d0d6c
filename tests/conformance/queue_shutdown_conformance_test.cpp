// CPython's Lib/test/test_queue.py (3.13), BaseQueueTestMixin's shutdown tests, ported to
// mproc's queues (Queue::shutdown mirrors queue.Queue.shutdown; multiprocessing's queues have
// none). The single-thread tests are TEST; the ones where CPython starts threads run here with
// processes under fork, spawn and forkserver, and with threads (TEST_P, "thread").
//
// CPython's results list (True where the thread saw what it expected) is a queue of outcomes
// here, since the workers may be processes. Where a test is about a blocked caller, it waits
// until the worker sleeps (its /proc state) before shutting down, so the wake-up is what is
// tested; CPython's versions mostly start their calls after shutdown() (the `go` event), and
// those are kept as they are.
#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <mproc/mproc.hpp>

using namespace std::chrono_literals;

namespace {

using Q = mproc::JoinableQueue<std::string>;
// What a worker saw; a worker that waited 90 s for nothing reports kOther (never a hang).
enum Outcome : int { kDone = 1, kShutDown = 2, kOther = 3 };

int my_tid() { return static_cast<int>(::syscall(SYS_gettid)); }

void getter(Q q, mproc::Event go, mproc::Queue<int> ready, mproc::Queue<int> out, bool task_done) {
    ready.put(my_tid());
    go.wait();
    try {
        q.get(true, 90s);
        if (task_done) q.task_done();
        out.put(kDone);
    } catch (const mproc::ShutDown&) {
        out.put(kShutDown);
    } catch (...) {
        out.put(kOther);
    }
}

void putter(Q q, std::string msg, mproc::Event go, mproc::Queue<int> ready, mproc::Queue<int> out) {
    ready.put(my_tid());
    go.wait();
    try {
        q.put(msg, true, 90s);
        out.put(kDone);
    } catch (const mproc::ShutDown&) {
        out.put(kShutDown);
    } catch (...) {
        out.put(kOther);
    }
}

void joiner(Q q, mproc::Queue<int> ready, mproc::Queue<int> out) {
    ready.put(my_tid());
    out.put(q.join(90s) ? kDone : kOther);
}

void shutter(Q q, mproc::Event go, bool immediate) {
    go.wait();
    q.shutdown(immediate);
}

// Workers as processes under one start method, or as threads of this process.
class Workers {
public:
    explicit Workers(std::string how) : how_(std::move(how)) {}
    Workers(const Workers&) = delete;
    Workers& operator=(const Workers&) = delete;
    ~Workers() { join(); }

    template <class F, class... A>
    void start(F f, A... a) {
        if (how_ == "thread") {
            threads_.emplace_back(f, a...);
        } else {
            procs_.emplace_back(mproc::ProcessOptions{.start_method = how_}, f, a...);
            procs_.back().start();
        }
    }
    void join() {
        for (auto& t : threads_) t.join();
        threads_.clear();
        for (auto& p : procs_) {
            p.join(60s);
            EXPECT_EQ(p.exitcode(), 0);
        }
        procs_.clear();
    }

private:
    std::string how_;
    std::vector<std::thread> threads_;
    std::vector<mproc::Process> procs_;
};

// Waits until the thread (or process) `tid` sleeps: blocked in the call it made after
// reporting its id. False after 30 s.
bool wait_blocked(int tid) {
    const auto until = std::chrono::steady_clock::now() + 30s;
    while (std::chrono::steady_clock::now() < until) {
        std::ifstream f("/proc/" + std::to_string(tid) + "/stat");
        std::stringstream ss;
        ss << f.rdbuf();
        const std::string stat = ss.str();
        const auto paren = stat.rfind(')');
        if (paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] == 'S') return true;
        std::this_thread::sleep_for(1ms);
    }
    return false;
}

// n outcomes, sorted. Sooner than the workers' own timeouts: a worker that was not woken fails
// the test here (mproc::Empty), rather than reporting ShutDown when its wait times out.
std::vector<int> collect(mproc::Queue<int>& out, int n) {
    std::vector<int> got;
    for (int i = 0; i < n; ++i) got.push_back(out.get(true, 30s));
    std::sort(got.begin(), got.end());
    return got;
}

// --- one thread ---

// BaseQueueTestMixin.test_shutdown_empty
TEST(QueueShutdown, test_shutdown_empty) {
    Q q;
    q.shutdown();
    EXPECT_THROW(q.put("data"), mproc::ShutDown);
    EXPECT_THROW(q.get(), mproc::ShutDown);
}

// BaseQueueTestMixin.test_shutdown_nonempty
TEST(QueueShutdown, test_shutdown_nonempty) {
    Q q;
    q.put("data");
    q.shutdown();
    EXPECT_EQ(q.get(), "data");
    EXPECT_THROW(q.get(), mproc::ShutDown);
}

// BaseQueueTestMixin.test_shutdown_immediate
TEST(QueueShutdown, test_shutdown_immediate) {
    Q q;
    q.put("data");
    q.shutdown(true);
    EXPECT_THROW(q.get(), mproc::ShutDown);
    EXPECT_EQ(q.qsize(), 0u);  // dropped, not merely hidden
}

// BaseQueueTestMixin.test_shutdown_allowed_transitions
TEST(QueueShutdown, test_shutdown_allowed_transitions) {
    Q q;
    EXPECT_FALSE(q.is_shutdown());
    q.shutdown();
    EXPECT_TRUE(q.is_shutdown());
    q.shutdown(true);
    EXPECT_TRUE(q.is_shutdown());
    q.shutdown(false);
    EXPECT_TRUE(q.is_shutdown());
}

// BaseQueueTestMixin._shutdown_all_methods_in_one_thread(immediate)
void shutdown_all_methods_in_one_thread(bool immediate) {
    Q q(2);
    q.put("L");
    q.put_nowait("O");
    q.shutdown(immediate);
    EXPECT_THROW(q.put("E"), mproc::ShutDown);
    EXPECT_THROW(q.put_nowait("W"), mproc::ShutDown);  // the queue is full too: ShutDown first
    if (immediate) {
        EXPECT_THROW(q.get(), mproc::ShutDown);
        EXPECT_THROW(q.get_nowait(), mproc::ShutDown);
        EXPECT_THROW(q.task_done(), std::logic_error);  // Python: ValueError; both items dropped as done
        EXPECT_TRUE(q.join(0s));
    } else {
        const std::string a = q.get();
        q.task_done();
        const std::string b = q.get();
        q.task_done();
        EXPECT_EQ(a + b, "LO");
        EXPECT_TRUE(q.join(0s));
        EXPECT_THROW(q.get(), mproc::ShutDown);
        EXPECT_THROW(q.get_nowait(), mproc::ShutDown);
        EXPECT_THROW(q.get(true, 1s), mproc::ShutDown);
    }
}

// BaseQueueTestMixin.test_shutdown_all_methods_in_one_thread
TEST(QueueShutdown, test_shutdown_all_methods_in_one_thread) { shutdown_all_methods_in_one_thread(false); }

// BaseQueueTestMixin.test_shutdown_immediate_all_methods_in_one_thread
TEST(QueueShutdown, test_shutdown_immediate_all_methods_in_one_thread) { shutdown_all_methods_in_one_thread(true); }

// queue.py shutdown(immediate): "if self.unfinished_tasks > 0: self.unfinished_tasks -= 1" per
// item dropped: items taken but not yet done still hold join() back.
TEST(QueueShutdown, ImmediateCountsOnlyTheDroppedItemsAsDone) {
    Q q;
    q.put("a");
    q.put("b");
    q.put("c");
    EXPECT_EQ(q.get(), "a");  // taken, not done
    q.shutdown(true);
    EXPECT_FALSE(q.join(50ms));
    q.task_done();
    EXPECT_TRUE(q.join(0s));
    EXPECT_THROW(q.task_done(), std::logic_error);
}

// The state is the queue's, not the handle's: a copy (another process's handle is the same)
// sees it. Also for a SimpleQueue (Python's SimpleQueue has no shutdown; mproc's does).
template <class Qu>
void shut_through_a_copy() {
    Qu q;
    Qu other = q;
    q.put(1);
    other.shutdown();
    EXPECT_TRUE(q.is_shutdown());
    EXPECT_THROW(q.put(2), mproc::ShutDown);
    EXPECT_EQ(q.get(), 1);
    EXPECT_THROW(q.get(), mproc::ShutDown);  // at once: no waiting on a shut, empty queue
    Qu now;
    now.put(7);
    now.shutdown(true);
    EXPECT_THROW(now.get(), mproc::ShutDown);
    EXPECT_TRUE(now.empty());
}

TEST(QueueShutdown, EveryHandleSeesIt) {
    shut_through_a_copy<mproc::Queue<int>>();
    shut_through_a_copy<mproc::JoinableQueue<int>>();
    shut_through_a_copy<mproc::SimpleQueue<int>>();
}

void get_from(mproc::Queue<int> q) { q.get(); }

// ShutDown thrown in a pool worker reaches the caller as ShutDown (it is one of mproc's own
// exception types).
TEST(QueueShutdown, ShutDownCrossesProcessesAsItself) {
    mproc::Queue<int> q;
    q.shutdown();
    mproc::Pool pool(1);
    EXPECT_THROW(pool.apply(get_from, q), mproc::ShutDown);
}

// --- threads or processes ---

class QueueShutdownWorkers : public testing::TestWithParam<std::string> {};

// BaseQueueTestMixin.test_shutdown_pending_get, with the getter seen blocked first; and the
// same with shutdown(immediate=True).
TEST_P(QueueShutdownWorkers, test_shutdown_pending_get) {
    for (bool immediate : {false, true}) {
        Q q;
        mproc::Event go;
        go.set();
        mproc::Queue<int> ready, out;
        Workers w(GetParam());
        w.start(getter, q, go, ready, out, false);
        ASSERT_TRUE(wait_blocked(ready.get(true, 60s)));
        q.shutdown(immediate);
        EXPECT_EQ(collect(out, 1), std::vector<int>{kShutDown}) << "immediate " << immediate;
    }
}

// BaseQueueTestMixin._shutdown_get(immediate): getters of a full queue of two, started after
// shutdown(). Not immediate: of three, two take an item and one gets ShutDown. Immediate: both
// of two get ShutDown, and nothing is left.
void shutdown_get(const std::string& how, bool immediate) {
    Q q(2);
    mproc::Event go;
    mproc::Queue<int> ready, out;
    q.put("Y");
    q.put("D");
    Workers w(how);
    const int n = immediate ? 2 : 3;
    for (int i = 0; i < n; ++i) w.start(getter, q, go, ready, out, false);
    q.shutdown(immediate);
    go.set();
    if (immediate) {
        EXPECT_EQ(collect(out, n), (std::vector<int>{kShutDown, kShutDown}));
        EXPECT_EQ(q.qsize(), 0u);
    } else {
        EXPECT_EQ(collect(out, n), (std::vector<int>{kDone, kDone, kShutDown}));
    }
}

// BaseQueueTestMixin.test_shutdown_get
TEST_P(QueueShutdownWorkers, test_shutdown_get) { shutdown_get(GetParam(), false); }

// BaseQueueTestMixin.test_shutdown_immediate_get
TEST_P(QueueShutdownWorkers, test_shutdown_immediate_get) { shutdown_get(GetParam(), true); }

// BaseQueueTestMixin._shutdown_put(immediate), with both putters seen blocked on the full
// queue first: they wake with ShutDown and nothing of theirs is enqueued; the items already
// there can still be taken unless the shutdown was immediate.
TEST_P(QueueShutdownWorkers, test_shutdown_put) {
    for (bool immediate : {false, true}) {
        Q q(2);
        mproc::Event go;
        go.set();
        mproc::Queue<int> ready, out;
        q.put("Y");
        q.put("D");
        Workers w(GetParam());
        w.start(putter, q, std::string("E"), go, ready, out);
        w.start(putter, q, std::string("W"), go, ready, out);
        ASSERT_TRUE(wait_blocked(ready.get(true, 60s)));
        ASSERT_TRUE(wait_blocked(ready.get(true, 60s)));
        q.shutdown(immediate);
        EXPECT_EQ(collect(out, 2), (std::vector<int>{kShutDown, kShutDown})) << "immediate " << immediate;
        if (immediate) {
            EXPECT_EQ(q.qsize(), 0u);
        } else {
            EXPECT_EQ(q.qsize(), 2u);
            EXPECT_EQ(q.get_nowait(), "Y");
            EXPECT_EQ(q.get_nowait(), "D");
        }
        EXPECT_THROW(q.get_nowait(), mproc::ShutDown);
    }
}

// BaseQueueTestMixin._shutdown_join(immediate), the joiners seen blocked first: after an
// immediate shutdown the dropped item counts as done and join() returns; after a plain one, a
// getter takes the item and marks it done.
TEST_P(QueueShutdownWorkers, test_shutdown_join) {
    for (bool immediate : {false, true}) {
        Q q;
        mproc::Event go;
        mproc::Queue<int> ready, out;
        q.put("Y");
        Workers w(GetParam());
        w.start(joiner, q, ready, out);
        w.start(joiner, q, ready, out);
        ASSERT_TRUE(wait_blocked(ready.get(true, 60s)));
        ASSERT_TRUE(wait_blocked(ready.get(true, 60s)));
        int n = 2;
        if (!immediate) {
            w.start(getter, q, go, ready, out, true);
            ++n;
        }
        q.shutdown(immediate);
        go.set();
        EXPECT_EQ(collect(out, n), std::vector<int>(static_cast<std::size_t>(n), kDone)) << "immediate " << immediate;
    }
}

// BaseQueueTestMixin._shutdown_put_join(immediate): the putter gets ShutDown; the joiner
// returns once "Y" is dropped (immediate) or taken and done.
TEST_P(QueueShutdownWorkers, test_shutdown_put_join) {
    for (bool immediate : {false, true}) {
        Q q(2);
        mproc::Event go;
        mproc::Queue<int> ready, out;
        q.put("Y");
        Workers w(GetParam());
        w.start(putter, q, std::string("E"), go, ready, out);
        w.start(joiner, q, ready, out);
        EXPECT_EQ(q.qsize(), 1u);  // CPython: unfinished_tasks == 1
        q.shutdown(immediate);
        go.set();
        if (immediate) {
            EXPECT_THROW(q.get_nowait(), mproc::ShutDown);
        } else {
            EXPECT_EQ(q.get(), "Y");
            q.task_done();
        }
        EXPECT_EQ(collect(out, 2), (std::vector<int>{kDone, kShutDown})) << "immediate " << immediate;
    }
}

// BaseQueueTestMixin.test_shutdown_get_task_done_join
TEST_P(QueueShutdownWorkers, test_shutdown_get_task_done_join) {
    Q q(2);
    mproc::Event go;
    mproc::Queue<int> ready, out;
    q.put("Y");
    q.put("D");
    Workers w(GetParam());
    w.start(getter, q, go, ready, out, true);
    w.start(getter, q, go, ready, out, true);
    w.start(joiner, q, ready, out);
    w.start(joiner, q, ready, out);
    go.set();
    q.shutdown(false);
    EXPECT_EQ(collect(out, 4), (std::vector<int>{kDone, kDone, kDone, kDone}));
}

// The other way round: a worker shuts the queue down, and this process, blocked in get(),
// wakes with ShutDown.
TEST_P(QueueShutdownWorkers, ShutdownElsewhereWakesABlockedGetHere) {
    for (bool immediate : {false, true}) {
        Q q;
        mproc::Event go;
        Workers w(GetParam());
        w.start(shutter, q, go, immediate);
        go.set();
        const auto t0 = std::chrono::steady_clock::now();
        EXPECT_THROW(q.get(true, 90s), mproc::ShutDown) << "immediate " << immediate;
        EXPECT_LT(std::chrono::steady_clock::now() - t0, 30s) << "woken by the shutdown, not by the timeout";
        w.join();
        EXPECT_TRUE(q.is_shutdown());
    }
}

INSTANTIATE_TEST_SUITE_P(StartMethods, QueueShutdownWorkers, testing::Values("fork", "spawn", "forkserver", "thread"),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
