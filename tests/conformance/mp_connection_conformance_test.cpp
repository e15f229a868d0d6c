// mproc::Pipe, Connection, Listener and Client checked against CPython's own tests: CPython
// Lib/test/_test_multiprocessing.py, classes _TestConnection, _TestListener,
// _TestListenerClient, _TestPoll and _TestPicklingConnections. CPython runs the process classes
// under the fork, spawn and forkserver start methods; so do the TEST_P tests here (TestWait,
// TestInvalidHandle and OtherTest are in mp_wait_conformance_test.cpp).
//
// Python raises OSError for a connection used after close() or in a direction it does not have
// (write-only, read-only); mproc raises std::logic_error: /work/shared/API.md, "Exceptions":
// misuse (start twice, use after close) throws std::logic_error.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdlib>
#include <chrono>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include <mproc/mproc.hpp>

using namespace std::chrono_literals;
using mproc::Connection;
using mproc::connection::Address;
using mproc::connection::Client;
using mproc::connection::Listener;

namespace {

void sleep_secs(double s) { std::this_thread::sleep_for(std::chrono::duration<double>(s)); }

constexpr double TIMEOUT1 = 0.1;

// Python's multiprocessing.connection.families on Linux: AF_UNIX (a fresh socket path, the
// default address) and AF_INET (loopback, a free port).
std::vector<Address> families() { return {Address{}, Address{"127.0.0.1", 0}}; }

class StartMethod : public testing::TestWithParam<std::string> {
protected:
    mproc::ProcessOptions opts() { return {.start_method = GetParam()}; }
};

// _TestConnection._echo: echoes every message until an empty one.
void echo(Connection conn) {
    for (;;) {
        std::string msg = conn.recv_bytes();
        if (msg.empty()) break;
        conn.send_bytes(msg);
    }
    conn.close();
}

class TestConnection : public StartMethod {};

// _TestConnection.test_connection: objects and bytes through an echoing child; recv_bytes_into
// with and without an offset; BufferTooShort holding the whole message; poll() with no, a
// negative and a TIMEOUT1 timeout; a 16 MiB message; readable/writable; EOFError once the child
// is gone.
TEST_P(TestConnection, test_connection) {
    auto [conn, child_conn] = mproc::Pipe();
    mproc::Process p(opts(), echo, child_conn.dup());
    p.set_daemon(true);
    p.start();

    const std::tuple<int, double, std::optional<int>> seq{1, 2.25, std::nullopt};  // [1, 2.25, None]
    const std::string msg = "hello world";
    std::string longmsg;
    for (int i = 0; i < 10; ++i) longmsg += msg;
    const std::array<int, 4> arr{0, 1, 2, 3};  // array('i', range(4))
    const std::string_view arr_bytes(reinterpret_cast<const char*>(arr.data()), sizeof arr);

    EXPECT_GE(conn.fileno(), 0);

    conn.send(seq);
    EXPECT_EQ((conn.recv<std::tuple<int, double, std::optional<int>>>()), seq);

    conn.send_bytes(msg);
    EXPECT_EQ(conn.recv_bytes(), msg);

    {
        std::array<int, 10> buffer{};
        conn.send_bytes(arr_bytes);
        EXPECT_EQ(conn.recv_bytes_into(std::span<char>(reinterpret_cast<char*>(buffer.data()), sizeof buffer)),
                  sizeof arr);
        EXPECT_EQ(buffer, (std::array<int, 10>{0, 1, 2, 3, 0, 0, 0, 0, 0, 0}));
    }
    {
        std::array<int, 10> buffer{};
        conn.send_bytes(arr_bytes);
        EXPECT_EQ(conn.recv_bytes_into(std::span<char>(reinterpret_cast<char*>(buffer.data()), sizeof buffer),
                                       3 * sizeof(int)),
                  sizeof arr);
        EXPECT_EQ(buffer, (std::array<int, 10>{0, 0, 0, 0, 1, 2, 3, 0, 0, 0}));
    }
    {
        std::string buffer(40, ' ');
        conn.send_bytes(longmsg);
        try {
            const auto res = conn.recv_bytes_into(std::span<char>(buffer.data(), buffer.size()));
            ADD_FAILURE() << "expected BufferTooShort, got " << res;
        } catch (const mproc::BufferTooShort& e) {
            EXPECT_EQ(e.message(), longmsg);
        }
    }

    EXPECT_FALSE(conn.poll());
    EXPECT_FALSE(conn.poll(-1s));
    EXPECT_FALSE(conn.poll(TIMEOUT1 * 1s));

    conn.send(std::optional<int>{});  // None
    sleep_secs(0.1);                  // as CPython
    EXPECT_TRUE(conn.poll(TIMEOUT1 * 1s));
    EXPECT_EQ(conn.recv<std::optional<int>>(), std::nullopt);

    const std::string really_big_msg(std::size_t{16} << 20, 'X');
    conn.send_bytes(really_big_msg);
    EXPECT_TRUE(conn.recv_bytes() == really_big_msg);

    conn.send_bytes("");  // SENTINEL: tell child to quit
    child_conn.close();

    EXPECT_TRUE(conn.readable());
    EXPECT_TRUE(conn.writable());
    EXPECT_THROW(conn.recv<int>(), mproc::EOFError);
    EXPECT_THROW(conn.recv_bytes(), mproc::EOFError);

    p.join();
}

// _TestConnection.test_duplex_false: Pipe(duplex=False) gives (reader, writer); each end works
// one way only, and the other direction raises (OSError; mproc: std::logic_error).
TEST_P(TestConnection, test_duplex_false) {
    auto [reader, writer] = mproc::Pipe(false);
    writer.send(1);
    EXPECT_EQ(reader.recv<int>(), 1);
    EXPECT_TRUE(reader.readable());
    EXPECT_FALSE(reader.writable());
    EXPECT_FALSE(writer.readable());
    EXPECT_TRUE(writer.writable());
    EXPECT_THROW(reader.send(2), std::logic_error);
    EXPECT_THROW(writer.recv<int>(), std::logic_error);
    EXPECT_THROW(writer.poll(), std::logic_error);
}

// _TestConnection.test_spawn_close: the parent may close the child's end right after start(),
// before the child has set itself up.
TEST_P(TestConnection, test_spawn_close) {
    auto [conn, child_conn] = mproc::Pipe();
    mproc::Process p(opts(), echo, child_conn.dup());
    p.set_daemon(true);
    p.start();
    child_conn.close();  // this might complete before child initializes

    conn.send_bytes("hello");
    EXPECT_EQ(conn.recv_bytes(), "hello");
    conn.send_bytes("");
    conn.close();
    p.join();
}

// _TestConnection.test_sendbytes: send_bytes(buf, offset, size) sends that slice; an offset or
// size outside the buffer raises ValueError (mproc: std::invalid_argument). (The negative offset
// and size cases cannot be written for std::size_t.)
TEST_P(TestConnection, test_sendbytes) {
    const std::string msg = "abcdefghijklmnopqrstuvwxyz";
    auto [a, b] = mproc::Pipe();

    a.send_bytes(msg);
    EXPECT_EQ(b.recv_bytes(), msg);
    a.send_bytes(msg, 5);
    EXPECT_EQ(b.recv_bytes(), msg.substr(5));
    a.send_bytes(msg, 7, 8);
    EXPECT_EQ(b.recv_bytes(), msg.substr(7, 8));
    a.send_bytes(msg, 26);
    EXPECT_EQ(b.recv_bytes(), "");
    a.send_bytes(msg, 26, 0);
    EXPECT_EQ(b.recv_bytes(), "");

    EXPECT_THROW(a.send_bytes(msg, 27), std::invalid_argument);
    EXPECT_THROW(a.send_bytes(msg, 22, 5), std::invalid_argument);
    EXPECT_THROW(a.send_bytes(msg, 26, 1), std::invalid_argument);
}

// _TestConnection._writefd: optionally fills every free descriptor below 256 (so the one that
// arrives is above it), then writes data through the descriptor it is sent. (mproc has no
// reduction.send_handle/recv_handle: a descriptor travels as the Connection that owns it.)
void writefd(Connection conn, std::string data, bool create_dummy_fds) {
    if (create_dummy_fds)
        for (int i = 0; i < 256; ++i)
            if (fcntl(i, F_GETFD) == -1) dup2(conn.fileno(), i);
    Connection w = conn.recv<Connection>();
    if (create_dummy_fds && w.fileno() < 256) std::_Exit(4);
    w.send_bytes(data);
    w.close();
}

// _TestConnection.test_fd_transfer: a descriptor sent to a child works there: what the child
// writes through it arrives (CPython: a file the child writes "foo" into; here the write end of
// a pipe whose read end the parent keeps).
TEST_P(TestConnection, test_fd_transfer) {
    auto [conn, child_conn] = mproc::Pipe(true);
    mproc::Process p(opts(), writefd, std::move(child_conn), std::string("foo"), false);
    p.set_daemon(true);
    p.start();
    auto [r, w] = mproc::Pipe(false);
    conn.send(w);
    w.close();
    p.join();
    EXPECT_EQ(p.exitcode(), 0);
    EXPECT_EQ(r.recv_bytes(), "foo");
}

// _TestConnection.test_large_fd_transfer (issue #11657): the same with descriptors above 256 on
// both sides: the parent sends one numbered 256 or more, and the child's free descriptors below
// 256 are taken first.
TEST_P(TestConnection, test_large_fd_transfer) {
    auto [conn, child_conn] = mproc::Pipe(true);
    mproc::Process p(opts(), writefd, std::move(child_conn), std::string("bar"), true);
    p.set_daemon(true);
    p.start();
    int fds[2];
    ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);
    int newfd = 256;
    while (fcntl(newfd, F_GETFD) != -1) ++newfd;
    ASSERT_EQ(dup3(fds[1], newfd, O_CLOEXEC), newfd);
    close(fds[1]);
    Connection r(fds[0], true, false);
    {
        Connection w(newfd, false, true);
        conn.send(w);
    }
    p.join();
    EXPECT_EQ(p.exitcode(), 0);
    EXPECT_EQ(r.recv_bytes(), "bar");
}

