// mproc's managers checked against CPython's own tests: CPython
// Lib/test/_test_multiprocessing.py, classes _TestContainers, _TestMyManager, _TestRemoteManager,
// _TestManagerRestart and _TestZZZNumberOfObjects (3.12 and earlier; later CPython checks the
// same count in ManagerMixin.tearDownClass). CPython runs each under the fork, spawn and
// forkserver start methods (the manager's server process is started with it); so do these.
// TestSyncManagerTypes is in mp_manager_types_conformance_test.cpp.
//
// mproc's proxies are typed: a Python list of anything is a ListProxy<T> of one type, so the
// Python tests' mixed lists (['hello'] appended to a list of ints, [[88, 99], l]) are written
// with one type. _TestContainers.test_list_iter and test_dict_iter are ported in
// tests/managers/container_proxies_test.cpp.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <mproc/mproc.hpp>

#include "ranges.hpp"

using namespace std::chrono_literals;
namespace mm = mproc::managers;

// _TestMyManager's FooBar, registered twice in CPython with different exposed methods: as 'Foo'
// (the public methods: f and g) and as 'Bar' (exposed=('f', '_h')). Exposure is per type here,
// so the two registrations are two types with the same methods.
namespace conf_mgr {
struct FooBar {
    std::string f() { return "f()"; }
    std::string g() { throw std::invalid_argument("ValueError"); }
    std::string _h() { return "_h()"; }
};
struct Bar {
    std::string f() { return "f()"; }
    std::string g() { throw std::invalid_argument("ValueError"); }
    std::string _h() { return "_h()"; }
};
// CPython's baz(): a generator of i*i for i < 10, served through an IteratorProxy exposing
// __next__; here an object with next() (empty at the end, Python: StopIteration).
struct Baz {
    int i = 0;
    std::optional<int> next() {
        if (i >= 10) return std::nullopt;
        const int v = i * i;
        ++i;
        return v;
    }
};
}  // namespace conf_mgr
MPROC_MANAGED(conf_mgr::FooBar, f, g);
MPROC_MANAGED(conf_mgr::Bar, f, _h);
MPROC_MANAGED(conf_mgr::Baz, next);

