// src/auth.hpp: the HMAC primitives of Python's connection handshake (OpenSSL libcrypto).
#pragma once

#include <string>
#include <string_view>

namespace mproc::detail {
// Python's digest names: md5, sha256, sha384, sha3_256, sha3_384.
bool hmac_digest_allowed(std::string_view python_name) noexcept;
std::string hmac(std::string_view python_name, std::string_view key, std::string_view message);
bool constant_time_equal(std::string_view a, std::string_view b) noexcept;
}  // namespace mproc::detail
