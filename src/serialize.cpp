// Type fingerprints and the message envelope.
#include <cxxabi.h>

#include <cstdlib>
#include <cstring>
#include <memory>

#include "mproc/serialize.hpp"

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

// Envelope: fingerprint (8 bytes), name length (2 bytes), mangled name, then the payload. The
// name is there so that a mismatch can name both types.
void write_envelope(std::string& out, const std::type_info& t) {
    const std::uint64_t fp = type_fingerprint(t);
    const char* name = t.name();
    const std::size_t len = std::strlen(name);
    const std::uint16_t n = static_cast<std::uint16_t>(len > 0xffff ? 0xffff : len);
    out.append(reinterpret_cast<const char*>(&fp), sizeof fp);
    out.append(reinterpret_cast<const char*>(&n), sizeof n);
    out.append(name, n);
}

std::size_t check_envelope(std::string_view bytes, const std::type_info& t) {
    std::uint64_t fp = 0;
    std::uint16_t n = 0;
    if (bytes.size() < sizeof fp + sizeof n)
        throw SerializationError("mproc: message of " + std::to_string(bytes.size()) +
                                 " bytes is too short to hold a typed value");
    std::memcpy(&fp, bytes.data(), sizeof fp);
    std::memcpy(&n, bytes.data() + sizeof fp, sizeof n);
    const std::size_t header = sizeof fp + sizeof n + n;
    if (bytes.size() < header)
        throw SerializationError("mproc: malformed message: truncated type header");
    if (fp != type_fingerprint(t)) {
        const std::string sent(bytes.substr(sizeof fp + sizeof n, n));
        throw SerializationError("mproc: message holds a " + demangle(sent.c_str()) +
                                 ", but a " + type_name(t) + " was asked for");
    }
    return header;
}

void rethrow_as_serialization_error(const std::type_info& t) {
    try {
        throw;
    } catch (const std::exception& e) {
        throw SerializationError("mproc: malformed message for " + type_name(t) + ": " + e.what());
    }
}

}  // namespace mproc::detail
