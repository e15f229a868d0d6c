// SyncManager's types shared with a child process, checked against CPython's own test:
// CPython Lib/test/_test_multiprocessing.py, class TestSyncManagerTypes. Each test makes the
// object in the parent, a child process checks and changes it (run_worker: the child must exit
// with code 0), and the parent checks the result. CPython runs the class under the fork, spawn
// and forkserver start methods; so does this (the manager's server and the child both).
//
// The child's checks throw on failure, so a failed check is exit code 1 (as a Python assert in
// the child). Python's few methods the typed proxies do not have (a dict's fromkeys(), a
// classmethod, and reversed()) are left out where noted.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <mproc/mproc.hpp>

using namespace std::chrono_literals;
namespace mm = mproc::managers;

namespace {

// A failed check in the child: the child ends with exit code 1.
void check(bool ok, const char* what) {
    if (!ok) throw std::runtime_error(std::string("check failed in the child: ") + what);
}
#define CHILD_CHECK(cond) check((cond), #cond)

class TestSyncManagerTypes : public testing::TestWithParam<std::string> {
protected:
    // setUp: manager_class().start().
    void SetUp() override { manager.emplace(mproc::Manager({.start_method = GetParam()})); }
    // tearDown: the child is gone (run_worker joined it) and the manager is shut down.
    void TearDown() override {
        manager->shutdown();
        manager.reset();
    }
    // run_worker: a daemonic child runs worker(obj); it must exit with code 0.
    template <class Obj>
    void run_worker(void (*worker)(Obj), const Obj& obj) {
        mproc::Process proc({.daemon = true, .start_method = GetParam()}, worker, obj);
        proc.start();
        proc.join(60s);
        if (proc.is_alive()) {
            proc.terminate();
            proc.join();
        }
        EXPECT_EQ(proc.exitcode(), 0);
    }
    std::optional<mm::SyncManager> manager;
};

void test_event_child(mm::EventProxy obj) {
    CHILD_CHECK(obj.is_set());
    obj.wait();
    obj.clear();
    obj.wait(0.001s);
}

// TestSyncManagerTypes.test_event: the child sees the event set, clears it; the parent sees it
// clear.
TEST_P(TestSyncManagerTypes, test_event) {
    auto o = manager->Event();
    o.set();
    run_worker(test_event_child, o);
    EXPECT_FALSE(o.is_set());
    EXPECT_FALSE(o.wait(0.001s));
}

void test_lock_child(mm::LockProxy obj) {
    obj.acquire();
    CHILD_CHECK(obj.locked());
}

// TestSyncManagerTypes.test_lock: the child takes the lock and exits holding it; a second
// release raises (RuntimeError; mproc: std::logic_error). Python's lock stays held after the child,
// and the parent's first release() frees it; mproc's server frees it when the child's connection
// ends (python_differences.md: "a manager's Lock held by a client that dies stays locked forever"
// / "the server releases it when the client's connection ends"), so the parent takes it (waiting
// for that) and releases it.
TEST_P(TestSyncManagerTypes, test_lock) {
    auto o = manager->Lock();
    run_worker(test_lock_child, o);
    EXPECT_TRUE(o.acquire(true, 30s));
    o.release();
    EXPECT_THROW(o.release(), std::logic_error);  // already released
}

void test_rlock_child(mm::RLockProxy obj) {
    obj.acquire();
    obj.release();
    obj.locked();
}

// TestSyncManagerTypes.test_rlock: acquire, release, locked() in the child.
TEST_P(TestSyncManagerTypes, test_rlock) {
    auto o = manager->RLock();
    run_worker(test_rlock_child, o);
    EXPECT_FALSE(o.locked());
}

void test_semaphore_child(mm::SemaphoreProxy obj) { obj.acquire(); }
void test_bounded_semaphore_child(mm::BoundedSemaphoreProxy obj) { obj.acquire(); }

// TestSyncManagerTypes.test_semaphore: the child acquires, the parent releases.
TEST_P(TestSyncManagerTypes, test_semaphore) {
    auto o = manager->Semaphore();
    run_worker(test_semaphore_child, o);
    EXPECT_EQ(o.get_value(), 0);
    EXPECT_NO_THROW(o.release());
    EXPECT_EQ(o.get_value(), 1);
}

// TestSyncManagerTypes.test_bounded_semaphore: the same with a BoundedSemaphore.
TEST_P(TestSyncManagerTypes, test_bounded_semaphore) {
    auto o = manager->BoundedSemaphore();
    run_worker(test_bounded_semaphore_child, o);
    EXPECT_NO_THROW(o.release());
    EXPECT_EQ(o.get_value(), 1);
}

void test_condition_child(mm::ConditionProxy obj) {
    obj.acquire();
    obj.release();
}

// TestSyncManagerTypes.test_condition: acquire and release in the child.
TEST_P(TestSyncManagerTypes, test_condition) {
    auto o = manager->Condition();
    run_worker(test_condition_child, o);
    EXPECT_TRUE(o.acquire(false));
    o.release();
}

void test_barrier_child(mm::BarrierProxy obj) {
    CHILD_CHECK(obj.parties() == 5);
    obj.reset();
}

// TestSyncManagerTypes.test_barrier: the child sees 5 parties and resets it.
TEST_P(TestSyncManagerTypes, test_barrier) {
    auto o = manager->Barrier(5);
    run_worker(test_barrier_child, o);
    EXPECT_FALSE(o.broken());
}

template <class Q>
void test_queue_child(Q obj) {
    CHILD_CHECK(obj.qsize() == 2);
    CHILD_CHECK(obj.full());
    CHILD_CHECK(!obj.empty());
    CHILD_CHECK(obj.get() == 5);
    CHILD_CHECK(!obj.empty());
    CHILD_CHECK(obj.get() == 6);
    CHILD_CHECK(obj.empty());
}

// TestSyncManagerTypes.test_queue: Queue(2) with 5 and 6 in it: full, not empty, then the child
// takes both in order; the parent sees it empty and not full.
TEST_P(TestSyncManagerTypes, test_queue) {
    auto o = manager->Queue<int>(2);
    o.put(5);
    o.put(6);
    run_worker(test_queue_child<mm::QueueProxy<int>>, o);
    EXPECT_TRUE(o.empty());
    EXPECT_FALSE(o.full());
}

// TestSyncManagerTypes.test_joinable_queue: the same with a JoinableQueue.
TEST_P(TestSyncManagerTypes, test_joinable_queue) {
    auto o = manager->JoinableQueue<int>(2);
    o.put(5);
    o.put(6);
    run_worker(test_queue_child<mm::JoinableQueueProxy<int>>, o);
    EXPECT_TRUE(o.empty());
    EXPECT_FALSE(o.full());
}

// Python's list(obj): the items an iteration over the proxy yields.
std::vector<int> list(const mm::ListProxy<int>& obj) {
    std::vector<int> out;
    for (int x : obj) out.push_back(x);
    return out;
}

void test_list_child(mm::ListProxy<int> obj) {
    using V = std::vector<int>;
    CHILD_CHECK(obj.get(0) == 5);
    CHILD_CHECK(obj.count(5) == 1);
    CHILD_CHECK(obj.index(5) == 0);
    obj += {7};
    CHILD_CHECK(list(obj) == (V{5, 7}));
    obj *= 2;
    CHILD_CHECK(list(obj) == (V{5, 7, 5, 7}));
    V double_obj = obj * 2;  // a plain list
    CHILD_CHECK(double_obj == (V{5, 7, 5, 7, 5, 7, 5, 7}));
    double_obj = 2 * obj;
    CHILD_CHECK(double_obj == (V{5, 7, 5, 7, 5, 7, 5, 7}));
    const V copied_obj = obj.copy();  // a plain list
    CHILD_CHECK(copied_obj == (V{5, 7, 5, 7}));
    V both = double_obj;
    both.insert(both.end(), copied_obj.begin(), copied_obj.end());  // double_obj + copied_obj
    obj.extend(both);
    obj.sort();
    obj.reverse();
    for (int x : obj) (void)x;
    CHILD_CHECK(obj.size() == 16);
    CHILD_CHECK(obj.pop(0) == 7);
    obj.clear();
    CHILD_CHECK(obj.size() == 0);
}

// TestSyncManagerTypes.test_list: indexing, count, index, +=, iteration, *=, * (both ways),
// copy(), extend, sort(), reverse(), len, pop(0), clear in the child; the parent sees it empty.
TEST_P(TestSyncManagerTypes, test_list) {
    auto o = manager->list<int>();
    o.append(5);
    run_worker(test_list_child, o);
    EXPECT_EQ(o.size(), 0u);
}

void test_dict_child(mm::DictProxy<std::string, int> obj) {
    using M = std::map<std::string, int>;
    CHILD_CHECK(obj.size() == 1);
    CHILD_CHECK(obj.get("foo") == 5);
    CHILD_CHECK(obj.get("foo", 0) == 5);
    CHILD_CHECK(obj.items() == (M{{"foo", 5}}));
    CHILD_CHECK(obj.keys() == std::vector<std::string>{"foo"});
    CHILD_CHECK(obj.values() == std::vector<int>{5});
    CHILD_CHECK(obj.copy() == (M{{"foo", 5}}));
    obj |= {{"bar", 6}};
    CHILD_CHECK(obj.copy() == (M{{"foo", 5}, {"bar", 6}}));
    CHILD_CHECK(obj.keys() == (std::vector<std::string>{"foo", "bar"}));  // reversed(obj) is its reverse
    CHILD_CHECK((M{{"bar", 7}, {"baz", 7}} | obj) == (M{{"foo", 5}, {"bar", 6}, {"baz", 7}}));
    CHILD_CHECK((obj | M{{"bar", 7}, {"baz", 7}}) == (M{{"foo", 5}, {"bar", 7}, {"baz", 7}}));
    CHILD_CHECK(obj.popitem() == (std::pair<std::string, int>("bar", 6)));
    obj.setdefault("bar", 0);
    obj.update({{"bar", 7}});
    CHILD_CHECK(obj.pop("bar") == 7);
    obj.clear();
    CHILD_CHECK(obj.size() == 0);
}

// TestSyncManagerTypes.test_dict: len, [], get, items, keys, values, copy, |=, | (both ways),
// popitem (the last key in), setdefault, update, pop, clear in the child; the parent sees it
// empty. (reversed(obj) is checked through keys(), whose reverse it is; fromkeys, a
// classmethod making a plain dict, has no proxy counterpart.)
TEST_P(TestSyncManagerTypes, test_dict) {
    auto o = manager->dict<std::string, int>();
    o.set("foo", 5);
    run_worker(test_dict_child, o);
    EXPECT_EQ(o.size(), 0u);
}

void test_value_child(mm::ValueProxy<int> obj) {
    CHILD_CHECK(obj.value() == 1);
    CHILD_CHECK(obj.get() == 1);
    obj.set(2);
}

// TestSyncManagerTypes.test_value: Value('i', 1) read and set to 2 by the child.
TEST_P(TestSyncManagerTypes, test_value) {
    auto o = manager->Value<int>(1);
    run_worker(test_value_child, o);
    EXPECT_EQ(o.value(), 2);
    EXPECT_EQ(o.get(), 2);
}

void test_array_child(mm::ArrayProxy<int> obj) {
    CHILD_CHECK(obj.get(0) == 0);
    CHILD_CHECK(obj.get(1) == 1);
    CHILD_CHECK(obj.size() == 2);
    CHILD_CHECK(obj.to_vector() == (std::vector<int>{0, 1}));
}

// TestSyncManagerTypes.test_array: Array('i', [0, 1]) read by the child.
TEST_P(TestSyncManagerTypes, test_array) {
    auto o = manager->Array<int>({0, 1});
    run_worker(test_array_child, o);
}

void test_namespace_child(mm::NamespaceProxy obj) {
    CHILD_CHECK(obj.get<int>("x") == 0);
    CHILD_CHECK(obj.get<int>("y") == 1);
}

// TestSyncManagerTypes.test_namespace: attributes x and y read by the child.
TEST_P(TestSyncManagerTypes, test_namespace) {
    auto o = manager->Namespace();
    o.set("x", 0);
    o.set("y", 1);
    run_worker(test_namespace_child, o);
}

using StrSet = std::set<std::string>;

// _test_set_operator_symbols: update, len, in; |, &, -, ^ with the proxy on either side (plain
// sets) and their in-place forms (the proxy itself).
void test_set_operator_symbols_child(mm::SetProxy<std::string> obj) {
    obj.update({"a", "b", "c"});
    CHILD_CHECK(obj.size() == 3);
    CHILD_CHECK(obj.contains("a"));
    CHILD_CHECK(!obj.contains("d"));
    CHILD_CHECK((obj | StrSet{"d", "e"}) == (StrSet{"a", "b", "c", "d", "e"}));
    CHILD_CHECK((StrSet{"d", "e"} | obj) == (StrSet{"a", "b", "c", "d", "e"}));
    obj |= {"d", "e"};
    CHILD_CHECK(obj.items() == (StrSet{"a", "b", "c", "d", "e"}));

    obj.clear();
    obj.update({"a", "b", "c"});
    CHILD_CHECK((StrSet{"a", "b", "d"} - obj) == StrSet{"d"});
    CHILD_CHECK((obj - StrSet{"a", "b"}) == StrSet{"c"});
    obj -= {"a", "b"};
    CHILD_CHECK(obj.items() == StrSet{"c"});

    obj.clear();
    obj.update({"a", "b", "c"});
    CHILD_CHECK((StrSet{"b", "c", "d"} ^ obj) == (StrSet{"a", "d"}));
    CHILD_CHECK((obj ^ StrSet{"b", "c", "d"}) == (StrSet{"a", "d"}));
    obj ^= {"b", "c", "d"};
    CHILD_CHECK(obj.items() == (StrSet{"a", "d"}));

    obj.clear();
    obj.update({"a", "b", "c"});
    CHILD_CHECK((obj & StrSet{"b", "c", "d"}) == (StrSet{"b", "c"}));
    CHILD_CHECK((StrSet{"b", "c", "d"} & obj) == (StrSet{"b", "c"}));
    obj &= {"b", "c", "d"};
    CHILD_CHECK(obj.items() == (StrSet{"b", "c"}));

    obj.clear();
    obj.update({"a", "b", "c"});
    CHILD_CHECK(obj.items() == (StrSet{"a", "b", "c"}));
}

// _test_set_operator_methods: add, copy, remove (KeyError when absent; mproc:
// std::out_of_range), discard (twice), pop, intersection, difference, symmetric_difference and
// their _update forms.
void test_set_operator_methods_child(mm::SetProxy<std::string> obj) {
    obj.add("d");
    CHILD_CHECK(obj.contains("d"));

    obj.clear();
    obj.update({"a", "b", "c"});
    const StrSet copy_obj = obj.copy();
    CHILD_CHECK(copy_obj == obj.items());
    obj.remove("a");
    CHILD_CHECK(!obj.contains("a"));
    bool raised = false;
    try {
        obj.remove("a");
    } catch (const std::out_of_range&) {
        raised = true;
    }
    CHILD_CHECK(raised);

    obj.clear();
    obj.update({"a"});
    obj.discard("a");
    CHILD_CHECK(!obj.contains("a"));
    obj.discard("a");
    CHILD_CHECK(!obj.contains("a"));
    obj.update({"a"});
    const std::string popped = obj.pop();
    CHILD_CHECK(!obj.contains(popped));

    obj.clear();
    obj.update({"a", "b", "c"});
    CHILD_CHECK(obj.intersection({"b", "c", "d"}) == (StrSet{"b", "c"}));
    obj.intersection_update({"b", "c", "d"});
    CHILD_CHECK(obj.items() == (StrSet{"b", "c"}));

    obj.clear();
    obj.update({"a", "b", "c"});
    CHILD_CHECK(obj.difference({"a", "b"}) == StrSet{"c"});
    obj.difference_update({"a", "b"});
    CHILD_CHECK(obj.items() == StrSet{"c"});

    obj.clear();
    obj.update({"a", "b", "c"});
    CHILD_CHECK(obj.symmetric_difference({"b", "c", "d"}) == (StrSet{"a", "d"}));
    obj.symmetric_difference_update({"b", "c", "d"});
    CHILD_CHECK(obj.items() == (StrSet{"a", "d"}));
}

// _test_set_comparisons: union (spelled union_), isdisjoint, issubset, issuperset, <, <=, >, >=.
void test_set_comparisons_child(mm::SetProxy<std::string> obj) {
    obj.update({"a", "b", "c"});
    CHILD_CHECK(obj.union_({"d", "e"}) == (StrSet{"a", "b", "c", "d", "e"}));
    CHILD_CHECK(obj.isdisjoint({"d", "e"}));
    CHILD_CHECK(!obj.isdisjoint({"a", "d"}));

    CHILD_CHECK(obj.issubset({"a", "b", "c", "d"}));
    CHILD_CHECK(!obj.issubset({"a", "b"}));
    CHILD_CHECK((obj < StrSet{"a", "b", "c", "d"}));
    CHILD_CHECK((obj <= StrSet{"a", "b", "c"}));
    CHILD_CHECK(!(obj < StrSet{"a", "b", "c"}));

    CHILD_CHECK(obj.issuperset({"a", "b"}));
    CHILD_CHECK(!obj.issuperset({"a", "b", "d"}));
    CHILD_CHECK((obj > StrSet{"a"}));
    CHILD_CHECK((obj >= StrSet{"a", "b"}));
    CHILD_CHECK(!(obj > StrSet{"a", "b", "c"}));
}

// TestSyncManagerTypes.test_set: three children each work on a fresh set.
TEST_P(TestSyncManagerTypes, test_set) {
    auto o = manager->set<std::string>();
    run_worker(test_set_operator_symbols_child, o);
    auto o2 = manager->set<std::string>();
    run_worker(test_set_operator_methods_child, o2);
    auto o3 = manager->set<std::string>();
    run_worker(test_set_comparisons_child, o3);
}

// TestSyncManagerTypes.test_set_init: a set made from values holds them. (Python's list and
// dict arguments are the same std::set here; set(1234) is a compile error.)
TEST_P(TestSyncManagerTypes, test_set_init) {
    auto o = manager->set<std::string>({"a", "b", "c"});
    EXPECT_EQ(o.items(), (StrSet{"a", "b", "c"}));
}

INSTANTIATE_TEST_SUITE_P(StartMethods, TestSyncManagerTypes, testing::Values("fork", "spawn", "forkserver"));

}  // namespace
