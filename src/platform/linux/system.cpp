// The machine and the file system on Linux (platform/system.hpp).
#include <sched.h>
#include <sys/random.h>
#include <unistd.h>

#include <cstdlib>

#include "platform/linux/posix.hpp"
#include "platform/system.hpp"

namespace mproc::platform {

int cpu_count() noexcept {
    const long n = ::sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? static_cast<int>(n) : 1;
}

int process_cpu_count() noexcept {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (::sched_getaffinity(0, sizeof set, &set) != 0) return cpu_count();
    const int n = CPU_COUNT(&set);
    return n > 0 ? n : 1;
}

void random_bytes(void* out, std::size_t size) {
    char* p = static_cast<char*>(out);
    while (size > 0) {
        const ssize_t n = ::getrandom(p, size, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw_errno("getrandom");
        }
        p += n;
        size -= static_cast<std::size_t>(n);
    }
}

bool is_terminal(int fd) noexcept { return ::isatty(fd) == 1; }

void unlink_path(const std::string& path) noexcept { ::unlink(path.c_str()); }

std::string make_temp_dir(const char* prefix) {
    std::string t = std::string("/tmp/") + prefix + "XXXXXX";
    if (!::mkdtemp(t.data())) throw_errno("mkdtemp");
    return t;
}

void remove_dir(const std::string& path) noexcept { ::rmdir(path.c_str()); }

}  // namespace mproc::platform
