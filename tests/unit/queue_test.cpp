// Queues within one process: Python's semantics, bounds, sizes, errors.
#include <gtest/gtest.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <mproc/mproc.hpp>

using namespace std::chrono_literals;

namespace {

TEST(Queue, FifoSizesAndNowait) {
    mproc::Queue<int> q;
    EXPECT_TRUE(q.empty());
    EXPECT_FALSE(q.full());  // unbounded
    for (int i = 0; i < 100; ++i) q.put(i);
    EXPECT_EQ(q.qsize(), 100u);
    for (int i = 0; i < 100; ++i) EXPECT_EQ(q.get(), i);
    EXPECT_THROW(q.get_nowait(), mproc::Empty);
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_THROW(q.get(true, 100ms), mproc::Empty);
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 100ms);
}

// Bytes of memory the queue rings of this process hold (memfds named mproc-queue).
long long queue_ring_bytes() {
    long long total = 0;
    DIR* d = opendir("/proc/self/fd");
    while (dirent* e = readdir(d)) {
        char target[256] = {};
        const std::string link = std::string("/proc/self/fd/") + e->d_name;
        if (readlink(link.c_str(), target, sizeof target - 1) <= 0) continue;
        if (std::string(target).find("memfd:mproc-queue") == std::string::npos) continue;
        struct stat st;
        if (stat(link.c_str(), &st) == 0) total += static_cast<long long>(st.st_blocks) * 512;
    }
    closedir(d);
    return total;
}

// A backlog's pages beyond the first 16 MiB go back once the queue has emptied; a queue that
// keeps up stays within a few MiB.
TEST(Queue, ABacklogsPagesGoBackWhenItDrains) {
    mproc::Queue<std::string> q(mproc::QueueOptions{.capacity_bytes = std::size_t{64} << 20});
    const std::string mib(1 << 20, 'x');
    for (int i = 0; i < 40; ++i) q.put(mib);
    EXPECT_GT(queue_ring_bytes(), 40LL << 20);
    for (int i = 0; i < 40; ++i) EXPECT_EQ(q.get().size(), mib.size());
    EXPECT_LE(queue_ring_bytes(), 17LL << 20);
    for (int i = 0; i < 200; ++i) {  // keeping up: back and forth within the first few MiB
        q.put(mib);
        (void)q.get();
    }
    EXPECT_LE(queue_ring_bytes(), 17LL << 20);
}

TEST(Queue, MaxsizeBounds) {
    mproc::Queue<std::string> q(2);
    q.put("a");
    q.put_nowait("b");
    EXPECT_TRUE(q.full());
    EXPECT_THROW(q.put_nowait("c"), mproc::Full);
    EXPECT_THROW(q.put("c", true, 50ms), mproc::Full);
    std::jthread consumer([&] { EXPECT_EQ(q.get(), "a"); });
    q.put("c", true, 10s);  // room appears when the consumer takes one
    consumer.join();
    EXPECT_EQ(q.get(), "b");
    EXPECT_EQ(q.get(), "c");
    mproc::Queue<int> unbounded(-5);  // below 1: unbounded, as Python
    EXPECT_FALSE(unbounded.full());
}

TEST(Queue, CloseAndJoinThread) {
    mproc::Queue<int> q;
    EXPECT_THROW(q.join_thread(), std::logic_error);  // not closed
    q.put(1);
    q.close();
    EXPECT_THROW(q.put(2), std::logic_error);
    EXPECT_THROW(q.get(), std::logic_error);
    EXPECT_THROW(q.empty(), std::logic_error);  // issue 14, 2.15: Python's empty() polls a closed reader
    q.join_thread();
    q.cancel_join_thread();
}

TEST(Queue, MessagesOfAnySizeAndTheCap) {
    mproc::Queue<std::string> q(mproc::QueueOptions{.capacity_bytes = 4 << 20});
    const std::string big(3 << 20, 'x');
    q.put(big);
    EXPECT_EQ(q.get(), big);
    EXPECT_THROW(q.put(std::string(5 << 20, 'y')), std::length_error);  // larger than the ring
    EXPECT_EQ(q.qsize(), 0u);  // nothing enqueued
    // Many messages of varying sizes through a small ring: wrap-around and page release.
    std::jthread producer([&] {
        for (int i = 0; i < 400; ++i) q.put(std::string(static_cast<std::size_t>(i * 7919 % 300000), static_cast<char>('a' + i % 26)));
    });
    for (int i = 0; i < 400; ++i) {
        const std::string m = q.get(true, 20s);
        const std::string e(static_cast<std::size_t>(i * 7919 % 300000), static_cast<char>('a' + i % 26));
        ASSERT_TRUE(m == e) << "message " << i << ": " << m.size() << " bytes, expected " << e.size();  // no 300 KB dumps
    }
}

TEST(Queue, TypedValuesAndDescriptorsRefused) {
    mproc::Queue<std::vector<std::pair<int, std::string>>> q;
    q.put({{1, "one"}, {2, "two"}});
    EXPECT_EQ(q.get()[1].second, "two");
    mproc::Queue<mproc::Connection> cq;
    auto [a, b] = mproc::Pipe();
    EXPECT_THROW(cq.put(a), std::logic_error);
}

TEST(JoinableQueue, TaskDoneAndJoin) {
    mproc::JoinableQueue<int> q;
    EXPECT_THROW(q.task_done(), std::logic_error);  // more than were put
    for (int i = 0; i < 3; ++i) q.put(i);
    // Every blocking call takes a timeout: nothing is done yet, so join gives up.
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_FALSE(q.join(50ms));
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 45ms);
    std::jthread worker([&] {
        for (int i = 0; i < 3; ++i) {
            q.get();
            q.task_done();
        }
    });
    EXPECT_TRUE(q.join(30s));
    EXPECT_TRUE(q.empty());
    worker.join();
    EXPECT_THROW(q.task_done(), std::logic_error);
}

TEST(SimpleQueue, PutGetEmpty) {
    mproc::SimpleQueue<std::string> q;
    EXPECT_TRUE(q.empty());
    q.put("x");
    EXPECT_FALSE(q.empty());
    EXPECT_EQ(q.get(), "x");
}

}  // namespace