namespace {

using conf_mgr::Bar;
using conf_mgr::Baz;
using conf_mgr::FooBar;

class ManagerTest : public testing::TestWithParam<std::string> {
protected:
    mm::ManagerOptions opts() { return {.start_method = GetParam()}; }
    mproc::ProcessOptions popts() { return {.start_method = GetParam()}; }
};

class TestContainers : public ManagerTest {};

// _TestContainers.test_list: a list made from values and an empty one; extend, indexing,
// slicing, *=, +, a list of list proxies whose elements read back as the inner lists, and an
// inner list changed through its own proxy seen through the outer list. (a[:] is to_vector();
// b[2:10] is b.slice(2, 10).)
TEST_P(TestContainers, test_list) {
    mm::SyncManager m = mproc::Manager(opts());
    auto a = m.list<int>(mproc_test::numbers(0, 10));
    EXPECT_EQ(a.to_vector(), mproc_test::numbers(0, 10));

    auto b = m.list<int>();
    EXPECT_EQ(b.to_vector(), std::vector<int>{});

    b.extend(mproc_test::numbers(0, 5));
    EXPECT_EQ(b.to_vector(), mproc_test::numbers(0, 5));

    EXPECT_EQ(b.get(2), 2);
    EXPECT_EQ(b.slice(2, 10), (std::vector<int>{2, 3, 4}));

    b *= 2;
    EXPECT_EQ(b.to_vector(), (std::vector<int>{0, 1, 2, 3, 4, 0, 1, 2, 3, 4}));

    EXPECT_EQ((b + std::vector<int>{5, 6}), (std::vector<int>{0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 5, 6}));

    EXPECT_EQ(a.to_vector(), mproc_test::numbers(0, 10));

    auto e = m.list<mm::ListProxy<int>>({a, b});
    EXPECT_EQ(e.size(), 2u);
    EXPECT_EQ(e.get(0).to_vector(), mproc_test::numbers(0, 10));
    EXPECT_EQ(e.get(1).to_vector(), (std::vector<int>{0, 1, 2, 3, 4, 0, 1, 2, 3, 4}));

    auto f = m.list<mm::ListProxy<int>>({a});
    a.append(10);  // Python appends 'hello'
    EXPECT_EQ(f.get(0).to_vector(), mproc_test::numbers(0, 11));
}

// _TestContainers.test_list_proxy_in_list: a list of three list proxies; a change through one
// element shows there and nowhere else; pop() on an element changes that element's length.
// (The self-containing b.append(b) has no typed form and is left out.)
TEST_P(TestContainers, test_list_proxy_in_list) {
    mm::SyncManager m = mproc::Manager(opts());
    std::vector<mm::ListProxy<int>> inner;
    for (int i = 0; i < 3; ++i) inner.push_back(m.list<int>({0, 1, 2}));
    auto a = m.list<mm::ListProxy<int>>(inner);
    inner.clear();
    for (int i = 0; i < 3; ++i) EXPECT_EQ(a.get(i).to_vector(), (std::vector<int>{0, 1, 2}));

    a.get(0).set(-1, 55);
    EXPECT_EQ(a.get(0).to_vector(), (std::vector<int>{0, 1, 55}));
    for (int i = 1; i < 3; ++i) EXPECT_EQ(a.get(i).to_vector(), (std::vector<int>{0, 1, 2}));

    EXPECT_EQ(a.get(1).pop(), 2);
    EXPECT_EQ(a.get(1).size(), 2u);
    for (int i = 0; i < 3; i += 2) EXPECT_EQ(a.get(i).size(), 3u);
}

// _TestContainers.test_dict: keys 65..69 mapped to chr(i): copy(), keys(), values(), items().
TEST_P(TestContainers, test_dict) {
    mm::SyncManager m = mproc::Manager(opts());
    auto d = m.dict<int, std::string>();
    const auto indices = mproc_test::numbers(65, 70);
    std::map<int, std::string> expected;
    for (int i : indices) {
        d.set(i, std::string(1, static_cast<char>(i)));
        expected[i] = std::string(1, static_cast<char>(i));
    }
    EXPECT_EQ(d.copy(), expected);
    auto keys = d.keys();
    std::sort(keys.begin(), keys.end());
    EXPECT_EQ(keys, indices);
    auto values = d.values();
    std::sort(values.begin(), values.end());
    std::vector<std::string> chars;
    for (int i : indices) chars.emplace_back(1, static_cast<char>(i));
    EXPECT_EQ(values, chars);
    EXPECT_EQ(d.items(), expected);
}

// _TestContainers.test_dict_proxy_nested: dicts inside a dict and inside a list are the same
// objects as their own proxies (a change through either shows through the other), and live on
// while the outer container holds them after their own proxies are gone, and after the outer
// dict is cleared while their proxies live. (The mixed outer = [[88, 99], l] is left out.)
TEST_P(TestContainers, test_dict_proxy_nested) {
    using Inner = mm::DictProxy<std::string, int>;
    mm::SyncManager m = mproc::Manager(opts());
    std::optional<Inner> pets = m.dict<std::string, int>({{"ferrets", 2}, {"hamsters", 4}});
    std::optional<Inner> supplies = m.dict<std::string, int>({{"water", 10}, {"feed", 3}});
    auto d = m.dict<std::string, Inner>({{"pets", *pets}, {"supplies", *supplies}});

    EXPECT_EQ(supplies->get("water"), 10);
    EXPECT_EQ(d.get("supplies").get("water"), 10);

    d.get("supplies").set("blankets", 5);
    EXPECT_EQ(supplies->get("blankets"), 5);
    EXPECT_EQ(d.get("supplies").get("blankets"), 5);

    d.get("supplies").set("water", 7);
    EXPECT_EQ(supplies->get("water"), 7);
    EXPECT_EQ(d.get("supplies").get("water"), 7);

    pets.reset();  // del pets
    supplies.reset();
    EXPECT_EQ(d.get("pets").get("ferrets"), 2);
    d.get("supplies").set("blankets", 11);
    EXPECT_EQ(d.get("supplies").get("blankets"), 11);

    pets = d.get("pets");
    supplies = d.get("supplies");
    supplies->set("water", 7);
    EXPECT_EQ(supplies->get("water"), 7);
    EXPECT_EQ(d.get("supplies").get("water"), 7);

    d.clear();
    EXPECT_EQ(d.size(), 0u);
    EXPECT_EQ(supplies->get("water"), 7);
    EXPECT_EQ(pets->get("hamsters"), 4);

    auto l = m.list<Inner>({*pets, *supplies});
    l.get(0).set("marmots", 1);
    EXPECT_EQ(pets->get("marmots"), 1);
    EXPECT_EQ(l.get(0).get("marmots"), 1);

    pets.reset();
    supplies.reset();
    EXPECT_EQ(l.get(0).get("marmots"), 1);
    EXPECT_EQ(l.get(1).get("feed"), 3);
}

// _TestContainers.test_nested_queue: a queue inside a list and inside a dict works through
// the element read back.
TEST_P(TestContainers, test_nested_queue) {
    mm::SyncManager m = mproc::Manager(opts());
    auto a = m.list<mm::QueueProxy<int>>();
    a.append(m.Queue<int>());
    a.get(0).put(123);
    EXPECT_EQ(a.get(0).get(), 123);
    auto b = m.dict<int, mm::QueueProxy<int>>();
    b.set(0, m.Queue<int>());
    b.get(0).put(456);
    EXPECT_EQ(b.get(0).get(), 456);
}

// _TestContainers.test_namespace: attributes set, read, deleted; 'name' is there and 'job' is
// gone. (Python's repr "Namespace(name='Bob')" has no counterpart; names() lists the names.)
TEST_P(TestContainers, test_namespace) {
    mm::SyncManager m = mproc::Manager(opts());
    auto n = m.Namespace();
    n.set("name", std::string("Bob"));
    n.set("job", std::string("Builder"));
    n.set("_hidden", std::string("hidden"));
    EXPECT_EQ(std::pair(n.get<std::string>("name"), n.get<std::string>("job")),
              std::pair(std::string("Bob"), std::string("Builder")));
    n.del("job");
    EXPECT_TRUE(n.has("name"));
    EXPECT_FALSE(n.has("job"));
    const auto names = n.names();
    EXPECT_NE(std::find(names.begin(), names.end(), "name"), names.end());
    EXPECT_EQ(std::find(names.begin(), names.end(), "job"), names.end());
    EXPECT_THROW(n.get<std::string>("job"), std::out_of_range);  // AttributeError
}

INSTANTIATE_TEST_SUITE_P(StartMethods, TestContainers, testing::Values("fork", "spawn", "forkserver"));

class TestMyManager : public ManagerTest {
protected:
    // _TestMyManager.common: Foo exposes f and g (g raises ValueError), not _h; Bar exposes f and
    // _h; baz yields the squares below 100. (Python's _callmethod('_h') on Foo is a RemoteError
    // from the server; mproc refuses a method that is not exposed with std::invalid_argument.)
    static void common(mm::BaseManager& manager) {
        auto foo = manager.create<FooBar>();
        auto bar = manager.create<Bar>();
        auto baz = manager.create<Baz>();

        EXPECT_EQ(foo.call(&FooBar::f), "f()");
        EXPECT_THROW(foo.call(&FooBar::g), std::invalid_argument);
        EXPECT_THROW(foo.call(&FooBar::_h), std::invalid_argument);

        EXPECT_EQ(bar.call(&Bar::f), "f()");
        EXPECT_EQ(bar.call(&Bar::_h), "_h()");
        EXPECT_THROW(bar.call(&Bar::g), std::invalid_argument);

        std::vector<int> got;
        while (auto v = baz.call(&Baz::next)) got.push_back(*v);
        std::vector<int> squares;
        for (int i = 0; i < 10; ++i) squares.push_back(i * i);
        EXPECT_EQ(got, squares);
    }
};

// _TestMyManager.test_mymanager: a BaseManager serving the user's types: start(), the common
// checks, shutdown(); the server is gone afterwards (CPython reads its exit code, 0 or -SIGTERM;
// here a proxy kept across the shutdown fails with ProcessError, as managers.hpp documents).
TEST_P(TestMyManager, test_mymanager) {
    mm::BaseManager manager(opts());
    manager.start();
    common(manager);
    auto kept = manager.create<FooBar>();
    manager.shutdown();
    EXPECT_THROW(kept.call(&FooBar::f), mproc::ProcessError);
}

// _TestMyManager.test_mymanager_context: `with manager:` starts it and shuts it down at the exit
// (mproc: start() and the destructor; docs/api.md: ~BaseManager is __exit__).
TEST_P(TestMyManager, test_mymanager_context) {
    std::optional<mm::Proxy<FooBar>> kept;
    {
        mm::BaseManager manager(opts());
        manager.start();
        common(manager);
        kept = manager.create<FooBar>();
        EXPECT_EQ(kept->call(&FooBar::f), "f()");
    }
    EXPECT_THROW(kept->call(&FooBar::f), mproc::ProcessError);
}

INSTANTIATE_TEST_SUITE_P(StartMethods, TestMyManager, testing::Values("fork", "spawn", "forkserver"));

// _TestRemoteManager.values: Python's ['hello world', None, True, 2.25, 'hallå världen',
// 'привіт світ', b'hall\xe5 v\xe4rlden'] as one typed tuple.
using RemoteValues =
    std::tuple<std::string, std::optional<int>, bool, double, std::string, std::string, std::string>;
const RemoteValues kRemoteValues{"hello world",  std::nullopt, true, 2.25, "hall\u00e5 v\u00e4rlden",
                                 "\u043f\u0440\u0438\u0432\u0456\u0442 \u0441\u0432\u0456\u0442",
                                 "hall\xe5 v\xe4rlden"};

std::string random_authkey() {
    std::random_device rd;
    std::string key(32, '\0');
    for (char& c : key) c = static_cast<char>(rd() & 0xff);
    return key;
}

// _TestRemoteManager._putter: QueueManager2 (the same interface, without the callable)
// connects and puts the values.
void remote_putter(mproc::connection::Address address, std::string authkey) {
    mm::BaseManager manager({.address = address, .authkey = authkey});
    manager.connect();
    auto queue = manager.get<mm::QueueProxy<RemoteValues>>("get_queue");
    queue.put(kRemoteValues);
}

class TestRemoteManager : public ManagerTest {};

// _TestRemoteManager.test_remote: a manager on loopback TCP with a random 32-byte authkey
// serves a shared queue; a child process connects and puts values; another connected manager
// gets them back equal. (The part that puts time.sleep, which cannot be serialized, is a compile
// error in C++.)
TEST_P(TestRemoteManager, test_remote) {
    const std::string authkey = random_authkey();
    mm::BaseManager manager({.address = {"127.0.0.1", 0}, .authkey = authkey, .start_method = GetParam()});
    manager.register_shared<mm::QueueProxy<RemoteValues>>("get_queue");
    manager.start();

    mproc::Process p(popts(), remote_putter, manager.address(), authkey);
    p.set_daemon(true);
    p.start();

    mm::BaseManager manager2({.address = manager.address(), .authkey = authkey});
    manager2.connect();
    auto queue = manager2.get<mm::QueueProxy<RemoteValues>>("get_queue");
    EXPECT_EQ(queue.get(true, 60s), kRemoteValues);
    p.join();
    EXPECT_EQ(p.exitcode(), 0);
}

INSTANTIATE_TEST_SUITE_P(StartMethods, TestRemoteManager, testing::Values("fork", "spawn", "forkserver"));

void restart_putter(mproc::connection::Address address, std::string authkey) {
    mm::BaseManager manager({.address = address, .authkey = authkey});
    manager.connect();
    manager.get<mm::QueueProxy<std::string>>("get_queue").put("hello world");
}

class TestManagerRestart : public ManagerTest {};

// _TestManagerRestart.test_rapid_restart: a manager on a loopback TCP address serves a child's
// put; once it is shut down, a new manager starts on the same address at once (CPython allows one
// retry after 1 s for a lingering socket). (CPython learns the address from get_server() and
// closes that listener before start(); mproc allows one of get_server/start per manager, so the
// address is the first manager's port 0 as bound.)
TEST_P(TestManagerRestart, test_rapid_restart) {
    const std::string authkey = random_authkey();
    mproc::connection::Address addr;
    {
        mm::BaseManager manager({.address = {"127.0.0.1", 0}, .authkey = authkey, .start_method = GetParam()});
        manager.register_shared<mm::QueueProxy<std::string>>("get_queue");
        manager.start();
        addr = manager.address();
        mproc::Process p(popts(), restart_putter, addr, authkey);
        p.start();
        p.join();
        EXPECT_EQ(p.exitcode(), 0);
        {
            auto queue = manager.get<mm::QueueProxy<std::string>>("get_queue");
            EXPECT_EQ(queue.get(true, 30s), "hello world");
        }
        manager.shutdown();
    }
    auto restart = [&] {
        auto manager = std::make_unique<mm::BaseManager>(
            mm::ManagerOptions{.address = addr, .authkey = authkey, .start_method = GetParam()});
        manager->register_shared<mm::QueueProxy<std::string>>("get_queue");
        manager->start();
        return manager;
    };
    std::unique_ptr<mm::BaseManager> manager;
    try {
        manager = restart();
    } catch (const mproc::ProcessError&) {
        std::this_thread::sleep_for(1s);  // as CPython: the old socket may linger
        EXPECT_NO_THROW(manager = restart());
    }
    if (manager) {
        EXPECT_EQ(manager->address(), addr);
        manager->shutdown();
    }
}

INSTANTIATE_TEST_SUITE_P(StartMethods, TestManagerRestart, testing::Values("fork", "spawn", "forkserver"));

void use_proxies(mm::ListProxy<int> l, mm::DictProxy<std::string, int> d, mm::QueueProxy<int> q) {
    l.append(1);
    d.set("k", 2);
    q.put(3);
}

class TestZZZNumberOfObjects : public ManagerTest {};

// _TestZZZNumberOfObjects.test_number_of_objects: once the tests' proxies are gone (also those
// a child process held), the manager holds no shared objects (CPython expects 1: its class-wide
// pool proxy, still alive then).
TEST_P(TestZZZNumberOfObjects, test_number_of_objects) {
    mm::SyncManager m = mproc::Manager(opts());
    {
        auto l = m.list<int>();
        auto d = m.dict<std::string, int>();
        auto q = m.Queue<int>();
        auto nested = m.list<mm::ListProxy<int>>({l});
        mproc::Process p(popts(), use_proxies, l, d, q);
        p.start();
        p.join();
        EXPECT_EQ(p.exitcode(), 0);
        EXPECT_EQ(q.get(), 3);
        EXPECT_EQ(m.number_of_objects(), 4u);
    }
    EXPECT_EQ(m.number_of_objects(), 0u);
}

INSTANTIATE_TEST_SUITE_P(StartMethods, TestZZZNumberOfObjects, testing::Values("fork", "spawn", "forkserver"));

}  // namespace
