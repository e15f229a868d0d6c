// Named shared memory segments on Linux: files in /dev/shm.
#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

#include "platform/platform.hpp"

namespace mproc::platform {

namespace {
[[noreturn]] void throw_errno(const std::string& what, int err = errno) {
    throw std::system_error(err, std::generic_category(), what);
}
}  // namespace

UniqueFd shm_create(const std::string& name, std::size_t size) {
    UniqueFd fd(::shm_open(name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!fd) throw_errno("mproc: cannot create shared memory " + name);
    if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0) {
        const int e = errno;
        ::shm_unlink(name.c_str());
        throw_errno("mproc: cannot size shared memory " + name, e);
    }
    return fd;
}

UniqueFd shm_attach(const std::string& name) {
    UniqueFd fd(::shm_open(name.c_str(), O_RDWR | O_CLOEXEC, 0));
    if (!fd) throw_errno("mproc: no shared memory named " + name);
    return fd;
}

void shm_remove(const std::string& name) {
    if (::shm_unlink(name.c_str()) != 0) throw_errno("mproc: cannot unlink shared memory " + name);
}

std::size_t file_size(int fd) {
    struct stat st;
    if (::fstat(fd, &st) != 0) throw_errno("fstat");
    return static_cast<std::size_t>(st.st_size);
}

void* map_shared(int fd, std::size_t size) {
    if (size == 0) return nullptr;
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) throw_errno("mmap");
    return p;
}

void unmap(void* data, std::size_t size) noexcept {
    if (data && size) ::munmap(data, size);
}

void lock_file_shared(int fd) {
    while (::flock(fd, LOCK_SH) != 0)
        if (errno != EINTR) throw_errno("flock");
}

void lock_file_exclusive(int fd) {
    while (::flock(fd, LOCK_EX) != 0)
        if (errno != EINTR) throw_errno("flock");
}

}  // namespace mproc::platform

namespace mproc::platform {

UniqueFd memfd(const char* name, std::size_t size) {
    UniqueFd fd(::memfd_create(name, MFD_CLOEXEC));
    if (!fd) throw_errno("memfd_create");
    if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0) throw_errno("ftruncate");
    return fd;
}

void* map_ring(int fd, std::size_t capacity) {
    // Reserve twice the size, then put the file at both halves.
    void* base = ::mmap(nullptr, 2 * capacity, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED) throw_errno("mmap (reserve)");
    char* b = static_cast<char*>(base);
    if (::mmap(b, capacity, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0) == MAP_FAILED ||
        ::mmap(b + capacity, capacity, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0) == MAP_FAILED) {
        const int e = errno;
        ::munmap(base, 2 * capacity);
        throw_errno("mmap (ring)", e);
    }
    return base;
}

void unmap_ring(void* base, std::size_t capacity) noexcept {
    if (base) ::munmap(base, 2 * capacity);
}

void release_range(int fd, std::size_t offset, std::size_t size) noexcept {
    ::fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset), static_cast<off_t>(size));
}

}  // namespace mproc::platform
