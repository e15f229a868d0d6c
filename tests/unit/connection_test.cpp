// Connections within one process (threads as the peers): framing, errors, limits, locking.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <mproc/detail/archive.hpp>
#include <mproc/mproc.hpp>

#include "spare_bytes.hpp"

using namespace std::chrono_literals;
namespace mc = mproc::connection;

namespace {

TEST(Pipe, DuplexTypedValues) {
    auto [a, b] = mproc::Pipe();
    a.send(std::vector<int>{1, 2, 3});
    EXPECT_EQ(b.recv<std::vector<int>>(), (std::vector<int>{1, 2, 3}));
    b.send(std::string("back"));
    EXPECT_EQ(a.recv<std::string>(), "back");
    a.send(std::map<std::string, double>{{"pi", 3.14}});
    EXPECT_EQ((b.recv<std::map<std::string, double>>().at("pi")), 3.14);
}

TEST(Pipe, WrongTypeNamesBothAndKeepsTheConnection) {
    auto [a, b] = mproc::Pipe();
    a.send(std::vector<int>{1, 2});
    try {
        (void)b.recv<std::string>();
        FAIL();
    } catch (const mproc::SerializationError& e) {
        EXPECT_NE(std::string(e.what()).find("std::vector<int"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("basic_string"), std::string::npos) << e.what();
    }
    a.send(42);
    EXPECT_EQ(b.recv<int>(), 42);  // still usable, in step
}

TEST(Pipe, BytesOffsetSizeAndInto) {
    auto [a, b] = mproc::Pipe();
    a.send_bytes("raw");
    EXPECT_EQ(b.recv_bytes(), "raw");
    a.send_bytes("0123456789", 2, 3);
    EXPECT_EQ(b.recv_bytes(), "234");
    a.send_bytes("0123456789", 7);
    EXPECT_EQ(b.recv_bytes(), "789");
    EXPECT_THROW(a.send_bytes("abc", 4), std::invalid_argument);
    EXPECT_THROW(a.send_bytes("abc", 1, 3), std::invalid_argument);
    a.send_bytes("");  // an empty message is a message
    EXPECT_EQ(b.recv_bytes(), "");

    a.send_bytes("hello");
    std::string buf(8, '.');
    EXPECT_EQ(b.recv_bytes_into(std::span<char>(buf), 2), 5u);
    EXPECT_EQ(buf, "..hello.");

    a.send_bytes("too long for it");
    char small[4];
    try {
        b.recv_bytes_into(std::span<char>(small, 4));
        FAIL();
    } catch (const mproc::BufferTooShort& e) {
        EXPECT_EQ(e.message(), "too long for it");  // the whole message, nothing lost
    }
    a.send_bytes("next");
    EXPECT_EQ(b.recv_bytes(), "next");
}

TEST(Pipe, PollAndEOF) {
    auto [a, b] = mproc::Pipe();
    EXPECT_FALSE(b.poll());
    EXPECT_FALSE(b.poll(50ms));
    a.send(1);
    EXPECT_TRUE(b.poll());
    EXPECT_EQ(b.recv<int>(), 1);
    a.close();
    EXPECT_TRUE(a.closed());
    EXPECT_TRUE(b.poll());  // end of file is readable
    EXPECT_THROW(b.recv<int>(), mproc::EOFError);
    EXPECT_THROW(b.recv_bytes(), mproc::EOFError);
    EXPECT_THROW(a.send(1), std::logic_error);   // use after close
    EXPECT_THROW(a.recv_bytes(), std::logic_error);
    EXPECT_THROW(a.fileno(), std::logic_error);
}

TEST(Pipe, OneWayEnds) {
    auto [r, w] = mproc::Pipe(false);
    EXPECT_TRUE(r.readable());
    EXPECT_FALSE(r.writable());
    EXPECT_FALSE(w.readable());
    EXPECT_TRUE(w.writable());
    w.send(std::string("down the pipe"));
    EXPECT_EQ(r.recv<std::string>(), "down the pipe");
    EXPECT_THROW(r.send(1), std::logic_error);
    EXPECT_THROW(w.recv<int>(), std::logic_error);
}

TEST(Pipe, MessagesOfEverySizeAroundRecordBoundaries) {
    // Duplex ends carry messages in records: a first one of 64 KiB with the header, then
    // records of up to 1 MiB. Sizes on both sides of each boundary, and a message of many.
    auto ends = mproc::Pipe();  // not a structured binding: clang 14 cannot capture those
    auto& a = ends.first;
    auto& b = ends.second;
    const std::size_t first = 64 * 1024 - 4;
    for (std::size_t n : {std::size_t{0}, std::size_t{1}, first - 1, first, first + 1, std::size_t{64 * 1024},
                          std::size_t{1 << 20} - 1, std::size_t{1 << 20}, std::size_t{1 << 20} + 1,
                          std::size_t{5 << 20} + 7, std::size_t{40 << 20} + 3}) {
        std::string m(n, '\0');
        for (std::size_t i = 0; i < n; ++i) m[i] = static_cast<char>(i * 131 + n);
        std::jthread t([&] { a.send_bytes(m); });
        const std::string got = b.recv_bytes();
        t.join();
        ASSERT_EQ(got.size(), n);
        ASSERT_EQ(got, m) << n;
        std::jthread t2([&] { a.send(m); });
        ASSERT_EQ(b.recv<std::string>(), m) << n;
        t2.join();
    }
}

// A long message is received whole into memory the process already holds (the spare, or the
// buffer of the message before), its records landing in place; nothing of what that memory
// held before shows. Without such memory the buffer grows as the bytes arrive.
TEST(Pipe, ALongMessageLandsInMemoryAlreadyHeldWithOnlyItsOwnBytes) {
    auto ends = mproc::Pipe();  // not a structured binding: clang 14 cannot capture those
    auto& a = ends.first;
    auto& b = ends.second;
    const std::size_t n = mproc::detail::kSpareFrom + (3 << 20) + 5;
    auto pattern = [](std::size_t size, int seed) {
        std::string m(size, '\0');
        for (std::size_t i = 0; i < size; ++i) m[i] = static_cast<char>(i * 131 + static_cast<std::size_t>(seed));
        return m;
    };
    std::string stale;
    mproc::detail::reserve_bytes(stale, n + (4 << 20));
    stale.assign(n + (4 << 20), 's');
    const char* memory = stale.data();
    mproc::detail::recycle_bytes(std::move(stale));

    const std::string m = pattern(n, 1);
    std::jthread t([&] { a.send_bytes(m); });
    const std::string got = b.recv_bytes();
    t.join();
    EXPECT_EQ(got.data(), memory);
    ASSERT_EQ(got.size(), n);
    EXPECT_EQ(got, m);

    // Typed: the first grows its buffer (the spare is taken), the next ones reuse it, shorter
    // and longer.
    for (std::size_t size : {n, n - (1 << 20) - 3, n + 11}) {
        const std::string next = pattern(size, static_cast<int>(size % 97));
        std::jthread t2([&] { a.send(next); });
        ASSERT_EQ(b.recv<std::string>(), next) << size;
    }
}

TEST(Pipe, SkippingALongMessageKeepsTheNextOne) {
    auto ends = mproc::Pipe();  // not a structured binding: clang 14 cannot capture those
    auto& a = ends.first;
    auto& b = ends.second;
    std::jthread t([&] {
        a.send_bytes(std::string(3 << 20, 'x'));  // several records
        a.send_bytes("next");
    });
    EXPECT_THROW(b.recv_bytes(1000), std::system_error);
    EXPECT_EQ(b.recv_bytes(), "next");
    t.join();
    std::jthread t2([&] { a.send_bytes(std::string(3 << 20, 'y')); });
    char small[16];
    try {
        b.recv_bytes_into(std::span<char>(small, sizeof small));
        FAIL();
    } catch (const mproc::BufferTooShort& e) {
        EXPECT_EQ(e.message(), std::string(3 << 20, 'y'));
    }
    t2.join();
}

TEST(Pipe, BrokenPipeIsAnErrorNotSigpipe) {
    for (bool duplex : {true, false}) {
        auto [r, w] = mproc::Pipe(duplex);
        r.close();
        try {
            w.send_bytes(std::string(100000, 'x'));
            FAIL() << "sent to a closed peer";
        } catch (const std::system_error& e) {
            EXPECT_EQ(e.code().value(), EPIPE);
        }
    }
    // And no SIGPIPE is left pending for the thread.
    sigset_t pending;
    sigpending(&pending);
    EXPECT_FALSE(sigismember(&pending, SIGPIPE));
}

TEST(Pipe, MaxlengthSkipsTheMessageAndStaysUsable) {
    auto [a, b] = mproc::Pipe();
    a.send_bytes(std::string(1000, 'x'));
    a.send_bytes("after");
    try {
        b.recv_bytes(100);
        FAIL();
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code().value(), EMSGSIZE);
    }
    EXPECT_EQ(b.recv_bytes(), "after");
}

TEST(Pipe, LengthAboveTheLimitClosesWithoutAllocating) {
    int sv[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    mproc::Connection c(sv[0]);
    c.set_max_message_size(1 << 20);
    // A header that announces 2^62 bytes (the 8-byte form) and then nothing.
    const std::int32_t minus_one = static_cast<std::int32_t>(htonl(0xffffffffu));
    const std::uint64_t huge = htobe64(std::uint64_t{1} << 62);
    ASSERT_EQ(write(sv[1], &minus_one, 4), 4);
    ASSERT_EQ(write(sv[1], &huge, 8), 8);
    try {
        c.recv_bytes();
        FAIL();
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code().value(), EMSGSIZE);
    }
    EXPECT_TRUE(c.closed());
    close(sv[1]);
}

TEST(Pipe, PythonsLongFormHeaderIsRead) {
    int sv[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    mproc::Connection c(sv[0]);
    const std::int32_t minus_one = static_cast<std::int32_t>(htonl(0xffffffffu));
    const std::uint64_t five = htobe64(5);
    ASSERT_EQ(write(sv[1], &minus_one, 4), 4);
    ASSERT_EQ(write(sv[1], &five, 8), 8);
    ASSERT_EQ(write(sv[1], "hello", 5), 5);
    EXPECT_EQ(c.recv_bytes(), "hello");
    close(sv[1]);
}

TEST(Pipe, EndOfFileInsideAMessageSaysSo) {
    int sv[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    mproc::Connection c(sv[0]);
    const std::uint32_t ten = htonl(10);
    ASSERT_EQ(write(sv[1], &ten, 4), 4);
    ASSERT_EQ(write(sv[1], "abc", 3), 3);
    close(sv[1]);
    try {
        c.recv_bytes();
        FAIL();
    } catch (const mproc::ProcessError& e) {
        EXPECT_NE(std::string(e.what()).find("end of file during message"), std::string::npos) << e.what();
    }
}

// Each message is its index repeated; a receiver that sees a mixed message saw interleaving.
std::string pattern(int sender, int i) {
    const std::size_t size = 1 + static_cast<std::size_t>((i * 7919 + sender * 104729) % 300000);
    return std::string(size, static_cast<char>('a' + sender));
}

TEST(Pipe, ConcurrentSendersNeverInterleave) {
    auto ends = mproc::Pipe();  // not a structured binding: clang 14 cannot capture those
    auto& a = ends.first;
    auto& b = ends.second;
    const int senders = 4, each = 60;
    std::vector<std::thread> ts;
    for (int s = 0; s < senders; ++s)
        ts.emplace_back([&, s] {
            for (int i = 0; i < each; ++i) a.send_bytes(pattern(s, i));
        });
    std::map<char, int> seen;
    for (int k = 0; k < senders * each; ++k) {
        const std::string m = b.recv_bytes();
        ASSERT_FALSE(m.empty());
        ASSERT_EQ(m.find_first_not_of(m[0]), std::string::npos) << "interleaved message";
        const int s = m[0] - 'a';
        ASSERT_EQ(m, pattern(s, seen[m[0]]++));  // FIFO per sender
    }
    for (auto& t : ts) t.join();
}

TEST(Pipe, AConnectionTravelsOverAConnection) {
    auto [a, b] = mproc::Pipe();
    auto [x, y] = mproc::Pipe();
    a.send(std::move(y));  // y's descriptor goes along
    auto y2 = b.recv<mproc::Connection>();
    x.send(std::string("through the passed end"));
    EXPECT_EQ(y2.recv<std::string>(), "through the passed end");
    y2.send(7);
    EXPECT_EQ(x.recv<int>(), 7);
    auto [r, w] = mproc::Pipe(false);
    auto [p, q] = mproc::Pipe();
    EXPECT_THROW(w.send(std::move(q)), std::logic_error);  // a pipe cannot carry descriptors
    EXPECT_THROW(mproc::dumps(p), std::logic_error);
}

TEST(Wait, ReturnsTheReadyOnes) {
    auto [a, b] = mproc::Pipe();
    auto [c, d] = mproc::Pipe();
    EXPECT_TRUE(mc::wait({&b, &d}, 20ms).empty());
    c.send(1);
    auto ready = mc::wait({&b, &d}, 1s);
    ASSERT_EQ(ready.size(), 1u);
    EXPECT_EQ(ready[0].connection(), &d);
    a.send(2);
    EXPECT_EQ(mc::wait({&b, &d}).size(), 2u);
}

// Listener and Client.
void echo_once(mc::Listener* l, std::optional<std::string> expect_error) {
    try {
        mc::Connection c = l->accept(10s);
        c.send_bytes(c.recv_bytes());
        if (expect_error) ADD_FAILURE() << "expected an error: " << *expect_error;
    } catch (const std::exception& e) {
        if (!expect_error || std::string(e.what()).find(*expect_error) == std::string::npos) ADD_FAILURE() << e.what();
    }
}

TEST(Listener, TcpPortZeroWithKey) {
    mc::Listener l({"127.0.0.1", 0}, "secret");
    EXPECT_GT(l.address().port, 0);
    EXPECT_EQ(l.address().host, "127.0.0.1");
    std::jthread server(echo_once, &l, std::nullopt);
    mc::Connection c = mc::Client(l.address(), "secret");
    c.send_bytes("ping");
    EXPECT_EQ(c.recv_bytes(), "ping");
    server.join();
    ASSERT_TRUE(l.last_accepted());
    EXPECT_EQ(l.last_accepted()->host, "127.0.0.1");
}

TEST(Listener, WrongKeyFailsOnBothSides) {
    mc::Listener l({"127.0.0.1", 0}, "right");
    std::jthread server(echo_once, &l, std::string("digest received was wrong"));
    EXPECT_THROW(mc::Client(l.address(), "wrong"), mproc::AuthenticationError);
    server.join();
}

TEST(Listener, UnixPathAbstractNameAndDefault) {
    {
        mc::Listener def;  // a fresh Unix socket in a private directory
        ASSERT_TRUE(def.address().is_unix());
        const std::string path = def.address().path;
        struct stat st;
        EXPECT_EQ(stat(path.c_str(), &st), 0);
        std::jthread server(echo_once, &def, std::nullopt);
        mc::Connection c = mc::Client(def.address());
        c.send_bytes("unix");
        EXPECT_EQ(c.recv_bytes(), "unix");
        server.join();
        def.close();
        EXPECT_NE(stat(path.c_str(), &st), 0);  // removed at close
    }
    const std::string name = "mproc-test-" + std::to_string(getpid());
    mc::Listener abs(mc::Address::abstract(name), "k");
    EXPECT_EQ(abs.address().str(), "@" + name);
    std::jthread server(echo_once, &abs, std::nullopt);
    mc::Connection c = mc::Client(abs.address(), "k");
    c.send_bytes("abstract");
    EXPECT_EQ(c.recv_bytes(), "abstract");
    server.join();
}

TEST(Listener, AcceptTimesOut) {
    mc::Listener l({"127.0.0.1", 0});
    EXPECT_THROW(l.accept(50ms), mproc::TimeoutError);
    l.close();
    EXPECT_THROW(l.accept(), std::logic_error);
}

TEST(Listener, StalledOrHostileHandshakeIsBounded) {
    mc::Listener l({"127.0.0.1", 0}, "key");
    // A client that connects and says nothing: accept gives up at its timeout.
    mc::Connection silent = mc::Client(l.address());
    EXPECT_THROW(l.accept(200ms), mproc::TimeoutError);
    // A client that answers the challenge with a huge frame: refused before reading it.
    std::jthread hostile([&] {
        mc::Connection c = mc::Client(l.address());
        (void)c.recv_bytes();
        c.send_bytes(std::string(100000, 'x'));
    });
    EXPECT_THROW(l.accept(10s), mproc::AuthenticationError);
    hostile.join();
}

TEST(Listener, ConnectionRefused) {
    mc::Listener l({"127.0.0.1", 0});
    const mc::Address gone = l.address();
    l.close();
    EXPECT_THROW(mc::Client(gone), std::system_error);
}

}  // namespace
