// Type fingerprints and the message envelope.
#include <cxxabi.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <stdexcept>

#include "mproc/serialize.hpp"
#include "mproc/detail/archive.hpp"
#include "platform/memory.hpp"
#include "spare_bytes.hpp"

namespace mproc::detail {

std::uint64_t type_fingerprint(const std::type_info& t) noexcept {
    std::uint64_t h = 1469598103934665603ull;
    for (const char* p = t.name(); *p; ++p) {
        h ^= static_cast<unsigned char>(*p);
        h *= 1099511628211ull;
    }
    return h;
}

std::string demangle(const char* mangled) {
    int status = 0;
    std::unique_ptr<char, void (*)(void*)> s(abi::__cxa_demangle(mangled, nullptr, nullptr, &status),
                                             std::free);
    return status == 0 && s ? std::string(s.get()) : std::string(mangled);
}

std::string type_name(const std::type_info& t) { return demangle(t.name()); }

std::size_t write_envelope(std::string& out, const std::type_info& t) {
    const std::uint64_t fp = type_fingerprint(t);
    const char* name = t.name();
    const std::size_t len = std::strlen(name);
    const std::uint16_t n = static_cast<std::uint16_t>(len > 0xffff ? 0xffff : len);
    out.append(reinterpret_cast<const char*>(&fp), sizeof fp);
    out.append(reinterpret_cast<const char*>(&n), sizeof n);
    out.append(name, n);
    const std::size_t at = out.size();
    out.append(2, '\0');
    return at;
}

void patch_envelope_fds(std::string& out, std::size_t at, std::size_t count) {
    if (count > 0xffff) throw std::length_error("mproc: too many descriptors in one message");
    const std::uint16_t c = static_cast<std::uint16_t>(count);
    std::memcpy(out.data() + at, &c, sizeof c);
}

namespace {
struct Header {
    std::uint64_t fp;
    std::string_view name;
    std::size_t fd_count;
    std::size_t size;
};

Header parse_header(std::string_view bytes) {
    Header h{};
    std::uint16_t n = 0;
    if (bytes.size() < sizeof h.fp + sizeof n)
        throw SerializationError("mproc: message of " + std::to_string(bytes.size()) +
                                 " bytes is too short to hold a typed value");
    std::memcpy(&h.fp, bytes.data(), sizeof h.fp);
    std::memcpy(&n, bytes.data() + sizeof h.fp, sizeof n);
    h.size = sizeof h.fp + sizeof n + n + 2;
    if (bytes.size() < h.size) throw SerializationError("mproc: malformed message: truncated type header");
    h.name = bytes.substr(sizeof h.fp + sizeof n, n);
    std::uint16_t c = 0;
    std::memcpy(&c, bytes.data() + h.size - 2, sizeof c);
    h.fd_count = c;
    return h;
}
}  // namespace

Envelope check_envelope(std::string_view bytes, const std::type_info& t) {
    const Header h = parse_header(bytes);
    if (h.fp != type_fingerprint(t))
        throw SerializationError("mproc: message holds a " + demangle(std::string(h.name).c_str()) +
                                 ", but a " + type_name(t) + " was asked for");
    return Envelope{h.size, h.fd_count};
}

std::size_t envelope_fd_count(std::string_view bytes) { return parse_header(bytes).fd_count; }

void rethrow_as_serialization_error(const std::type_info& t) {
    try {
        throw;
    } catch (const std::exception& e) {
        throw SerializationError("mproc: malformed message for " + type_name(t) + ": " + e.what());
    }
}

namespace {
// The process's spare (spare_bytes.hpp). Never destroyed: messages are still sent at exit.
struct Spare {
    std::mutex mu;
    std::string bytes;
};
Spare& spare() {
    static Spare* const s = new Spare;
    return *s;
}

// The spare into `into` (which it replaces), when it holds at least n bytes and not more than
// twice that (a short message is not handed a gigabyte to keep). The spare keeps the size it
// was recycled with: bytes up to that size are taken without being written again.
bool take_spare(std::string& into, std::size_t n) {
    Spare& sp = spare();
    std::lock_guard g(sp.mu);
    if (sp.bytes.capacity() < n || sp.bytes.capacity() / 2 > n) return false;
    into.swap(sp.bytes);
    return true;
}
}  // namespace

void recycle_bytes(std::string&& s) noexcept {
    std::string kept = std::move(s);
    s.clear();
    if (kept.capacity() < kSpareFrom) return;
    // Its size stays (resize_for_overwrite then writes nothing below it); what the bytes hold
    // does not matter, and the kernel may have zeroed some by the time they are taken. So may
    // the terminator's page be: a zeroed terminator is still one. (The first byte is left out
    // of the range, as it was when the spare was kept empty and the terminator stood there.)
    platform::free_lazily(kept.data() + 1, kept.capacity() - 1);
    Spare& sp = spare();
    std::lock_guard g(sp.mu);
    sp.bytes.swap(kept);  // the one before is freed on the way out (after the unlock)
}

bool resize_from_held(std::string& s, std::size_t n) {
    if (n > s.capacity()) {
        std::string spare;
        if (n < kSpareFrom || !take_spare(spare, n)) return false;
        s.swap(spare);  // s's own bytes are of no use: they are freed
    }
    s.resize(n);  // writes only the bytes past the size it had
    return true;
}

void assign_bytes(std::string& s, std::string_view from) {
    if (from.size() > s.capacity()) {
        s.clear();  // nothing to keep: reserve_bytes copies nothing
        reserve_bytes(s, from.size());
    }
    s.assign(from);
}

void resize_for_overwrite(std::string& s, std::size_t n) {
    if (resize_from_held(s, n)) return;
    s.clear();  // nothing to keep: reserve_bytes copies nothing
    reserve_bytes(s, n);
    s.resize(n);
}

void reserve_bytes(std::string& s, std::size_t n) {
    if (n <= s.capacity()) return;
    n = std::max(n, 2 * s.capacity());
    constexpr std::size_t kHugeFrom = std::size_t{8} << 20;
    if (n < kHugeFrom) return s.reserve(n);
    // A new string, advised while still untouched, then the old bytes copied in: reserve() on
    // s itself would copy them before the advice could come. Its size rounded up to whole huge
    // pages, so that the next message a few bytes longer fits it when it is the spare.
    constexpr std::size_t kHuge = std::size_t{2} << 20;
    n = (n + kHuge - 1) & ~(kHuge - 1);
    std::string grown;
    if (n >= kSpareFrom && take_spare(grown, n)) grown.clear();
    if (grown.capacity() < n) {
        grown.reserve(n);
        platform::advise_huge_pages(grown.data(), n);
    }
    grown.append(s);
    s.swap(grown);
}

OutputArchive::~OutputArchive() = default;
InputArchive::~InputArchive() = default;

void InputArchive::truncated(std::size_t needed, std::size_t left) {
    throw SerializationError("mproc: message truncated: " + std::to_string(needed) + " more bytes needed, " +
                             std::to_string(left) + " left");
}

void InputArchive::bad_length(std::uint64_t n, std::size_t left) {
    throw SerializationError("mproc: malformed message: a length of " + std::to_string(n) + " with " +
                             std::to_string(left) + " bytes left");
}

}  // namespace mproc::detail

template class cereal::OutputArchive<mproc::detail::OutputArchive, cereal::AllowEmptyClassElision>;
template class cereal::InputArchive<mproc::detail::InputArchive, cereal::AllowEmptyClassElision>;
