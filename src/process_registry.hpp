// src/process_registry.hpp: the processes this one knows (internal; process.cpp).
//
// The state behind every Process handle, the current process and its parent, and the children
// started and not yet reaped, guarded by the fork mutex.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "platform/fd.hpp"
#include "platform/process.hpp"
#include "popen.hpp"

namespace mproc::detail {

class ForkServer;
struct ChildConfig;

enum class ProcessKind { Child, Current, Parent };

struct ProcessState {
    std::mutex mu;
    ProcessKind kind = ProcessKind::Child;
    std::string name;
    bool daemon = false;
    std::string start_method;
    bool method_given = false;  // start_method was the Process's own (Python: a context's Process)
    std::vector<unsigned> identity;  // (1,), (1, 2), ... as Python's _identity
    std::string authkey;
    pid_t creator_pid = -1;  // the process that made this object; only it may start/join it
    pid_t pid = -1;          // Current and Parent kinds
    std::unique_ptr<Popen> popen;
    bool closed = false;
    platform::UniqueFd parent_sentinel;  // Parent kind: a pidfd of the parent
    // Set by a process pool: the server its worker is forked from (whatever the start method
    // says), so that the pool's creator never forks itself once the pool runs threads.
    std::shared_ptr<ForkServer> server;
};

// The lock held across fork(2) so that no other thread leaves the registry, the current
// process's state or the forkserver client half-updated in the child.
std::mutex& fork_mutex();

// Children of this process that were started and not yet reaped.
void register_child(std::shared_ptr<ProcessState> s);
void cleanup_finished_children();
// Called once in a forked child: the parent's children are not ours.
void forget_children_after_fork();

std::shared_ptr<ProcessState> current_state();
ChildConfig make_child_config(const ProcessState& child);
// In a new child: makes cfg the current process and the parent (watched through parent_pidfd,
// which it takes) the parent process.
void set_current_from_config(const ChildConfig& cfg, int parent_pidfd);

}  // namespace mproc::detail
