// BaseManager: a server on TCP (port 0) or a Unix address serving shared objects by name, a
// client that connects, get_server().serve_forever(), the authkey rules, bounded frames and
// connections, and a fuzz test of hostile input while a well-behaved client keeps working.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <random>
#include <string>
#include <future>
#include <thread>
#include <vector>

#include <mproc/mproc.hpp>

using namespace std::chrono_literals;
namespace mm = mproc::managers;
using Jobs = mm::QueueProxy<int>;
using Results = mm::DictProxy<std::string, int>;

namespace {

const std::string kKey = "test-secret";

// A server program in a child process: shares a queue and a dict by name on `address` and
// serves until a client shuts it down; tells the parent the address it listens on.
void serve(mproc::connection::Address address, mproc::Connection tell, std::size_t max_frame, int max_connections) {
    mm::BaseManager m({.address = address, .authkey = kKey, .max_message_size = max_frame, .max_connections = max_connections});
    m.register_shared<Jobs>("jobs");
    m.register_shared<Results>("results");
    mm::Server server = m.get_server();
    tell.send(server.address());
    server.serve_forever();
}

struct ServerProcess {
    std::optional<mproc::Process> process;
    mproc::connection::Address address;
    explicit ServerProcess(const mproc::connection::Address& at, std::size_t max_frame = std::size_t{64} << 20,
                           int max_connections = 64) {
        auto [r, w] = mproc::Pipe(false);
        process.emplace(serve, at, std::move(w), max_frame, max_connections);
        process->start();
        EXPECT_TRUE(r.poll(30s));
        address = r.recv<mproc::connection::Address>();
    }
    ~ServerProcess() {
        if (process->is_alive()) process->kill();
        process->join();
    }
};

void client_program(mproc::connection::Address address, int n) {
    mm::BaseManager client({.address = address, .authkey = kKey});
    client.connect();
    auto jobs = client.get<Jobs>("jobs");
    auto results = client.get<Results>("results");
    for (int i = 0; i < n; ++i) {
        const int x = jobs.get(true, 30s);
        results.set(std::to_string(x), x * x);
    }
}

TEST(BaseManager, ServerAndClientProgramsOverTcpPortZero) {
    ServerProcess server({"127.0.0.1", 0});
    ASSERT_NE(server.address.port, 0);
    mm::BaseManager me({.address = server.address, .authkey = kKey});
    me.connect();
    auto jobs = me.get<Jobs>("jobs");
    for (int i = 0; i < 10; ++i) jobs.put(i);
    mproc::Process client(client_program, server.address, 10);
    client.start();
    client.join(30s);
    ASSERT_EQ(client.exitcode(), 0);
    auto results = me.get<Results>("results");
    EXPECT_EQ(results.size(), 10u);
    EXPECT_EQ(results.get("9"), 81);
    // A name shared as another type, and a name not shared, are clear errors.
    EXPECT_THROW(me.get<mm::QueueProxy<std::string>>("jobs"), std::invalid_argument);
    EXPECT_THROW(me.get<Jobs>("nothing"), std::out_of_range);
    me.shutdown();  // a connected manager leaves the server running
    mm::BaseManager again({.address = server.address, .authkey = kKey});
    again.connect();
    EXPECT_EQ(again.get<Results>("results").size(), 10u);
}

TEST(BaseManager, WrongAuthkeyIsRefused) {
    ServerProcess server({"127.0.0.1", 0});
    mm::BaseManager wrong({.address = server.address, .authkey = "not-the-key"});
    EXPECT_THROW(wrong.connect(), mproc::AuthenticationError);
    mm::BaseManager right({.address = server.address, .authkey = kKey});
    EXPECT_NO_THROW(right.connect());  // the server went on
}

TEST(BaseManager, ANetworkAddressNeedsAnExplicitAuthkey) {
    EXPECT_THROW(mm::BaseManager({.address = {"0.0.0.0", 0}}), std::invalid_argument);
    EXPECT_THROW(mm::BaseManager({.address = {"0.0.0.0", 0}, .authkey = ""}), std::invalid_argument);
    EXPECT_NO_THROW(mm::BaseManager({.address = {"127.0.0.1", 0}}));
    EXPECT_NO_THROW(mm::BaseManager({.address = {"0.0.0.0", 0}, .authkey = "k"}));
    EXPECT_NO_THROW(mm::BaseManager({.address = mproc::connection::Address::abstract("mproc-test-any")}));
}

TEST(BaseManager, ServeForeverInThisProcessUntilStopped) {
    const std::string path = "/tmp/mproc-bm-" + std::to_string(getpid()) + ".sock";
    mm::SyncManager m({.address = mproc::connection::Address::unix_socket(path), .authkey = kKey});
    m.register_shared<Results>("results");
    mm::Server server = m.get_server();
    std::thread t([&] { server.serve_forever(); });
    {
        mm::BaseManager client({.address = server.address(), .authkey = kKey});
        client.connect();
        auto r = client.get<Results>("results");
        r.set("a", 1);
        EXPECT_EQ(r.get("a"), 1);
        EXPECT_EQ(client.number_of_objects(), 1u);
    }
    server.stop();
    t.join();
    EXPECT_NE(access(path.c_str(), F_OK), 0) << "the socket file is removed";
}

TEST(BaseManager, StartedManagerOnTcpReportsItsPort) {
    mm::SyncManager m({.address = {"127.0.0.1", 0}, .authkey = kKey});
    m.start();
    EXPECT_NE(m.address().port, 0);
    auto l = m.list<int>({1, 2});
    EXPECT_EQ(l.size(), 2u);
    EXPECT_THROW(m.start(), std::logic_error);
}

// Writes raw bytes to a socket, ignoring a peer that has closed.
void raw_write(int fd, const std::string& bytes) { (void)::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL); }

