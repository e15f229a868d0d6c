// src/platform/system.hpp: the machine and the file system (section "system" of the platform
// layer; Linux: linux/system.cpp).
//
// Facts about the machine (CPUs, terminals), secure random bytes, and the few file-system
// steps a Unix socket's address needs (a private directory, removing the socket's path).
#pragma once

#include <cstddef>
#include <string>

namespace mproc::platform {

int cpu_count() noexcept;
int process_cpu_count() noexcept;  // the CPUs this process may run on
void random_bytes(void* out, std::size_t size);
// isatty(3).
bool is_terminal(int fd) noexcept;

// gethostname(2): this machine's name (its UTS namespace's).
std::string host_name();
// What tells this program's build from another: the GNU build-id note the linker wrote into
// the executable (hex), or, when it has none, a SHA-256 of /proc/self/exe. Computed once.
const std::string& program_build_id();

void unlink_path(const std::string& path) noexcept;
std::string make_temp_dir(const char* prefix);
void remove_dir(const std::string& path) noexcept;

}  // namespace mproc::platform
