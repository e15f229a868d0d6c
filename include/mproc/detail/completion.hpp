// mproc/detail/completion.hpp: what co_await and connection::wait need of a result that arrives
// on another thread, a futures::Future or a pool's AsyncResult (not API).
//
// - DoneAwaiter: the awaiter `co_await f` builds. It blocks no thread: await_suspend registers a
//   done-callback that resumes the coroutine, so the coroutine resumes on the thread that
//   completed the result (as a done-callback runs), or never suspends when it is done already.
// - DoneEvent: the descriptor behind sentinel(), an eventfd that turns readable once the result
//   is in, made the first time someone asks.
#pragma once

#include <atomic>
#include <coroutine>
#include <functional>
#include <memory>
#include <mutex>
#include <utility>

namespace mproc::detail {

// The race between a coroutine suspending on a result and the result arriving: the done-callback
// may run on another thread before await_suspend returns, or at once inside it (the result came
// between await_ready and the callback's registration). Whichever of the two comes second goes
// on: the callback resumes the coroutine, or await_suspend returns false so that the coroutine
// goes on in its own thread. Neither resumes it from inside await_suspend. The state is shared
// with the callback, which may outlive the coroutine: a coroutine destroyed while suspended is
// not resumed when its result comes later (destroying it while the result is arriving is the
// caller's race, as resuming and destroying a coroutine at once always is).
class Resumption {
public:
    Resumption() = default;
    Resumption(const Resumption&) = delete;
    Resumption& operator=(const Resumption&) = delete;
    ~Resumption() {
        if (state_) state_->abandon();
    }

    // subscribe(arrive) must have arrive() called once the result is in: later, on any thread,
    // or at once on this one when it is in already. True: the coroutine stays suspended.
    template <class Subscribe>
    bool suspend(std::coroutine_handle<> h, Subscribe&& subscribe) {
        state_ = std::make_shared<State>(h);
        subscribe([s = state_]() noexcept { s->arrive(); });
        int p = kWaiting;
        return state_->phase.compare_exchange_strong(p, kSuspended, std::memory_order_acq_rel);
    }

private:
    enum : int { kWaiting, kSuspended, kArrived, kAbandoned };
    struct State {
        explicit State(std::coroutine_handle<> h) noexcept : handle(h) {}
        void arrive() noexcept {
            int p = kWaiting;
            if (phase.compare_exchange_strong(p, kArrived, std::memory_order_acq_rel)) return;  // not suspended yet
            if (p == kSuspended && phase.compare_exchange_strong(p, kArrived, std::memory_order_acq_rel))
                handle.resume();
        }
        void abandon() noexcept {
            int p = kSuspended;
            phase.compare_exchange_strong(p, kAbandoned, std::memory_order_acq_rel);
        }
        std::coroutine_handle<> handle;
        std::atomic<int> phase{kWaiting};
    };
    std::shared_ptr<State> state_;
};

// `co_await x` for a handle x whose Access says: done(x), subscribe(x, fn) (fn() once done; at
// once when done already) and take(x) (the value, or the exception rethrown).
template <class Handle, class Access>
class DoneAwaiter {
public:
    explicit DoneAwaiter(Handle h) : h_(std::move(h)) {}
    bool await_ready() const { return Access::done(h_); }
    bool await_suspend(std::coroutine_handle<> c) {
        return resumption_.suspend(c, [this](std::function<void()> arrive) { Access::subscribe(h_, std::move(arrive)); });
    }
    decltype(auto) await_resume() { return Access::take(h_); }

private:
    Handle h_;
    Resumption resumption_;
};

// An eventfd, made on the first fd() and made readable by a done-callback; it stays readable
// (Process::sentinel's rule: once ended, always ended). Closed when the last of the owner and
// the callback lets go of it. src/futures.cpp.
class DoneEvent {
public:
    DoneEvent() = default;
    DoneEvent(const DoneEvent&) = delete;
    DoneEvent& operator=(const DoneEvent&) = delete;
    // subscribe(fn): fn() once done, at once when done already; done: the owner is done now.
    // Thread-safe; the system refusing an eventfd is std::system_error (a later call tries
    // again).
    int fd(const std::function<void(std::function<void()>)>& subscribe, bool done);

private:
    std::once_flag once_;
    std::shared_ptr<void> event_;
    int fd_ = -1;
};

}  // namespace mproc::detail