// _TestConnection._send_data_without_fd: writes one raw byte on the connection's descriptor.
void send_data_without_fd(Connection conn) {
    if (::write(conn.fileno(), "", 1) != 1) std::_Exit(2);
}

// _TestConnection.test_missing_fd_transfer: receiving a descriptor where the data that came
// carries none raises (Python: RuntimeError from reduction.recv_handle; mproc has no
// recv_handle: recv<Connection>() of the raw byte raises mproc::ProcessError, connection.hpp's
// "end of file inside a message").
TEST_P(TestConnection, test_missing_fd_transfer) {
    auto [conn, child_conn] = mproc::Pipe();
    mproc::Process p(opts(), send_data_without_fd, std::move(child_conn));
    p.set_daemon(true);
    p.start();
    EXPECT_THROW(conn.recv<Connection>(), mproc::ProcessError);
    p.join();
}

// _TestConnection.test_context: `with a, b:` closes both at the exit (mproc: close(), as the
// destructor does); recv() afterwards raises (OSError; mproc: std::logic_error).
TEST_P(TestConnection, test_context) {
    auto [a, b] = mproc::Pipe();
    a.send(1729);
    EXPECT_EQ(b.recv<int>(), 1729);
    EXPECT_FALSE(a.closed());
    EXPECT_FALSE(b.closed());
    a.close();
    b.close();
    EXPECT_TRUE(a.closed());
    EXPECT_TRUE(b.closed());
    EXPECT_THROW(a.recv<int>(), std::logic_error);
    EXPECT_THROW(b.recv<int>(), std::logic_error);
}

