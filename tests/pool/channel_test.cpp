// The line between a process pool and a worker (src/pool/channel.hpp): messages through rings in
// shared memory, large ones and those with descriptors on the socket, in order either way; a
// writer killed half way leaves nothing half-written to read; an idle pool stops spinning.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <mproc/mproc.hpp>

#include "platform/platform.hpp"
#include "mproc/detail/pool_wire.hpp"
#include "pool/channel.hpp"

using mproc::detail::pool::Channel;

namespace {

std::pair<Channel, Channel> make_channel() {
    auto [a, b] = mproc::Pipe(true);
    return Channel::create(std::move(a), std::move(b));
}

// Message i of a stream: its size and bytes follow from i, so a reader can tell a whole one.
std::string message(std::uint32_t i) {
    std::string m(4 + (i * 7919u) % 3000u, '\0');
    std::memcpy(m.data(), &i, 4);
    for (std::size_t j = 4; j < m.size(); ++j) m[j] = static_cast<char>((i + j) & 0xff);
    return m;
}

// A pool message: the envelope (which tells a Connection how many descriptors come with it),
// then payload.
std::string pool_message(std::string_view payload, std::size_t fds = 0) {
    std::string m;
    const std::size_t at = mproc::detail::pool::begin_message(m);
    m += payload;
    mproc::detail::patch_envelope_fds(m, at, fds);
    return m;
}

std::string_view body(const std::string& m) { return mproc::detail::pool::message_body(m); }

TEST(PoolChannel, MessagesArriveInTheOrderSentWhicheverWayEachTravels) {
    auto [pool, worker] = make_channel();
    const std::string big(Channel::kRingMessage + 1, 'b');
    const auto fd = mproc::platform::make_event();
    pool.send(pool_message("small"));  // on the ring
    pool.send(pool_message(big));      // too large: the socket, a marker on the ring
    const int fds[1] = {fd.get()};
    pool.send(pool_message("with a descriptor", 1), fds);  // descriptors go on the socket
    const std::string head = pool_message("one ");
    const std::string_view parts[3] = {head, "message in ", "parts"};
    pool.send(parts);
    std::vector<int> got;
    ASSERT_TRUE(worker.pending());
    EXPECT_EQ(body(worker.receive(got)), "small");
    EXPECT_EQ(body(worker.receive(got)), big);
    EXPECT_EQ(body(worker.receive(got)), "with a descriptor");
    ASSERT_EQ(got.size(), 1u);
    mproc::platform::UniqueFd received(got[0]);
    EXPECT_EQ(body(worker.receive(got)), "one message in parts");
    EXPECT_FALSE(worker.pending());
    worker.send(pool_message("back"));
    ASSERT_TRUE(pool.pending());
    EXPECT_EQ(body(pool.receive(got)), "back");
}

// Wrapping around the ring many times, both ways.
TEST(PoolChannel, ManyMessagesWrapAroundTheRing) {
    auto [pool, worker] = make_channel();
    std::vector<int> fds;
    for (std::uint32_t i = 0; i < 5000; ++i) {
        pool.send(pool_message(message(i)));
        ASSERT_EQ(body(worker.receive(fds)), message(i)) << i;
        worker.send(pool_message(message(i + 1)));
        ASSERT_EQ(body(pool.receive(fds)), message(i + 1)) << i;
    }
}

// A reader that sleeps is woken by the writer: wait_worker returns once a message comes, and
// says false once the other end is gone with nothing pending.
TEST(PoolChannel, ASleepingWorkerIsWokenAndSeesThePoolGo) {
    auto ends = make_channel();
    Channel pool = std::move(ends.first), worker = std::move(ends.second);
    std::thread writer([&pool] {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));  // past the look: it sleeps
        pool.send(pool_message("wake up"));
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        pool = Channel();  // the pool's end closes
    });
    std::vector<int> fds;
    ASSERT_TRUE(worker.wait_worker());
    EXPECT_EQ(body(worker.receive(fds)), "wake up");
    EXPECT_FALSE(worker.wait_worker());
    writer.join();
}

