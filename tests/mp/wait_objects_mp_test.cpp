// connection::wait over queues, futures, AsyncResults and processes beside connections, and
// their descriptors polled with epoll directly (issue 18), under every start method.
#include <gtest/gtest.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <mproc/mproc.hpp>

#include "leak_check.hpp"

using namespace std::chrono_literals;
namespace cf = mproc::futures;
using mproc::connection::Waitable;
using mproc::connection::wait;

namespace {

int twice(int x) { return 2 * x; }

void wait_for_event(mproc::Event e) { e.wait(); }

void put_numbers(mproc::Queue<int> q, int n) {
    for (int i = 0; i < n; ++i) q.put(i);
}

// In the child: waits on its own descriptor of the queue (under fork, its parent's was copied
// with the memory), and reports what it saw.
void wait_then_get(mproc::Queue<int> q, mproc::Queue<int> report) {
    report.put(static_cast<int>(wait({q}, 30s).size()));
    report.put(q.get());
}

void take_one(mproc::Queue<int> q) { (void)q.get(); }

std::vector<int> fds_of(const std::vector<Waitable>& v) {
    std::vector<int> out;
    for (const auto& w : v) out.push_back(w.fileno());
    return out;
}

// Threads of this process named as the queues' descriptor threads are.
int queue_fd_threads() {
    int n = 0;
    for (const auto& t : std::filesystem::directory_iterator("/proc/self/task")) {
        std::ifstream comm(t.path() / "comm");
        std::string name;
        std::getline(comm, name);
        n += name == "mproc-queue-fd";
    }
    return n;
}

// epoll_wait on one descriptor: the number of events (0 at the timeout).
int epoll_ready(int ep, int timeout_ms) {
    epoll_event ev[4];
    int n;
    do n = epoll_wait(ep, ev, 4, timeout_ms);
    while (n < 0 && errno == EINTR);
    return n;
}

class WaitObjects : public testing::TestWithParam<std::string> {
protected:
    mproc::ProcessOptions opts() { return {.start_method = GetParam()}; }
};

TEST_P(WaitObjects, AMixOfConnectionQueueFutureAsyncResultAndProcess) {
    auto [r, w] = mproc::Pipe(false);
    mproc::Queue<int> q;
    cf::ThreadPoolExecutor ex(1);
    mproc::threading::Event go;
    cf::Future<int> f = ex.submit([&go] {
        go.wait();
        return 1;
    });
    mproc::pool::ThreadPool tpool(1);
    mproc::threading::Event go2;
    mproc::AsyncResult<int> ar = tpool.apply_async([&go2] {
        go2.wait();
        return 2;
    });
    mproc::Event end;
    mproc::Process p(opts(), wait_for_event, end);
    p.start();

    const std::vector<Waitable> all{&r, q, f, ar, p};
    // Nothing ready: the timeout, and it is waited out.
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_TRUE(wait(all, 0.2s).empty());
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 190ms);
    EXPECT_TRUE(wait(all, 0s).empty());

    w.send(7);
    EXPECT_EQ(fds_of(wait(all, 30s)), (std::vector<int>{r.fileno()}));
    q.put(5);
    EXPECT_EQ(fds_of(wait(all, 30s)), (std::vector<int>{r.fileno(), q.fileno()}));
    EXPECT_EQ(r.recv<int>(), 7);
    EXPECT_EQ(q.get(), 5);
    // Taken through this process's handle: not ready any more, at once.
    EXPECT_TRUE(wait(all, 0s).empty());

    go.set();
    EXPECT_EQ(fds_of(wait(all, 30s)), (std::vector<int>{f.sentinel()}));
    go2.set();
    ar.wait(30s);
    EXPECT_EQ(wait(all, 30s).size(), 2u);
    end.set();
    p.join(30s);
    ASSERT_EQ(wait({p}, 30s).size(), 1u);  // see ReadyBeforeAnyoneAsked (forkserver)
    const auto ready = wait(all, 30s);
    ASSERT_EQ(fds_of(ready), (std::vector<int>{f.sentinel(), ar.sentinel(), p.sentinel()}));
    EXPECT_TRUE(ready[0] == Waitable(f));
    EXPECT_TRUE(ready[2] == Waitable(p));

    // A queue shut down: get() would not block (it raises ShutDown), so it is ready.
    q.shutdown();
    EXPECT_EQ(wait({q}, 30s).size(), 1u);
}

TEST_P(WaitObjects, ReadyBeforeAnyoneAsked) {
    mproc::Queue<int> q;
    q.put(1);
    cf::Future<int> f;
    f.set_result(3);
    cf::ProcessPoolExecutor ex({.max_workers = 1, .start_method = GetParam()});
    auto pf = ex.submit(twice, 4);
    EXPECT_EQ(pf.result(30s), 8);
    mproc::Process p(opts(), twice, 1);
    p.start();
    p.join(30s);
    // A forkserver child's sentinel is the request socket, which the server closes a moment
    // after it sent the exit code that join() read: readable once it did.
    ASSERT_EQ(wait({p}, 30s).size(), 1u);
    // Each other object's descriptor is made now, after the fact, and is ready at once.
    EXPECT_EQ(fds_of(wait({q, f, pf, p}, 30s)), (std::vector<int>{q.fileno(), f.sentinel(), pf.sentinel(), p.sentinel()}));
    EXPECT_EQ(wait({q}, 0s).size(), 1u);
    EXPECT_EQ(q.get(), 1);
    EXPECT_TRUE(wait({q}, 0s).empty());
}

