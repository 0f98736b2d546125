#include "tls/hmac_sha256.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <stdexcept>
#include <string>

namespace castellan::tls {

std::array<std::uint8_t, 32> hmac_sha256(std::string_view key, std::string_view message) {
    std::array<std::uint8_t, 32> digest{};
    unsigned int size = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(message.data()),
         message.size(), digest.data(), &size);
    return digest;
}

std::string random_bytes(std::size_t size) {
    std::string bytes(size, '\0');
    if (RAND_bytes(reinterpret_cast<unsigned char*>(bytes.data()), static_cast<int>(size)) != 1) {
        throw std::runtime_error("no random bytes");
    }
    return bytes;
}

}  // namespace castellan::tls
