// src/platform/thread.hpp: threads (section "thread" of the platform layer; Linux:
// linux/thread.cpp).
//
// Thread ids (cached, and correct again in a fork child), a thread's liveness, names, and the
// fork generation that per-process state compares to notice it is a fork child's copy.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <string>

namespace mproc::platform {

// A spin-wait hint to the CPU (x86 pause): lets the sibling hyperthread run and saves power.
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield" ::: "memory");
#endif
}

// A sequentially consistent fence, for a thread that has made an atomic read-modify-write (an
// exchange, a compare-exchange, a fetch_add) after the stores that must be seen before its next
// loads: on x86 every such instruction is locked, and already orders all earlier stores before
// all later loads, so only the compiler must be kept from moving accesses across; elsewhere, a
// real fence. (A queue's put paid for both: its lock's release, then the fence before it looks
// for a sleeper.)
inline void fence_after_rmw() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    std::atomic_signal_fence(std::memory_order_seq_cst);
#else
    std::atomic_thread_fence(std::memory_order_seq_cst);
#endif
}

pid_t get_tid() noexcept;  // gettid(2), asked of the kernel every time
// This thread's id, cached per thread (and refreshed in a forked child).
pid_t current_tid() noexcept;
// A number that changes in a forked child (no system call): state kept per process compares it.
unsigned fork_generation() noexcept;
// The thread's handle as the threads library knows it (pthread_self(); Python: get_ident()).
unsigned long thread_ident() noexcept;
bool is_main_thread() noexcept;
// Whether a thread with this id (as gettid() returns) is alive: it exists and is not a zombie
// (a killed process's main thread stays a zombie until its parent reaps it).
bool thread_alive(pid_t tid) noexcept;
// The CPU the calling thread runs on now (sched_getcpu(3): glibc reads it from the thread's
// rseq area, no system call); -1 when not known.
int current_cpu() noexcept;
// The calling thread's name as the OS shows it (truncated to 15 bytes, the kernel's limit).
void set_thread_name(const std::string& name) noexcept;

}  // namespace mproc::platform
