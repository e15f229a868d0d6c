// Connections between processes, under every start method.
#include <gtest/gtest.h>
#include <unistd.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include <mproc/mproc.hpp>

using namespace std::chrono_literals;
namespace mc = mproc::connection;

namespace {

void echo_typed(mproc::Connection c) {
    for (;;) {
        auto v = c.recv<std::vector<int>>();
        if (v.empty()) return;
        for (int& x : v) x *= x;
        c.send(v);
    }
}

// Sends `count` messages, each a run of one letter, sized by the index.
void send_runs(mproc::Connection c, char letter, int count) {
    for (int i = 0; i < count; ++i)
        c.send_bytes(std::string(1 + static_cast<std::size_t>((i * 7919) % 200000), letter));
}

// Receives until "STOP"; reports how many whole messages it got, and whether any was mixed.
void receive_runs(mproc::Connection in, mproc::Connection report) {
    int whole = 0, mixed = 0;
    for (;;) {
        const std::string m = in.recv_bytes();
        if (m == "STOP") break;
        if (m.find_first_not_of(m[0]) == std::string::npos)
            ++whole;
        else
            ++mixed;
    }
    report.send(std::pair<int, int>{whole, mixed});
}

void exit_after_recv(mproc::Connection c) {  // waits for a word from the parent, then ends
    (void)c.recv<int>();
}

class ConnectionMp : public testing::TestWithParam<std::string> {
protected:
    mproc::ProcessOptions opts() { return {.start_method = GetParam()}; }
};

TEST_P(ConnectionMp, EndGivenToChildTalksBack) {
    auto [mine, theirs] = mproc::Pipe();
    mproc::Process p(opts(), echo_typed, std::move(theirs));
    p.start();
    for (int i = 1; i <= 50; ++i) {
        mine.send(std::vector<int>{i, i + 1});
        EXPECT_EQ(mine.recv<std::vector<int>>(), (std::vector<int>{i * i, (i + 1) * (i + 1)}));
    }
    mine.send(std::vector<int>{});
    p.join();
    EXPECT_EQ(p.exitcode(), 0);
}

TEST_P(ConnectionMp, OneWayPipeToChild) {
    auto [r, w] = mproc::Pipe(false);
    mproc::Process p(opts(), [](mproc::Connection out) { out.send(std::string("from the child")); }, std::move(w));
    p.start();
    EXPECT_EQ(r.recv<std::string>(), "from the child");
    p.join();
    EXPECT_THROW(r.recv<std::string>(), mproc::EOFError);  // the only writer is gone
}

TEST_P(ConnectionMp, TwoProcessesSendingOnOneEndNeverInterleave) {
    auto [in, out] = mproc::Pipe();
    mproc::Process a(opts(), send_runs, out.dup(), 'a', 150);
    mproc::Process b(opts(), send_runs, out.dup(), 'b', 150);
    out.close();
    a.start();
    b.start();
    std::map<char, int> next;
    for (int k = 0; k < 300; ++k) {
        const std::string m = in.recv_bytes();
        ASSERT_FALSE(m.empty());
        ASSERT_EQ(m.find_first_not_of(m[0]), std::string::npos) << "two messages interleaved";
        const int i = next[m[0]]++;
        ASSERT_EQ(m.size(), 1 + static_cast<std::size_t>((i * 7919) % 200000)) << "out of order from " << m[0];
    }
    a.join();
    b.join();
    EXPECT_EQ(a.exitcode(), 0);
    EXPECT_EQ(b.exitcode(), 0);
    EXPECT_THROW(in.recv_bytes(), mproc::EOFError);  // every sender is gone
}

TEST_P(ConnectionMp, TwoProcessesReceivingFromOneEndEachGetWholeMessages) {
    auto [in, out] = mproc::Pipe();
    auto [reports, report_end] = mproc::Pipe();
    mproc::Process r1(opts(), receive_runs, in.dup(), report_end.dup());
    mproc::Process r2(opts(), receive_runs, in.dup(), report_end.dup());
    in.close();
    report_end.close();
    r1.start();
    r2.start();
    for (int i = 0; i < 200; ++i) out.send_bytes(std::string(1 + static_cast<std::size_t>((i * 7919) % 200000), static_cast<char>('a' + i % 26)));
    out.send_bytes("STOP");
    out.send_bytes("STOP");
    auto [w1, m1] = reports.recv<std::pair<int, int>>();
    auto [w2, m2] = reports.recv<std::pair<int, int>>();
    EXPECT_EQ(w1 + w2, 200);
    EXPECT_EQ(m1 + m2, 0);
    r1.join();
    r2.join();
}

TEST_P(ConnectionMp, ChildExitIsEndOfFile) {
    auto [mine, theirs] = mproc::Pipe();
    mproc::Process p(opts(), exit_after_recv, std::move(theirs));
    p.start();
    mine.send(1);
    p.join();
    EXPECT_THROW(mine.recv<int>(), mproc::EOFError);
}

TEST_P(ConnectionMp, WaitOnConnectionsAndSentinels) {
    auto [mine, theirs] = mproc::Pipe();
    auto [quiet, quiet_end] = mproc::Pipe();
    mproc::Process p(opts(), exit_after_recv, std::move(theirs));
    p.start();
    EXPECT_TRUE(mc::wait({&quiet, p}, 50ms).empty());
    mine.send(1);
    const auto ready = mc::wait({&quiet, p}, 20s);
    ASSERT_EQ(ready.size(), 1u);
    EXPECT_EQ(ready[0].fileno(), p.sentinel());
    EXPECT_EQ(ready[0].connection(), nullptr);
    p.join();
}

INSTANTIATE_TEST_SUITE_P(StartMethods, ConnectionMp, testing::Values("fork", "spawn", "forkserver"),
                         [](const auto& info) { return info.param; });

}  // namespace
