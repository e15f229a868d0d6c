// src/job.hpp: what a child is told, and how it runs (internal; child.cpp).
//
// ChildConfig is what a child must know about itself and its parent. A fork child gets it by
// copy; a spawn or forkserver child, a fresh program, reads it in its job: a header (size,
// descriptor count) with the descriptors attached, then the serialized bytes. The first
// descriptor is the parent's pidfd.
#pragma once

#include <cstddef>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "platform/fd.hpp"
#include "platform/process.hpp"

namespace mproc::detail {

struct ChildConfig {
    std::string name;
    std::vector<unsigned> identity;
    bool daemon = false;
    std::string authkey;
    std::string start_method;
    // What a spawn or forkserver child, a fresh program, takes as its own default start method:
    // the Process's own method when it was given one (Python's _bootstrap forces a context's
    // method), else the parent's get_start_method() (Python's spawn preparation data); empty
    // when neither was set.
    std::string context_method;
    int parent_pid = -1;
    std::string parent_name;
    // How the child follows its parent in death (docs/design.md): when the kernel parent's
    // creating thread lives as long as its process (the main thread, or the single-threaded
    // forkserver), PR_SET_PDEATHSIG with this pid as the expected parent; otherwise (-1) a
    // watchdog thread polling the parent's pidfd.
    int death_signal_parent = -1;
    // Whether the job's last descriptor is the shared-memory tracker's client end.
    bool has_tracker = false;

    template <class Ar>
    void serialize(Ar& ar) {
        ar(name, identity, daemon, authkey, start_method, context_method, parent_pid, parent_name, death_signal_parent,
           has_tracker);
    }
};

// Runs a child's body and ends the process: sets the current process up from cfg, starts the
// watchdog on the parent, runs body, reports an escaped exception, runs the exit function,
// flushes and exits. fresh_program: exit(3) (spawn) rather than _exit(2) (fork, forkserver).
[[noreturn]] void run_child(const ChildConfig& cfg, int parent_pidfd,
                            const std::function<void()>& body, bool fresh_program) noexcept;

void send_job(int sock, const std::string& job, std::span<const int> fds);
// Reads the job on sock and runs it; never returns. A forkserver passes its own pid: it is the
// kernel parent, and single-threaded, so its death signal is the child's to set.
[[noreturn]] void run_job(int sock, bool fresh_program, pid_t forkserver = -1) noexcept;

// Reads exactly size bytes from a socket: false on end of file before the first byte; end of
// file in the middle is EOFError.
bool recv_exact(int sock, void* data, std::size_t size, std::vector<platform::UniqueFd>* fds = nullptr);

}  // namespace mproc::detail
