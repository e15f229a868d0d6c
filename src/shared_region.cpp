// Shared regions: a memfd per object, mapped, shared by handle copies and children.
#include "mproc/detail/shared_region.hpp"

#include "platform/platform.hpp"

namespace mproc::detail {

class SharedRegion {
public:
    explicit SharedRegion(platform::SharedPage page) : page(std::move(page)) {}
    platform::SharedPage page;
};

RegionRef RegionRef::create(std::size_t size) {
    const std::size_t page = 4096;
    const std::size_t rounded = (size + page - 1) / page * page;  // memfd pages are zero-filled
    return RegionRef{std::make_shared<SharedRegion>(platform::SharedPage::create(rounded ? rounded : page)), 0};
}

void* RegionRef::data() const noexcept {
    return region ? static_cast<char*>(region->page.data()) + offset : nullptr;
}

std::size_t RegionRef::size() const noexcept { return region ? region->page.size() - offset : 0; }

void RegionRef::save(OutputArchive& ar) const {
    if (!region) throw std::logic_error("mproc: a moved-from shared object cannot be sent");
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
