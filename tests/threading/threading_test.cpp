// mproc::threading: Thread, Timer, local, the synchronization classes in process memory,
// the registry (current_thread, enumerate, ...), excepthook, the wait at exit, and the S23
// thread-count helper.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <mproc/mproc.hpp>

using namespace std::chrono_literals;
namespace th = mproc::threading;

namespace {

// Every test ends with the main thread alone (a thread left running would be a leak).
class Threading : public testing::Test {
protected:
    void TearDown() override {
        for (auto& t : th::enumerate())
            if (!(t == th::main_thread())) t.join(10s);
        EXPECT_EQ(th::active_count(), 1);
    }
};

void add_many(th::Lock lock, long* counter, int n) {
    for (int i = 0; i < n; ++i) {
        lock.acquire();
        ++*counter;
        lock.release();
    }
}

TEST_F(Threading, LockedCounterEndsExact) {
    th::Lock lock;
    long counter = 0;
    std::vector<th::Thread> ts;
    for (int i = 0; i < 8; ++i) ts.emplace_back(add_many, lock, &counter, 20000);
    for (auto& t : ts) t.start();
    for (auto& t : ts) t.join();
    EXPECT_EQ(counter, 8 * 20000);
    for (auto& t : ts) EXPECT_FALSE(t.is_alive());
}

TEST_F(Threading, TargetWithCapturesAndArguments) {
    std::string seen;
    th::Thread t([&seen](std::string a, int b) { seen = a + std::to_string(b); }, std::string("x"), 7);
    EXPECT_FALSE(t.ident());
    EXPECT_FALSE(t.native_id());
    t.start();
    EXPECT_TRUE(t.ident());
    EXPECT_TRUE(t.native_id());
    t.join();
    EXPECT_EQ(seen, "x7");
}

class Worker : public th::Thread {
public:
    explicit Worker(int n) : Thread({.name = "worker"}), n_(n) {}
    ~Worker() override { join(); }
    void run() override {
        name_seen = th::current_thread().name();
        id_seen = th::get_ident();
        native_seen = th::get_native_id();
        for (int i = 0; i < n_; ++i) sum += i;
    }
    int n_;
    long sum = 0;
    std::string name_seen;
    unsigned long id_seen = 0;
    int native_seen = 0;
};

TEST_F(Threading, SubclassOverridingRun) {
    Worker w(100);
    w.start();
    w.join();
    EXPECT_EQ(w.sum, 4950);
    EXPECT_EQ(w.name_seen, "worker");
    EXPECT_EQ(w.id_seen, *w.ident());
    EXPECT_EQ(w.native_seen, *w.native_id());
    EXPECT_NE(w.native_seen, th::get_native_id());
}

class Recorder : public th::Thread {
public:
    explicit Recorder(std::atomic<int>* ran) : ran_(ran) {}
    ~Recorder() override { join(); }
    void run() override { ++*ran_; }

private:
    std::atomic<int>* ran_;
};

TEST_F(Threading, SubclassDestroyedRightAfterStartStillRuns) {
    std::atomic<int> ran{0};
    for (int i = 0; i < 200; ++i) {
        Recorder r(&ran);
        r.start();
    }
    EXPECT_EQ(ran.load(), 200);
}

TEST_F(Threading, MisuseIsLogicError) {
    th::Event go;
    th::Thread t([go]() mutable { go.wait(); });
    EXPECT_THROW(t.join(), std::logic_error);  // before start
    t.start();
    EXPECT_THROW(t.start(), std::logic_error);  // twice
    EXPECT_THROW(t.set_daemon(true), std::logic_error);
    go.set();
    t.join();
    EXPECT_THROW(th::current_thread().join(), std::logic_error);
    th::Thread moved_from;
    th::Thread to(std::move(moved_from));
    EXPECT_THROW(moved_from.start(), std::logic_error);
}

TEST_F(Threading, JoinTimesOutThenSucceeds) {
    th::Event go;
    th::Thread t([go]() mutable { go.wait(); });
    t.start();
    t.join(50ms);
    EXPECT_TRUE(t.is_alive());
    go.set();
    t.join(10s);
    EXPECT_FALSE(t.is_alive());
}

namespace reprs {
template <class T>
class Worker : public th::Thread {
public:
    void run() override {}
};
}  // namespace reprs

// Python's repr uses type(self).__name__: a Timer or a subclass of Thread shows its own class
// name, without namespaces (issue 14, divergence 16).
TEST_F(Threading, ReprNamesTheSubclass) {
    th::Timer timer(std::chrono::seconds(1), [] {});
    std::ostringstream t;
    t << timer;
    EXPECT_EQ(t.str(), "<Timer(" + timer.name() + ", initial)>");
    reprs::Worker<std::pair<int, int>> w;
    std::ostringstream s;
    s << w;
    EXPECT_EQ(s.str(), "<Worker<std::pair<int, int> >(" + w.name() + ", initial)>");
}

TEST_F(Threading, NamesDaemonAndRepr) {
    th::Thread a([] {});
    th::Thread b([] {});
    EXPECT_EQ(a.name().rfind("Thread-", 0), 0u);
    EXPECT_NE(a.name(), b.name());
    EXPECT_FALSE(a.daemon());  // the main thread is not daemonic
    std::ostringstream initial;
    initial << a;
    EXPECT_EQ(initial.str(), "<Thread(" + a.name() + ", initial)>");
    a.set_name("renamed");
    a.start();
    a.join();
    std::ostringstream stopped;
    stopped << a;
    EXPECT_EQ(stopped.str(), "<Thread(renamed, stopped " + std::to_string(*a.ident()) + ")>");

    // A thread started by a daemon thread is daemonic too.
    bool inner_daemon = false;
    th::Thread d({.daemon = true}, [&] {
        th::Thread inner([] {});
        inner_daemon = inner.daemon();
    });
    d.start();
    d.join();
    EXPECT_TRUE(inner_daemon);
}

TEST_F(Threading, RegistryAndDummies) {
    EXPECT_EQ(th::main_thread().name(), "MainThread");
    EXPECT_TRUE(th::current_thread() == th::main_thread());
    EXPECT_TRUE(th::main_thread().is_alive());
    EXPECT_EQ(th::active_count(), 1);

    th::Event go;
    th::Thread t({.name = "listed"}, [go]() mutable { go.wait(); });
    t.start();
    auto all = th::enumerate();
    EXPECT_EQ(all.size(), 2u);
    EXPECT_TRUE(std::find(all.begin(), all.end(), t) != all.end());

    // A thread mproc did not start is a daemonic "Dummy-N" while it lives.
    std::string dummy_name;
    bool dummy_daemon = false;
    int count_inside = 0;
    std::thread raw([&] {
        dummy_name = th::current_thread().name();
        dummy_daemon = th::current_thread().daemon();
        count_inside = th::active_count();
    });
    raw.join();
    EXPECT_EQ(dummy_name.rfind("Dummy-", 0), 0u);
    EXPECT_TRUE(dummy_daemon);
    EXPECT_EQ(count_inside, 3);
    EXPECT_EQ(th::active_count(), 2);
    go.set();
    t.join();
}

TEST_F(Threading, TargetThreadOutlivesItsObject) {
    th::Event go, done;
    {
        th::Thread t([go, done]() mutable {
            go.wait();
            done.set();
        });
        t.start();
    }  // destroyed while it runs: it goes on
    EXPECT_EQ(th::active_count(), 2);
    go.set();
    EXPECT_TRUE(done.wait(10s));
}

TEST_F(Threading, TimerFiresOrIsCancelled) {
    th::Event fired;
    th::Timer t(10ms, [fired]() mutable { fired.set(); });
    t.start();
    EXPECT_TRUE(fired.wait(10s));
    t.join();

    std::atomic<bool> ran{false};
    th::Timer c(1h, [&ran] { ran = true; });
    c.start();
    c.cancel();
    c.join(10s);
    EXPECT_FALSE(c.is_alive());
    EXPECT_FALSE(ran);
}

struct Counted {
    static inline std::atomic<int> alive{0};
    explicit Counted(int v = 0) : value(v) { ++alive; }
    ~Counted() { --alive; }
    int value;
};

TEST_F(Threading, LocalIsPerThread) {
    th::local<Counted> data(5);
    data->value = 1;  // the main thread's copy
    std::vector<th::Thread> ts;
    std::vector<int> first(4), last(4);
    for (int i = 0; i < 4; ++i)
        ts.emplace_back([&, i] {
            first[i] = data->value;  // a fresh copy, made from the constructor's arguments
            data->value += i;
            last[i] = data.get().value;
        });
    for (auto& t : ts) t.start();
    for (auto& t : ts) t.join();
    for (int i = 0; i < 4; ++i) {
        EXPECT_EQ(first[i], 5);
        EXPECT_EQ(last[i], 5 + i);
    }
    EXPECT_EQ(data->value, 1);
    EXPECT_EQ(Counted::alive.load(), 1);  // the threads' copies died with them

    th::local<std::vector<int>> v;
    EXPECT_FALSE(v.has_value());
    v->push_back(3);
    EXPECT_TRUE(v.has_value());
    th::local<std::vector<int>> same = v;  // copies share the per-thread data
    EXPECT_EQ(same->size(), 1u);
}

TEST_F(Threading, LockAndRLockSemantics) {
    // Python lets another thread release a Lock, and a Lock whose acquirer has ended stays
    // locked (no take-over, unlike the process Lock).
    th::Lock lock;
    th::Thread t([lock]() mutable { lock.acquire(); });
    t.start();
    t.join();
    EXPECT_TRUE(lock.locked());
    EXPECT_FALSE(lock.acquire(true, 50ms));
    lock.release();
    EXPECT_FALSE(lock.locked());
    EXPECT_THROW(lock.release(), std::logic_error);

    th::RLock r;
    r.acquire();
    EXPECT_TRUE(r.acquire(false));
    bool other_got = true;
    bool other_release_threw = false;
    th::Thread o([&] {
        other_got = r.acquire(false);
        try {
            r.release();
        } catch (const std::logic_error&) {
            other_release_threw = true;
        }
    });
    o.start();
    o.join();
    EXPECT_FALSE(other_got);
    EXPECT_TRUE(other_release_threw);
    r.release();
    r.release();
    EXPECT_THROW(r.release(), std::logic_error);
}

TEST_F(Threading, ConditionProducerConsumer) {
    th::Condition cv;
    std::vector<int> items;
    bool finished = false;
    long consumed = 0;
    th::Thread consumer([&] {
        std::unique_lock lk(cv);
        for (;;) {
            cv.wait_for([&] { return !items.empty() || finished; });
            for (int x : items) consumed += x;
            items.clear();
            if (finished) return;
        }
    });
    consumer.start();
    for (int i = 1; i <= 1000; ++i) {
        std::lock_guard g(cv);
        items.push_back(i);
        cv.notify();
    }
    {
        std::lock_guard g(cv);
        finished = true;
        cv.notify_all();
    }
    consumer.join();
    EXPECT_EQ(consumed, 500500);
    EXPECT_THROW(cv.notify(), std::logic_error);  // not holding its lock
    std::lock_guard g(cv);
    EXPECT_FALSE(cv.wait(10ms));  // times out
}

TEST_F(Threading, ConditionOverAGivenLock) {
    th::Lock lock;
    th::Condition cv(lock);
    int ready = 0;
    th::Thread t([&] {
        std::lock_guard g(cv);
        ready = 1;
        cv.notify();
    });
    {
        std::unique_lock lk(cv);
        t.start();
        EXPECT_TRUE(cv.wait_for([&] { return ready == 1; }, 10s));
        EXPECT_TRUE(lock.locked());
    }
    t.join();
}

TEST_F(Threading, SemaphoreBoundsConcurrency) {
    th::Semaphore sem(2);
    std::atomic<int> inside{0}, most{0};
    th::Barrier all(6);
    std::vector<th::Thread> ts;
    for (int i = 0; i < 6; ++i)
        ts.emplace_back([&] {
            all.wait();
            for (int k = 0; k < 200; ++k) {
                std::lock_guard g(sem);
                const int now = ++inside;
                int m = most.load();
                while (now > m && !most.compare_exchange_weak(m, now)) {
                }
                std::this_thread::yield();
                --inside;
            }
        });
    for (auto& t : ts) t.start();
    for (auto& t : ts) t.join();
    EXPECT_LE(most.load(), 2);
    EXPECT_GE(most.load(), 1);
    EXPECT_EQ(sem.get_value(), 2);

    th::BoundedSemaphore b(1);
    EXPECT_TRUE(b.acquire(false));
    EXPECT_FALSE(b.acquire(true, 10ms));
    b.release();
    EXPECT_THROW(b.release(), std::logic_error);
}

TEST_F(Threading, EventSetWaitClear) {
    th::Event e;
    EXPECT_FALSE(e.wait(10ms));
    th::Thread t([e]() mutable { e.set(); });
    t.start();
    EXPECT_TRUE(e.wait(10s));
    t.join();
    EXPECT_TRUE(e.is_set());
    e.clear();
    EXPECT_FALSE(e.is_set());
}

TEST_F(Threading, BarrierWithCallableAction) {
    int generations = 0;
    th::Barrier b(3, [&generations] { ++generations; });
    std::vector<int> indices(3);
    std::vector<th::Thread> ts;
    for (int i = 0; i < 3; ++i)
        ts.emplace_back([&, i] {
            indices[i] = b.wait();
            b.wait();
        });
    for (auto& t : ts) t.start();
    for (auto& t : ts) t.join();
    EXPECT_EQ(generations, 2);
    EXPECT_EQ(std::set<int>(indices.begin(), indices.end()), (std::set<int>{0, 1, 2}));

    // A timeout breaks it for everyone; abort too.
    th::Barrier lone(2);
    EXPECT_THROW(lone.wait(20ms), mproc::BrokenBarrierError);
    EXPECT_TRUE(lone.broken());
    lone.reset();
    EXPECT_FALSE(lone.broken());
    th::Thread waiter([&] { EXPECT_THROW(lone.wait(), th::BrokenBarrierError); });
    waiter.start();
    while (lone.n_waiting() == 0) std::this_thread::yield();
    lone.abort();
    waiter.join();
}

TEST_F(Threading, ThreadingObjectsDoNotTravel) {
    th::Lock lock;
    mproc::Process p({.start_method = "spawn"}, [](mproc::Lock) {}, static_cast<const mproc::Lock&>(lock));
    EXPECT_THROW(p.start(), std::logic_error);
}

TEST_F(Threading, ExcepthookReceivesEscapingException) {
    std::mutex mu;
    std::vector<std::string> seen;
    th::set_excepthook([&](const th::ExceptHookArgs& a) {
        std::string what;
        try {
            std::rethrow_exception(a.exc_value);
        } catch (const std::exception& e) {
            what = e.what();
        }
        std::lock_guard g(mu);
        seen.push_back(a.thread->name() + "|" + a.exc_type + "|" + what);
    });
    th::Thread t({.name = "thrower"}, [] { throw std::out_of_range("boom"); });
    t.start();
    t.join();
    EXPECT_FALSE(t.is_alive());
    th::set_excepthook({});
    ASSERT_EQ(seen.size(), 1u);
    EXPECT_EQ(seen[0], "thrower|std::out_of_range|boom");

    // The default hook prints as Python does, with the type standing in for the traceback.
    testing::internal::CaptureStderr();
    th::Thread u({.name = "loud"}, [] { throw std::runtime_error("bad"); });
    u.start();
    u.join();
    const std::string err = testing::internal::GetCapturedStderr();
    EXPECT_NE(err.find("Exception in thread loud:\nstd::runtime_error: bad"), std::string::npos) << err;
}

// The child's target returns while its non-daemon thread still runs: the child waits for the
// thread (as Python's process bootstrap does), then exits.
void start_thread_then_return(bool daemonic, mproc::Event returned, mproc::Event release, mproc::Connection out) {
    th::Thread t({.daemon = daemonic}, [release, out = std::move(out)]() mutable {
        release.wait();
        out.send(std::string("thread done"));
    });
    t.start();
    returned.set();
}

TEST_F(Threading, ChildWaitsForNonDaemonThreads) {
    auto [r, w] = mproc::Pipe(false);
    mproc::Event returned, release;
    mproc::Process p({.start_method = "fork"}, start_thread_then_return, false, returned, release, std::move(w));
    p.start();
    ASSERT_TRUE(returned.wait(30s));
    p.join(100ms);
    EXPECT_TRUE(p.is_alive());  // held by its thread
    release.set();
    EXPECT_EQ(r.recv<std::string>(), "thread done");
    p.join(30s);
    EXPECT_EQ(p.exitcode(), 0);
}

TEST_F(Threading, ChildDoesNotWaitForDaemonThreads) {
    auto [r, w] = mproc::Pipe(false);
    mproc::Event returned, release;
    mproc::Process p({.start_method = "fork"}, start_thread_then_return, true, returned, release, std::move(w));
    p.start();
    p.join(30s);
    EXPECT_EQ(p.exitcode(), 0);
    EXPECT_THROW(r.recv<std::string>(), mproc::EOFError);  // the thread never sent
}

// exit() from main (here: a spawned child, a fresh run of this program, calling std::exit)
// waits too: the atexit wait.
void exit_with_thread_running(mproc::Event release, mproc::Connection out) {
    th::Thread t([release, out = std::move(out)]() mutable {
        release.wait();
        out.send(42);
    });
    t.start();
    std::exit(3);
}

TEST_F(Threading, ExitWaitsForNonDaemonThreads) {
    auto [r, w] = mproc::Pipe(false);
    mproc::Event release;
    mproc::Process p({.start_method = "spawn"}, exit_with_thread_running, release, std::move(w));
    p.start();
    p.join(100ms);
    EXPECT_TRUE(p.is_alive());
    release.set();
    EXPECT_EQ(r.recv<int>(), 42);
    p.join(30s);
    EXPECT_EQ(p.exitcode(), 3);
}

// After fork, the forking thread is the child's main thread and the parent's others are gone.
void report_threads(mproc::Connection out) {
    out.send(std::make_tuple(th::active_count(), th::current_thread() == th::main_thread(),
                             th::main_thread().native_id().value_or(0) == th::get_native_id()));
}

TEST_F(Threading, ForkChildSeesOnlyItself) {
    th::Event go;
    th::Thread busy([go]() mutable { go.wait(); });
    busy.start();
    auto [r, w] = mproc::Pipe(false);
    std::tuple<int, bool, bool> got;
    th::Thread forker([&, w = std::move(w)]() mutable {
        mproc::Process p({.start_method = "fork"}, report_threads, std::move(w));
        p.start();
        p.join();
    });
    forker.start();
    forker.join();
    got = r.recv<std::tuple<int, bool, bool>>();
    EXPECT_EQ(std::get<0>(got), 1);
    EXPECT_TRUE(std::get<1>(got));
    EXPECT_TRUE(std::get<2>(got));
    go.set();
    busy.join();
}

TEST(SuggestedThreadCount, FollowsTheRuleOfThumb) {
    EXPECT_EQ(th::suggested_thread_count(0.0, 4), 4);     // CPU-bound: one per CPU
    EXPECT_EQ(th::suggested_thread_count(4.0, 2), 10);    // waits 4x its CPU time
    EXPECT_EQ(th::suggested_thread_count(0.5, 2), 3);
    EXPECT_EQ(th::suggested_thread_count(0.3, 2), 3);     // 2.6 rounds up
    EXPECT_EQ(th::suggested_thread_count(8ms, 2ms, 2), 10);
    EXPECT_EQ(th::suggested_thread_count(0.0), mproc::process_cpu_count());
    EXPECT_THROW(th::suggested_thread_count(-1.0, 2), std::invalid_argument);
    EXPECT_THROW(th::suggested_thread_count(1.0, 0), std::invalid_argument);
    EXPECT_THROW(th::suggested_thread_count(1e12, 2), std::invalid_argument);
    EXPECT_THROW(th::suggested_thread_count(1ms, 0ms, 2), std::invalid_argument);
}

}  // namespace