std::string frame(const std::string& payload) {
    std::string f(4, '\0');
    const auto n = static_cast<std::uint32_t>(payload.size());
    f[0] = static_cast<char>(n >> 24);
    f[1] = static_cast<char>(n >> 16);
    f[2] = static_cast<char>(n >> 8);
    f[3] = static_cast<char>(n);
    return f + payload;
}

TEST(BaseManager, AnOversizedFrameClosesOnlyItsConnection) {
    ServerProcess server({"127.0.0.1", 0}, 4096);
    mm::BaseManager good({.address = server.address, .authkey = kKey});
    good.connect();
    auto results = good.get<Results>("results");
    mproc::Connection bad = mproc::connection::Client(server.address, kKey);
    bad.send_bytes(std::string(100000, 'x'));  // past the server's 4096-byte limit
    EXPECT_THROW((void)bad.recv_bytes(), std::exception);
    results.set("still", 1);
    EXPECT_EQ(results.get("still"), 1);
}

TEST(BaseManager, ConnectionsPastTheCapAreClosedAndTheOthersServed) {
    ServerProcess server({"127.0.0.1", 0}, std::size_t{64} << 20, 3);
    mm::BaseManager good({.address = server.address, .authkey = kKey});
    good.connect();  // one connection (this thread's)
    auto results = good.get<Results>("results");
    std::vector<mproc::Connection> held;
    for (int i = 0; i < 2; ++i) held.push_back(mproc::connection::Client(server.address, kKey));
    // A fourth connection is closed at once: its handshake fails.
    EXPECT_THROW((void)mproc::connection::Client(server.address, kKey), std::exception);
    results.set("a", 1);  // the first three are served
    EXPECT_EQ(results.get("a"), 1);
    held.clear();
    // Room again (the server notices the closed ones as their threads end).
    bool connected = false;
    for (int i = 0; i < 200 && !connected; ++i) {
        try {
            mproc::Connection c = mproc::connection::Client(server.address, kKey);
            connected = true;
        } catch (const std::exception&) {
            std::this_thread::sleep_for(10ms);  // the server's threads for the closed ones are ending
        }
    }
    EXPECT_TRUE(connected);
}

// Copies of one proxy used from several threads at once: each thread has its own connection,
// so requests and replies never mix.
TEST(BaseManager, OneProxyFromManyThreads) {
    mm::SyncManager m = mproc::Manager();
    auto l = m.list<int>();
    std::vector<std::thread> ts;
    for (int t = 0; t < 4; ++t)
        ts.emplace_back([l, t]() mutable {
            for (int i = 0; i < 200; ++i) l.append(t * 1000 + i);
        });
    for (auto& t : ts) t.join();
    auto v = l.to_vector();
    EXPECT_EQ(v.size(), 800u);
    std::sort(v.begin(), v.end());
    EXPECT_EQ(std::adjacent_find(v.begin(), v.end()), v.end());
}

long rss_kib(int pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(f, line))
        if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
    return -1;
}

