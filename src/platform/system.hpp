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

void unlink_path(const std::string& path) noexcept;
std::string make_temp_dir(const char* prefix);
void remove_dir(const std::string& path) noexcept;

}  // namespace mproc::platform