TEST_P(WaitObjects, DescriptorsPolledWithEpoll) {
    mproc::Queue<int> q;
    mproc::SimpleQueue<int> sq;
    mproc::JoinableQueue<int> jq;
    cf::Future<int> f;
    mproc::Pool pool({.processes = 1, .start_method = GetParam()});
    mproc::Event go;
    auto ar = pool.apply_async(wait_for_event, go);

    const int ep = epoll_create1(EPOLL_CLOEXEC);
    ASSERT_GE(ep, 0);
    for (int fd : {q.fileno(), sq.fileno(), jq.fileno(), f.sentinel(), ar.sentinel()}) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = fd;
        ASSERT_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev), 0);
    }
    EXPECT_EQ(epoll_ready(ep, 0), 0);
    // Level-triggered, as a pipe: readable while an item waits, not once it is taken.
    q.put(1);
    EXPECT_EQ(epoll_ready(ep, 30000), 1);
    EXPECT_EQ(epoll_ready(ep, 0), 1);
    EXPECT_EQ(q.get_nowait(), 1);
    EXPECT_EQ(epoll_ready(ep, 0), 0);
    sq.put(2);
    jq.put(3);
    f.set_result(4);
    go.set();
    ar.wait(30s);
    // The queues' threads make theirs readable on their own time: gather until all four came.
    std::set<int> seen;
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (seen.size() < 4 && std::chrono::steady_clock::now() < deadline) {
        epoll_event evs[8];
        const int n = epoll_wait(ep, evs, 8, 1000);
        for (int i = 0; i < n; ++i) seen.insert(evs[i].data.fd);
    }
    EXPECT_EQ(seen, (std::set<int>{sq.fileno(), jq.fileno(), f.sentinel(), ar.sentinel()}));
    EXPECT_EQ(sq.get(), 2);
    EXPECT_EQ(jq.get(), 3);
    jq.task_done();
    EXPECT_EQ(epoll_ready(ep, 0), 2);  // the future and the AsyncResult stay done
    close(ep);
}

TEST_P(WaitObjects, AQueueFilledFromAnotherProcessWhileThisOneEpolls) {
    mproc::Queue<int> q;
    const int ep = epoll_create1(EPOLL_CLOEXEC);
    ASSERT_GE(ep, 0);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ASSERT_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, q.fileno(), &ev), 0);
    constexpr int n = 500;
    mproc::Process p(opts(), put_numbers, q, n);
    p.start();
    std::vector<int> got;
    while (static_cast<int>(got.size()) < n) {
        ASSERT_EQ(epoll_ready(ep, 30000), 1) << "after " << got.size() << " items";
        try {
            for (;;) got.push_back(q.get_nowait());
        } catch (const mproc::Empty&) {
        }
    }
    p.join(30s);
    EXPECT_EQ(p.exitcode(), 0);
    for (int i = 0; i < n; ++i) EXPECT_EQ(got[i], i);
    EXPECT_EQ(epoll_ready(ep, 0), 0);
    close(ep);
}

TEST_P(WaitObjects, AChildWaitsOnTheQueueWithItsOwnDescriptor) {
    mproc::Queue<int> q, report;
    (void)q.fileno();  // this process's thread runs: a fork child gets a copy without it
    mproc::Process p(opts(), wait_then_get, q, report);
    p.start();
    q.put(11);
    EXPECT_EQ(report.get(true, 30s), 1);
    EXPECT_EQ(report.get(true, 30s), 11);
    p.join(30s);
    EXPECT_EQ(p.exitcode(), 0);
}

TEST_P(WaitObjects, ItemsTakenInAnotherProcessMakeTheDescriptorUnreadable) {
    mproc::Queue<int> q;
    q.put(1);
    ASSERT_EQ(wait({q}, 30s).size(), 1u);
    mproc::Process p(opts(), take_one, q);
    p.start();
    p.join(30s);
    ASSERT_EQ(q.qsize(), 0u);
    // Nothing wakes this process for it: its thread looks again within 100 ms.
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!wait({q}, 0s).empty() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(5ms);
    EXPECT_TRUE(wait({q}, 0s).empty());
}

TEST(WaitObjectsLeaks, DescriptorsAndThreadsGoWithTheirObjects) {
    const auto before = mproc_test::open_fd_targets();
    {
        mproc::Queue<int> q;
        mproc::Queue<int> copy = q;
        EXPECT_EQ(q.fileno(), copy.fileno());  // one per queue in this process
        cf::Future<int> f;
        const int fd = f.sentinel();
        EXPECT_EQ(f.sentinel(), fd);
        q.put(1);
        f.set_result(1);
        EXPECT_EQ(wait({q, f}, 30s).size(), 2u);
        cf::ThreadPoolExecutor ex(1);
        auto g = ex.submit(twice, 1);
        (void)g.sentinel();
        EXPECT_EQ(g.result(30s), 2);
    }
    EXPECT_EQ(queue_fd_threads(), 0);
    EXPECT_EQ(mproc_test::open_fd_targets(), before);
}

TEST(WaitObjectsLeaks, AClosedQueueRefuses) {
    mproc::Queue<int> q;
    q.close();
    EXPECT_THROW((void)q.fileno(), std::logic_error);
}

INSTANTIATE_TEST_SUITE_P(StartMethods, WaitObjects, testing::Values("fork", "spawn", "forkserver"),
                         [](const auto& info) { return info.param; });

}  // namespace
