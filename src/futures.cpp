// Executors (Python: concurrent.futures): options translated into a pool's (pool.cpp).
#include "mproc/futures.hpp"

#include <algorithm>
#include <atomic>

namespace mproc::futures {

namespace {
std::atomic<unsigned> executor_counter{0};
}

ThreadPoolExecutor::ThreadPoolExecutor(ThreadPoolExecutorOptions o)
    : Executor(PoolOptions{
          .processes = o.max_workers.value_or(std::min(32, process_cpu_count() + 4)),
          .initializer = std::move(o.initializer),
          .thread_name_prefix = o.thread_name_prefix.empty()
                                    ? "ThreadPoolExecutor-" + std::to_string(executor_counter++)
                                    : o.thread_name_prefix}) {}

ProcessPoolExecutor::ProcessPoolExecutor(ProcessPoolExecutorOptions o)
    : Executor(PoolOptions{.processes = o.max_workers,
                           .initializer = std::move(o.initializer),
                           .maxtasksperchild = o.max_tasks_per_child,
                           .start_method = std::move(o.start_method),
                           .break_on_worker_death = o.break_on_worker_death}) {}

}  // namespace mproc::futures
