// mproc/shared_memory.hpp: named shared memory (Python: multiprocessing.shared_memory).
//
//   mproc::shared_memory::SharedMemory shm({.create = true, .size = 1 << 20});
//   mproc::shared_memory::SharedMemory other({.name = shm.name()});   // any process, by name
//   std::span<std::byte> b = shm.buf();  shm.close();  shm.unlink();
//
// A segment is a file in /dev/shm, so unrelated processes can attach to it by name. Its name
// is removed by unlink(), or, when nobody called it, once the tree of processes that created it
// is gone, even after kill -9 (a tracker process, one per tree, watches; Python's
// resource_tracker). A segment another process still has open is never removed under it: every
// open handle holds a shared lock on it, and the tracker waits for them all. Unlike Python (up
// to 3.12), attaching does not register the segment with the attacher's tracker, so a process
// that only attached never removes it when it exits.
//
// Handles are movable, not copyable (each owns a mapping and a descriptor); one can be given to
// a child as a target argument under every start method (the child gets its own descriptor of
// the same segment) or sent over a Connection.
//
// Blocking: none of these waits, but for a moment in two cases: opening a segment whose name
// the tracker is removing waits for it to finish (its flock), and the first segment a tree
// creates with track starts the tracker process. No call makes a round trip: the tracker is
// told, never asked. The memory itself is not synchronized, as Python's: guard it with a lock.
#pragma once

#include <cstddef>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "mproc/detail/archive.hpp"

namespace mproc::shared_memory {

// Python: SharedMemory(name=None, create=False, size=0, *, track=True).
struct SharedMemoryOptions {
    // With create and no name: a fresh random name, "mproc_psm_" and 16 hex digits (the
    // environment variable MPROC_SHM_NAME_PREFIX, if set, replaces "mproc_psm_").
    std::optional<std::string> name = {};
    bool create = false;
    std::size_t size = 0;                   // bytes, when creating (0: std::invalid_argument)
    bool track = true;                      // remove the name when the creating tree is gone
};

class SharedMemory {
public:
    // Creating a name that exists: std::system_error(EEXIST); attaching to one that does not:
    // std::system_error(ENOENT); other refusals of the system (EACCES, EMFILE, ...) too.
    // Creating with size 0, attaching without a name, a name holding a NUL:
    // std::invalid_argument (Python: ValueError).
    explicit SharedMemory(SharedMemoryOptions options);
    SharedMemory() = default;  // an empty handle, to be assigned or loaded
    SharedMemory(SharedMemory&&) noexcept;
    SharedMemory& operator=(SharedMemory&&) noexcept;
    SharedMemory(const SharedMemory&) = delete;
    SharedMemory& operator=(const SharedMemory&) = delete;
    ~SharedMemory();  // close(), not unlink(), as Python

    const std::string& name() const noexcept { return name_; }  // without the leading '/'
    std::size_t size() const noexcept { return size_; }
    std::span<std::byte> buf() const;  // after close(): std::logic_error
    // Unmaps this handle's view and lets go of the segment; other handles are unaffected.
    void close() noexcept;
    // Removes the name (the memory lives on while anyone maps it). Call it once, from one
    // process; after that nobody can attach. A name already gone: std::system_error(ENOENT).
    // Allowed after close().
    void unlink();

    // Sending a closed handle: std::logic_error.
    void save(detail::OutputArchive& ar) const;
    void load(detail::InputArchive& ar);

private:
    std::string name_;
    int fd_ = -1;
    void* data_ = nullptr;
    std::size_t size_ = 0;
};

// A fixed-length list of one trivially copyable type in a SharedMemory segment (Python:
// ShareableList, typed). Index out of range: std::out_of_range. Not synchronized, as Python's;
// nothing blocks. Creating and attaching throw as SharedMemory's constructor; any use after
// shm().close(): std::logic_error.
template <class T>
class ShareableList {
    static_assert(std::is_trivially_copyable_v<T>, "mproc::ShareableList<T> needs a trivially copyable T");
    static_assert(!detail::holds_address_v<T>, "mproc::ShareableList<T>: T holds an address (a pointer, reference, string_view or span, at some depth), which means nothing in the other processes that map this memory");
    struct Header {
        std::uint64_t magic;
        std::uint64_t count;
        std::uint64_t element_size;
    };
    static constexpr std::uint64_t kMagic = 0x6d70726f63534c31ull;  // "mprocSL1"

public:
    // Creates a segment holding these values (a fresh name unless one is given).
    explicit ShareableList(const std::vector<T>& values, std::optional<std::string> name = std::nullopt)
        : shm_({.name = std::move(name), .create = true, .size = sizeof(Header) + values.size() * sizeof(T) + 1}) {
        Header h{kMagic, values.size(), sizeof(T)};
        std::memcpy(shm_.buf().data(), &h, sizeof h);
        if (!values.empty()) std::memcpy(shm_.buf().data() + sizeof h, values.data(), values.size() * sizeof(T));
    }
    // Attaches to a list created elsewhere; a segment that is not a list of T:
    // std::invalid_argument.
    explicit ShareableList(const std::string& name) : shm_({.name = name}) {
        Header h{};
        if (shm_.size() < sizeof h) throw std::invalid_argument("mproc: " + name + " is not a ShareableList");
        std::memcpy(&h, shm_.buf().data(), sizeof h);
        if (h.magic != kMagic || h.element_size != sizeof(T) || h.count > (shm_.size() - sizeof h) / sizeof(T))
            throw std::invalid_argument("mproc: " + name + " is not a ShareableList of this element type");
    }
    ShareableList() = default;

    std::size_t size() const { return header().count; }
    T get(std::size_t i) const {
        check(i);
        T v;
        std::memcpy(&v, slot(i), sizeof(T));
        return v;
    }
    void set(std::size_t i, const T& v) {
        check(i);
        std::memcpy(slot(i), &v, sizeof(T));
    }
    std::size_t count(const T& v) const {
        std::size_t n = 0;
        for (std::size_t i = 0; i < size(); ++i) n += get(i) == v;
        return n;
    }
    // The first index holding v; none: std::invalid_argument (Python: ValueError).
    std::size_t index(const T& v) const {
        for (std::size_t i = 0; i < size(); ++i)
            if (get(i) == v) return i;
        throw std::invalid_argument("mproc: value not in the list");
    }
    std::vector<T> to_vector() const {
        std::vector<T> out(size());
        for (std::size_t i = 0; i < out.size(); ++i) out[i] = get(i);
        return out;
    }
    SharedMemory& shm() noexcept { return shm_; }

    void save(detail::OutputArchive& ar) const { shm_.save(ar); }
    void load(detail::InputArchive& ar) { shm_.load(ar); }

private:
    Header header() const {
        Header h{};
        std::memcpy(&h, shm_.buf().data(), sizeof h);
        return h;
    }
    void check(std::size_t i) const {
        if (i >= size()) throw std::out_of_range("mproc: ShareableList index " + std::to_string(i) + " out of range");
    }
    std::byte* slot(std::size_t i) const { return shm_.buf().data() + sizeof(Header) + i * sizeof(T); }
    SharedMemory shm_;
};

}  // namespace mproc::shared_memory
