// src/pool/pool_internal.hpp: what the pool's source files share that no header of the
// library's needs (private).
#pragma once

#include <cstddef>
#include <exception>
#include <memory>
#include <span>
#include <vector>

#include "mproc/connection.hpp"
#include "mproc/detail/pool_job.hpp"
#include "mproc/detail/shared_region.hpp"
#include "mproc/process.hpp"

namespace mproc::detail::pool {

// Closes the descriptors of a message that nothing took.
void close_unclaimed(std::vector<int>& fds) noexcept;

// What a worker process runs: always sent as a job (a fresh program, or a fork of the pool's
// own fork server), never run in place (worker_main.cpp).
class Channel;
std::unique_ptr<Target> make_worker_target(Channel chan, RegionRef slot, std::size_t max_result_bytes,
                                           std::shared_ptr<Target> initializer);

// This thread's eventfd for being woken when a pool result it waits for comes in (jobs.cpp).
int thread_event_fd();

inline void fail_items(const std::shared_ptr<JobBase>& job, std::size_t first, std::size_t count,
                       const std::exception_ptr& e) {
    for (std::size_t i = 0; i < count; ++i) job->set_error(first + i, e);
}

}  // namespace mproc::detail::pool
