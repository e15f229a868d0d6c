// src/popen.hpp: a started child, as its parent sees it (internal).
//
// One Popen per started child, made by the launcher of its start method (Python: popen_fork,
// popen_spawn_posix, popen_forkserver), behind one small interface: pid, sentinel, poll,
// send_signal. The launchers are here too: start_fork and start_spawn in child.cpp,
// start_forkserver in forkserver.cpp.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "platform/process.hpp"

namespace mproc::detail {

class Popen {
public:
    virtual ~Popen() = default;
    virtual pid_t pid() const noexcept = 0;
    // Readable once the child has ended.
    virtual int sentinel() const noexcept = 0;
    // Non-blocking: the exit code once the child has ended (reaping it), else empty.
    virtual std::optional<int> poll() = 0;
    // No effect once the child has ended.
    virtual void send_signal(int sig) = 0;
    // Blocking: the exit code, once the sentinel has said the child ended. (A pidfd can turn
    // readable a moment before waitpid(WNOHANG) finds the child reapable: its last thread is
    // still being torn down.)
    virtual int wait_ended() = 0;
};

struct ChildConfig;

// The fork start method: body runs in a copy of this process, set up from cfg.
std::unique_ptr<Popen> start_fork(const ChildConfig& cfg, const std::function<void()>& body);
// spawn and forkserver: the child is a fresh run of this executable, told its job (job.hpp)
// with the descriptors it needs.
std::unique_ptr<Popen> start_spawn(const std::string& job, std::span<const int> fds);
std::unique_ptr<Popen> start_forkserver(const std::string& job, std::span<const int> fds);

}  // namespace mproc::detail