INSTANTIATE_TEST_SUITE_P(StartMethods, TestConnection, testing::Values("fork", "spawn", "forkserver"));

// _TestListener.test_multiple_bind: a second Listener on the address of a live one raises
// OSError (mproc: std::system_error), for each family.
TEST(TestListener, test_multiple_bind) {
    for (const Address& family : families()) {
        Listener l(family);
        EXPECT_THROW(Listener{l.address()}, std::system_error) << l.address().str();
        l.close();
    }
}

// _TestListener.test_context: Listener, Client and the accepted connection in `with` blocks;
// accept() after the listener's exit raises (OSError; mproc: std::logic_error).
TEST(TestListener, test_context) {
    Listener l;
    {
        Connection c = Client(l.address());
        Connection d = l.accept();
        c.send(1729);
        EXPECT_EQ(d.recv<int>(), 1729);
    }
    l.close();
    EXPECT_THROW(l.accept(), std::logic_error);
}

// _TestListener.test_empty_authkey (bpo-43952): an empty authkey is a key like any other: the
// client in a thread authenticates with it and its message arrives.
TEST(TestListener, test_empty_authkey) {
    const std::string key;
    Listener listener(Address{}, key);
    std::thread thread([addr = listener.address(), key] {
        Connection client = Client(addr, key);
        client.send(1729);
    });
    {
        Connection d = listener.accept(60s);
        EXPECT_EQ(d.recv<int>(), 1729);
    }
    thread.join();
    listener.close();
    EXPECT_THROW(listener.accept(), std::logic_error);
}

