// get_context(method): a context's Process, Pool and Manager start their processes with its
// method whatever the default is (Python: multiprocessing.get_context), under each method.
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <mproc/mproc.hpp>

using namespace std::chrono_literals;

namespace {

// How this process was really started, from its command line: a spawn child runs this binary
// with --mproc-spawn, a forkserver child is a fork of the server (run with
// --mproc-forkserver); anything else is a fork of the test process.
std::string how_started() {
    std::ifstream f("/proc/self/cmdline");
    const std::string all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    std::vector<std::string> args;
    for (std::size_t at = 0; at < all.size();) {
        const std::size_t end = all.find('\0', at);
        args.push_back(all.substr(at, end - at));
        at = end == std::string::npos ? all.size() : end + 1;
    }
    if (args.size() > 1 && args[1] == "--mproc-spawn") return "spawn";
    if (args.size() > 1 && args[1] == "--mproc-forkserver") return "forkserver";
    return "fork";
}

// (what get_start_method() says, how the process was started)
using Report = std::pair<std::string, std::string>;
Report report() { return {mproc::get_start_method(), how_started()}; }
void report_to(mproc::Queue<Report> q) { q.put(report()); }

// Sets the default to another method than `method` for the test, and back after.
class OtherDefault {
public:
    explicit OtherDefault(const std::string& method) : saved_(mproc::get_start_method(true)) {
        mproc::set_start_method(method == "fork" ? "spawn" : "fork", true);
    }
    ~OtherDefault() { mproc::set_start_method(saved_.value_or("fork"), true); }

private:
    std::optional<std::string> saved_;
};

class ContextTest : public testing::TestWithParam<std::string> {};

// _test_multiprocessing.py TestStartMethod.test_context: ctx.get_start_method() is the method,
// ctx.get_context() is the same context.
TEST_P(ContextTest, KnowsItsMethod) {
    const mproc::Context ctx = mproc::get_context(GetParam());
    EXPECT_EQ(ctx.get_start_method(), GetParam());
    EXPECT_EQ(ctx.get_context().get_start_method(), GetParam());
    EXPECT_EQ(ctx.get_context("spawn").get_start_method(), "spawn");
}

// A context's Process starts with its method, and the child's get_start_method() says so
// (Python's _bootstrap forces it), with the default set to another method.
TEST_P(ContextTest, ProcessRunsUnderTheContextsMethod) {
    OtherDefault other(GetParam());
    const mproc::Context ctx = mproc::get_context(GetParam());
    mproc::Queue<Report> q = ctx.Queue<Report>();
    mproc::Process p = ctx.Process(report_to, q);
    p.start();
    EXPECT_EQ(q.get(true, 30s), Report(GetParam(), GetParam()));
    p.join(30s);
    EXPECT_EQ(p.exitcode(), 0);
    // With options too; naming another method is refused.
    mproc::Process named = ctx.Process({.name = "named"}, report_to, q);
    named.start();
    EXPECT_EQ(q.get(true, 30s), Report(GetParam(), GetParam()));
    named.join(30s);
    EXPECT_EQ(named.name(), "named");
    const std::string another = GetParam() == "spawn" ? "forkserver" : "spawn";
    EXPECT_THROW(ctx.Process({.start_method = another}, report_to, q), std::invalid_argument);
    EXPECT_NO_THROW(ctx.Process({.start_method = GetParam()}, report_to, q));
}

// A context's Pool: its workers start with the context's method and say so.
TEST_P(ContextTest, PoolWorkersRunUnderTheContextsMethod) {
    OtherDefault other(GetParam());
    const mproc::Context ctx = mproc::get_context(GetParam());
    mproc::Pool pool = ctx.Pool(2);
    EXPECT_EQ(pool.apply(report), Report(GetParam(), GetParam()));
    for (const Report& r : pool.map([](int) { return report(); }, std::vector<int>{1, 2, 3, 4}))
        EXPECT_EQ(r, Report(GetParam(), GetParam()));
    pool.close();
    pool.join();
    const std::string another = GetParam() == "fork" ? "spawn" : "fork";
    EXPECT_THROW(ctx.Pool({.processes = 1, .start_method = another}), std::invalid_argument);
}

// A context's Manager works (its server process starts with the context's method).
TEST_P(ContextTest, ManagerServes) {
    OtherDefault other(GetParam());
    const mproc::Context ctx = mproc::get_context(GetParam());
    auto m = ctx.Manager();
    auto v = m.Value<int>(41);
    v.set(v.get() + 1);
    EXPECT_EQ(v.get(), 42);
    // A manager's lock may guard a shared Value (Python: Value('i', 0, lock=manager.Lock())).
    mproc::Value<int, mproc::managers::LockProxy> guarded(0, m.Lock());
    guarded.set_value(3);
    EXPECT_EQ(guarded.value(), 3);
    EXPECT_FALSE(guarded.get_lock().locked());
    m.shutdown();
}

void add_one(mproc::Value<int> v, mproc::Array<int> a, mproc::Lock lk, mproc::Connection c) {
    std::lock_guard g(lk);
    v.set_value(v.value() + 1);
    a.set(0, 5);
    c.send(std::string("done"));
}

// The objects that do not depend on the start method work the same through a context.
TEST_P(ContextTest, OtherFactoriesMakeWorkingObjects) {
    const mproc::Context ctx = mproc::get_context(GetParam());
    auto v = ctx.Value<int>(1);
    auto a = ctx.Array<int>(3);
    auto lk = ctx.Lock();
    auto [r, w] = ctx.Pipe(false);
    mproc::Process p = ctx.Process(add_one, v, a, lk, std::move(w));
    p.start();
    EXPECT_EQ(r.recv<std::string>(), "done");
    p.join(30s);
    EXPECT_EQ(v.value(), 2);
    EXPECT_EQ(a.to_vector(), (std::vector<int>{5, 0, 0}));
    auto jq = ctx.JoinableQueue<int>();
    jq.put(1);
    EXPECT_EQ(jq.get(), 1);
    jq.task_done();
    EXPECT_TRUE(jq.join(0s));
    auto sq = ctx.SimpleQueue<int>();
    sq.put(3);
    EXPECT_EQ(sq.get(), 3);
    auto shared = ctx.Value<int>(0, ctx.RLock());
    EXPECT_FALSE(shared.get_lock().locked());
    EXPECT_EQ(ctx.Semaphore(2).get_value(), 2);
    EXPECT_EQ(ctx.Barrier(3).parties(), 3);
    EXPECT_EQ(ctx.RawArray<int>(std::vector<int>{1, 2}).to_vector(), (std::vector<int>{1, 2}));
}

INSTANTIATE_TEST_SUITE_P(StartMethods, ContextTest, testing::Values("fork", "spawn", "forkserver"),
                         [](const auto& info) { return info.param; });

// Python: get_context('threads') raises ValueError.
TEST(Context, UnknownMethodIsInvalidArgument) {
    EXPECT_THROW(mproc::get_context("threads"), std::invalid_argument);
    EXPECT_THROW(mproc::get_context("fork").get_context(""), std::invalid_argument);
}

// Python: get_context() with no argument is the default context, whose method is the default.
TEST(Context, NoArgumentIsTheDefault) {
    EXPECT_EQ(mproc::get_context().get_start_method(), mproc::get_start_method());
    const auto saved = mproc::get_start_method(true);
    mproc::set_start_method("forkserver", true);
    EXPECT_EQ(mproc::get_context().get_start_method(), "forkserver");
    mproc::set_start_method(saved.value_or("fork"), true);
}

}  // namespace
