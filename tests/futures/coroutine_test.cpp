// co_await on a futures::Future and on a pool's AsyncResult, in coroutine types written here, as
// a user writes their own (the library ships none).
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <coroutine>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <mproc/mproc.hpp>

using namespace std::chrono_literals;
namespace cf = mproc::futures;

namespace {

int add(int a, int b) { return a + b; }
int twice(int x) { return 2 * x; }
int fail_on_seven(int x) {
    if (x == 7) throw std::invalid_argument("seven");
    return x;
}
int die(int) {
    ::raise(SIGKILL);
    return 0;
}

// What a coroutine ends with, and on which thread its co_await went on; set from whichever
// thread resumed it.
struct Outcome {
    std::mutex mu;
    std::condition_variable cv;
    bool finished = false;
    std::optional<int> value;
    std::exception_ptr error;
    std::thread::id resumed_on;

    void finish(std::optional<int> v, std::exception_ptr e) {
        std::lock_guard lk(mu);
        value = v;
        error = std::move(e);
        resumed_on = std::this_thread::get_id();
        finished = true;
        cv.notify_all();
    }
    bool wait(std::chrono::seconds timeout = 30s) {
        std::unique_lock lk(mu);
        return cv.wait_for(lk, timeout, [&] { return finished; });
    }
    bool done() {
        std::lock_guard lk(mu);
        return finished;
    }
    int get() {
        std::lock_guard lk(mu);
        if (error) std::rethrow_exception(error);
        return value.value();
    }
};

// The smallest coroutine type: it starts at once and frees its own frame when it ends, on
// whichever thread that is (so ASan sees any use of the frame after a resume).
struct Detached {
    struct promise_type {
        Detached get_return_object() noexcept { return {}; }
        std::suspend_never initial_suspend() noexcept { return {}; }
        std::suspend_never final_suspend() noexcept { return {}; }
        void return_void() noexcept {}
        void unhandled_exception() noexcept { std::terminate(); }
    };
};

template <class Awaitable>
Detached await_into(Awaitable a, std::shared_ptr<Outcome> out) {
    try {
        int v = co_await std::move(a);
        out->finish(v, nullptr);
    } catch (...) {
        out->finish(std::nullopt, std::current_exception());
    }
}

// A coroutine its owner destroys: suspended at its end (`ended` says when, from outside the
// frame), or while it waits.
struct Owned {
    struct promise_type {
        std::shared_ptr<std::atomic<bool>> ended = std::make_shared<std::atomic<bool>>(false);
        Owned get_return_object() noexcept { return Owned{std::coroutine_handle<promise_type>::from_promise(*this)}; }
        std::suspend_never initial_suspend() noexcept { return {}; }
        auto final_suspend() noexcept {
            struct Final {
                bool await_ready() const noexcept { return false; }
                void await_suspend(std::coroutine_handle<promise_type> h) const noexcept {
                    std::shared_ptr<std::atomic<bool>> e = h.promise().ended;  // the frame may go at the store
                    e->store(true);
                    e->notify_all();
                }
                void await_resume() const noexcept {}
            };
            return Final{};
        }
        void return_void() noexcept {}
        void unhandled_exception() noexcept { std::terminate(); }
    };
    explicit Owned(std::coroutine_handle<promise_type> h) : h(h), ended(h.promise().ended) {}
    // Movable for clang 14, which moves the return object out of get_return_object's result.
    Owned(Owned&& o) noexcept : h(std::exchange(o.h, {})), ended(std::move(o.ended)) {}
    Owned& operator=(Owned&&) = delete;
    ~Owned() {
        if (h) h.destroy();
    }
    std::coroutine_handle<promise_type> h;
    std::shared_ptr<std::atomic<bool>> ended;
};

Owned await_owned(cf::Future<int> f, std::shared_ptr<Outcome> out) {
    try {
        out->finish(co_await f, nullptr);
    } catch (...) {
        out->finish(std::nullopt, std::current_exception());
    }
}

std::shared_ptr<Outcome> start(auto awaitable) {
    auto out = std::make_shared<Outcome>();
    await_into(std::move(awaitable), out);
    return out;
}

TEST(Coroutine, AwaitsAThreadExecutorsFutureWithoutBlocking) {
    cf::ThreadPoolExecutor ex(2);
    mproc::threading::Event go;
    auto out = start(ex.submit([&go] {
        go.wait();
        return 42;
    }));
    // The coroutine is suspended and this thread is free: nothing waited here.
    EXPECT_FALSE(out->done());
    go.set();
    ASSERT_TRUE(out->wait());
    EXPECT_EQ(out->get(), 42);
    EXPECT_NE(out->resumed_on, std::this_thread::get_id());  // the worker that completed it
}

TEST(Coroutine, TheTasksExceptionIsThrownWithItsType) {
    cf::ThreadPoolExecutor ex(1);
    auto out = start(ex.submit([] () -> int { throw std::out_of_range("nope"); }));
    ASSERT_TRUE(out->wait());
    EXPECT_THROW(out->get(), std::out_of_range);
}

TEST(Coroutine, AFutureDoneAlreadyDoesNotSuspend) {
    cf::Future<int> f;
    f.set_result(5);
    auto out = start(f);
    ASSERT_TRUE(out->done());  // before start() returned: it never suspended
    EXPECT_EQ(out->get(), 5);
    EXPECT_EQ(out->resumed_on, std::this_thread::get_id());
}

TEST(Coroutine, AFreeStandingFutureResumesInTheThreadThatSetsIt) {
    cf::Future<int> f;
    auto out = start(f);
    EXPECT_FALSE(out->done());
    std::thread setter([f]() mutable { f.set_result(9); });
    const auto setter_id = setter.get_id();
    setter.join();
    ASSERT_TRUE(out->done());
    EXPECT_EQ(out->get(), 9);
    EXPECT_EQ(out->resumed_on, setter_id);
}

// Completion races the suspension: tasks that return at once, many coroutines at a time, each
// resumed exactly once (a double resume or a lost one fails the count or hangs).
TEST(Coroutine, ManyConcurrentAwaits) {
    cf::ThreadPoolExecutor ex(4);
    std::vector<std::shared_ptr<Outcome>> outs;
    for (int i = 0; i < 2000; ++i) outs.push_back(start(ex.submit(twice, i)));
    long sum = 0;
    for (auto& o : outs) {
        ASSERT_TRUE(o->wait());
        sum += o->get();
    }
    EXPECT_EQ(sum, 2L * (1999L * 2000L / 2));
}

TEST(Coroutine, ACancelledFutureThrowsCancelledError) {
    cf::ThreadPoolExecutor ex(1);
    mproc::threading::Event go;
    auto blocker = ex.submit([&go] {
        go.wait();
        return 0;
    });
    auto pending = ex.submit(twice, 1);
    auto out = start(pending);
    EXPECT_FALSE(out->done());
    EXPECT_TRUE(pending.cancel());
    ASSERT_TRUE(out->done());  // resumed by cancel(), in this thread
    EXPECT_THROW(out->get(), cf::CancelledError);
    go.set();
    EXPECT_EQ(blocker.result(30s), 0);

    cf::Future<int> mine;
    auto out2 = start(mine);
    EXPECT_TRUE(mine.cancel());
    EXPECT_THROW(out2->get(), cf::CancelledError);
}

TEST(Coroutine, AProcessExecutorsFutureAndItsErrors) {
    cf::ProcessPoolExecutor ex(2);
    auto ok = start(ex.submit(add, 1, 2));
    auto bad = start(ex.submit(fail_on_seven, 7));
    auto lost = start(ex.submit(die, 0));
    ASSERT_TRUE(ok->wait());
    ASSERT_TRUE(bad->wait());
    ASSERT_TRUE(lost->wait());
    EXPECT_EQ(ok->get(), 3);
    EXPECT_THROW(bad->get(), std::invalid_argument);
    EXPECT_THROW(lost->get(), mproc::WorkerLostError);
}

TEST(Coroutine, AnAsyncResultOfAProcessPoolAndOfAThreadPool) {
    mproc::Pool pool(2);
    auto ok = start(pool.apply_async(add, 2, 3));
    auto bad = start(pool.apply_async(fail_on_seven, 7));
    ASSERT_TRUE(ok->wait());
    ASSERT_TRUE(bad->wait());
    EXPECT_EQ(ok->get(), 5);
    EXPECT_THROW(bad->get(), std::invalid_argument);
    auto done = pool.apply_async(twice, 4);
    done.wait();
    auto now = start(done);
    ASSERT_TRUE(now->done());
    EXPECT_EQ(now->get(), 8);

    mproc::pool::ThreadPool tpool(2);
    auto t = start(tpool.apply_async([] { return 6; }));
    ASSERT_TRUE(t->wait());
    EXPECT_EQ(t->get(), 6);
}

// A frame its owner destroys once the coroutine ended, and one destroyed while it still waits:
// the later completion must not resume it (ASan would see the freed frame).
TEST(Coroutine, FramesDestroyedAfterAndBeforeTheResult) {
    cf::ThreadPoolExecutor ex(1);
    {
        auto out = std::make_shared<Outcome>();
        Owned c = await_owned(ex.submit(twice, 21), out);
        ASSERT_TRUE(out->wait());
        EXPECT_EQ(out->get(), 42);
        // Suspended at its end by the time finish() ran: destroyed here, on this thread.
        c.ended->wait(false);
    }
    cf::Future<int> later;
    auto out = std::make_shared<Outcome>();
    {
        Owned c = await_owned(later, out);
        EXPECT_FALSE(out->done());
    }
    later.set_result(1);
    EXPECT_FALSE(out->done());
}

}  // namespace
