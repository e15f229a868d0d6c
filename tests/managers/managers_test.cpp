// mproc::managers (work in progress): SyncManager with list, dict and Value; proxies in children
// under every start method; reference counting; a dead manager fails calls, never hangs.
#include <gtest/gtest.h>
#include <signal.h>

#include <optional>
#include <string>
#include <vector>

#include <mproc/mproc.hpp>

using namespace std::chrono_literals;
namespace mm = mproc::managers;

namespace {

class Managers : public testing::TestWithParam<std::string> {
protected:
    mm::ManagerOptions opts() { return {.start_method = GetParam()}; }
};

TEST_P(Managers, ListDictValueMethods) {
    mm::SyncManager m = mproc::Manager(opts());
    auto l = m.list<std::string>({"a", "b"});
    l.append("c");
    l.extend({"d", "e"});
    EXPECT_EQ(l.size(), 5u);
    EXPECT_EQ(l.get(0), "a");
    EXPECT_EQ(l.get(-1), "e");
    l.set(1, "B");
    l.insert(0, "start");
    EXPECT_EQ(l.pop(), "e");
    EXPECT_EQ(l.to_vector(), (std::vector<std::string>{"start", "a", "B", "c", "d"}));
    EXPECT_THROW(l.get(10), std::out_of_range);
    l.append("a");
    EXPECT_EQ(l.count("a"), 2u);
    EXPECT_EQ(l.index("B"), 2u);
    l.remove("a");
    EXPECT_EQ(l.to_vector(), (std::vector<std::string>{"start", "B", "c", "d", "a"}));
    EXPECT_THROW(l.remove("zz"), std::invalid_argument);
    EXPECT_THROW(l.index("zz"), std::invalid_argument);

    auto d = m.dict<std::string, int>();
    d.set("k", 1);
    d.set("j", 2);
    EXPECT_EQ(d.get("k"), 1);
    EXPECT_EQ(d.get("missing", 7), 7);
    EXPECT_TRUE(d.contains("j"));
    EXPECT_EQ(d.keys(), (std::vector<std::string>{"k", "j"}));  // insertion order, as Python's
    EXPECT_EQ(d.pop("k"), 1);
    EXPECT_THROW(d.get("k"), std::out_of_range);
    EXPECT_EQ(d.size(), 1u);
    EXPECT_EQ(d.setdefault("j", 9), 2);
    EXPECT_EQ(d.setdefault("n", 9), 9);
    d.update({{"a", 5}, {"j", 3}});
    EXPECT_EQ(d.values(), (std::vector<int>{3, 9, 5}));  // j (set again in place), n, a
    EXPECT_EQ(d.copy(), (std::map<std::string, int>{{"a", 5}, {"j", 3}, {"n", 9}}));

    auto v = m.Value<double>(1.5);
    EXPECT_EQ(v.get(), 1.5);
    v.set(2.5);
    EXPECT_EQ(v.get(), 2.5);
}

void raise_globals(mm::NamespaceProxy ns, mm::ValueProxy<long> counter) {
    ns.set("who", std::string("child"));
    ns.set("ratio", 0.5);
    counter.set(counter.get() + 1);
}

TEST_P(Managers, NamespaceHoldsTypedAttributes) {
    mm::SyncManager m = mproc::Manager(opts());
    auto ns = m.Namespace();
    auto counter = m.Value<long>(41);
    ns.set("x", 10);
    ns.set("name", std::string("main"));
    mproc::Process p({.start_method = GetParam()}, raise_globals, ns, counter);
    p.start();
    p.join(30s);
    EXPECT_EQ(p.exitcode(), 0);
    EXPECT_EQ(ns.get<int>("x"), 10);
    EXPECT_EQ(ns.get<std::string>("who"), "child");
    EXPECT_EQ(ns.get<double>("ratio"), 0.5);
    EXPECT_EQ(counter.get(), 42);
    EXPECT_THROW(ns.get<std::string>("x"), mproc::SerializationError);  // set as an int
    EXPECT_THROW(ns.get<int>("missing"), std::out_of_range);
    EXPECT_TRUE(ns.has("name"));
    ns.del("name");
    EXPECT_FALSE(ns.has("name"));
    EXPECT_EQ(ns.names(), (std::vector<std::string>{"ratio", "who", "x"}));
}

void append_from_child(mm::ListProxy<std::string> records, std::string who) { records.append("from " + who); }

TEST_P(Managers, ProxiesWorkInChildren) {
    mm::SyncManager m = mproc::Manager(opts());
    auto records = m.list<std::string>();
    std::vector<mproc::Process> ps;
    for (int i = 0; i < 3; ++i)
        ps.emplace_back(mproc::ProcessOptions{.start_method = GetParam()}, append_from_child, records,
                        std::string("p") + std::to_string(i));
    for (auto& p : ps) p.start();
    for (auto& p : ps) {
        p.join(30s);
        EXPECT_EQ(p.exitcode(), 0);
    }
    auto got = records.to_vector();
    std::sort(got.begin(), got.end());
    EXPECT_EQ(got, (std::vector<std::string>{"from p0", "from p1", "from p2"}));
}

void read_and_drop(mm::DictProxy<int, int> d, mproc::Connection out) { out.send(d.get(1)); }

TEST_P(Managers, ObjectsAreFreedWithTheirLastProxyAnywhere) {
    mm::SyncManager m = mproc::Manager(opts());
    {
        auto d = m.dict<int, int>();
        d.set(1, 42);
        auto copy = d;  // the same reference
        EXPECT_EQ(m.number_of_objects(), 1u);
        auto [r, w] = mproc::Pipe(false);
        mproc::Process p({.start_method = GetParam()}, read_and_drop, copy, std::move(w));
        p.start();
        EXPECT_EQ(r.recv<int>(), 42);
        p.join(30s);
        EXPECT_EQ(p.exitcode(), 0);
        EXPECT_EQ(m.number_of_objects(), 1u);  // the child's reference is gone, ours remains
    }
    EXPECT_EQ(m.number_of_objects(), 0u);
}

// A fork child inherits proxies in memory (here a global, not an argument): it takes a
// reference of its own at first use, so the object outlives its parent's last proxy while the
// child uses it; and what a child still holds as it ends (its destructors do not run) is given
// back.
std::optional<mm::DictProxy<std::string, int>> g_inherited;
std::optional<mm::ListProxy<int>> g_kept_by_child;
mm::SyncManager* g_manager = nullptr;

void use_inherited(mproc::Event used, mproc::Event dropped) {
    g_inherited->set("child", 1);
    used.set();
    dropped.wait();
    g_inherited->set("after", 2);  // the parent's proxy is gone by now
    if (g_inherited->size() != 2) std::abort();
    g_kept_by_child = g_manager->list<int>({1, 2, 3});  // never destroyed in this process
}

TEST(ManagersFork, AChildKeepsWhatItUsesAndGivesItBackAtItsEnd) {
    mm::SyncManager m = mproc::Manager({.start_method = "fork"});
    g_manager = &m;
    g_inherited = m.dict<std::string, int>();
    mproc::Event used, dropped;
    mproc::Process p({.start_method = "fork"}, use_inherited, used, dropped);
    p.start();
    ASSERT_TRUE(used.wait(30s));
    g_inherited.reset();  // the parent's last proxy
    dropped.set();
    p.join(30s);
    EXPECT_EQ(p.exitcode(), 0) << "the child's object was freed under it";
    EXPECT_EQ(m.number_of_objects(), 0u) << "the child's references were not given back";
}

TEST_P(Managers, AKilledManagerFailsCallsAndNothingHangs) {
    mm::SyncManager m = mproc::Manager(opts());
    auto v = m.Value<int>(3);
    EXPECT_EQ(v.get(), 3);
    // Kill the server from outside: its address names it in the error.
    for (auto& child : mproc::active_children())
        if (child.name() == "SyncManager") child.kill();
    EXPECT_THROW(v.get(), mproc::ProcessError);
    EXPECT_THROW(v.set(4), mproc::ProcessError);
}

int add_to(mm::DictProxy<int, int> d, int k) {
    d.set(k, k * k);
    return k;
}

TEST_P(Managers, ProxiesAsPoolTaskArguments) {
    mm::SyncManager m = mproc::Manager(opts());
    auto d = m.dict<int, int>();
    {
        mproc::Pool pool({.processes = 2, .start_method = GetParam()});
        std::vector<std::tuple<mm::DictProxy<int, int>, int>> args;
        for (int k = 0; k < 20; ++k) args.emplace_back(d, k);
        EXPECT_EQ(pool.starmap(add_to, args).size(), 20u);
    }
    EXPECT_EQ(d.size(), 20u);
    EXPECT_EQ(d.get(7), 49);
}

TEST_P(Managers, ADeadManagerFailsCallsClearly) {
    mm::SyncManager m = mproc::Manager(opts());
    auto d = m.dict<int, int>();
    d.set(1, 1);
    m.shutdown();
    try {
        d.get(1);
        FAIL() << "a call to a stopped manager returned";
    } catch (const mproc::ProcessError& e) {
        EXPECT_NE(std::string(e.what()).find(m.address().str()), std::string::npos) << e.what();
    }
}

INSTANTIATE_TEST_SUITE_P(StartMethods, Managers, testing::Values("fork", "spawn", "forkserver"),
                         [](const auto& info) { return info.param; });

}  // namespace
