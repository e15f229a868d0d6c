// mproc/detail/shared_region.hpp: anonymous shared memory that travels (not API).
//
// A region is a memfd, mapped. A fork child inherits the mapping; a spawn or forkserver child
// (or a process the handle is sent to over a Connection) receives the memfd and maps it. The
// kernel frees the memory when the last mapping and descriptor are gone, so nothing can leak.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "mproc/detail/archive.hpp"

namespace mproc::detail {

class SharedRegion;

struct RegionRef {
    std::shared_ptr<SharedRegion> region;
    std::size_t offset = 0;

    // A new zero-filled region of `size` bytes.
    static RegionRef create(std::size_t size);
    // The same in this process's own memory, for mproc::threading's objects: no descriptor, no
    // mapping; it cannot be sent (save() is std::logic_error).
    static RegionRef create_private(std::size_t size);
    // True for a create_private() region: nothing outside this process can see it.
    bool is_private() const noexcept;
    void* data() const noexcept;
    std::size_t size() const noexcept;  // from offset to the end
    explicit operator bool() const noexcept { return region != nullptr; }

    void save(OutputArchive& ar) const;
    void load(InputArchive& ar);
};

}  // namespace mproc::detail
