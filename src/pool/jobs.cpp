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

namespace {
// Each thread that waits for a pool result has one eventfd, made on first use and kept: a
// result read by another thread wakes it through that.
struct ThreadEvent {
    platform::UniqueFd fd;
};
thread_local ThreadEvent t_event;
}  // namespace

int thread_event_fd() {
    if (!t_event.fd) t_event.fd = platform::make_event();
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
    const int mine = t_event.fd ? t_event.fd.get() : -1;
    for (int fd : watchers_)
        if (fd != mine) platform::event_notify(fd);  // the completing thread is not asleep
}
}  // namespace mproc::detail::pool
