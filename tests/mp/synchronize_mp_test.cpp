// Synchronization objects and shared values across processes, under every start method.
#include <gtest/gtest.h>

#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <mproc/mproc.hpp>

using namespace std::chrono_literals;

namespace {

void add_under_lock(mproc::Value<int> v, int times) {
    for (int i = 0; i < times; ++i) {
        std::lock_guard g(v.get_lock());
        v.get_obj() += 1;  // read-modify-write as one step under the lock
    }
}

void squares(std::vector<int> in, mproc::Array<int> out, mproc::Value<double> sum) {
    double s = 0;
    for (std::size_t i = 0; i < in.size(); ++i) {
        out.set(i, in[i] * in[i]);
        s += in[i] * in[i];
    }
    sum.set_value(s);
}

void hold_until_event(mproc::Lock l, mproc::Event held, mproc::Event go) {
    l.acquire();
    held.set();
    go.wait();
    l.release();
}

void semaphore_user(mproc::Semaphore s, mproc::Value<int> inside, mproc::Value<int> max_inside) {
    for (int i = 0; i < 50; ++i) {
        s.acquire();
        {
            std::lock_guard g(inside.get_lock());
            inside.get_obj() += 1;
            if (inside.get_obj() > max_inside.get_obj()) max_inside.set_value(inside.get_obj());
        }
        // Stay inside a while, so that a semaphore that let everyone in would be seen to.
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        {
            std::lock_guard g(inside.get_lock());
            inside.get_obj() -= 1;
        }
        s.release();
    }
}

void barrier_party(mproc::Barrier b, mproc::Array<int> indices, int slot) { indices.set(static_cast<std::size_t>(slot), b.wait(20s)); }

void wait_for_flag(mproc::Condition c, mproc::Value<int> flag) {
    std::unique_lock g(c);
    const bool ok = c.wait_for([&] { return flag.value() == 1; }, 20s);
    std::exit(ok ? 0 : 1);
}

class SyncMp : public testing::TestWithParam<std::string> {
protected:
    mproc::ProcessOptions opts() { return {.start_method = GetParam()}; }
};

TEST_P(SyncMp, LockedCounterIsExact) {
    mproc::Value<int> v(0);
    std::vector<mproc::Process> ps;
    for (int i = 0; i < 4; ++i) ps.emplace_back(opts(), add_under_lock, v, 2000);
    for (auto& p : ps) p.start();
    for (auto& p : ps) p.join();
    EXPECT_EQ(v.value(), 8000);
}

TEST_P(SyncMp, ArrayAndValueWrittenByAChild) {
    mproc::Array<int> result(4);
    mproc::Value<double> square_sum;
    mproc::Process p(opts(), squares, std::vector<int>{1, 2, 3, 4}, result, square_sum);
    p.start();
    p.join();
    EXPECT_EQ(result.to_vector(), (std::vector<int>{1, 4, 9, 16}));
    EXPECT_EQ(square_sum.value(), 30.0);
}

TEST_P(SyncMp, LockHeldByAChildExcludesTheParent) {
    mproc::Lock l;
    mproc::Event held, go;
    mproc::Process p(opts(), hold_until_event, l, held, go);
    p.start();
    ASSERT_TRUE(held.wait(20s));
    EXPECT_FALSE(l.acquire(false));
    EXPECT_FALSE(l.acquire(true, 50ms));
    go.set();
    EXPECT_TRUE(l.acquire(true, 20s));
    EXPECT_FALSE(l.owner_died());  // released properly
    l.release();
    p.join();
}

TEST_P(SyncMp, SemaphoreBoundsConcurrency) {
    mproc::Semaphore s(2);
    mproc::Value<int> inside(0), max_inside(0);
    std::vector<mproc::Process> ps;
    for (int i = 0; i < 4; ++i) ps.emplace_back(opts(), semaphore_user, s, inside, max_inside);
    for (auto& p : ps) p.start();
    for (auto& p : ps) p.join();
    EXPECT_LE(max_inside.value(), 2);
    EXPECT_GE(max_inside.value(), 1);
    EXPECT_EQ(inside.value(), 0);
    EXPECT_EQ(s.get_value(), 2);
}

TEST_P(SyncMp, BarrierAcrossProcesses) {
    mproc::Barrier b(3);
    mproc::Array<int> indices(3);
    std::vector<mproc::Process> ps;
    for (int i = 0; i < 3; ++i) ps.emplace_back(opts(), barrier_party, b, indices, i);
    for (auto& p : ps) p.start();
    for (auto& p : ps) p.join();
    auto v = indices.to_vector();
    EXPECT_EQ(std::set<int>(v.begin(), v.end()), (std::set<int>{0, 1, 2}));
}

TEST_P(SyncMp, ConditionNotifiesAChild) {
    mproc::Condition c;
    mproc::Value<int> flag(0);
    mproc::Process p(opts(), wait_for_flag, c, flag);
    p.start();
    {
        std::lock_guard g(c);
        flag.set_value(1);
        c.notify_all();
    }
    p.join();
    EXPECT_EQ(p.exitcode(), 0);
}

INSTANTIATE_TEST_SUITE_P(StartMethods, SyncMp, testing::Values("fork", "spawn", "forkserver"),
                         [](const auto& info) { return info.param; });

}  // namespace