// At least 100,000 random and mutated frames, authenticated and not, while a well-behaved
// client keeps working; the server neither crashes nor grows without bound.
TEST(BaseManager, FuzzedFramesNeverStopTheServer) {
    ServerProcess server({"127.0.0.1", 0}, 64 * 1024);
    mm::BaseManager good({.address = server.address, .authkey = kKey});
    good.connect();
    auto results = good.get<Results>("results");
    std::atomic<bool> done{false};
    std::atomic<long> good_calls{0};
    std::string good_error;
    // The good client connects (and authenticates) before the flood begins: the test is about
    // an established client that keeps working, and a handshake racing 2,000 junk connections
    // for the server's connection slots on a loaded machine may be turned away, as it should.
    std::promise<void> connected;
    std::jthread well_behaved([&] {
        try {
            for (int i = 0; !done.load(); ++i) {
                results.set("k", i);
                if (results.get("k") != i) throw std::runtime_error("wrong value read back");
                if (++good_calls == 1) connected.set_value();
            }
        } catch (const std::exception& e) {
            good_error = e.what();
            if (good_calls == 0) connected.set_value();
        }
    });
    // Whatever ends this test (a FAIL, an exception), the client stops and is joined first.
    struct StopClient {
        std::atomic<bool>& done;
        ~StopClient() { done = true; }
    } stop_client{done};
    EXPECT_EQ(connected.get_future().wait_for(30s), std::future_status::ready);

    // Valid requests to mutate: (op, id, name, args) archives like a client's.
    std::vector<std::string> valid;
    for (std::uint8_t op : {1, 2, 3, 4, 6, 7})
        for (const char* name : {"set", "get", "list<int>", "results", "Lock", "items"}) {
            std::string r;
            mproc::detail::OutputArchive ar(r);
            ar(op, static_cast<std::uint64_t>(op % 3), std::string(name), std::string("\x01\x02\x03\x04", 4));
            valid.push_back(r);
        }
    std::mt19937_64 rng(20261126);
    auto random_bytes = [&](std::size_t n) {
        std::string s(n, '\0');
        for (auto& c : s) c = static_cast<char>(rng());
        return s;
    };
    auto mutated = [&] {
        std::string s = valid[rng() % valid.size()];
        switch (rng() % 4) {
            case 0:  // flip bytes
                for (int k = 0; k < 1 + static_cast<int>(rng() % 4); ++k) s[rng() % s.size()] = static_cast<char>(rng());
                break;
            case 1:  // cut short
                s.resize(rng() % s.size());
                break;
            case 2:  // grow a length field's bytes
                s.insert(rng() % s.size(), random_bytes(1 + rng() % 16));
                break;
            default:  // entirely random
                s = random_bytes(rng() % 200);
        }
        // Any authenticated client may ask the server to shut down (as in Python): that is not
        // malformed input, so the fuzzer never sends that op (the request's first byte).
        if (!s.empty() && s[0] == 5) s[0] = 6;
        return s;
    };

    const long rss_before = rss_kib(*server.process->pid());
    long frames = 0;
    // Not authenticated: random bytes and frames where the handshake is expected.
    for (int i = 0; i < 2000; ++i, ++frames) {
        mproc::Connection c = mproc::connection::Client(server.address);  // no authkey: skips the handshake
        if (i % 2) raw_write(c.fileno(), random_bytes(rng() % 300));
        else raw_write(c.fileno(), frame(mutated()));
    }
    // Authenticated: mutated requests and malformed framing, reconnecting when the server closes.
    std::optional<mproc::Connection> c;
    while (frames < 100000) {
        ++frames;
        try {
            // Inside the try: while the junk connections' threads are still going, the server may
            // be at its connection limit and turn this one away, as it should.
            if (!c || c->closed()) c.emplace(mproc::connection::Client(server.address, kKey));
            if (rng() % 50 == 0) {
                std::string junk = random_bytes(1 + rng() % 64);  // framing itself broken
                if (junk.size() > 4 && junk[4] == 5) junk[4] = 6;
                raw_write(c->fileno(), junk);
                c.reset();
                continue;
            }
            const std::string request = mutated();
            c->send_bytes(request);
            if (!c->poll(10s)) {
                std::string hex;
                for (unsigned char b : request) hex += "0123456789abcdef"[b >> 4], hex += "0123456789abcdef"[b & 15];
                FAIL() << "the server did not answer a malformed request within 10 s: " << hex;
            }
            (void)c->recv_bytes();  // an error reply
        } catch (const std::exception&) {
            c.reset();  // the server closed this connection: it may
        }
    }
    c.reset();
    done = true;
    well_behaved.join();
    EXPECT_EQ(good_error, "");
    EXPECT_GT(good_calls.load(), 0);
    EXPECT_TRUE(server.process->is_alive());
    EXPECT_EQ(results.size(), 1u);  // and it still answers
    const long rss = rss_kib(*server.process->pid());
    // Bounded growth: the frames sent hold about 10 MB, and each kept would cost a heap block
    // besides (16 MB and more if all were); the server grew by about 2 MiB here. (Under
    // AddressSanitizer its quarantine keeps up to 256 MiB of freed memory resident: only a
    // loose bound there.)
#if defined(__SANITIZE_ADDRESS__)
    const long bound_kib = (256 + 200) * 1024;
#else
    const long bound_kib = 8 * 1024;
#endif
    EXPECT_LT(rss - rss_before, bound_kib) << "server RSS " << rss_before << " KiB before, " << rss << " KiB after "
                                           << frames << " frames";
    std::cout << "fuzz: " << frames << " frames; the good client made " << good_calls.load()
              << " calls meanwhile; server RSS " << rss << " KiB\n";
}

}  // namespace
