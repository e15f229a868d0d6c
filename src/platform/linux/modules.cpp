// Loaded code on Linux (platform/modules.hpp), through the dynamic loader's list of loaded
// objects.
#include <dlfcn.h>
#include <link.h>

#include <cstring>

#include "platform/modules.hpp"

namespace mproc::platform {

namespace {
struct Search {
    std::uintptr_t addr = 0;          // in: address to find (locate)
    const char* name = nullptr;       // in: module to find (find)
    bool found = false;
    std::string module;               // out
    std::uintptr_t base = 0;          // out: load address
};

bool in_exec_segment(const dl_phdr_info* info, std::uintptr_t addr) {
    for (int i = 0; i < info->dlpi_phnum; ++i) {
        const ElfW(Phdr)& ph = info->dlpi_phdr[i];
        if (ph.p_type != PT_LOAD || !(ph.p_flags & PF_X)) continue;
        const std::uintptr_t start = info->dlpi_addr + ph.p_vaddr;
        if (addr >= start && addr < start + ph.p_memsz) return true;
    }
    return false;
}

int find_by_address(dl_phdr_info* info, size_t, void* data) {
    auto* s = static_cast<Search*>(data);
    if (!in_exec_segment(info, s->addr)) return 0;
    s->found = true;
    s->module = info->dlpi_name ? info->dlpi_name : "";
    s->base = info->dlpi_addr;
    return 1;
}

int find_by_name(dl_phdr_info* info, size_t, void* data) {
    auto* s = static_cast<Search*>(data);
    const char* name = info->dlpi_name ? info->dlpi_name : "";
    if (std::strcmp(name, s->name) != 0) return 0;
    if (!in_exec_segment(info, s->addr + info->dlpi_addr)) return 0;
    s->found = true;
    s->base = info->dlpi_addr;
    return 1;
}
}  // namespace

std::optional<CodeLocation> locate_code(const void* p) {
    Search s;
    s.addr = reinterpret_cast<std::uintptr_t>(p);
    dl_iterate_phdr(find_by_address, &s);
    if (!s.found) return std::nullopt;
    return CodeLocation{s.module, s.addr - s.base};
}

const void* find_code(const std::string& module, std::uint64_t offset) {
    Search s;
    s.name = module.c_str();
    s.addr = static_cast<std::uintptr_t>(offset);
    dl_iterate_phdr(find_by_name, &s);
    if (!s.found && !module.empty()) {
        // A library the sender had loaded with dlopen: load it here too, then look again. The
        // handle is kept on purpose: the function must stay mapped.
        if (dlopen(module.c_str(), RTLD_NOW | RTLD_GLOBAL)) dl_iterate_phdr(find_by_name, &s);
    }
    if (!s.found) return nullptr;
    return reinterpret_cast<const void*>(s.base + s.addr);
}

}  // namespace mproc::platform
