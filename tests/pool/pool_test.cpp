// mproc::Pool under every start method: Python's interface and semantics.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <numeric>
#include <optional>
#include <ranges>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <mproc/mproc.hpp>

#include "asan.hpp"
#include "ranges.hpp"
#include "pool/pool_internal.hpp"

using namespace std::chrono_literals;

namespace {

int square(int x) { return x * x; }
int add(int a, int b) { return a + b; }
std::string shout(std::string s, int times) {
    std::string out;
    for (int i = 0; i < times; ++i) out += s + "!";
    return out;
}
int fail_on_seven(int x) {
    if (x == 7) throw std::invalid_argument("seven is not allowed");
    return x;
}
int my_pid(int) { return mproc::current_process().pid().value_or(-1); }
void nothing(int) {}

int g_initialized = 0;
void init_global(int v) { g_initialized = v; }
int read_global(int) { return g_initialized; }
void init_throws() { throw std::runtime_error("no database"); }

int nested_pool_sum(int n) {
    mproc::Pool inner(2);
    auto r = inner.map(square, mproc_test::numbers(1, n + 1));
    return std::accumulate(r.begin(), r.end(), 0);
}

int drain_queue(mproc::Queue<int> q, int n) {
    int sum = 0;
    for (int i = 0; i < n; ++i) sum += q.get(true, 10s);
    return sum;
}

// A value whose serialization throws on the way out when `bad` (Python: __reduce__ raises).
struct WriteFails {
    int v = 0;
    bool bad = false;
    template <class Ar>
    void serialize(Ar& ar) {
        if constexpr (Ar::is_saving::value)
            if (bad) throw std::domain_error("cannot write " + std::to_string(v));
        ar(v, bad);
    }
};
int value_of(WriteFails w) { return w.v; }
int put_if_given(std::optional<mproc::Queue<int>> q, int i) {
    if (q) q->put(i);
    return i;
}

class PoolTest : public testing::TestWithParam<std::string> {
protected:
    mproc::PoolOptions opts(int processes = 2) { return {.processes = processes, .start_method = GetParam()}; }
};

TEST_P(PoolTest, MapReturnsTheListInOrder) {
    mproc::Pool pool(opts());
    std::vector<int> in(1000);
    std::iota(in.begin(), in.end(), 0);
    const std::vector<int> r = pool.map(square, in);
    ASSERT_EQ(r.size(), in.size());
    for (int i = 0; i < 1000; ++i) EXPECT_EQ(r[i], i * i);
    EXPECT_EQ(pool.map(square, std::vector<int>{}), std::vector<int>{});
    EXPECT_EQ(pool.map(square, std::vector<int>{1, 2, 3}, 1), (std::vector<int>{1, 4, 9}));
}

TEST_P(PoolTest, ApplyAsyncAndApplyWithSeveralArguments) {
    mproc::Pool pool(opts());
    mproc::AsyncResult<int> ar = pool.apply_async(add, 1, 2);
    EXPECT_EQ(ar.get(10s), 3);
    EXPECT_TRUE(ar.ready());
    EXPECT_TRUE(ar.successful());
    EXPECT_EQ(pool.apply(add, 20, 22), 42);
    EXPECT_EQ(pool.apply(shout, std::string("hi"), 2), "hi!hi!");
    EXPECT_EQ(pool.apply(shout, "const char*", 1), "const char*!");
}

TEST_P(PoolTest, ItemsOfEveryShapeTravel) {
    mproc::Pool pool(opts());
    // Strings alike in size, and not; a tuple mixing a string and an int; doubles packed.
    const std::vector<std::string> same{"ab", "cd", "ef"}, mixed{"", "a", std::string(5000, 'z')};
    EXPECT_EQ(pool.map(+[](std::string s) { return s + s; }, same), (std::vector<std::string>{"abab", "cdcd", "efef"}));
    EXPECT_EQ(pool.map(+[](std::string s) { return s.size(); }, mixed), (std::vector<std::size_t>{0, 1, 5000}));
    EXPECT_EQ(pool.starmap(shout, std::vector<std::tuple<std::string, int>>{{"x", 2}, {"y", 0}}),
              (std::vector<std::string>{"x!x!", ""}));
    EXPECT_EQ(pool.starmap(+[](double a, float b) { return a * b; }, std::vector<std::tuple<double, float>>{{1.5, 2.0f}}),
              (std::vector<double>{3.0}));
}

TEST_P(PoolTest, StarmapOverTuplesAndPairs) {
    mproc::Pool pool(opts());
    EXPECT_EQ(pool.starmap(add, std::vector<std::tuple<int, int>>{{1, 2}, {3, 4}}), (std::vector<int>{3, 7}));
    EXPECT_EQ(pool.starmap(add, std::vector<std::pair<int, int>>{{5, 6}}), (std::vector<int>{11}));
    auto ar = pool.starmap_async(add, std::vector<std::tuple<int, int>>{{1, 1}, {2, 2}});
    EXPECT_EQ(ar.get(10s), (std::vector<int>{2, 4}));
}

TEST_P(PoolTest, ImapKeepsOrderAndImapUnorderedGetsEverything) {
    mproc::Pool pool(opts());
    std::vector<int> got;
    for (int y : pool.imap(square, mproc_test::numbers(0, 100))) got.push_back(y);
    std::vector<int> want;
    for (int i = 0; i < 100; ++i) want.push_back(i * i);
    EXPECT_EQ(got, want);

    got.clear();
    for (int y : pool.imap_unordered(square, mproc_test::numbers(0, 100), 7)) got.push_back(y);
    std::sort(got.begin(), got.end());
    EXPECT_EQ(got, want);
}

TEST_P(PoolTest, ImapReadsAnEndlessInputLazily) {
    mproc::Pool pool(opts());
    auto it = pool.imap(square, mproc_test::Endless<int>(0));  // no end
    for (int i = 0; i < 50; ++i) {
        auto v = it.next(10s);
        ASSERT_TRUE(v);
        EXPECT_EQ(*v, i * i);
    }
}

// A stream reads at most its window of items (1024, or four chunks a worker) ahead of what
// it has handed out, whatever the chunksize. It counted the chunks it fed against the items
// handed out, so with chunksize 10 it fed a chunk for every item taken: 2000 results read
// about 21,000 items of the input.
TEST_P(PoolTest, ImapReadsAheadAWindowOfItemsWhateverTheChunksize) {
    mproc::Pool pool(opts());
    std::size_t reads = 0;
    auto it = pool.imap(square, mproc_test::Endless<int>(0, &reads), {.chunksize = 10});
    constexpr std::size_t taken = 2000;
    for (std::size_t i = 0; i < taken; ++i) ASSERT_TRUE(it.next(10s));
    EXPECT_GE(reads, taken);
    EXPECT_LE(reads, taken + 1024 + 10);
}

// An argument whose serialization throws fails its result with that exception (its type kept)
// rather than throwing from apply_async, and the pool goes on: Python's Pool pickles a task in
// its task-handler thread and sets the error on the task's result (pool.py _handle_tasks).
TEST_P(PoolTest, AnArgumentThatCannotBeWrittenFailsItsResult) {
    mproc::Pool pool(opts());
    std::atomic<int> errors{0};
    mproc::AsyncResult<int> r = pool.apply_async(value_of, std::tuple{WriteFails{4, true}},
                                                 {.error_callback = [&](std::exception_ptr e) {
                                                     try {
                                                         std::rethrow_exception(e);
                                                     } catch (const std::domain_error&) {
                                                         ++errors;
                                                     } catch (...) {
                                                     }
                                                 }});
    r.wait(10s);
    ASSERT_TRUE(r.ready());
    EXPECT_FALSE(r.successful());
    try {
        r.get();
        ADD_FAILURE() << "get() did not throw";
    } catch (const std::domain_error& e) {
        EXPECT_STREQ(e.what(), "cannot write 4");
    }
    EXPECT_EQ(errors.load(), 1);
    EXPECT_EQ(pool.apply(value_of, WriteFails{5, false}), 5);
    // imap: the failing item's chunk raises at its place; the others come through.
    auto it = pool.imap(value_of, std::vector<WriteFails>{{1, false}, {2, true}, {3, false}});
    EXPECT_EQ(*it.next(10s), 1);
    EXPECT_THROW(it.next(10s), std::domain_error);
    EXPECT_EQ(*it.next(10s), 3);
    EXPECT_FALSE(it.next(10s));
}

TEST_P(PoolTest, ImapThrowsAtTheFailingItemAndGoesOn) {
    mproc::Pool pool(opts());
    auto it = pool.imap(fail_on_seven, mproc_test::numbers(5, 10));
    EXPECT_EQ(*it.next(10s), 5);
    EXPECT_EQ(*it.next(10s), 6);
    EXPECT_THROW(it.next(10s), std::invalid_argument);
    EXPECT_EQ(*it.next(10s), 8);
    EXPECT_EQ(*it.next(10s), 9);
    EXPECT_FALSE(it.next(10s));
}

// Issue 14, divergence 8 (pool.py _guarded_task_generation over _get_tasks' chunks): an
// exception the input throws takes the place of the chunk it was reading: the results of the
// chunks before it come first, then it is raised, then the iteration stops. Before the fix it
// came out of the first next(), and the iteration went on past it.
// 0..9, whose item 5 throws when it is read. (A hand-written range: clang 14 cannot compile
// libstdc++ 12's views.)
class ThrowingInput {
public:
    struct iterator {
        using value_type = int;
        using difference_type = std::ptrdiff_t;
        int i = 0;
        int operator*() const {
            if (i == 5) throw std::out_of_range("input ran out at 5");
            return i;
        }
        iterator& operator++() {
            ++i;
            return *this;
        }
        void operator++(int) { ++i; }
        bool operator==(std::default_sentinel_t) const { return i >= 10; }
    };
    iterator begin() const { return {}; }
    std::default_sentinel_t end() const { return {}; }
};
ThrowingInput throwing_input() { return {}; }
TEST_P(PoolTest, ImapInputExceptionComesAfterTheResultsBeforeIt) {
    mproc::Pool pool(opts());
    for (std::size_t chunksize : {1, 2, 3}) {
        auto it = pool.imap(square, throwing_input(), {.chunksize = chunksize});
        const int whole_chunks_before = static_cast<int>(5 / chunksize * chunksize);
        for (int i = 0; i < whole_chunks_before; ++i) {
            auto v = it.next(30s);
            ASSERT_TRUE(v) << "chunksize " << chunksize;
            EXPECT_EQ(*v, i * i);
        }
        EXPECT_THROW(it.next(30s), std::out_of_range);
        EXPECT_FALSE(it.next(30s));
    }
}

// Issue 14, divergence 12 (pool.py MapResult._set: the first error completes the result, the
// other tasks still run): a failed map's other chunks run to the end.
void mark_or_fail(mproc::Array<int> ran, int i) {
    ran.set(static_cast<std::size_t>(i), 1);
    if (i == 0) throw std::invalid_argument("the first item fails");
}
TEST_P(PoolTest, MapRunsEveryChunkAfterAnItemFails) {
    mproc::Array<int> ran(40);
    {
        mproc::Pool pool(opts());
        std::vector<std::tuple<mproc::Array<int>, int>> items;
        for (int i = 0; i < 40; ++i) items.emplace_back(ran, i);
        EXPECT_THROW(pool.starmap(mark_or_fail, items, {.chunksize = 1}), std::invalid_argument);
        pool.close();
        pool.join();
    }
    for (int i = 0; i < 40; ++i) EXPECT_EQ(ran.get(static_cast<std::size_t>(i)), 1) << "item " << i;
}

// Issue 14, 2.15: Python refuses maxtasksperchild=0 and chunksize=0 (pool.py: "maxtasksperchild
// must be a positive int or None", "Chunksize must be 1+, not 0").
TEST_P(PoolTest, ZeroMaxTasksPerChildAndZeroChunksizeAreErrors) {
    auto o = opts();
    o.maxtasksperchild = 0;
    EXPECT_THROW(mproc::Pool{o}, std::invalid_argument);
    mproc::Pool pool(opts());
    const std::vector<int> in{1, 2, 3};
    EXPECT_THROW(pool.map(square, in, {.chunksize = 0}), std::invalid_argument);
    EXPECT_THROW(pool.imap(square, in, {.chunksize = 0}), std::invalid_argument);
    EXPECT_THROW(pool.imap_unordered(square, in, {.chunksize = 0}), std::invalid_argument);
    EXPECT_EQ(pool.map(square, in, {.chunksize = 1}), (std::vector<int>{1, 4, 9}));
}

TEST_P(PoolTest, AnExceptionReachesTheCallerWithItsTypeAndThePoolKeepsWorking) {
    mproc::Pool pool(opts());
    std::vector<int> in(20);
    std::iota(in.begin(), in.end(), 0);
    try {
        pool.map(fail_on_seven, in);
        FAIL() << "map did not throw";
    } catch (const std::invalid_argument& e) {
        EXPECT_STREQ(e.what(), "seven is not allowed");
    }
    auto ar = pool.apply_async(fail_on_seven, 7);
    ar.wait(10s);
    ASSERT_TRUE(ar.ready());
    EXPECT_FALSE(ar.successful());
    EXPECT_THROW(ar.get(), std::invalid_argument);
    EXPECT_EQ(pool.map(square, std::vector<int>{3, 4}), (std::vector<int>{9, 16}));
}

TEST_P(PoolTest, CallbacksRunWithTheResultOrTheError) {
    mproc::Pool pool(opts());
    std::atomic<int> value{0};
    std::atomic<bool> errored{false};
    auto a = pool.apply_async(square, std::tuple{9}, {.callback = [&](const int& v) { value = v; }});
    auto b = pool.apply_async(fail_on_seven, std::tuple{7},
                              {.error_callback = [&](std::exception_ptr) { errored = true; }});
    std::vector<int> list_seen;
    auto c = pool.map_async(square, std::vector<int>{1, 2},
                            {.callback = [&](const std::vector<int>& v) { list_seen = v; }});
    a.wait(10s);
    b.wait(10s);
    c.wait(10s);
    // As in Python, a callback has run by the time its result is ready.
    EXPECT_EQ(value.load(), 81);
    EXPECT_TRUE(errored.load());
    EXPECT_EQ(list_seen, (std::vector<int>{1, 4}));
}

TEST_P(PoolTest, GetWithATimeoutThrowsTimeoutError) {
    mproc::Pool pool(opts(1));
    auto slow = pool.apply_async(+[](int ms) {
        std::this_thread::sleep_for(std::chrono::milliseconds(ms));
        return ms;
    }, 2000);
    EXPECT_THROW(slow.get(0.05s), mproc::TimeoutError);
    EXPECT_FALSE(slow.ready());
    EXPECT_THROW(slow.successful(), std::logic_error);
}

TEST_P(PoolTest, InitializerRunsInEveryWorker) {
    mproc::Pool pool({.processes = 2, .initializer = mproc::Initializer(init_global, 42), .start_method = GetParam()});
    const auto r = pool.map(read_global, std::vector<int>(10, 0), 1);
    for (int v : r) EXPECT_EQ(v, 42);
}

TEST_P(PoolTest, AFailingInitializerBreaksThePoolInsteadOfHanging) {
    mproc::Pool pool({.processes = 2, .initializer = mproc::Initializer(init_throws), .start_method = GetParam()});
    try {
        pool.apply(square, 2);
        FAIL() << "no error";
    } catch (const mproc::futures::BrokenProcessPool& e) {
        EXPECT_NE(std::string(e.what()).find("no database"), std::string::npos) << e.what();
    }
    EXPECT_THROW(pool.apply_async(square, 2), mproc::futures::BrokenProcessPool);
}

TEST_P(PoolTest, MaxTasksPerChildReplacesWorkers) {
    mproc::Pool pool({.processes = 1, .maxtasksperchild = 2, .start_method = GetParam()});
    const auto pids = pool.map(my_pid, std::vector<int>(6, 0), 1);
    std::set<int> distinct(pids.begin(), pids.end());
    EXPECT_EQ(distinct.size(), 3u);
}

void mark_slot(mproc::Array<int> ran, int i) { ran.set(static_cast<std::size_t>(i), ran.get(static_cast<std::size_t>(i)) + 1); }

TEST_P(PoolTest, VoidTasks) {
    mproc::Pool pool(opts());
    auto r = pool.map(nothing, std::vector<int>{1, 2, 3});
    EXPECT_EQ(r.size(), 3u);
    pool.apply(nothing, 1);
    // A void task's effect is its only result: each ran exactly once.
    mproc::Array<int> ran(5);
    std::vector<std::tuple<mproc::Array<int>, int>> items;
    for (int i = 0; i < 4; ++i) items.emplace_back(ran, i);
    EXPECT_EQ(pool.starmap(mark_slot, items).size(), 4u);
    pool.apply(mark_slot, ran, 4);
    EXPECT_EQ(ran.to_vector(), (std::vector<int>{1, 1, 1, 1, 1}));
}

TEST_P(PoolTest, CloseThenJoinFinishesSubmittedWork) {
    mproc::Pool pool(opts());
    auto ar = pool.map_async(square, mproc_test::numbers(0, 100));
    pool.close();
    EXPECT_THROW(pool.apply_async(square, 1), std::logic_error);
    pool.join();
    EXPECT_EQ(ar.get(0s).size(), 100u);
}

TEST_P(PoolTest, TerminateFailsWhatIsUnfinished) {
    mproc::Pool pool(opts(1));
    auto slow = pool.apply_async(+[](int ms) {
        std::this_thread::sleep_for(std::chrono::milliseconds(ms));
        return ms;
    }, 60000);
    pool.terminate();
    EXPECT_THROW(slow.get(5s), mproc::ProcessError);
    EXPECT_THROW(pool.apply_async(square, 1), std::logic_error);
}

TEST_P(PoolTest, JoinBeforeCloseIsAnError) {
    mproc::Pool pool(opts(1));
    EXPECT_THROW(pool.join(), std::logic_error);
}

TEST_P(PoolTest, ProcessesBelowOneIsAnError) {
    EXPECT_THROW(mproc::Pool(opts(0)), std::invalid_argument);
}

TEST_P(PoolTest, APoolInsideAPoolTask) {
    mproc::Pool pool(opts());
    EXPECT_EQ(pool.apply(nested_pool_sum, 4), 1 + 4 + 9 + 16);
}

TEST_P(PoolTest, APlainQueueCanBeAPoolTaskArgument) {
    mproc::Pool pool(opts());
    mproc::Queue<int> q;
    auto r = pool.apply_async(drain_queue, q, 5);
    for (int i = 1; i <= 5; ++i) q.put(i);
    EXPECT_EQ(r.get(20s), 15);
}

TEST_P(PoolTest, AResultLargerThanTheCapFailsThatTaskOnly) {
    mproc::Pool pool({.processes = 1, .start_method = GetParam(), .max_result_bytes = 1000});
    auto big = pool.apply_async(+[](int n) { return std::string(static_cast<std::size_t>(n), 'x'); }, 5000);
    EXPECT_THROW(big.get(10s), mproc::ProcessError);
    EXPECT_EQ(pool.apply(+[](int n) { return std::string(static_cast<std::size_t>(n), 'x'); }, 10), "xxxxxxxxxx");
}

// With chunksize 1 the pool carries up to 256 items in one chunk (Chunk::units), each a task of
// its own: maxtasksperchild counts the items, not the chunk (Python: each is a task).
TEST_P(PoolTest, MaxtasksperchildCountsEachItemOfAChunksize1Map) {
    mproc::Pool pool({.processes = 2, .maxtasksperchild = 5, .start_method = GetParam()});
    const std::vector<int> pids = pool.map(my_pid, mproc_test::numbers(0, 60), 1);
    std::map<int, int> per_pid;
    for (int pid : pids) ++per_pid[pid];
    EXPECT_GE(per_pid.size(), 12u);
    for (auto [pid, n] : per_pid) EXPECT_LE(n, 5) << "worker " << pid;
}

// In a long chunksize-1 call, an item that cannot be written fails alone, and one that carries
// descriptors travels alone; the items before and after it, in the same unit chunk otherwise,
// run as usual.
TEST_P(PoolTest, InAChunksize1CallOneItemFailsOrCarriesDescriptorsAlone) {
    mproc::Pool pool(opts());
    std::vector<WriteFails> items(600);
    for (int i = 0; i < 600; ++i) items[static_cast<std::size_t>(i)] = {i, i == 300};
    auto it = pool.imap(value_of, items);
    for (int i = 0; i < 600; ++i) {
        if (i == 300) {
            EXPECT_THROW(it.next(10s), std::domain_error);
            continue;
        }
        auto v = it.next(10s);
        ASSERT_TRUE(v) << "item " << i;
        EXPECT_EQ(*v, i);
    }
    EXPECT_FALSE(it.next(10s));

    mproc::Queue<int> q;
    std::vector<std::tuple<std::optional<mproc::Queue<int>>, int>> args;
    for (int i = 0; i < 600; ++i) args.emplace_back(i == 300 ? std::optional(q) : std::nullopt, i);
    const std::vector<int> r = pool.starmap(put_if_given, args, 1);
    ASSERT_EQ(r.size(), 600u);
    for (int i = 0; i < 600; ++i) EXPECT_EQ(r[static_cast<std::size_t>(i)], i);
    EXPECT_EQ(q.get(true, 10s), 300);
}

INSTANTIATE_TEST_SUITE_P(StartMethods, PoolTest, testing::Values("fork", "spawn", "forkserver"),
                         [](const auto& info) { return info.param; });

// The progress bar is drawn only when stderr is a terminal: give it one (a pseudo-terminal).
TEST(PoolProgress, DrawnOnATerminalWithCountAndRate) {
    const int master = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    ASSERT_GE(master, 0);
    ASSERT_EQ(::grantpt(master), 0);
    ASSERT_EQ(::unlockpt(master), 0);
    const int slave = ::open(::ptsname(master), O_RDWR | O_NOCTTY | O_CLOEXEC);
    ASSERT_GE(slave, 0);
    const int saved = ::dup(2);
    ::dup2(slave, 2);
    std::vector<int> r;
    {
        mproc::Pool pool({.processes = 2, .start_method = "fork"});
        r = pool.map(square, mproc_test::numbers(0, 100), {.chunksize = 10, .progress = true});
        std::vector<int> streamed;
        for (int y : pool.imap(square, mproc_test::numbers(0, 30), {.chunksize = 5, .progress = true})) streamed.push_back(y);
        EXPECT_EQ(streamed.size(), 30u);
    }
    ::dup2(saved, 2);
    ::close(saved);
    ::close(slave);
    std::string drawn;
    char buf[4096];
    pollfd p{master, POLLIN, 0};
    while (::poll(&p, 1, 0) == 1 && (p.revents & POLLIN)) {
        const ssize_t n = ::read(master, buf, sizeof buf);
        if (n <= 0) break;
        drawn.append(buf, static_cast<std::size_t>(n));
    }
    ::close(master);
    EXPECT_EQ(r.size(), 100u);
    EXPECT_NE(drawn.find("100/100 100%"), std::string::npos) << drawn;
    EXPECT_NE(drawn.find("[##############################]"), std::string::npos) << drawn;
    EXPECT_NE(drawn.find("/s"), std::string::npos) << drawn;
    EXPECT_NE(drawn.find("30/30"), std::string::npos) << drawn;  // imap: the total is known (sized input)
}

// A per-call deadline that is not positive is refused at the call, before anything runs (the
// pool-wide one always was; a call's was taken as given, and a worker was killed at once).
TEST_P(PoolTest, ADeadlineThatIsNotPositiveIsRefusedAtTheCall) {
    mproc::Pool pool(1);
    EXPECT_THROW(pool.apply_async(square, std::tuple<int>(2), {.task_timeout = 0s}), std::invalid_argument);
    EXPECT_THROW(pool.map(square, std::vector<int>{1, 2}, {.task_timeout = -1s}), std::invalid_argument);
    EXPECT_THROW(pool.map_async(square, std::vector<int>{1, 2}, {.task_timeout = 0s}), std::invalid_argument);
    EXPECT_THROW(pool.imap(square, std::vector<int>{1, 2}, mproc::IMapOptions{.task_timeout = -0.5s}),
                 std::invalid_argument);
    // Nothing was killed: the one worker is the first one still, and it answers.
    const int pid = pool.apply(my_pid, 0);
    EXPECT_EQ(pool.map(square, std::vector<int>{3}, {.task_timeout = 30s}), (std::vector<int>{9}));
    EXPECT_EQ(pool.apply(my_pid, 0), pid);
    pool.close();
    pool.join();
}

// Two calls submitted one after the other run side by side on two workers: the second does not
// wait behind the first in a busy worker's pipe while the other worker idles (it did: the
// dispatcher gave each worker two batches in turn, the first worker first). Each task waits at a
// barrier for the other, so they finish only together.
int meet_at(mproc::Barrier b) {
    b.wait(mproc::Timeout(20.0));
    return static_cast<int>(getpid());
}

TEST(Pool, IdleWorkersTakeTheNextCall) {
    mproc::Pool pool(2);
    mproc::Barrier both(2);
    auto a = pool.apply_async(meet_at, both);
    auto b = pool.apply_async(meet_at, both);
    const int pa = a.get(std::chrono::seconds(30)), pb = b.get(std::chrono::seconds(30));
    EXPECT_NE(pa, pb);
    pool.close();
    pool.join();
}

// In a worker: a 768 MiB block touched at one page, freed, and asked for again. Whether the
// block came back where it was with that page still in memory: a worker keeps freed memory
// (platform::keep_freed_memory), so that a task of a large argument after another reuses pages
// instead of faulting fresh ones in (3-8 s a gigabyte on this project's VM). 768 MiB: past the
// 512 MiB mmap threshold the worker once set, above which every block was mapped afresh.
// [[maybe_unused]]: the ASan build skips the test that calls it.
// malloc and free through volatile pointers: clang elides an allocation it can see whole and
// then takes the two blocks' addresses for different.
[[maybe_unused]] __attribute__((noinline)) bool large_block_comes_back(int) {
    void* (*volatile allocate)(std::size_t) = std::malloc;
    void (*volatile release)(void*) = std::free;
    constexpr std::size_t n = std::size_t{768} << 20;
    char* p = static_cast<char*>(allocate(n));
    if (p == nullptr) return false;
    volatile char* touch = p + n / 2;
    *touch = 1;
    const auto first = reinterpret_cast<std::uintptr_t>(p);
    const std::uintptr_t page = reinterpret_cast<std::uintptr_t>(p + n / 2) & ~std::uintptr_t{4095};
    release(p);
    char* q = static_cast<char*>(allocate(n));
    if (q == nullptr) return false;
    unsigned char resident = 0;
    const bool same = reinterpret_cast<std::uintptr_t>(q) == first &&
                      ::mincore(reinterpret_cast<void*>(page), 4096, &resident) == 0 && (resident & 1) != 0;
    release(q);
    return same;
}

TEST(Pool, AWorkerReusesTheMemoryOfALargeBlockItFreed) {
#ifdef MPROC_TEST_ASAN
    GTEST_SKIP() << "AddressSanitizer's allocator takes no mallopt settings";
#else
    mproc::Pool pool(1);
    EXPECT_TRUE(pool.apply(large_block_comes_back, 0));
#endif
}

// The thread pool: the same interface, any callable.
TEST(ThreadPool, SameInterfaceAnyCallable) {
    mproc::pool::ThreadPool pool(3);
    int offset = 10;
    EXPECT_EQ(pool.map([offset](int x) { return x + offset; }, std::vector<int>{1, 2}), (std::vector<int>{11, 12}));
    EXPECT_EQ(pool.apply(add, 2, 3), 5);
    EXPECT_EQ(pool.starmap(add, std::vector<std::pair<int, int>>{{1, 2}}), (std::vector<int>{3}));
    std::vector<int> got;
    for (int y : pool.imap(square, mproc_test::numbers(0, 10))) got.push_back(y);
    EXPECT_EQ(got.size(), 10u);
    EXPECT_THROW(pool.map(fail_on_seven, mproc_test::numbers(0, 10)), std::invalid_argument);
    EXPECT_THROW(mproc::pool::ThreadPool({.processes = 1, .task_timeout = 1s}), std::invalid_argument);
    pool.close();
    pool.join();
}

TEST(ThreadPool, FailingInitializerBreaksIt) {
    mproc::pool::ThreadPool pool({.processes = 1, .initializer = mproc::Initializer(init_throws)});
    EXPECT_THROW(pool.apply(square, 2), mproc::futures::BrokenThreadPool);
}

}  // namespace

// A thread that waits for a pool result has an eventfd by which the thread that reads the
// result wakes it. A forked child's thread starts with the forking thread's, and the fork server
// keeps the descriptor open: the two processes shared one eventfd, so a wake-up meant for one
// could be read by the other's waiter, and a pool made inside a pool task hung about 1 run in 50
// (examples/s13_pool_anywhere with the fork start method; the parent was waiting for its own map
// meanwhile). The child must get an eventfd of its own.
TEST(PoolWaiterEvent, AForkedChildWakesOnlyItself) {
    const int parent_fd = mproc::detail::pool::thread_event_fd();
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        // As the child's pool would when another thread read the result its waiter waits for.
        const std::uint64_t one = 1;
        const int fd = mproc::detail::pool::thread_event_fd();
        _exit(::write(fd, &one, sizeof one) == sizeof one ? 0 : 1);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    pollfd p{parent_fd, POLLIN, 0};
    EXPECT_EQ(::poll(&p, 1, 0), 0) << "the child's wake-up reached the parent's waiter";
}
