// Code addresses as (module, offset) (mproc/detail/code_address.hpp): what the platform's
// module lookup finds, remembered for the main executable, with the library's own errors.
#include "mproc/detail/code_address.hpp"

#include <cstdint>
#include <stdexcept>
#include <unordered_map>

#include "mproc/detail/archive.hpp"
#include "mproc/errors.hpp"
#include "platform/modules.hpp"

namespace mproc::detail {

namespace {
// Pools send the same few functions with every chunk, and the loader's lookup takes its lock
// and walks every module: remember what was found in the main executable, which is never
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

CodeAddress encode_uncached(const void* p) {
    std::optional<platform::CodeLocation> at = platform::locate_code(p);
    if (!at)
        throw std::logic_error(
            "mproc: this function's code is not inside a loaded module (generated at run "
            "time?), so it cannot be sent to another process; use the fork start method");
    return CodeAddress{std::move(at->module), at->offset};
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
    const void* p = platform::find_code(a.module, a.offset);
    if (!p)
        throw SerializationError("mproc: no function at offset " + std::to_string(a.offset) +
                                 " of module '" + (a.module.empty() ? "<executable>" : a.module) +
                                 "': the child is not the same program as its parent");
    if (a.module.empty() && c.addresses.size() < kMaxCached)
        c.addresses.emplace(a.offset, reinterpret_cast<std::uintptr_t>(p));
    return p;
}

void save_code_address(OutputArchive& ar, const void* p) {
    const CodeAddress a = encode_code_address(p);
    ar(a.module, a.offset);
}

const void* load_code_address(InputArchive& ar) {
    CodeAddress a;
    ar(a.module, a.offset);
    return decode_code_address(a);
}

}  // namespace mproc::detail