// _TestListener.test_abstract_socket: a Linux abstract socket address ("\0something").
TEST(TestListener, test_abstract_socket) {
    Listener listener(Address::abstract("mproc-conformance-something-" + std::to_string(getpid())));
    {
        Connection client = Client(listener.address());
        Connection d = listener.accept();
        client.send(1729);
        EXPECT_EQ(d.recv<int>(), 1729);
    }
    listener.close();
    EXPECT_THROW(listener.accept(), std::logic_error);
}

// _TestListenerClient._test: connects, says hello, closes.
void client_hello(Address address) {
    Connection conn = Client(address);
    conn.send(std::string("hello"));
    conn.close();
}

class TestListenerClient : public StartMethod {};

// _TestListenerClient.test_listener_client: a child process connects to a Listener of each
// family and its message arrives.
TEST_P(TestListenerClient, test_listener_client) {
    for (const Address& family : families()) {
        Listener l(family);
        mproc::Process p(opts(), client_hello, l.address());
        p.set_daemon(true);
        p.start();
        Connection conn = l.accept();
        EXPECT_EQ(conn.recv<std::string>(), "hello");
        p.join();
        l.close();
    }
}

// _TestListenerClient.test_issue14725: a client that connected, wrote and closed before
// accept() is still accepted, and its message read.
TEST_P(TestListenerClient, test_issue14725) {
    Listener l;
    mproc::Process p(opts(), client_hello, l.address());
    p.set_daemon(true);
    p.start();
    sleep_secs(1);  // as CPython: by now the client has connected, written and closed
    Connection conn = l.accept();
    EXPECT_EQ(conn.recv<std::string>(), "hello");
    conn.close();
    p.join();
    l.close();
}

// _TestListenerClient.test_issue16955: poll(1) on the client sees the accepted end's message.
TEST_P(TestListenerClient, test_issue16955) {
    for (const Address& fam : families()) {
        Listener l(fam);
        Connection c = Client(l.address());
        Connection a = l.accept();
        a.send_bytes("hello");
        EXPECT_TRUE(c.poll(1s));
        a.close();
        c.close();
        l.close();
    }
}

INSTANTIATE_TEST_SUITE_P(StartMethods, TestListenerClient, testing::Values("fork", "spawn", "forkserver"));

class TestPoll : public StartMethod {};

// _TestPoll.test_empty_string: an empty message makes poll() true, and it stays true.
TEST_P(TestPoll, test_empty_string) {
    auto [a, b] = mproc::Pipe();
    EXPECT_FALSE(a.poll());
    b.send_bytes("");
    EXPECT_TRUE(a.poll());
    EXPECT_TRUE(a.poll());
}

void child_strings(Connection conn, std::vector<std::string> strings) {
    for (const auto& s : strings) {
        sleep_secs(0.1);
        conn.send_bytes(s);
    }
    conn.close();
}

// _TestPoll.test_strings: messages (some empty) sent 0.1 s apart arrive whole and in order
// between short polls.
TEST_P(TestPoll, test_strings) {
    const std::vector<std::string> strings{"hello", "", "a", "b", "", "bye", "", "lop"};
    auto [a, b] = mproc::Pipe();
    mproc::Process p(opts(), child_strings, std::move(b), strings);
    p.start();
    for (const auto& s : strings) {
        for (int i = 0; i < 200; ++i)
            if (a.poll(0.01s)) break;
        EXPECT_EQ(a.recv_bytes(), s);
    }
    p.join();
}

void child_boundaries(Connection r) { r.poll(5s); }

// _TestPoll.test_boundaries: a poll() in another process must not pull in part of a message:
// after it, a whole message is still there to read.
TEST_P(TestPoll, test_boundaries) {
    auto [r, w] = mproc::Pipe(false);
    mproc::Process p(opts(), child_boundaries, r.dup());
    p.start();
    sleep_secs(2);  // as CPython
    const std::vector<std::string> L{"first", "second"};
    for (const auto& obj : L) w.send_bytes(obj);
    w.close();
    p.join();
    const std::string got = r.recv_bytes();
    EXPECT_TRUE(got == L[0] || got == L[1]) << got;
}

void child_dont_merge(Connection b) {
    b.send_bytes("a");
    b.send_bytes("b");
    b.send_bytes("cd");
}

