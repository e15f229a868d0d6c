// src/platform/memory.hpp: shared memory (section "memory" of the platform layer; Linux:
// linux/memory.cpp).
//
// Anonymous shared memory (memfd) passed by descriptor, named segments (/dev/shm) with the
// file locks their tracker relies on, the double-mapped rings of queues, and hints to the
// allocator and the kernel about how memory is used.
#pragma once

#include <cstddef>
#include <string>

#include "platform/fd.hpp"

namespace mproc::platform {

// A memfd of `size` bytes (sparse: no memory until touched).
UniqueFd memfd(const char* name, std::size_t size);
std::size_t file_size(int fd);
void* map_shared(int fd, std::size_t size);
void unmap(void* data, std::size_t size) noexcept;

// A page of memory shared by every process that maps its memfd.
class SharedPage {
public:
    SharedPage() = default;
    static SharedPage create(std::size_t size);   // a new memfd, mapped
    static SharedPage attach(UniqueFd fd);         // map a received memfd
    SharedPage(SharedPage&&) noexcept;
    SharedPage& operator=(SharedPage&&) noexcept;
    ~SharedPage();
    void* data() const noexcept { return data_; }
    int fd() const noexcept { return fd_.get(); }
    std::size_t size() const noexcept { return size_; }

private:
    UniqueFd fd_;
    void* data_ = nullptr;
    std::size_t size_ = 0;
};

// Named segments. shm_open with O_CREAT|O_EXCL and the size set, or without O_CREAT; name
// starts with '/'.
UniqueFd shm_create(const std::string& name, std::size_t size);
UniqueFd shm_attach(const std::string& name);
void shm_remove(const std::string& name);  // shm_unlink; ENOENT is std::system_error
// flock(2): a shared lock held while a handle is open, and the exclusive lock the tracker takes
// (blocking) before it removes a name.
void lock_file_shared(int fd);
void lock_file_exclusive(int fd);

// Rings for queues. Maps the memfd twice, back to back, so that bytes [capacity, 2 * capacity)
// alias [0, capacity): a message that wraps around the end is contiguous. capacity: a page
// multiple.
void* map_ring(int fd, std::size_t capacity);
void unmap_ring(void* base, std::size_t capacity) noexcept;
// Gives the pages of [offset, offset + size) back to the system (they read as zero after).
void release_range(int fd, std::size_t offset, std::size_t size) noexcept;

// Keeps freed memory in this process for reuse instead of handing it back to the system at once
// (glibc: no mmap for large blocks, no trimming): a process that handles one large buffer after
// another then reuses the same pages instead of faulting fresh ones in each time.
void keep_freed_memory() noexcept;
// madvise(MADV_HUGEPAGE) on the 2 MiB-aligned part of [p, p + bytes), when that is at least
// one huge page: the memory faults in 2 MiB at a time where the system's transparent huge
// pages allow it ("madvise" or "always"). A hint: failures are ignored.
void advise_huge_pages(void* p, std::size_t bytes) noexcept;
// madvise(MADV_FREE) on the whole pages inside [p, p + bytes): the kernel may take them back
// under memory pressure (they then read as zero); until it does, a write reuses them as they
// are. For memory kept for later that holds nothing worth keeping. A hint: failures are ignored.
void free_lazily(void* p, std::size_t bytes) noexcept;

}  // namespace mproc::platform
