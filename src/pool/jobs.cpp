// src/pool/jobs.cpp: the out-of-line parts of a pool call's job (detail/pool_job.hpp), and the
// eventfd by which a thread waiting for one is woken.

#include <cstdio>
#include <string>

#include "mproc/detail/pool_job.hpp"
#include "platform/platform.hpp"
#include "persistent_fds.hpp"
#include "pool/pool_internal.hpp"

namespace mproc::detail::pool {

void advise_huge_pages(void* p, std::size_t bytes) noexcept { platform::advise_huge_pages(p, bytes); }

void run_callback(const std::function<void()>& f) noexcept {
    try {
        f();
    } catch (...) {
        const std::string text = "mproc: a pool callback threw " + describe_exception(std::current_exception()) + "\n";
        std::fputs(text.c_str(), stderr);
    }
}

JobBase::~JobBase() = default;

CallJob::CallJob(Mode mode, std::size_t total) : mode_(mode), total_(total) {
    if (total_ == 0 && mode_ == Mode::List) {
        complete_ = completing_ = true;
        finished_.store(true);
    }
}

CallJob::~CallJob() = default;

void run_deferred(std::unique_lock<std::mutex>& lk, Deferred& deferred) {
    while (!deferred.empty()) {
        Deferred now;
        now.swap(deferred);
        lk.unlock();
        for (auto& f : now) f();
        lk.lock();
    }
}

void CallJob::set_progress(std::unique_ptr<ProgressBar> bar) { bar_ = std::move(bar); }

bool CallJob::wait(const Timeout& timeout) {
    const Deadline deadline = Deadline::after(timeout);
    if (pump_) {
        for (;;) {
            {
                std::lock_guard lk(mu_);
                if (complete_) return true;
            }
            if (deadline.expired()) return false;
            const std::shared_ptr<void> core = core_.lock();
            if (!core || !pump_(core, *this, deadline.remaining())) break;
        }
    }
    std::unique_lock lk(mu_);
    return deadline.wait(cv_, lk, [&] { return complete_; });
}

void CallJob::wait_done() {
    wait({});
    if (std::exception_ptr e = error()) std::rethrow_exception(e);
}

bool CallJob::ready() {
    std::lock_guard lk(mu_);
    return complete_;
}

std::exception_ptr CallJob::error() {
    std::lock_guard lk(mu_);
    return error_;
}

void CallJob::add_done_callback(std::function<void()> f) {
    {
        std::lock_guard lk(mu_);
        if (!complete_) {
            done_callbacks_.push_back(std::move(f));
            return;
        }
    }
    run_callback(f);
}

bool CallJob::cancelled() {
    std::lock_guard lk(mu_);
    return cancelled_;
}

bool CallJob::cancel() {
    Deferred later;
    {
        std::unique_lock lk(mu_);
        if (completing_) return cancelled_;
        cancelled_ = true;
        error_ = std::make_exception_ptr(futures::CancelledError());
        done_ = total_;
        conclude(lk, later, true);
    }
    for (auto& f : later) f();
    return true;
}

void CallJob::set_total(std::size_t total) {
    {
        std::lock_guard lk(mu_);
        total_ = total;
        if (bar_) bar_->set_total(total);
    }
    cv_.notify_all();
}

std::size_t CallJob::yielded() {
    std::lock_guard lk(mu_);
    return yielded_;
}

bool CallJob::late_locked(std::size_t count) noexcept {
    if (!completing_) return false;
    if (mode_ == Mode::List && (done_ += count) >= total_) finished_.store(true, std::memory_order_release);
    return true;
}

CallJob::Place CallJob::place_locked(std::size_t index, const std::exception_ptr& error, std::size_t slots,
                                     bool& completing) {
    ++done_;
    if (completing) return Place::None;
    switch (mode_) {
        case Mode::Single:
        case Mode::List:
            if (index >= slots) return Place::None;
            if (error) error_ = error;
            if (error || done_ == total_) completing = true;
            return error ? Place::None : Place::Slot;
        case Mode::Ordered:
            return Place::Pending;
        case Mode::Unordered:
            return Place::Ready;
    }
    return Place::None;
}

void CallJob::conclude(std::unique_lock<std::mutex>& lk, Deferred& later, bool completing) {
    if (bar_) bar_->update(done_);
    if (!completing) {
        lk.unlock();
        cv_.notify_all();
        return;
    }
    completing_ = true;
    // A map that failed is complete for its caller (get() raises the first error), but its
    // other chunks still run, as Python runs every task of a map: the pool drops them only
    // once every item is in.
    if (!(mode_ == Mode::List && done_ < total_)) finished_.store(true, std::memory_order_release);
    bar_.reset();
    std::function<void()> callback;
    if (!error_ && has_value_callback_locked())
        callback = [this] { run_value_callback(); };
    else if (error_ && on_error_)
        callback = [f = std::move(on_error_), e = error_] { f(e); };
    lk.unlock();
    later.push_back([self = std::static_pointer_cast<CallJob>(shared_from_this()), callback = std::move(callback)] {
        if (callback) run_callback(callback);
        std::vector<std::function<void()>> done;
        {
            std::lock_guard lk(self->mu_);
            self->complete_ = true;
            done.swap(self->done_callbacks_);
        }
        self->cv_.notify_all();
        self->signal_completion();
        for (auto& f : done) run_callback(f);
    });
}

bool CallJob::wait_next(std::unique_lock<std::mutex>& lk, const Timeout& timeout,
                        const std::function<bool()>& available) {
    if (!Deadline::after(timeout).wait(cv_, lk, [&] { return yielded_ == total_ || available(); }))
        throw TimeoutError("mproc: no result arrived within the timeout");
    return yielded_ != total_;
}

namespace {
// Each thread that waits for a pool result has one eventfd, made on first use and kept: a
// result read by another thread wakes it through that.
struct ThreadEvent {
    platform::UniqueFd fd;
    // The fork generation fd was made in. A forked child's thread starts with the forking
    // thread's ThreadEvent, and the fork server keeps the descriptor open: the same eventfd as
    // the parent's. Shared, a wake-up meant for one process's waiter could be read by the
    // other's, and the one meant for it never came (a pool inside a pool task hung, 1 run in
    // 50). The generation, not the pid: getpid() is a system call, two per round trip.
    unsigned generation = 0;
};
thread_local ThreadEvent t_event;

bool event_is_mine() noexcept { return t_event.fd && t_event.generation == platform::fork_generation(); }
}  // namespace

int thread_event_fd() {
    if (!event_is_mine()) {
        t_event.fd = platform::make_event();  // an inherited one is closed: this copy is ours
        t_event.generation = platform::fork_generation();
    }
    return t_event.fd.get();
}

int waiter_fd_if_open() noexcept { return t_event.fd ? t_event.fd.get() : -1; }
// Kept for the thread's life: the leak check counts it as persistent, and the fork server keeps
// it open (persistent_fds.hpp).
const bool g_waiter_kept = (keep_fd_source(&waiter_fd_if_open), true);

void JobBase::watch(int fd) {
    std::lock_guard lk(event_mu_);
    watchers_.push_back(fd);
}

void JobBase::unwatch(int fd) noexcept {
    std::lock_guard lk(event_mu_);
    std::erase(watchers_, fd);
}

void JobBase::signal_completion() noexcept {
    std::lock_guard lk(event_mu_);
    if (watchers_.empty()) return;
    const int mine = event_is_mine() ? t_event.fd.get() : -1;
    for (int fd : watchers_)
        if (fd != mine) platform::event_notify(fd);  // the completing thread is not asleep
}
}  // namespace mproc::detail::pool
