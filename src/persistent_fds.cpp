// The registry of descriptors kept open on purpose (persistent_fds.hpp), and persistent_fds()
// (mproc/detail/introspect.hpp), which asks it.
#include "persistent_fds.hpp"

#include <array>
#include <cstdio>
#include <cstdlib>
#include <mutex>

#include "mproc/detail/introspect.hpp"
#include "platform/process.hpp"

namespace mproc::detail {

namespace {
// Constant-initialized (std::mutex's constructor is constexpr), so registrations at static
// initialization find the registry ready whatever the order of the translation units.
std::mutex g_mu;
std::array<int (*)() noexcept, 16> g_sources{};
std::size_t g_count = 0;
}  // namespace

void keep_fd_source(int (*source)() noexcept) noexcept {
    std::lock_guard lk(g_mu);
    if (g_count == g_sources.size()) {
        std::fputs("mproc: too many kept descriptor sources\n", stderr);
        std::abort();
    }
    g_sources[g_count++] = source;
}

std::vector<int> persistent_fds() {
    std::vector<int> fds;
    // This process's own pidfd belongs to the platform layer, below any registry.
    if (const int self = platform::self_pidfd_if_open(); self >= 0) fds.push_back(self);
    std::lock_guard lk(g_mu);
    for (std::size_t i = 0; i < g_count; ++i)
        if (const int fd = g_sources[i](); fd >= 0) fds.push_back(fd);
    return fds;
}

}  // namespace mproc::detail
