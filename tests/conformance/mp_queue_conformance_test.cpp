// CPython's Lib/test/_test_multiprocessing.py, ported: _TestQueue (its 'processes' flavour)
// and TestSimpleQueue, under fork, spawn and forkserver. Suites are named for the CPython class
// without its leading underscore.
//
// mproc's queues have no feeder thread (python_differences.md, "a child that put much into a
// Queue" row): put() has stored the message when it returns, so CPython's
// "time.sleep(DELTA) # the values may be in buffer but not yet in pipe" has nothing to wait for.
#include <gtest/gtest.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>

#include <mproc/mproc.hpp>

using namespace std::chrono_literals;

namespace {

constexpr double kTimeout1 = 0.1, kTimeout3 = 0.1;  // CPython's TIMEOUT1, TIMEOUT3
const auto kStartMethods = testing::Values("fork", "spawn", "forkserver");
auto param_name = [](const auto& info) { return std::string(info.param); };

template <class F>
double timed(F&& f) {
    const auto t = std::chrono::steady_clock::now();
    f();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}
std::chrono::duration<double> secs(double s) { return std::chrono::duration<double>(s); }

class TestQueue : public testing::TestWithParam<std::string> {
protected:
    mproc::ProcessOptions opts() { return {.daemon = true, .start_method = GetParam()}; }
};

void get_six(mproc::Queue<int> queue, mproc::Event child_can_start, mproc::Event parent_can_continue) {
    child_can_start.wait();
    for (int i = 0; i < 6; ++i) queue.get();
    parent_can_continue.set();
}

// _TestQueue.test_put: a queue of maxsize 6 takes six puts in every blocking form, is then
// full, and every further put raises Full: at once when not blocking, after the timeout when
// blocking. Once a child has taken the six, it is empty.
TEST_P(TestQueue, test_put) {
    const int maxsize = 6;
    mproc::Queue<int> queue(maxsize);
    mproc::Event child_can_start, parent_can_continue;
    mproc::Process proc(opts(), get_six, queue, child_can_start, parent_can_continue);
    proc.start();
    EXPECT_TRUE(queue.empty());
    EXPECT_FALSE(queue.full());
    queue.put(1);
    queue.put(2, true);
    queue.put(3, true, std::nullopt);
    queue.put(4, false);
    queue.put(5, false, std::nullopt);
    queue.put_nowait(6);
    EXPECT_FALSE(queue.empty());
    EXPECT_TRUE(queue.full());
    EXPECT_THROW(queue.put(7, false), mproc::Full);
    EXPECT_THROW(queue.put(7, false, std::nullopt), mproc::Full);
    EXPECT_THROW(queue.put_nowait(7), mproc::Full);
    double elapsed = timed([&] { EXPECT_THROW(queue.put(7, true, secs(kTimeout1)), mproc::Full); });
    EXPECT_GE(elapsed, kTimeout1 - 0.001);
    // block=False ignores the timeout (CPython's TIMEOUT2; a long one here, so that a loaded
    // machine's scheduling delay cannot pass for the wait).
    elapsed = timed([&] { EXPECT_THROW(queue.put(7, false, 10s), mproc::Full); });
    EXPECT_LT(elapsed, 5.0);
    elapsed = timed([&] { EXPECT_THROW(queue.put(7, true, secs(kTimeout3)), mproc::Full); });
    EXPECT_GE(elapsed, kTimeout3 - 0.001);
    child_can_start.set();
    ASSERT_TRUE(parent_can_continue.wait(30s));
    EXPECT_TRUE(queue.empty());
    EXPECT_FALSE(queue.full());
    proc.join();
}

void put_four(mproc::Queue<int> queue, mproc::Event child_can_start, mproc::Event parent_can_continue) {
    child_can_start.wait();
    for (int i = 2; i <= 5; ++i) queue.put(i);
    parent_can_continue.set();
}

// _TestQueue.test_get: what a child put comes out of get in every blocking form; on an empty
// queue get raises Empty, at once when not blocking, after the timeout when blocking.
TEST_P(TestQueue, test_get) {
    mproc::Queue<int> queue;
    mproc::Event child_can_start, parent_can_continue;
    mproc::Process proc(opts(), put_four, queue, child_can_start, parent_can_continue);
    proc.start();
    EXPECT_TRUE(queue.empty());
    child_can_start.set();
    ASSERT_TRUE(parent_can_continue.wait(30s));
    EXPECT_FALSE(queue.empty());
    EXPECT_EQ(queue.get(true, std::nullopt), 2);
    EXPECT_EQ(queue.get(true), 3);
    EXPECT_EQ(queue.get(true, 1s), 4);
    EXPECT_EQ(queue.get_nowait(), 5);
    EXPECT_TRUE(queue.empty());
    EXPECT_THROW(queue.get(false), mproc::Empty);
    EXPECT_THROW(queue.get(false, std::nullopt), mproc::Empty);
    EXPECT_THROW(queue.get_nowait(), mproc::Empty);
    double elapsed = timed([&] { EXPECT_THROW(queue.get(true, secs(kTimeout1)), mproc::Empty); });
    EXPECT_GE(elapsed, kTimeout1 - 0.001);
    // block=False ignores the timeout (a long one here: see test_put).
    elapsed = timed([&] { EXPECT_THROW(queue.get(false, 10s), mproc::Empty); });
    EXPECT_LT(elapsed, 5.0);
    elapsed = timed([&] { EXPECT_THROW(queue.get(true, secs(kTimeout3)), mproc::Empty); });
    EXPECT_GE(elapsed, kTimeout3 - 0.001);
    proc.join();
}

void put_ten_to_nineteen(mproc::Queue<int> queue) {
    for (int i = 10; i < 20; ++i) queue.put(i);
}

// _TestQueue.test_fork: a child puts into a queue the parent has already put into; all twenty
// come out in order, then the queue is empty.
TEST_P(TestQueue, test_fork) {
    mproc::Queue<int> queue;
    for (int i = 0; i < 10; ++i) queue.put(i);
    mproc::Process p(opts(), put_ten_to_nineteen, queue);
    p.start();
    for (int i = 0; i < 20; ++i) EXPECT_EQ(queue.get(true, 30s), i);
    EXPECT_THROW(queue.get(false), mproc::Empty);
    p.join();
}

// _TestQueue.test_qsize: qsize() counts the items (python_differences.md: exact everywhere).
TEST_P(TestQueue, test_qsize) {
    mproc::Queue<int> q;
    EXPECT_EQ(q.qsize(), 0u);
    q.put(1);
    EXPECT_EQ(q.qsize(), 1u);
    q.put(5);
    EXPECT_EQ(q.qsize(), 2u);
    q.get();
    EXPECT_EQ(q.qsize(), 1u);
    q.get();
    EXPECT_EQ(q.qsize(), 0u);
}

void task_done_worker(mproc::JoinableQueue<int> q) {
    for (int obj = q.get(); obj != -1; obj = q.get()) {  // -1 for CPython's None
        std::this_thread::sleep_for(100ms);                // CPython's time.sleep(DELTA)
        q.task_done();
    }
}

// _TestQueue.test_task_done: join() returns once workers in four processes have marked every
// item done.
TEST_P(TestQueue, test_task_done) {
    mproc::JoinableQueue<int> queue;
    std::vector<mproc::Process> workers;
    for (int i = 0; i < 4; ++i) workers.emplace_back(opts(), task_done_worker, queue);
    for (auto& p : workers) p.start();
    for (int i = 0; i < 10; ++i) queue.put(i);
    queue.join();
    for (std::size_t i = 0; i < workers.size(); ++i) queue.put(-1);
    for (auto& p : workers) p.join();
    for (auto& p : workers) EXPECT_EQ(p.exitcode(), 0);
}

// _TestQueue.test_timeout (bpo-30317): get(True, 0.2) on an empty queue waits at least 0.1 s
// (CPython's tolerance) before Empty.
TEST_P(TestQueue, test_timeout) {
    mproc::Queue<int> q;
    const double delta = timed([&] { EXPECT_THROW(q.get(true, 200ms), mproc::Empty); });
    EXPECT_GE(delta, 0.100);
}

// A value whose serialization fails when `poison` is set (CPython's NotSerializable, whose
// __reduce__ raises).
struct MaybeSerializable {
    bool poison = false;
    int value = 0;
    std::string note = {};  // not trivially copyable, so serialize() is what runs
    template <class Ar>
    void serialize(Ar& ar) {
        if (poison) throw std::runtime_error("cannot serialize this one");
        ar(poison, value, note);
    }
};

// _TestQueue.test_queue_feeder_donot_stop_onexc (bpo-30414, bpo-33078): an item that cannot be
// serialized does not stop the queue, nor count towards its size. Without a feeder thread the
// error is put()'s own, raised to the caller (Python's feeder prints and drops the item).
TEST_P(TestQueue, test_queue_feeder_donot_stop_onexc) {
    {
        mproc::Queue<MaybeSerializable> q;
        EXPECT_THROW(q.put({.poison = true}), std::runtime_error);
        q.put({.value = 1});
        EXPECT_EQ(q.get(true, 30s).value, 1);
    }
    {
        mproc::Queue<MaybeSerializable> q(1);
        EXPECT_THROW(q.put({.poison = true}), std::runtime_error);
        q.put({.value = 1}, true, 30s);
        EXPECT_EQ(q.qsize(), 1u);
        EXPECT_EQ(q.get(true, 30s).value, 1);
        EXPECT_TRUE(q.empty());
    }
}

// _TestQueue.test_closed_queue_empty_exceptions, its first half: closing an unused Queue or
// JoinableQueue, and join_thread() after, do not raise, and empty() is True.
TEST_P(TestQueue, test_closed_queue_empty_exceptions) {
    mproc::Queue<std::string> q;
    mproc::JoinableQueue<std::string> jq;
    q.close();
    EXPECT_NO_THROW(q.join_thread());
    EXPECT_TRUE(q.empty());
    jq.close();
    EXPECT_NO_THROW(jq.join_thread());
    EXPECT_TRUE(jq.empty());
}

// _TestQueue.test_closed_queue_empty_exceptions, its second half: once a queue was used and is
// closed, empty() raises (OSError 'is closed').
// Was a divergence (issue 14), now fixed: Queue::empty() on a closed queue does not throw; it answers.
TEST_P(TestQueue, test_closed_queue_empty_exceptions_used) {
    mproc::Queue<std::string> q;
    mproc::JoinableQueue<std::string> jq;
    q.put("foo");
    jq.put("foo");
    q.close();
    q.join_thread();
    jq.close();
    jq.join_thread();
    EXPECT_ANY_THROW(q.empty());
    EXPECT_ANY_THROW(jq.empty());
}

// _TestQueue.test_closed_queue_put_get_exceptions: put and get on a closed Queue or
// JoinableQueue raise (ValueError 'is closed': std::logic_error).
TEST_P(TestQueue, test_closed_queue_put_get_exceptions) {
    mproc::Queue<std::string> q;
    mproc::JoinableQueue<std::string> jq;
    q.close();
    jq.close();
    EXPECT_THROW(q.put("foo"), std::logic_error);
    EXPECT_THROW(q.get(), std::logic_error);
    EXPECT_THROW(jq.put("foo"), std::logic_error);
    EXPECT_THROW(jq.get(), std::logic_error);
}

INSTANTIATE_TEST_SUITE_P(StartMethods, TestQueue, kStartMethods, param_name);

// ---------------------------------------------------------------------------------------------
// TestSimpleQueue

void put_empty_twice(mproc::SimpleQueue<bool> queue, mproc::Event child_can_start, mproc::Event parent_can_continue) {
    child_can_start.wait();
    queue.put(queue.empty());
    queue.put(queue.empty());
    parent_can_continue.set();
}

class TestSimpleQueue : public testing::TestWithParam<std::string> {};

// TestSimpleQueue.test_empty_exceptions: empty() on a closed SimpleQueue raises (OSError 'is
// closed'), used or not.
// Was a divergence (issue 14), now fixed: empty() on a closed queue does not throw; it answers.
TEST_P(TestSimpleQueue, test_empty_exceptions) {
    mproc::SimpleQueue<int> q;
    q.close();
    EXPECT_ANY_THROW(q.empty());
}

// TestSimpleQueue.test_empty (issue 30301): empty() in a child and in the parent tells the
// truth as items come and go.
TEST_P(TestSimpleQueue, test_empty) {
    mproc::SimpleQueue<bool> queue;
    mproc::Event child_can_start, parent_can_continue;
    mproc::Process proc({.daemon = true, .start_method = GetParam()}, put_empty_twice, queue, child_can_start,
                        parent_can_continue);
    proc.start();
    EXPECT_TRUE(queue.empty());
    child_can_start.set();
    ASSERT_TRUE(parent_can_continue.wait(30s));
    EXPECT_FALSE(queue.empty());
    EXPECT_EQ(queue.get(), true);
    EXPECT_EQ(queue.get(), false);
    EXPECT_TRUE(queue.empty());
    proc.join();
}

// TestSimpleQueue.test_close: closing twice does not fail.
TEST_P(TestSimpleQueue, test_close) {
    mproc::SimpleQueue<int> queue;
    queue.close();
    EXPECT_NO_THROW(queue.close());
}

INSTANTIATE_TEST_SUITE_P(StartMethods, TestSimpleQueue, kStartMethods, param_name);

}  // namespace
