// src/platform/sync.hpp: waiting on shared memory (section "sync" of the platform layer;
// Linux: linux/sync.cpp).
//
// Futexes on words other processes map, and the process-shared robust mutex: the two things
// mproc's locks, queues and conditions are built on.
#pragma once

#include <cstddef>
#include <cstdint>

#include "platform/io.hpp"

namespace mproc::platform {

// FUTEX_WAIT on a shared (not process-private) word: sleeps while *word == expected, until
// woken, the deadline passes or a signal interrupts. `cap_ms` bounds one sleep (0: none), for
// callers that must look around now and then (a lock checking that its owner still lives).
// Woken: woken by a wake (or a signal) after sleeping; Changed: *word no longer held `expected`,
// so it never slept.
enum class Wake { Woken, Changed, Capped, Deadline };
Wake futex_wait(std::uint32_t* word, std::uint32_t expected, const Deadline& deadline, int cap_ms = 0);
// Wakes up to n waiters (INT_MAX: all).
void futex_wake(std::uint32_t* word, int n) noexcept;
// FUTEX_CMP_REQUEUE: if *from still equals expected, moves up to n of its waiters to wait on
// `to` instead, waking none.
void futex_requeue(std::uint32_t* from, std::uint32_t expected, int n, std::uint32_t* to) noexcept;

// A process-shared, robust mutex living in shared memory (PTHREAD_PROCESS_SHARED,
// PTHREAD_MUTEX_ROBUST). lock returns true when the previous owner died holding it (the mutex
// has been made consistent again).
constexpr std::size_t kRobustMutexSize = 64;
void robust_mutex_init(void* at);
bool robust_mutex_lock(void* at);
void robust_mutex_unlock(void* at) noexcept;

}  // namespace mproc::platform
