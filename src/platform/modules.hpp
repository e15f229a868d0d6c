// src/platform/modules.hpp: loaded code (section "modules" of the platform layer; Linux:
// linux/modules.cpp).
//
// Which loaded module (the executable or a shared library) holds an address of code, and
// where a module's offset lies in this process: what src/code_address.cpp builds the sending
// of functions to other processes on.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace mproc::platform {

struct CodeLocation {
    std::string module;  // "" for the main executable, else the name it was loaded under
    std::uint64_t offset = 0;
};
// The module whose executable segments hold p, and p's offset in it; empty when none does
// (code generated at run time).
std::optional<CodeLocation> locate_code(const void* p);
// The address of `offset` in `module` in this process, loading the library when it is not
// loaded yet; null when it cannot be loaded or the offset is outside its executable segments.
const void* find_code(const std::string& module, std::uint64_t offset);

}  // namespace mproc::platform
