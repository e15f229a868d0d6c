// Queues between processes, under every start method.
#include <gtest/gtest.h>

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

void consume(mproc::Queue<std::pair<int, int>> in, mproc::Queue<std::pair<int, int>> out) {
    for (;;) {
        auto item = in.get();
        if (item.first < 0) return;
        out.put(item);
    }
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
    for (int c = 0; c < 2; ++c) ps.emplace_back(opts(), consume, in, out);
    for (auto& p : ps) p.start();
    std::map<int, std::vector<int>> seen;
    for (int k = 0; k < 4000; ++k) {
        auto [id, i] = out.get(true, 30s);
        seen[id].push_back(i);
    }
    in.put({-1, 0});
    in.put({-1, 0});
    for (auto& p : ps) p.join();
    for (int id = 0; id < 2; ++id) {
        auto& v = seen[id];
        ASSERT_EQ(v.size(), 2000u);
        std::sort(v.begin(), v.end());
        for (int i = 0; i < 2000; ++i) ASSERT_EQ(v[i], i);  // each exactly once
    }
    EXPECT_TRUE(out.empty());
}

INSTANTIATE_TEST_SUITE_P(StartMethods, QueueMp, testing::Values("fork", "spawn", "forkserver"),
                         [](const auto& info) { return info.param; });

}  // namespace
