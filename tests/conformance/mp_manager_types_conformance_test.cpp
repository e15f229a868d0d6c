// SyncManager's types shared with a child process, checked against CPython's own test:
// CPython Lib/test/_test_multiprocessing.py, class TestSyncManagerTypes. Each test makes the
// object in the parent, a child process checks and changes it (run_worker: the child must exit
// with code 0), and the parent checks the result. CPython runs the class under the fork, spawn
// and forkserver start methods; so does this (the manager's server and the child both).
//
// The child's checks throw on failure, so a failed check is exit code 1 (as a Python assert in
// the child). Python's operators and methods the typed proxies do not have (obj *= 2, sort(),
// reverse(), set algebra, popitem(), fromkeys(), reversed()) are left out where noted.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
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

void test_list_child(mm::ListProxy<int> obj) {
    CHILD_CHECK(obj.get(0) == 5);
    CHILD_CHECK(obj.count(5) == 1);
    CHILD_CHECK(obj.index(5) == 0);
    obj.extend({7});  // obj += [7]
    CHILD_CHECK(obj.to_vector() == (std::vector<int>{5, 7}));
    const auto copied = obj.to_vector();  // obj.copy(): a plain list
    CHILD_CHECK(copied == (std::vector<int>{5, 7}));
    obj.extend(copied);
    obj.extend(copied);
    CHILD_CHECK(obj.size() == 6);
    CHILD_CHECK(obj.pop(0) == 5);
    obj.clear();
    CHILD_CHECK(obj.size() == 0);
}

// TestSyncManagerTypes.test_list: indexing, count, index, +=, copy(), extend, len, pop(0),
// clear in the child; the parent sees it empty. (*=, *, sort() and reverse() have no proxy
// method and are left out.)
TEST_P(TestSyncManagerTypes, test_list) {
    auto o = manager->list<int>();
    o.append(5);
    run_worker(test_list_child, o);
    EXPECT_EQ(o.size(), 0u);
}

void test_dict_child(mm::DictProxy<std::string, int> obj) {
    CHILD_CHECK(obj.size() == 1);
    CHILD_CHECK(obj.get("foo") == 5);
    CHILD_CHECK(obj.get("foo", 0) == 5);
    CHILD_CHECK(obj.items() == (std::map<std::string, int>{{"foo", 5}}));
    CHILD_CHECK(obj.keys() == std::vector<std::string>{"foo"});
    CHILD_CHECK(obj.values() == std::vector<int>{5});
    CHILD_CHECK(obj.copy() == (std::map<std::string, int>{{"foo", 5}}));
    obj.update({{"bar", 6}});  // obj |= {'bar': 6}
    CHILD_CHECK(obj.copy() == (std::map<std::string, int>{{"foo", 5}, {"bar", 6}}));
    CHILD_CHECK(obj.setdefault("bar", 0) == 6);
    obj.update({{"bar", 7}});
    CHILD_CHECK(obj.pop("bar") == 7);
    obj.clear();
    CHILD_CHECK(obj.size() == 0);
}

// TestSyncManagerTypes.test_dict: len, [], get, items, keys, values, copy, |=, setdefault,
// update, pop, clear in the child; the parent sees it empty. (reversed(), the | operators,
// fromkeys and popitem have no proxy method and are left out.)
TEST_P(TestSyncManagerTypes, test_dict) {
    auto o = manager->dict<std::string, int>();
    o.set("foo", 5);
    run_worker(test_dict_child, o);
    EXPECT_EQ(o.size(), 0u);
}

void test_value_child(mm::ValueProxy<int> obj) {
    CHILD_CHECK(obj.get() == 1);
    obj.set(2);
}

// TestSyncManagerTypes.test_value: Value('i', 1) read and set to 2 by the child.
TEST_P(TestSyncManagerTypes, test_value) {
    auto o = manager->Value<int>(1);
    run_worker(test_value_child, o);
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

// _test_set_operator_symbols, the parts with a proxy method: update, len, in, |=.
void test_set_operator_symbols_child(mm::SetProxy<std::string> obj) {
    obj.update({"a", "b", "c"});
    CHILD_CHECK(obj.size() == 3);
    CHILD_CHECK(obj.contains("a"));
    CHILD_CHECK(!obj.contains("d"));
    obj.update({"d", "e"});  // obj |= {'d', 'e'}
    CHILD_CHECK(obj.items() == (StrSet{"a", "b", "c", "d", "e"}));
    obj.clear();
    obj.update({"a", "b", "c"});
    CHILD_CHECK(obj.items() == (StrSet{"a", "b", "c"}));
}

// _test_set_operator_methods, the parts with a proxy method: add, copy, remove (KeyError when
// absent; mproc: std::out_of_range), discard (twice), pop.
void test_set_operator_methods_child(mm::SetProxy<std::string> obj) {
    obj.add("d");
    CHILD_CHECK(obj.contains("d"));
    obj.clear();
    obj.update({"a", "b", "c"});
    const StrSet copy_obj = obj.items();
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
}

// TestSyncManagerTypes.test_set: three children each work on a fresh set. (The set algebra of
// _test_set_operator_symbols/_methods and the comparisons of _test_set_comparisons have no proxy
// method: the third child's union, isdisjoint, issubset, issuperset are left out.)
TEST_P(TestSyncManagerTypes, test_set) {
    auto o = manager->set<std::string>();
    run_worker(test_set_operator_symbols_child, o);
    auto o2 = manager->set<std::string>();
    run_worker(test_set_operator_methods_child, o2);
}

// TestSyncManagerTypes.test_set_init: a set made from values holds them. (Python's list and
// dict arguments are the same std::set here; set(1234) is a compile error.)
TEST_P(TestSyncManagerTypes, test_set_init) {
    auto o = manager->set<std::string>({"a", "b", "c"});
    EXPECT_EQ(o.items(), (StrSet{"a", "b", "c"}));
}

INSTANTIATE_TEST_SUITE_P(StartMethods, TestSyncManagerTypes, testing::Values("fork", "spawn", "forkserver"));

}  // namespace
