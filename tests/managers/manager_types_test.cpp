// SyncManager's queue, synchronization, Array and set types, under every start method; user
// types exposed with MPROC_MANAGED; proxies stored inside managed containers.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <thread>
#include <vector>

#include <mproc/mproc.hpp>

using namespace std::chrono_literals;
namespace mm = mproc::managers;

// A user type, served by name with two methods exposed.
struct Tally {
    long total = 0;
    std::vector<std::string> who;
    void add(const std::string& name, long n) {
        total += n;
        who.push_back(name);
    }
    long sum() const { return total; }
    std::vector<std::string> names() const { return who; }
    void secret() {}
    template <class Ar>
    void serialize(Ar& ar) {
        ar(total, who);
    }
};
MPROC_MANAGED(Tally, add, sum, names);

namespace {

class ManagerTypes : public testing::TestWithParam<std::string> {
protected:
    mm::ManagerOptions opts() { return {.start_method = GetParam()}; }
    mproc::ProcessOptions popts() { return {.start_method = GetParam()}; }
};

void produce(mm::QueueProxy<int> q, int n) {
    for (int i = 0; i < n; ++i) q.put(i);
}

TEST_P(ManagerTypes, QueueBetweenProcessesWithTimeoutsAndBounds) {
    mm::SyncManager m = mproc::Manager(opts());
    auto q = m.Queue<int>();
    mproc::Process p(popts(), produce, q, 100);
    p.start();
    for (int i = 0; i < 100; ++i) ASSERT_EQ(q.get(true, 30s), i);
    p.join(30s);
    EXPECT_TRUE(q.empty());
    EXPECT_THROW(q.get_nowait(), mproc::Empty);
    EXPECT_THROW(q.get(true, 0.05s), mproc::Empty);

    auto bounded = m.Queue<std::string>(2);
    bounded.put("a");
    bounded.put("b");
    EXPECT_TRUE(bounded.full());
    EXPECT_THROW(bounded.put_nowait("c"), mproc::Full);
    EXPECT_THROW(bounded.put("c", true, 0.05s), mproc::Full);
    EXPECT_EQ(bounded.get(), "a");
    bounded.put("c");
    EXPECT_EQ(bounded.qsize(), 2u);
}

void work(mm::JoinableQueueProxy<int> tasks, mm::ListProxy<int> done) {
    for (;;) {
        const int x = tasks.get();
        if (x >= 0) done.append(x * 10);
        tasks.task_done();
        if (x < 0) return;
    }
}

TEST_P(ManagerTypes, JoinableQueueJoinWaitsForEveryTask) {
    mm::SyncManager m = mproc::Manager(opts());
    auto tasks = m.JoinableQueue<int>();
    auto done = m.list<int>();
    mproc::Process p(popts(), work, tasks, done);
    p.start();
    for (int i = 0; i < 20; ++i) tasks.put(i);
    tasks.join();
    EXPECT_EQ(done.size(), 20u);
    tasks.put(-1);
    tasks.join();
    p.join(30s);
    EXPECT_EQ(p.exitcode(), 0);
    EXPECT_THROW(tasks.task_done(), std::logic_error);
}

void add_under_lock(mm::LockProxy lock, mm::ValueProxy<int> v, int n) {
    for (int i = 0; i < n; ++i) {
        std::lock_guard g(lock);
        v.set(v.get() + 1);  // a read-modify-write: only the lock makes it exact
    }
}

TEST_P(ManagerTypes, LockMakesReadModifyWriteExact) {
    mm::SyncManager m = mproc::Manager(opts());
    auto lock = m.Lock();
    auto v = m.Value<int>(0);
    std::vector<mproc::Process> ps;
    for (int i = 0; i < 3; ++i) ps.emplace_back(popts(), add_under_lock, lock, v, 200);
    for (auto& p : ps) p.start();
    for (auto& p : ps) p.join(60s);
    EXPECT_EQ(v.get(), 600);
    EXPECT_FALSE(lock.locked());
    EXPECT_THROW(lock.release(), std::logic_error);
    EXPECT_TRUE(lock.acquire());
    EXPECT_FALSE(lock.acquire(true, 0.05s));
    lock.release();
}

void hold_forever(mm::LockProxy lock, mm::EventProxy held) {
    lock.acquire();
    held.set();
    for (;;) std::this_thread::sleep_for(1s);
}

TEST_P(ManagerTypes, ALockHeldByAKilledProcessIsReleased) {
    mm::SyncManager m = mproc::Manager(opts());
    auto lock = m.Lock();
    auto held = m.Event();
    mproc::Process p(popts(), hold_forever, lock, held);
    p.start();
    ASSERT_TRUE(held.wait(30s));
    EXPECT_FALSE(lock.acquire(false));
    p.kill();
    p.join();
    // Python leaves it locked forever; the server releases it when the holder's connection goes.
    EXPECT_TRUE(lock.acquire(true, 10s));
    lock.release();
}

TEST_P(ManagerTypes, RLockSemaphoreEventConditionBarrier) {
    mm::SyncManager m = mproc::Manager(opts());
    auto r = m.RLock();
    EXPECT_TRUE(r.acquire());
    EXPECT_TRUE(r.acquire());  // recursive for this thread
    r.release();
    r.release();
    EXPECT_THROW(r.release(), std::logic_error);

    auto s = m.Semaphore(2);
    EXPECT_TRUE(s.acquire());
    EXPECT_TRUE(s.acquire());
    EXPECT_FALSE(s.acquire(false));
    s.release(2);
    EXPECT_EQ(s.get_value(), 2);
    auto b = m.BoundedSemaphore(1);
    EXPECT_THROW(b.release(), std::logic_error);
    EXPECT_THROW(m.Semaphore(-1), std::invalid_argument);

    auto e = m.Event();
    EXPECT_FALSE(e.is_set());
    EXPECT_FALSE(e.wait(0.05s));
    e.set();
    EXPECT_TRUE(e.wait());
    e.clear();
    EXPECT_FALSE(e.is_set());

    auto c = m.Condition();
    EXPECT_THROW(c.wait(0.01s), std::logic_error);  // without the lock
    EXPECT_THROW(c.notify(), std::logic_error);
    auto flag = m.Value<int>(0);
    std::thread t([&] {
        std::lock_guard g(c);
        flag.set(1);
        c.notify_all();
    });
    {
        std::unique_lock g(c);
        EXPECT_TRUE(c.wait_for([&] { return flag.get() == 1; }, 30s));
    }
    t.join();
    {
        std::lock_guard g(c);
        EXPECT_FALSE(c.wait(0.05s));  // nobody notifies
    }

    auto bar = m.Barrier(2);
    EXPECT_EQ(bar.parties(), 2);
    int other = -1;
    std::thread u([&] { other = bar.wait(30s); });
    const int mine = bar.wait(30s);
    u.join();
    EXPECT_EQ(std::set<int>({mine, other}), (std::set<int>{0, 1}));
    EXPECT_THROW(bar.wait(0.05s), mproc::BrokenBarrierError);  // alone: the timeout breaks it
    EXPECT_TRUE(bar.broken());
    bar.reset();
    EXPECT_FALSE(bar.broken());
    bar.abort();
    EXPECT_THROW(bar.wait(), mproc::BrokenBarrierError);
}

TEST_P(ManagerTypes, ArrayAndSet) {
    mm::SyncManager m = mproc::Manager(opts());
    auto a = m.Array<double>({1.0, 2.0, 3.0});
    EXPECT_EQ(a.size(), 3u);
    a.set(-1, 9.5);
    EXPECT_EQ(a.get(2), 9.5);
    EXPECT_THROW(a.get(3), std::out_of_range);
    EXPECT_THROW(a.assign({1.0}), std::invalid_argument);
    a.assign({4.0, 5.0, 6.0});
    EXPECT_EQ(a.to_vector(), (std::vector<double>{4.0, 5.0, 6.0}));

    auto s = m.set<std::string>({"x"});
    s.add("y");
    s.add("x");
    EXPECT_EQ(s.size(), 2u);
    EXPECT_TRUE(s.contains("y"));
    s.discard("nothing");
    EXPECT_THROW(s.remove("nothing"), std::out_of_range);
    s.update({"z"});
    EXPECT_EQ(s.items(), (std::set<std::string>{"x", "y", "z"}));
    EXPECT_EQ(s.pop(), "x");
    s.clear();
    EXPECT_EQ(s.size(), 0u);
}

void tally_in_child(mm::Proxy<Tally> t, std::string name) { t.call(&Tally::add, name, 5L); }

TEST_P(ManagerTypes, UserTypesExposeOnlyTheirListedMethods) {
    mm::SyncManager m = mproc::Manager(opts());
    auto t = m.create<Tally>(Tally{10, {"start"}});
    t.call(&Tally::add, std::string("main"), 1L);
    mproc::Process p(popts(), tally_in_child, t, std::string("child"));
    p.start();
    p.join(30s);
    EXPECT_EQ(p.exitcode(), 0);
    EXPECT_EQ(t.call(&Tally::sum), 16);
    EXPECT_EQ(t.call(&Tally::names), (std::vector<std::string>{"start", "main", "child"}));
    EXPECT_THROW(t.call(&Tally::secret), std::invalid_argument);  // not exposed
    auto fresh = m.create<Tally>();
    EXPECT_EQ(fresh.call(&Tally::sum), 0);
}

void fill_nested(mm::ListProxy<mm::DictProxy<std::string, int>> rows) {
    auto row = rows.get(0);
    row.set("from_child", 2);
}

TEST_P(ManagerTypes, ProxiesStoredInsideManagedContainers) {
    mm::SyncManager m = mproc::Manager(opts());
    auto rows = m.list<mm::DictProxy<std::string, int>>();
    {
        auto d = m.dict<std::string, int>({{"a", 1}});
        rows.append(d);
    }  // the list's copy keeps the dict alive
    EXPECT_EQ(m.number_of_objects(), 2u);
    mproc::Process p(popts(), fill_nested, rows);
    p.start();
    p.join(30s);
    EXPECT_EQ(p.exitcode(), 0);
    auto back = rows.get(0);
    EXPECT_EQ(back.items(), (std::map<std::string, int>{{"a", 1}, {"from_child", 2}}));
    rows.clear();  // the last stored reference goes; `back` still holds one
    EXPECT_EQ(back.get("a"), 1);
}

INSTANTIATE_TEST_SUITE_P(StartMethods, ManagerTypes, testing::Values("fork", "spawn", "forkserver"),
                         [](const auto& info) { return info.param; });

}  // namespace
