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

// The readable ones of fds, looking (without sleeping) for a few tens of microseconds; empty
// when none turned readable in that time (wire.cpp).
std::vector<std::size_t> look_readable(std::span<const int> fds);
// Closes the descriptors of a message that nothing took.
void close_unclaimed(std::vector<int>& fds) noexcept;

// What a worker process runs: always sent as a job (a fresh program, or a fork of the pool's
// own fork server), never run in place (worker_main.cpp).
std::unique_ptr<Target> make_worker_target(connection::Connection conn, RegionRef slot, std::size_t max_result_bytes,
                                           std::shared_ptr<Target> initializer);

// This thread's eventfd for being woken when a pool result it waits for comes in (jobs.cpp).
int thread_event_fd();

inline void fail_items(const std::shared_ptr<JobBase>& job, std::size_t first, std::size_t count,
                       const std::exception_ptr& e) {
    for (std::size_t i = 0; i < count; ++i) job->set_error(first + i, e);
}

}  // namespace mproc::detail::pool