// _TestPoll.test_dont_merge: messages sent back to back stay separate; poll() does not consume.
TEST_P(TestPoll, test_dont_merge) {
    auto [a, b] = mproc::Pipe();
    EXPECT_FALSE(a.poll(0s));
    EXPECT_FALSE(a.poll(0.1s));

    mproc::Process p(opts(), child_dont_merge, b.dup());
    p.start();

    EXPECT_EQ(a.recv_bytes(), "a");
    EXPECT_TRUE(a.poll(1s));
    EXPECT_TRUE(a.poll(1s));
    EXPECT_EQ(a.recv_bytes(), "b");
    EXPECT_TRUE(a.poll(1s));
    EXPECT_TRUE(a.poll(1s));
    EXPECT_TRUE(a.poll(0s));
    EXPECT_EQ(a.recv_bytes(), "cd");

    p.join();
}

INSTANTIATE_TEST_SUITE_P(StartMethods, TestPoll, testing::Values("fork", "spawn", "forkserver"));

std::string upper(std::string s) {
    for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return s;
}

// _TestPicklingConnections._listener: for each family, listens, sends its address, accepts, and
// sends the accepted connection itself back; then waits for the parent's word.
void pickling_listener(Connection conn, std::vector<Address> families) {
    for (const Address& fam : families) {
        Listener l(fam);
        conn.send(l.address());
        Connection new_conn = l.accept();
        conn.send(new_conn);
        new_conn.close();
        l.close();
    }
    conn.recv<int>();
}

// _TestPicklingConnections._remote: connects to each address it is sent and says the message
// in upper case.
void pickling_remote(Connection conn) {
    for (;;) {
        auto job = conn.recv<std::optional<std::pair<Address, std::string>>>();
        if (!job) break;
        Connection client = Client(job->first);
        client.send(upper(job->second));
        client.close();
    }
    conn.close();
}

class TestPicklingConnections : public StartMethod {};

// _TestPicklingConnections.test_pickling: a connection accepted in one child, sent to the
// parent over a pipe, carries what a second child wrote to its peer, for each family. (The
// part with a plain socket object is left out: mproc sends Connections, not sockets.)
TEST_P(TestPicklingConnections, test_pickling) {
    auto [lconn, lconn0] = mproc::Pipe();
    mproc::Process lp(opts(), pickling_listener, std::move(lconn0), families());
    lp.set_daemon(true);
    lp.start();

    auto [rconn, rconn0] = mproc::Pipe();
    mproc::Process rp(opts(), pickling_remote, std::move(rconn0));
    rp.set_daemon(true);
    rp.start();

    for (const Address& fam : families()) {
        const std::string msg = "This connection uses family " + std::string(fam.is_unix() ? "AF_UNIX" : "AF_INET");
        const auto address = lconn.recv<Address>();
        rconn.send(std::optional<std::pair<Address, std::string>>(std::pair{address, msg}));
        Connection new_conn = lconn.recv<Connection>();
        EXPECT_EQ(new_conn.recv<std::string>(), upper(msg));
    }
    rconn.send(std::optional<std::pair<Address, std::string>>{});
    lconn.send(0);

    rconn.close();
    lconn.close();
    lp.join();
    rp.join();
    EXPECT_EQ(lp.exitcode(), 0);
    EXPECT_EQ(rp.exitcode(), 0);
}

void child_access(Connection conn) {
    Connection w = conn.recv<Connection>();
    w.send(std::string("all is well"));
    w.close();

    Connection r = conn.recv<Connection>();
    const std::string msg = r.recv<std::string>();
    conn.send(msg + msg);
    conn.close();
}

// _TestPicklingConnections.test_access: the write end, then the read end, of a one-way pipe sent
// to a child keep their direction there and work.
TEST_P(TestPicklingConnections, test_access) {
    auto [conn, child_conn] = mproc::Pipe();
    mproc::Process p(opts(), child_access, std::move(child_conn));
    p.set_daemon(true);
    p.start();

    {
        auto [r, w] = mproc::Pipe(false);
        conn.send(w);
        w.close();
        EXPECT_EQ(r.recv<std::string>(), "all is well");
        r.close();
    }
    {
        auto [r, w] = mproc::Pipe(false);
        conn.send(r);
        r.close();
        w.send(std::string("foobar"));
        w.close();
        EXPECT_EQ(conn.recv<std::string>(), "foobarfoobar");
    }
    p.join();
    EXPECT_EQ(p.exitcode(), 0);
}

INSTANTIATE_TEST_SUITE_P(StartMethods, TestPicklingConnections, testing::Values("fork", "spawn", "forkserver"));

}  // namespace
