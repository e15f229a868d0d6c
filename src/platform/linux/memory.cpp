// Shared memory on Linux (platform/memory.hpp): memfd, /dev/shm, double-mapped rings,
// allocator and page hints.
#include <fcntl.h>
#include <linux/falloc.h>
#include <malloc.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <limits>

#include "platform/linux/posix.hpp"
#include "platform/memory.hpp"

namespace mproc::platform {

SharedPage SharedPage::create(std::size_t size) { return attach(memfd("mproc-shared", size)); }

SharedPage SharedPage::attach(UniqueFd fd) {
    SharedPage p;
    p.size_ = file_size(fd.get());
    p.data_ = map_shared(fd.get(), p.size_);
    p.fd_ = std::move(fd);
    return p;
}

SharedPage::SharedPage(SharedPage&& o) noexcept
    : fd_(std::move(o.fd_)), data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}

SharedPage& SharedPage::operator=(SharedPage&& o) noexcept {
    if (this != &o) {
        unmap(data_, size_);
        fd_ = std::move(o.fd_);
        data_ = std::exchange(o.data_, nullptr);
        size_ = std::exchange(o.size_, 0);
    }
    return *this;
}

SharedPage::~SharedPage() { unmap(data_, size_); }

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

void keep_freed_memory() noexcept {
    // Not a threshold for mmap: blocks past it (512 MiB, as this was once) are still mapped
    // afresh and unmapped when freed, so a gigabyte argument faulted in new pages at every task.
    // Without mmap the main arena takes every block from the heap (threads' arenas still map
    // theirs), and the heap keeps up to 2 GiB free at its top.
    ::mallopt(M_MMAP_MAX, 0);
    ::mallopt(M_TRIM_THRESHOLD, std::numeric_limits<int>::max());
}

void advise_huge_pages(void* p, std::size_t bytes) noexcept {
    constexpr std::uintptr_t kHuge = 2 * 1024 * 1024;
    const auto begin = reinterpret_cast<std::uintptr_t>(p);
    const std::uintptr_t first = (begin + kHuge - 1) & ~(kHuge - 1);
    const std::uintptr_t last = (begin + bytes) & ~(kHuge - 1);
    if (p == nullptr || last <= first) return;
    ::madvise(reinterpret_cast<void*>(first), last - first, MADV_HUGEPAGE);
}

void free_lazily(void* p, std::size_t bytes) noexcept {
    const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
    const auto begin = reinterpret_cast<std::uintptr_t>(p);
    const std::uintptr_t first = (begin + page - 1) & ~(page - 1);
    const std::uintptr_t last = (begin + bytes) & ~(page - 1);
    if (p == nullptr || last <= first) return;
    ::madvise(reinterpret_cast<void*>(first), last - first, MADV_FREE);
}

}  // namespace mproc::platform
