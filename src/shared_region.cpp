// Shared regions: a memfd per object, mapped, shared by handle copies and children.
#include "mproc/detail/shared_region.hpp"

#include <cstddef>
#include <new>
#include <stdexcept>

#include "platform/fd.hpp"
#include "platform/memory.hpp"

namespace mproc::detail {

// Either a mapped memfd, or (private) memory of this process alone.
class SharedRegion {
public:
    explicit SharedRegion(platform::SharedPage page) : page(std::move(page)) {}
    explicit SharedRegion(std::size_t size) : heap(new (std::align_val_t{64}) std::byte[size]()), heap_size(size) {}
    ~SharedRegion() {
        if (heap) ::operator delete[](heap, std::align_val_t{64});
    }
    SharedRegion(const SharedRegion&) = delete;
    SharedRegion& operator=(const SharedRegion&) = delete;

    void* data() const noexcept { return heap ? static_cast<void*>(heap) : page.data(); }
    std::size_t size() const noexcept { return heap ? heap_size : page.size(); }

    platform::SharedPage page;
    // 64-byte aligned, as a page is: the futex words and cache-line layouts assume it.
    std::byte* heap = nullptr;
    std::size_t heap_size = 0;
};

RegionRef RegionRef::create(std::size_t size) {
    const std::size_t page = 4096;
    const std::size_t rounded = (size + page - 1) / page * page;  // memfd pages are zero-filled
    return RegionRef{std::make_shared<SharedRegion>(platform::SharedPage::create(rounded ? rounded : page)), 0};
}

RegionRef RegionRef::create_private(std::size_t size) {
    return RegionRef{std::make_shared<SharedRegion>(size ? size : 64), 0};
}

bool RegionRef::is_private() const noexcept { return region && region->heap; }

void* RegionRef::data() const noexcept {
    return region ? static_cast<char*>(region->data()) + offset : nullptr;
}

std::size_t RegionRef::size() const noexcept { return region ? region->size() - offset : 0; }

void RegionRef::save(OutputArchive& ar) const {
    if (!region) throw std::logic_error("mproc: a moved-from shared object cannot be sent");
    if (region->heap)
        throw std::logic_error(
            "mproc: a mproc::threading object lives in one process and cannot be sent to another; "
            "use mproc::Lock, mproc::Event (and the rest of <mproc/synchronize.hpp>) to share between processes");
    const std::uint32_t fd = ar.add_fd(region->page.fd());
    ar(fd, static_cast<std::uint64_t>(offset));
}

void RegionRef::load(InputArchive& ar) {
    std::uint32_t fd = 0;
    std::uint64_t off = 0;
    ar(fd, off);
    auto r = std::make_shared<SharedRegion>(platform::SharedPage::attach(platform::UniqueFd(ar.take_fd(fd))));
    if (off >= r->page.size()) throw SerializationError("mproc: malformed shared object (offset past its region)");
    region = std::move(r);
    offset = static_cast<std::size_t>(off);
}

}  // namespace mproc::detail
