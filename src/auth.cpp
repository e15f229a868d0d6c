#include "auth.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <stdexcept>

#include "mproc/errors.hpp"

namespace mproc::detail {

namespace {
const EVP_MD* digest_named(std::string_view n) noexcept {
    if (n == "md5") return EVP_md5();
    if (n == "sha256") return EVP_sha256();
    if (n == "sha384") return EVP_sha384();
    if (n == "sha3_256") return EVP_sha3_256();
    if (n == "sha3_384") return EVP_sha3_384();
    return nullptr;
}
}  // namespace

bool hmac_digest_allowed(std::string_view python_name) noexcept { return digest_named(python_name) != nullptr; }

std::string hmac(std::string_view python_name, std::string_view key, std::string_view message) {
    const EVP_MD* md = digest_named(python_name);
    if (!md) throw AuthenticationError("mproc: unsupported digest " + std::string(python_name));
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (!HMAC(md, key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(message.data()),
              message.size(), out, &len))
        throw AuthenticationError("mproc: HMAC-" + std::string(python_name) + " failed");
    return std::string(reinterpret_cast<const char*>(out), len);
}

bool constant_time_equal(std::string_view a, std::string_view b) noexcept {
    return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace mproc::detail
