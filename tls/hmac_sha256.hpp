// HMAC-SHA256 with OpenSSL, for the persistence cookie's seal.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace castellan::tls {

std::array<std::uint8_t, 32> hmac_sha256(std::string_view key, std::string_view message);

// `size` bytes from OpenSSL's random generator (a secret when none is
// configured). Throws when there is no randomness.
std::string random_bytes(std::size_t size);

}  // namespace castellan::tls
