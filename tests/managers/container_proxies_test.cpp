// The container proxies' Python methods (issue 14, section 3): a list proxy's iteration,
// slices, sort, reverse, index bounds and operators; a dict proxy's insertion order, iteration,
// popitem and pop with a default; a set proxy's algebra; a Value proxy's value property. Each
// runs with the manager's server (and the child, where there is one) under the fork, spawn and
// forkserver start methods. Expected slices are Python's own results (checked with CPython 3).
#include <gtest/gtest.h>

#include <iterator>
#include <map>
#include <ranges>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include <mproc/mproc.hpp>

#include "ranges.hpp"

using namespace std::chrono_literals;
namespace mm = mproc::managers;

namespace {

// Sorted by key alone, so that stability shows in the tags of equal keys.
struct Rec {
    int key = 0;
    std::string tag;
    bool operator<(const Rec& o) const { return key < o.key; }
    bool operator==(const Rec&) const = default;
    template <class Ar>
    void serialize(Ar& ar) {
        ar(key, tag);
    }
};

template <class P>
concept has_sort = requires(P p) { p.sort(); };

static_assert(std::ranges::input_range<const mm::ListProxy<int>>);
static_assert(std::ranges::input_range<const mm::DictProxy<std::string, int>>);
static_assert(has_sort<mm::ListProxy<int>>);
// A list of objects without operator< has no sort() (Python: TypeError at the first comparison).
static_assert(!has_sort<mm::ListProxy<mm::QueueProxy<int>>>);

class ContainerProxies : public testing::TestWithParam<std::string> {
protected:
    mm::ManagerOptions opts() { return {.start_method = GetParam()}; }
    mproc::ProcessOptions popts() { return {.start_method = GetParam()}; }
    void run_child_ok(mproc::Process& p) {
        p.start();
        p.join(60s);
        EXPECT_EQ(p.exitcode(), 0);
    }
};

template <class T>
std::vector<T> drain(typename mm::ListProxy<T>::iterator& it) {
    std::vector<T> out;
    for (; it != std::default_sentinel; ++it) out.push_back(*it);
    return out;
}

// CPython Lib/test/_test_multiprocessing.py, _TestContainers.test_list_iter: list(iter(a)) is
// the list; the iterator is then exhausted; an item changed after iter() and before next() is
// seen changed (the iteration is by index, item by item). Also: an exhausted iterator stays so
// when the list grows, and a range-for sees the list as it is.
TEST_P(ContainerProxies, test_list_iter) {
    mm::SyncManager m = mproc::Manager(opts());
    auto a = m.list<int>(mproc_test::numbers(0, 10));
    auto it = a.begin();
    EXPECT_EQ(drain<int>(it), mproc_test::numbers(0, 10));
    EXPECT_EQ(drain<int>(it), std::vector<int>{});  // exhausted
    a.append(10);
    EXPECT_TRUE(it == a.end());
    EXPECT_THROW(*it, std::out_of_range);

    it = a.begin();
    a.set(0, 100);
    EXPECT_EQ(*it, 100);  // list modified during iteration

    std::vector<int> seen;
    for (int x : a) {
        seen.push_back(x);
        if (x == 1) a.append(11);  // reached before the end: the iteration takes it
    }
    std::vector<int> expected = mproc_test::numbers(0, 12);
    expected[0] = 100;
    EXPECT_EQ(seen, expected);
}

// CPython _TestContainers.test_list, the parts the conformance port had to write by hand:
// b[2:10], b *= 2, b + [5, 6]; and list.copy() (3.14's ListProxy).
TEST_P(ContainerProxies, test_list_slices_and_operators) {
    mm::SyncManager m = mproc::Manager(opts());
    auto b = m.list<int>();
    b += mproc_test::numbers(0, 5);
    EXPECT_EQ(b.slice({}, {}), mproc_test::numbers(0, 5));
    EXPECT_EQ(b.slice(2, 10), (std::vector<int>{2, 3, 4}));
    b *= 2;
    EXPECT_EQ(b.to_vector(), (std::vector<int>{0, 1, 2, 3, 4, 0, 1, 2, 3, 4}));
    EXPECT_EQ((b + std::vector<int>{5, 6}), (std::vector<int>{0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 5, 6}));
    EXPECT_EQ(b * 0, std::vector<int>{});
    EXPECT_EQ(b.size(), 10u);  // + and * made new vectors
    EXPECT_EQ(b.copy(), b.to_vector());
    b *= -1;  // Python: n below 1 empties the list
    EXPECT_EQ(b.size(), 0u);
}

// Python's slice rules: None bounds, negative bounds, clamping, negative steps, empty slices.
TEST_P(ContainerProxies, SlicesFollowPythonsIndices) {
    mm::SyncManager m = mproc::Manager(opts());
    auto a = m.list<int>(mproc_test::numbers(0, 10));
    using V = std::vector<int>;
    EXPECT_EQ(a.slice(2, {}), (V{2, 3, 4, 5, 6, 7, 8, 9}));
    EXPECT_EQ(a.slice({}, -3), (V{0, 1, 2, 3, 4, 5, 6}));
    EXPECT_EQ(a.slice(-3, {}), (V{7, 8, 9}));
    EXPECT_EQ(a.slice(-100, 100), mproc_test::numbers(0, 10));
    EXPECT_EQ(a.slice(8, 2, -1), (V{8, 7, 6, 5, 4, 3}));
    EXPECT_EQ(a.slice({}, {}, -1), (V{9, 8, 7, 6, 5, 4, 3, 2, 1, 0}));
    EXPECT_EQ(a.slice({}, {}, -3), (V{9, 6, 3, 0}));
    EXPECT_EQ(a.slice(1, {}, 2), (V{1, 3, 5, 7, 9}));
    EXPECT_EQ(a.slice(-1, -100, -2), (V{9, 7, 5, 3, 1}));
    EXPECT_EQ(a.slice(5, 5), V{});
    EXPECT_EQ(a.slice(7, 3), V{});
    EXPECT_EQ(a.slice(100, {}, -1), (V{9, 8, 7, 6, 5, 4, 3, 2, 1, 0}));
    EXPECT_EQ(a.slice(-100, {}, -1), V{});
    EXPECT_EQ(a.slice(3, 100, 4), (V{3, 7}));
    EXPECT_THROW(a.slice(0, 5, 0), std::invalid_argument);  // ValueError: slice step cannot be zero

    a.set_slice(2, 4, {20, 30, 40});  // a simple slice takes any number of values
    EXPECT_EQ(a.to_vector(), (V{0, 1, 20, 30, 40, 4, 5, 6, 7, 8, 9}));
    a.set_slice({}, {}, mproc_test::numbers(0, 10));
    a.set_slice(8, 2, {99});  // an empty slice: inserted at its start
    EXPECT_EQ(a.to_vector(), (V{0, 1, 2, 3, 4, 5, 6, 7, 99, 8, 9}));
    a.set_slice({}, {}, mproc_test::numbers(0, 10));
    a.set_slice({}, {}, -4, {7, 8, 9});
    EXPECT_EQ(a.to_vector(), (V{0, 9, 2, 3, 4, 8, 6, 7, 8, 7}));
    // An extended slice takes exactly as many values as it has items; the list is unchanged.
    EXPECT_THROW(a.set_slice({}, {}, 2, {1}), std::invalid_argument);
    EXPECT_EQ(a.to_vector(), (V{0, 9, 2, 3, 4, 8, 6, 7, 8, 7}));
    EXPECT_THROW(a.set_slice(0, 1, 0, {1}), std::invalid_argument);

    a.set_slice({}, {}, mproc_test::numbers(0, 10));
    a.del_slice({}, {}, 3);
    EXPECT_EQ(a.to_vector(), (V{1, 2, 4, 5, 7, 8}));
    a.set_slice({}, {}, mproc_test::numbers(0, 10));
    a.del_slice(-2, {});
    EXPECT_EQ(a.to_vector(), (V{0, 1, 2, 3, 4, 5, 6, 7}));
    a.set_slice({}, {}, mproc_test::numbers(0, 10));
    a.del_slice(7, 1, -2);
    EXPECT_EQ(a.to_vector(), (V{0, 1, 2, 4, 6, 8, 9}));
    a.del_slice(5, 2);  // empty: nothing goes
    EXPECT_EQ(a.size(), 7u);
}

// sort() and reverse(), as Python's: stable either way (equal keys keep their order under
// reverse=True too, as sorted(..., reverse=True) keeps them); index with start and stop;
// contains and count.
TEST_P(ContainerProxies, SortReverseIndexContains) {
    mm::SyncManager m = mproc::Manager(opts());
    auto r = m.list<Rec>({{1, "a"}, {0, "b"}, {1, "c"}, {2, "d"}, {0, "e"}});
    r.sort();
    EXPECT_EQ(r.to_vector(), (std::vector<Rec>{{0, "b"}, {0, "e"}, {1, "a"}, {1, "c"}, {2, "d"}}));
    r.set_slice({}, {}, {{1, "a"}, {0, "b"}, {1, "c"}, {2, "d"}, {0, "e"}});
    r.sort({.reverse = true});
    EXPECT_EQ(r.to_vector(), (std::vector<Rec>{{2, "d"}, {1, "a"}, {1, "c"}, {0, "b"}, {0, "e"}}));
    r.reverse();
    EXPECT_EQ(r.to_vector(), (std::vector<Rec>{{0, "e"}, {0, "b"}, {1, "c"}, {1, "a"}, {2, "d"}}));

    auto a = m.list<int>(mproc_test::numbers(0, 10));
    a += {3};
    EXPECT_EQ(a.index(3), 3u);
    EXPECT_EQ(a.index(3, 4), 10u);
    EXPECT_EQ(a.index(3, -8, 5), 3u);  // Python: list(range(10)).index(3, -8, 5) == 3
    EXPECT_THROW(a.index(3, 4, 10), std::invalid_argument);
    EXPECT_THROW(a.index(3, 9, 2), std::invalid_argument);
    EXPECT_TRUE(a.contains(9));
    EXPECT_FALSE(a.contains(42));
    EXPECT_EQ(a.count(3), 2u);
}

// CPython _TestContainers.test_dict_iter: iter(d) gives the keys in order; the iterator is then
// exhausted; the dict cleared after iter() makes next() raise (RuntimeError: std::logic_error).
// The keys come in insertion order (Python's), here not their sorted order.
TEST_P(ContainerProxies, test_dict_iter) {
    mm::SyncManager m = mproc::Manager(opts());
    auto d = m.dict<int, std::string>();
    const auto indices = mproc_test::numbers(65, 70);
    for (int i : indices) d.set(i, std::string(1, static_cast<char>(i)));
    auto it = d.begin();
    std::vector<int> keys;
    for (; it != d.end(); ++it) keys.push_back(*it);
    EXPECT_EQ(keys, indices);
    EXPECT_TRUE(it == d.end());  // exhausted
    it = d.begin();
    d.clear();
    EXPECT_THROW((void)(it == d.end()), std::logic_error);  // dictionary changed size during iteration

    for (int k : {3, 1, 2}) d.set(k, "x");
    d.set(1, "again");  // a key set again keeps its place
    std::vector<int> order;
    for (int k : d) order.push_back(k);
    EXPECT_EQ(order, (std::vector<int>{3, 1, 2}));
    EXPECT_EQ(d.keys(), (std::vector<int>{3, 1, 2}));
    EXPECT_EQ(d.values(), (std::vector<std::string>{"x", "again", "x"}));
}

// popitem() takes the last key put in (LIFO, Python 3.7+); an empty dict raises KeyError
// (std::out_of_range, as the proxy's other missing keys); pop(k, default); |= is update.
TEST_P(ContainerProxies, DictPopitemPopDefaultAndUpdate) {
    mm::SyncManager m = mproc::Manager(opts());
    auto d = m.dict<std::string, int>();
    d.set("b", 1);
    d.set("a", 2);
    d.set("c", 3);
    d.set("b", 10);  // keeps its place
    d.pop("a");
    d.set("a", 4);  // put in again: now last
    EXPECT_EQ(d.popitem(), (std::pair<std::string, int>("a", 4)));
    EXPECT_EQ(d.popitem(), (std::pair<std::string, int>("c", 3)));
    EXPECT_EQ(d.pop("missing", -1), -1);
    EXPECT_EQ(d.size(), 1u);
    EXPECT_EQ(d.pop("b", -1), 10);
    EXPECT_EQ(d.size(), 0u);
    EXPECT_THROW(d.popitem(), std::out_of_range);
    d |= {{"x", 1}, {"y", 2}};
    d.update({{"x", 5}});
    EXPECT_EQ(d.copy(), (std::map<std::string, int>{{"x", 5}, {"y", 2}}));
}

using StrSet = std::set<std::string>;

// Runs in a child: the set algebra on a proxy, its results checked against std's.
void set_algebra_child(mm::SetProxy<std::string> s) {
    auto check = [](bool ok, const char* what) {
        if (!ok) throw std::runtime_error(std::string("set algebra: ") + what);
    };
    const StrSet other{"c", "d", "e"};
    check(s.union_(other) == (StrSet{"a", "b", "c", "d", "e"}), "union");
    check((s | other) == s.union_(other), "|");
    check(s.intersection(other) == StrSet{"c"}, "intersection");
    check((s & other) == StrSet{"c"}, "&");
    check(s.difference(other) == (StrSet{"a", "b"}), "difference");
    check((s - other) == (StrSet{"a", "b"}), "-");
    check(s.symmetric_difference(other) == (StrSet{"a", "b", "d", "e"}), "symmetric_difference");
    check((s ^ other) == (StrSet{"a", "b", "d", "e"}), "^");
    check(s.items() == (StrSet{"a", "b", "c"}), "unchanged by the operators");
    check(s.issubset({"a", "b", "c", "z"}) && s.issubset({"a", "b", "c"}) && !s.issubset({"a"}), "issubset");
    check(s.issuperset({"a"}) && s.issuperset({}) && !s.issuperset({"a", "z"}), "issuperset");
    check(s.isdisjoint({"x", "y"}) && !s.isdisjoint({"x", "c"}), "isdisjoint");
    s.symmetric_difference_update({"c", "d"});  // {a, b, d}
    s.intersection_update({"a", "d", "q"});     // {a, d}
    s.difference_update({"a"});                 // {d}
    s |= {"m"};
    s ^= {"m", "n"};
    s -= {"z"};
    s &= {"d", "n", "o"};
}

// CPython TestSyncManagerTypes._test_set_operator_methods / _test_set_comparisons, the set
// algebra (union, intersection, difference, symmetric_difference, their in-place forms,
// issubset, issuperset, isdisjoint), in a child; the parent sees the in-place changes.
TEST_P(ContainerProxies, SetAlgebraInAChild) {
    mm::SyncManager m = mproc::Manager(opts());
    auto s = m.set<std::string>({"a", "b", "c"});
    mproc::Process p(popts(), set_algebra_child, s);
    run_child_ok(p);
    EXPECT_EQ(s.items(), (StrSet{"d", "n"}));
    EXPECT_EQ(s.copy(), (StrSet{"d", "n"}));
}

void value_child(mm::ValueProxy<long> v) { v.set_value(v.value() * 2 + 1); }

// CPython TestSyncManagerTypes.test_value with Python's v.value property: value() and
// set_value() in a child, the same object as get() and set().
TEST_P(ContainerProxies, ValuePropertyInAChild) {
    mm::SyncManager m = mproc::Manager(opts());
    auto v = m.Value<long>(20);
    EXPECT_EQ(v.value(), 20);
    mproc::Process p(popts(), value_child, v);
    run_child_ok(p);
    EXPECT_EQ(v.value(), 41);
    EXPECT_EQ(v.get(), 41);
    v.set_value(7);
    EXPECT_EQ(v.get(), 7);
}

void prepend_triples(mm::ListProxy<int> l, int who) {
    for (int i = 0; i < 50; ++i) {
        l.set_slice(0, 0, {who, who, who});
        if (i % 10 == 0) l.reverse();
    }
}

// Each method is one request, run whole in the server: children inserting three equal items at
// a time with set_slice (and reversing the list now and then) never interleave inside a triple.
TEST_P(ContainerProxies, EachCallIsAtomicInTheServer) {
    mm::SyncManager m = mproc::Manager(opts());
    auto l = m.list<int>();
    std::vector<mproc::Process> ps;
    for (int who = 1; who <= 3; ++who) ps.emplace_back(popts(), prepend_triples, l, who);
    for (auto& p : ps) p.start();
    for (auto& p : ps) {
        p.join(60s);
        EXPECT_EQ(p.exitcode(), 0);
    }
    const auto all = l.to_vector();
    ASSERT_EQ(all.size(), 3u * 50u * 3u);
    for (std::size_t i = 0; i < all.size(); i += 3) {
        EXPECT_EQ(all[i], all[i + 1]) << "at " << i;
        EXPECT_EQ(all[i], all[i + 2]) << "at " << i;
    }
}

INSTANTIATE_TEST_SUITE_P(StartMethods, ContainerProxies, testing::Values("fork", "spawn", "forkserver"),
                         [](const auto& info) { return info.param; });

}  // namespace
