// mproc/detail/thread_core.hpp: the thread pool's core (not API): threads of this process
// that run chunks of pool calls, and an executor's tasks, in place. src/pool/thread_core.cpp.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <span>
#include <stdexcept>
#include <utility>
#include <vector>

#include "mproc/detail/pool_core.hpp"

namespace mproc {
struct PoolOptions;
}

namespace mproc::detail::pool {

class ThreadCore : public CoreBase {
public:
    // How the threads start: all with the pool (Python's ThreadPool), or one by one, each when
    // a submission finds no thread free for it, up to processes() (Python's
    // ThreadPoolExecutor, 3.8+: _adjust_thread_count).
    enum class Start { AtOnce, OnDemand };
    explicit ThreadCore(const PoolOptions& options, Start start = Start::AtOnce);
    ~ThreadCore();
    ThreadCore(const ThreadCore&) = delete;
    ThreadCore& operator=(const ThreadCore&) = delete;

    template <class R, class F, class Tuple>
    F prepare(const F& f) const {
        return f;
    }

    template <class R, class F, class Tuple>
    void submit_items(const std::shared_ptr<Job<R>>& job, std::size_t first, const F& f, std::span<Tuple> span,
                      const Timeout& timeout, bool stream) {
        if (timeout)
            throw std::invalid_argument(
                "mproc: a thread cannot be stopped from outside, so a ThreadPool task cannot have "
                "a deadline; use mproc::Pool for tasks that must be stoppable");
        std::vector<Tuple> items(std::make_move_iterator(span.begin()), std::make_move_iterator(span.end()));
        std::shared_ptr<JobBase> base = job;
        const std::size_t count = items.size();
        submit([job, first, f, items = std::move(items)]() mutable {
            if (!job->finished()) job->mark_running();
            for (std::size_t i = 0; i < items.size(); ++i) {
                if (job->finished()) return;
                try {
                    if constexpr (std::is_void_v<R>) {
                        std::apply(f, std::move(items[i]));
                        job->set_value(first + i, {});
                    } else {
                        job->set_value(first + i, std::apply(f, std::move(items[i])));
                    }
                } catch (...) {
                    job->set_error(first + i, std::current_exception());
                }
            }
        }, std::move(base), first, count, stream);
    }

    void adopt(JobBase&) const {}
    bool stop(const JobBase&) { return false; }  // a thread cannot be stopped
    static constexpr bool can_stop_running = false;
    static constexpr bool crosses_processes = false;
    void cancel_pending();
    void terminate();
    void join();

    // For executors: one task queued as it is, with no pool call around it. Refused (closed,
    // terminated, broken): failed with the reason.
    void submit_task(std::shared_ptr<TaskNode> task);

private:
    void submit(std::function<void()> task, std::shared_ptr<JobBase> job, std::size_t first,
                std::size_t count, bool stream);

    struct Impl;
    std::shared_ptr<Impl> impl_;
};

static_assert(TaskQueueCore<ThreadCore>);

}  // namespace mproc::detail::pool