// Crash safety: a writer SIGKILLed while it writes (at a random moment, many times) leaves only
// whole messages, in order, for the reader; a message that was going on the socket is an
// EOFError, never a torn message.
TEST(PoolChannel, AWriterKilledMidMessageLeavesNothingHalfWritten) {
    std::mt19937 rng(12345);
    for (int round = 0; round < 20; ++round) {
        auto ends = make_channel();
        Channel worker = std::move(ends.second);
        const pid_t child = ::fork();
        ASSERT_GE(child, 0);
        if (child == 0) {
            // Writes until killed. When the reader falls behind, the ring fills (past the room
            // kept for markers a pool never needs: it sends a worker at most two batches and a
            // stop); the refused send wrote nothing, so it is tried again.
            try {
                for (std::uint32_t i = 0;; ++i) {
                    const std::string m = pool_message(message(i));
                    for (;;) {
                        try {
                            ends.first.send(m);
                            break;
                        } catch (const std::runtime_error& e) {
                            if (std::string_view(e.what()).find("ring is full") == std::string_view::npos) throw;
                            std::this_thread::yield();
                        }
                    }
                }
            } catch (...) {
            }
            _exit(1);
        }
        ends.first = Channel();  // the parent's copy of the writer's end: else no end of file
        const std::uint32_t kill_after = std::uniform_int_distribution<std::uint32_t>(1, 3000)(rng);
        std::uint32_t next = 0;
        std::vector<int> fds;
        bool killed = false, eof = false;
        for (;;) {
            if (!killed && next >= kill_after) {
                ::kill(child, SIGKILL);
                ASSERT_EQ(::waitpid(child, nullptr, 0), child);
                killed = true;
            }
            if (!worker.pending()) {
                if (killed) break;
                std::this_thread::yield();
                continue;
            }
            try {
                const std::string& m = worker.receive(fds);
                ASSERT_EQ(body(m), message(next)) << "round " << round << ", message " << next;
                ++next;
            } catch (const mproc::EOFError&) {
                eof = true;  // its marker was published; its socket message died with the writer
                break;
            }
        }
        EXPECT_GE(next, kill_after);
        if (eof) {
            EXPECT_FALSE(worker.pending());
        }
    }
}

// A corrupt ring (the writer's memory overwritten) is a clear error, not a read out of bounds.
TEST(PoolChannel, ACorruptRingIsAClearError) {
    auto [pool, worker] = make_channel();
    pool.send(pool_message("fine"));
    // The pool-to-worker ring's header is the region's first bytes: head, then (a line on) tail.
    auto* head = static_cast<std::atomic<std::uint64_t>*>(worker.rings().region.data());
    std::vector<int> fds;
    head->store(3);  // less than a record's header published
    EXPECT_THROW(worker.receive(fds), mproc::SerializationError);
    head->store(Channel::kRingBytes * 2);  // more than the ring holds
    EXPECT_THROW(worker.receive(fds), mproc::SerializationError);
    // A record saying it is longer than what was published.
    head->store(16);
    auto* data = static_cast<char*>(worker.rings().region.data()) + 512;
    const std::uint32_t lie[2] = {4096, 1};
    std::memcpy(data, lie, sizeof lie);
    EXPECT_THROW(worker.receive(fds), mproc::SerializationError);
}

double cpu_seconds(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string s((std::istreambuf_iterator<char>(in)), {});
    std::istringstream rest(s.substr(s.rfind(')') + 2));  // after the command name
    std::string field;
    double utime = 0, stime = 0;
    for (int i = 3; rest >> field; ++i) {
        if (i == 14) utime = std::stod(field);
        if (i == 15) {
            stime = std::stod(field);
            break;
        }
    }
    return (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

int meet_at(mproc::Barrier b) {
    b.wait(mproc::Timeout(20.0));
    return static_cast<int>(getpid());
}
long square(long x) { return x * x; }

// Workers and waiting threads look for messages before they sleep, spinning: bounded, so an idle
// pool costs no CPU. Below 1% over 5 s (issue 17), the pool's process and its workers together,
// after a burst of round trips that has both sides looking.
TEST(PoolChannel, AnIdlePoolCostsNoCpu) {
    mproc::Pool pool({.processes = 2, .start_method = "fork"});
    mproc::Barrier both(2);
    auto a = pool.apply_async(meet_at, both);
    auto b = pool.apply_async(meet_at, both);
    const std::vector<pid_t> pids{::getpid(), a.get(std::chrono::seconds(30)), b.get(std::chrono::seconds(30))};
    ASSERT_NE(pids[1], pids[2]);
    for (long i = 0; i < 2000; ++i) ASSERT_EQ(pool.apply_async(square, i).get(std::chrono::seconds(30)), i * i);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the looks end (30 us)
    double before = 0, after = 0;
    for (pid_t p : pids) before += cpu_seconds(p);
    const auto t0 = std::chrono::steady_clock::now();
    std::this_thread::sleep_for(std::chrono::seconds(5));  // the measurement's window
    for (pid_t p : pids) after += cpu_seconds(p);
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_LT((after - before) / wall, 0.01) << (after - before) << " s of CPU in " << wall << " s";
    pool.close();
    pool.join();
}

}  // namespace
