// CPython's Lib/test/_test_multiprocessing.py, ported: TestStartMethod, TestIgnoreEINTR,
// TestNamedResource and MiscTestCase.test_large_pool. CPython runs these unittest.TestCase
// classes once per start-method module; the ones that start processes are TEST_P over fork,
// spawn and forkserver here, the ones that loop over the methods themselves are TEST.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <mproc/mproc.hpp>

#include "leak_check.hpp"

using namespace std::chrono_literals;

namespace {

const auto kStartMethods = testing::Values("fork", "spawn", "forkserver");
auto param_name = [](const auto& info) { return std::string(info.param); };

void nothing() {}
void sleep_seconds(double s) { std::this_thread::sleep_for(std::chrono::duration<double>(s)); }

void report_start_method(mproc::Queue<std::string> q) { q.put(mproc::get_start_method()); }

std::string child_start_method(const mproc::Context& ctx) {
    mproc::Queue<std::string> q = ctx.Queue<std::string>();
    mproc::Process p = ctx.Process(report_start_method, q);
    p.start();
    std::string got = q.get(true, 30s);
    p.join();
    return got;
}

// TestStartMethod.test_context (check_context): ctx.get_start_method() is the method,
// ctx.get_context() is the same context, and a child started by ctx.Process reports the method
// from get_start_method() (fork children too: Python's _bootstrap forces it).
// Was a divergence (issue 14), now fixed: a spawn or forkserver child's get_start_method() says "fork".
TEST(TestStartMethod, test_context) {
    for (const std::string method : {"fork", "spawn", "forkserver"}) {
        const mproc::Context ctx = mproc::get_context(method);
        EXPECT_EQ(ctx.get_start_method(), method);
        EXPECT_EQ(ctx.get_context().get_start_method(), method);
        EXPECT_EQ(child_start_method(ctx), method);
    }
}

// TestStartMethod.test_set_get: set_start_method(m, force=True) makes get_start_method() m;
// the old method is restored after.
TEST(TestStartMethod, test_set_get) {
    const std::string old = mproc::get_start_method();
    int count = 0;
    for (const std::string method : {"fork", "spawn", "forkserver"}) {
        mproc::set_start_method(method, true);
        EXPECT_EQ(mproc::get_start_method(), method);
        mproc::Process p(nothing);
        p.start();
        p.join();
        EXPECT_EQ(p.exitcode(), 0);
        ++count;
    }
    mproc::set_start_method(old, true);
    EXPECT_GE(count, 1);
}

void report_default_start_method(mproc::Queue<std::string> q) { q.put(mproc::get_start_method()); }

// TestStartMethod.test_set_get, its check_context(multiprocessing) part: a child started with
// the default method reports that method.
// Was a divergence (issue 14), now fixed: a spawn or forkserver child's get_start_method() says "fork".
TEST(TestStartMethod, test_set_get_child_method) {
    const std::string old = mproc::get_start_method();
    for (const std::string method : {"fork", "spawn", "forkserver"}) {
        mproc::set_start_method(method, true);
        mproc::Queue<std::string> q;
        mproc::Process p(report_default_start_method, q);
        p.start();
        EXPECT_EQ(q.get(true, 30s), method);
        p.join();
    }
    mproc::set_start_method(old, true);
}

// TestStartMethod.test_get_all_start_methods: on POSIX fork, spawn and forkserver, the default
// first. mproc's default is fork (include/mproc/context.hpp), where Python 3.14's is forkserver.
TEST(TestStartMethod, test_get_all_start_methods) {
    const auto methods = mproc::get_all_start_methods();
    for (const char* m : {"fork", "spawn", "forkserver"})
        EXPECT_NE(std::find(methods.begin(), methods.end(), m), methods.end()) << m;
    EXPECT_EQ(std::set<std::string>(methods.begin(), methods.end()).size(), methods.size());
    ASSERT_FALSE(methods.empty());
    EXPECT_EQ(methods[0], "fork");
}

void put_one(mproc::Queue<int> q) { q.put(1); }
void put_two_and_nest_once(mproc::Queue<int> q, std::string method) {
    q.put(2);
    mproc::Process p({.start_method = method}, put_one, q);
    p.start();
    p.join();
}

class TestStartMethodP : public testing::TestWithParam<std::string> {};

// TestStartMethod.test_nested_startmethod (gh-108520): a child passes its own arguments on to
// a grandchild.
TEST_P(TestStartMethodP, test_nested_startmethod) {
    mproc::Queue<int> q;
    mproc::Process p({.start_method = GetParam()}, put_two_and_nest_once, q, GetParam());
    p.start();
    p.join();
    std::set<int> results;
    while (!q.empty()) results.insert(q.get());
    EXPECT_EQ(results, (std::set<int>{1, 2}));
}

INSTANTIATE_TEST_SUITE_P(StartMethods, TestStartMethodP, kStartMethods, param_name);

// TestIgnoreEINTR: a signal whose handler returns (no SA_RESTART) does not break a blocked
// recv, send or accept.
constexpr std::size_t kConnMaxSize = (std::size_t{16} << 20) + 1;  // max(PIPE_MAX_SIZE, SOCK_MAX_SIZE)

void install_usr1_handler() {
    struct sigaction sa {};
    sa.sa_handler = [](int) {};
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;
    sigaction(SIGUSR1, &sa, nullptr);
}

void ignore_child(mproc::Connection conn) {
    install_usr1_handler();
    conn.send(std::string("ready"));
    const int x = conn.recv<int>();
    conn.send(x);
    conn.send_bytes(std::string(kConnMaxSize, 'x'));
}

class TestIgnoreEINTR : public testing::TestWithParam<std::string> {};

// TestIgnoreEINTR.test_ignore: SIGUSR1 during the child's recv and during its send of a
// message larger than a pipe holds.
TEST_P(TestIgnoreEINTR, test_ignore) {
    auto [conn, child_conn] = mproc::Pipe();
    mproc::Process p({.daemon = true, .start_method = GetParam()}, ignore_child, std::move(child_conn));
    p.start();
    EXPECT_EQ(conn.recv<std::string>(), "ready");
    sleep_seconds(0.1);
    ::kill(*p.pid(), SIGUSR1);
    sleep_seconds(0.1);
    conn.send(1234);
    EXPECT_EQ(conn.recv<int>(), 1234);
    sleep_seconds(0.1);
    ::kill(*p.pid(), SIGUSR1);
    EXPECT_EQ(conn.recv_bytes(), std::string(kConnMaxSize, 'x'));
    sleep_seconds(0.1);
    p.join();
    EXPECT_EQ(p.exitcode(), 0);
}

void ignore_listener_child(mproc::Connection conn) {
    install_usr1_handler();
    mproc::connection::Listener l;
    conn.send(l.address());
    auto a = l.accept();
    a.send(std::string("welcome"));
}

// TestIgnoreEINTR.test_ignore_listener: SIGUSR1 during the child's accept.
TEST_P(TestIgnoreEINTR, test_ignore_listener) {
    auto [conn, child_conn] = mproc::Pipe();
    mproc::Process p({.daemon = true, .start_method = GetParam()}, ignore_listener_child, std::move(child_conn));
    p.start();
    const auto address = conn.recv<mproc::connection::Address>();
    sleep_seconds(0.1);
    ::kill(*p.pid(), SIGUSR1);
    sleep_seconds(0.1);
    auto client = mproc::connection::Client(address);
    EXPECT_EQ(client.recv<std::string>(), "welcome");
    p.join();
    EXPECT_EQ(p.exitcode(), 0);
}

INSTANTIATE_TEST_SUITE_P(StartMethods, TestIgnoreEINTR, kStartMethods, param_name);

// A semaphore at namespace scope: a spawned child, which runs this program again, makes one too.
mproc::Semaphore global_resource;

// TestNamedResource.test_global_named_resource_spawn (gh-90549): a global synchronization
// object in the main program does not leak when a spawned child runs: the child exits 0 and
// no shared-memory name is left behind.
TEST(TestNamedResource, test_global_named_resource_spawn) {
    const auto before = mproc_test::shm_entries();
    mproc::Process p({.start_method = "spawn"}, nothing);
    p.start();
    p.join();
    EXPECT_EQ(p.exitcode(), 0);
    EXPECT_EQ(mproc_test::shm_entries(), before);
    EXPECT_EQ(global_resource.get_value(), 1);
}

int square(int x) { return x * x; }

// MiscTestCase.test_large_pool (gh-89240): a pool of 200 workers works.
TEST(MiscTestCase, test_large_pool) {
    mproc::Pool pool(200);
    std::vector<int> xs(1000);
    for (int i = 0; i < 1000; ++i) xs[static_cast<std::size_t>(i)] = i;
    const auto r = pool.map(square, xs);
    long long sum = 0;
    for (int y : r) sum += y;
    EXPECT_EQ(sum, 332833500);
    pool.close();
    pool.join();
}

}  // namespace
