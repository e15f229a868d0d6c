// Code addresses as (module, offset), through the dynamic loader's list of loaded objects.
#include <dlfcn.h>
#include <link.h>

#include <cstring>
#include <stdexcept>
#include <unordered_map>

#include "mproc/detail/code_address.hpp"
#include "mproc/errors.hpp"

namespace mproc::detail {

namespace {
struct Search {
    std::uintptr_t addr = 0;          // in: address to find (encode)
    const char* name = nullptr;       // in: module to find (decode)
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

namespace {
// Pools send the same few functions with every chunk, and dl_iterate_phdr takes the loader's
// lock and walks every module: remember what was found in the main executable, which is never
// unloaded (a shared library could be dlclose'd, so its addresses are looked up every time).
struct MainCache {
    std::unordered_map<std::uintptr_t, std::uint64_t> offsets;  // address -> offset
    std::unordered_map<std::uint64_t, std::uintptr_t> addresses;  // offset -> address
};
MainCache& main_cache() {
    thread_local MainCache c;
    return c;
}
constexpr std::size_t kMaxCached = 4096;
}  // namespace

namespace {
CodeAddress encode_uncached(const void* p) {
    Search s;
    s.addr = reinterpret_cast<std::uintptr_t>(p);
    dl_iterate_phdr(find_by_address, &s);
    if (!s.found)
        throw std::logic_error(
            "mproc: this function's code is not inside a loaded module (generated at run "
            "time?), so it cannot be sent to another process; use the fork start method");
    return CodeAddress{s.module, s.addr - s.base};
}
}  // namespace

CodeAddress encode_code_address(const void* p) {
    MainCache& c = main_cache();
    const auto addr = reinterpret_cast<std::uintptr_t>(p);
    if (auto it = c.offsets.find(addr); it != c.offsets.end()) return CodeAddress{"", it->second};
    CodeAddress a = encode_uncached(p);
    if (a.module.empty() && c.offsets.size() < kMaxCached) c.offsets.emplace(addr, a.offset);
    return a;
}

const void* decode_code_address(const CodeAddress& a) {
    MainCache& c = main_cache();
    if (a.module.empty())
        if (auto it = c.addresses.find(a.offset); it != c.addresses.end()) return reinterpret_cast<const void*>(it->second);
    Search s;
    s.name = a.module.c_str();
    s.addr = static_cast<std::uintptr_t>(a.offset);
    dl_iterate_phdr(find_by_name, &s);
    if (!s.found && !a.module.empty()) {
        // A library the sender had loaded with dlopen: load it here too, then look again. The
        // handle is kept on purpose: the function must stay mapped.
        if (dlopen(a.module.c_str(), RTLD_NOW | RTLD_GLOBAL)) dl_iterate_phdr(find_by_name, &s);
    }
    if (!s.found)
        throw SerializationError("mproc: no function at offset " + std::to_string(a.offset) +
                                 " of module '" + (a.module.empty() ? "<executable>" : a.module) +
                                 "': the child is not the same program as its parent");
    if (a.module.empty() && c.addresses.size() < kMaxCached) c.addresses.emplace(a.offset, s.base + s.addr);
    return reinterpret_cast<const void*>(s.base + s.addr);
}

}  // namespace mproc::detail
