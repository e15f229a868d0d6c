// A producer or consumer killed at any point (SIGKILL inside put or get) never blocks the
// others and never leaves a half message to be read.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <map>
#include <random>
#include <string>
#include <thread>

#include <mproc/mproc.hpp>

using namespace std::chrono_literals;

namespace {

// Puts (id, i, a payload whose every byte is i % 251) forever.
void producer(mproc::Queue<std::pair<std::pair<int, int>, std::string>> q, int id, mproc::Event started) {
    started.set();
    for (int i = 0;; ++i)
        q.put({{id, i}, std::string(static_cast<std::size_t>(1 + (i * 7919) % 100000), static_cast<char>(i % 251))});
}

// Takes messages forever (some of them die with it: a message taken by a killed consumer is
// gone, as in Python; what matters is that no other is damaged or blocked).
void consumer(mproc::Queue<std::pair<std::pair<int, int>, std::string>> q, mproc::Event started) {
    started.set();
    for (;;) (void)q.get();
}

bool whole(const std::pair<std::pair<int, int>, std::string>& m) {
    const int i = m.first.second;
    return m.second.size() == static_cast<std::size_t>(1 + (i * 7919) % 100000) &&
           m.second.find_first_not_of(static_cast<char>(i % 251)) == std::string::npos;
}

class QueueKills : public testing::TestWithParam<std::string> {
protected:
    mproc::ProcessOptions opts() { return {.start_method = GetParam()}; }
};

TEST_P(QueueKills, KilledProducersAndConsumersNeverWedgeOrCorrupt) {
    mproc::Queue<std::pair<std::pair<int, int>, std::string>> q(mproc::QueueOptions{.capacity_bytes = 8 << 20});
    std::mt19937 rng(777);
    std::map<int, int> last;  // per producer: the last index seen, FIFO per producer
    for (int round = 0; round < 12; ++round) {
        mproc::Event p_started, c_started;
        mproc::Process p(opts(), producer, q, round, p_started);
        mproc::Process c(opts(), consumer, q, c_started);
        p.start();
        c.start();
        ASSERT_TRUE(p_started.wait(20s));
        ASSERT_TRUE(c_started.wait(20s));
        std::this_thread::sleep_for(std::chrono::microseconds(rng() % 20000));  // a random moment
        // Kill both, in a random order, wherever they are (inside put, inside get, or between).
        if (rng() % 2) {
            p.kill();
            c.kill();
        } else {
            c.kill();
            p.kill();
        }
        p.join();
        c.join();
        // Whatever is in the queue is whole and in order per producer. (The producer may have
        // filled the ring before the kills: drain it first.)
        for (;;) {
            std::pair<std::pair<int, int>, std::string> m;
            try {
                m = q.get_nowait();
            } catch (const mproc::Empty&) {
                break;
            }
            ASSERT_TRUE(whole(m)) << "round " << round << ": a damaged message from producer " << m.first.first;
            auto it = last.find(m.first.first);
            if (it != last.end()) {
                ASSERT_GT(m.first.second, it->second) << "out of order";
            }
            last[m.first.first] = m.first.second;
        }
        // And the queue still works: nobody is left holding it.
        const std::pair<std::pair<int, int>, std::string> marker{{-1, round}, std::string(1 + (round * 7919) % 100000, static_cast<char>(round % 251))};
        q.put(marker, true, 10s);
        EXPECT_EQ(q.get(true, 10s), marker);
        EXPECT_EQ(q.qsize(), 0u);
    }
}

INSTANTIATE_TEST_SUITE_P(StartMethods, QueueKills, testing::Values("fork", "spawn", "forkserver"),
                         [](const auto& info) { return info.param; });

}  // namespace
