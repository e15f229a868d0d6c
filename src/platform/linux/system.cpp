// The machine and the file system on Linux (platform/system.hpp).
#include <elf.h>
#include <link.h>
#include <sched.h>
#include <sys/random.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

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

std::string host_name() {
    char buf[256] = {};
    if (::gethostname(buf, sizeof buf - 1) != 0) throw_errno("gethostname");
    return buf;
}

namespace {
std::string hex(const unsigned char* p, std::size_t n) {
    static const char digits[] = "0123456789abcdef";
    std::string s;
    for (std::size_t i = 0; i < n; ++i) {
        s += digits[p[i] >> 4];
        s += digits[p[i] & 15];
    }
    return s;
}

// The main program is the first object dl_iterate_phdr reports.
int find_build_id(dl_phdr_info* info, std::size_t, void* out) {
    auto* id = static_cast<std::string*>(out);
    for (int i = 0; i < info->dlpi_phnum; ++i) {
        const ElfW(Phdr)& ph = info->dlpi_phdr[i];
        if (ph.p_type != PT_NOTE) continue;
        const char* p = reinterpret_cast<const char*>(info->dlpi_addr + ph.p_vaddr);
        const char* end = p + ph.p_memsz;
        while (p + sizeof(ElfW(Nhdr)) <= end) {
            const auto* nh = reinterpret_cast<const ElfW(Nhdr)*>(p);
            const char* name = p + sizeof(ElfW(Nhdr));
            const char* desc = name + ((nh->n_namesz + 3) & ~3u);
            if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 && std::string_view(name, 3) == "GNU" &&
                desc + nh->n_descsz <= end) {
                *id = hex(reinterpret_cast<const unsigned char*>(desc), nh->n_descsz);
                return 1;
            }
            p = desc + ((nh->n_descsz + 3) & ~3u);
        }
    }
    return 1;  // only the first object
}

// FNV-1a over the executable's bytes: for a program linked without a build-id note.
std::string hash_of_executable() {
    std::FILE* f = std::fopen("/proc/self/exe", "rb");
    if (!f) return "unknown";
    std::uint64_t h = 1469598103934665603ull;
    unsigned char buf[1 << 16];
    std::size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0)
        for (std::size_t i = 0; i < n; ++i) h = (h ^ buf[i]) * 1099511628211ull;
    std::fclose(f);
    unsigned char bytes[8];
    for (int i = 0; i < 8; ++i) bytes[i] = static_cast<unsigned char>(h >> (8 * i));
    return "fnv-" + hex(bytes, sizeof bytes);
}
}  // namespace

const std::string& program_build_id() {
    static const std::string id = [] {
        std::string s;
        ::dl_iterate_phdr(&find_build_id, &s);
        return s.empty() ? hash_of_executable() : s;
    }();
    return id;
}

void unlink_path(const std::string& path) noexcept { ::unlink(path.c_str()); }

std::string make_temp_dir(const char* prefix) {
    std::string t = std::string("/tmp/") + prefix + "XXXXXX";
    if (!::mkdtemp(t.data())) throw_errno("mkdtemp");
    return t;
}

void remove_dir(const std::string& path) noexcept { ::rmdir(path.c_str()); }

}  // namespace mproc::platform
