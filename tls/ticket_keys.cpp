#include "tls/ticket_keys.hpp"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace castellan::tls {

namespace {

// Where attach() leaves the ring for the callback, on the context.
int ring_index() {
    static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
    return index;
}

bool set_mac_key(EVP_MAC_CTX* mac, std::array<unsigned char, 32>& key) {
    char digest[] = "SHA256";
    const OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, key.data(), key.size()),
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_end(),
    };
    return EVP_MAC_CTX_set_params(mac, params) == 1;
}

}  // namespace

TicketKeyRing::TicketKeyRing(std::chrono::seconds rotation, std::size_t kept)
    : rotation_(rotation), kept_(std::max<std::size_t>(kept, 2)) {
    std::lock_guard lock(mutex_);
    rotate_if_due(std::chrono::steady_clock::now());
}

void TicketKeyRing::attach(SSL_CTX* context) {
    SSL_CTX_set_ex_data(context, ring_index(), this);
    SSL_CTX_set_tlsext_ticket_key_evp_cb(context, &TicketKeyRing::on_ticket);
}

void TicketKeyRing::rotate_if_due(std::chrono::steady_clock::time_point now) {
    if (!keys_.empty() && now - keys_.front().made < rotation_) return;
    Key key;
    if (RAND_bytes(key.name.data(), static_cast<int>(key.name.size())) != 1 ||
        RAND_bytes(key.cipher_key.data(), static_cast<int>(key.cipher_key.size())) != 1 ||
        RAND_bytes(key.mac_key.data(), static_cast<int>(key.mac_key.size())) != 1) {
        // No randomness: keep the old key rather than issue guessable tickets.
        if (!keys_.empty()) return;
        throw std::runtime_error("no random bytes for TLS ticket keys");
    }
    key.made = now;
    keys_.push_front(key);
    while (keys_.size() > kept_) keys_.pop_back();
}

int TicketKeyRing::on_ticket(SSL* ssl, unsigned char* name, unsigned char* iv, EVP_CIPHER_CTX* cipher,
                             EVP_MAC_CTX* mac, int encrypt) {
    auto* ring = static_cast<TicketKeyRing*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ring_index()));
    if (!ring) return 0;  // no ticket issued; a presented one is ignored
    if (encrypt) return ring->encrypt(name, iv, cipher, mac);
    const int found = ring->decrypt(name, iv, cipher, mac);
    // TLS 1.3 clients use a ticket once (RFC 8446 C.4): a resumption must hand
    // out a new one, or the client's next connection is a full handshake.
    if (found == 1 && SSL_version(ssl) == TLS1_3_VERSION) return 2;
    return found;
}

int TicketKeyRing::encrypt(unsigned char* name, unsigned char* iv, EVP_CIPHER_CTX* cipher, EVP_MAC_CTX* mac) {
    std::lock_guard lock(mutex_);
    rotate_if_due(std::chrono::steady_clock::now());
    Key& key = keys_.front();
    if (RAND_bytes(iv, EVP_MAX_IV_LENGTH) != 1) return 0;
    std::memcpy(name, key.name.data(), key.name.size());
    if (EVP_EncryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, key.cipher_key.data(), iv) != 1) return -1;
    return set_mac_key(mac, key.mac_key) ? 1 : -1;
}

int TicketKeyRing::decrypt(const unsigned char* name, const unsigned char* iv, EVP_CIPHER_CTX* cipher,
                           EVP_MAC_CTX* mac) {
    std::lock_guard lock(mutex_);
    const auto now = std::chrono::steady_clock::now();
    rotate_if_due(now);
    for (std::size_t i = 0; i < keys_.size(); ++i) {
        Key& key = keys_[i];
        if (std::memcmp(name, key.name.data(), key.name.size()) != 0) continue;
        if (!set_mac_key(mac, key.mac_key)) return -1;
        if (EVP_DecryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, key.cipher_key.data(), iv) != 1) return -1;
        return i == 0 ? 1 : 2;  // 2: valid, but issue a ticket under the current key
    }
    return 0;  // unknown or retired key: a full handshake
}

}  // namespace castellan::tls
