// Queues between processes, under every start method.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include <mproc/mproc.hpp>

using namespace std::chrono_literals;

namespace {

void square_list(std::vector<int> mylist, mproc::Queue<int> q) {
    for (int num : mylist) q.put(num * num);
}

void put_fifty_mib(mproc::Queue<std::string> q) {
    for (int i = 0; i < 50; ++i) q.put(std::string(1 << 20, static_cast<char>('a' + i % 26)));
}

void produce(mproc::Queue<std::pair<int, int>> q, int id, int n) {
    for (int i = 0; i < n; ++i) q.put({id, i});
}

// Forwards (producer, i) as (consumer * 10 + producer, i): what one consumer took from one
// producer must come in that producer's order.
void consume(mproc::Queue<std::pair<int, int>> in, mproc::Queue<std::pair<int, int>> out, int consumer) {
    for (;;) {
        auto item = in.get();
        if (item.first < 0) return;
        out.put({consumer * 10 + item.first, item.second});
    }
}

// Takes numbers until -1, puts each one's square, and marks every item it took done.
void square_worker(mproc::JoinableQueue<int> tasks, mproc::Queue<int> results) {
    for (;;) {
        const int x = tasks.get();
        if (x >= 0) results.put(x * x);
        tasks.task_done();
        if (x < 0) return;
    }
}

// Puts n messages of `size` bytes, message i filled with i % 251.
void put_filled(mproc::Queue<std::string> q, int n, int size) {
    for (int i = 0; i < n; ++i) q.put(std::string(static_cast<std::size_t>(size), static_cast<char>(i % 251)));
}

class QueueMp : public testing::TestWithParam<std::string> {
protected:
    mproc::ProcessOptions opts() { return {.start_method = GetParam()}; }
};

TEST_P(QueueMp, SquaresComeOutInOrder) {
    mproc::Queue<int> q;
    mproc::Process p(opts(), square_list, std::vector<int>{1, 2, 3, 4}, q);
    p.start();
    p.join();
    std::vector<int> got;
    while (!q.empty()) got.push_back(q.get());
    EXPECT_EQ(got, (std::vector<int>{1, 4, 9, 16}));
}

TEST_P(QueueMp, AChildThatPutsFiftyMiBCanBeJoinedBeforeAnyoneReads) {
    mproc::Queue<std::string> q;
    mproc::Process p(opts(), put_fifty_mib, q);
    p.start();
    p.join(30s);  // Python deadlocks here: its feeder thread waits for a reader
    ASSERT_EQ(p.exitcode(), 0) << "the producer could not exit before its data was read";
    EXPECT_EQ(q.qsize(), 50u);
    for (int i = 0; i < 50; ++i) EXPECT_EQ(q.get(), std::string(1 << 20, static_cast<char>('a' + i % 26)));
}

TEST_P(QueueMp, TwoProducersTwoConsumersFifoPerProducer) {
    mproc::Queue<std::pair<int, int>> in, out;
    std::vector<mproc::Process> ps;
    for (int id = 0; id < 2; ++id) ps.emplace_back(opts(), produce, in, id, 2000);
    for (int c = 0; c < 2; ++c) ps.emplace_back(opts(), consume, in, out, c);
    for (auto& p : ps) p.start();
    std::map<int, std::vector<int>> seen;  // consumer * 10 + producer -> items, as taken
    for (int k = 0; k < 4000; ++k) {
        auto [key, i] = out.get(true, 30s);
        seen[key].push_back(i);
    }
    in.put({-1, 0});
    in.put({-1, 0});
    for (auto& p : ps) p.join();
    for (int id = 0; id < 2; ++id) {
        std::vector<int> all;
        for (int c = 0; c < 2; ++c) {
            const auto& v = seen[c * 10 + id];
            // FIFO per producer: each consumer took that producer's items in the order put.
            EXPECT_TRUE(std::is_sorted(v.begin(), v.end())) << "consumer " << c << ", producer " << id;
            all.insert(all.end(), v.begin(), v.end());
        }
        ASSERT_EQ(all.size(), 2000u);
        std::sort(all.begin(), all.end());
        for (int i = 0; i < 2000; ++i) ASSERT_EQ(all[static_cast<std::size_t>(i)], i);  // each exactly once
    }
    EXPECT_TRUE(out.empty());
}

TEST_P(QueueMp, JoinWaitsForTaskDoneInOtherProcesses) {
    mproc::JoinableQueue<int> tasks;
    mproc::Queue<int> results;
    std::vector<mproc::Process> ps;
    for (int w = 0; w < 2; ++w) ps.emplace_back(opts(), square_worker, tasks, results);
    for (auto& p : ps) p.start();
    for (int i = 0; i < 1000; ++i) tasks.put(i);
    tasks.join();  // returns only when both workers have marked all 1000 done
    EXPECT_EQ(results.qsize(), 1000u);
    long sum = 0;
    for (int i = 0; i < 1000; ++i) sum += results.get_nowait();
    EXPECT_EQ(sum, 332833500L);  // the sum of the squares below 1000
    tasks.put(-1);
    tasks.put(-1);
    tasks.join();
    for (auto& p : ps) p.join(30s);
    for (auto& p : ps) EXPECT_EQ(p.exitcode(), 0);
    EXPECT_THROW(tasks.task_done(), std::logic_error);  // one more than was put
}

// A ring of the smallest capacity (2 MiB) and a bound of 3 messages: the producer waits for
// room again and again, and positions go round the ring (and jump back to its start) many
// times; every message arrives whole and in order.
TEST_P(QueueMp, ManyTimesRoundASmallBoundedRing) {
    mproc::Queue<std::string> q(mproc::QueueOptions{.maxsize = 3, .capacity_bytes = 2 << 20});
    const int n = 300, size = 300000;
    mproc::Process p(opts(), put_filled, q, n, size);
    p.start();
    for (int i = 0; i < n; ++i) {
        const std::string m = q.get(true, 30s);
        ASSERT_EQ(m.size(), static_cast<std::size_t>(size));
        ASSERT_EQ(m.find_first_not_of(static_cast<char>(i % 251)), std::string::npos) << "message " << i;
        ASSERT_LE(q.qsize(), 3u);
    }
    p.join(30s);
    EXPECT_EQ(p.exitcode(), 0);
    EXPECT_TRUE(q.empty());
}

INSTANTIATE_TEST_SUITE_P(StartMethods, QueueMp, testing::Values("fork", "spawn", "forkserver"),
                         [](const auto& info) { return info.param; });

}  // namespace
