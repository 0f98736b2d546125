// The keys that encrypt TLS session tickets: one ring for the whole process,
// shared by every worker and every virtual service, and kept across reloads, so
// that a ticket issued by one worker (or before a reload) resumes on any other.
#pragma once

#include <openssl/ssl.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>

namespace castellan::tls {

class TicketKeyRing {
public:
    // A new key every `rotation`; tickets under the `kept` - 1 keys before it are
    // still accepted (and replaced by one under the current key), so a ticket
    // lives between (kept - 1) and `kept` rotations.
    explicit TicketKeyRing(std::chrono::seconds rotation = std::chrono::hours(1), std::size_t kept = 3);
    TicketKeyRing(const TicketKeyRing&) = delete;
    TicketKeyRing& operator=(const TicketKeyRing&) = delete;

    // Makes `context` encrypt and decrypt its tickets with this ring. The ring
    // must outlive the context.
    void attach(SSL_CTX* context);

    // How long a session ticket may be used: the life of its key.
    std::chrono::seconds ticket_lifetime() const { return rotation_ * static_cast<long>(kept_ - 1); }

private:
    struct Key {
        std::array<unsigned char, 16> name{};
        std::array<unsigned char, 32> cipher_key{};  // AES-256-CBC
        std::array<unsigned char, 32> mac_key{};     // HMAC-SHA256
        std::chrono::steady_clock::time_point made;
    };
    static int on_ticket(SSL* ssl, unsigned char* name, unsigned char* iv, EVP_CIPHER_CTX* cipher, EVP_MAC_CTX* mac,
                         int encrypt);
    int encrypt(unsigned char* name, unsigned char* iv, EVP_CIPHER_CTX* cipher, EVP_MAC_CTX* mac);
    int decrypt(const unsigned char* name, const unsigned char* iv, EVP_CIPHER_CTX* cipher, EVP_MAC_CTX* mac);
    // Under mutex_: adds a fresh key in front when the current one is due.
    void rotate_if_due(std::chrono::steady_clock::time_point now);

    const std::chrono::seconds rotation_;
    const std::size_t kept_;
    // Taken once per handshake that issues or reads a ticket, never per byte.
    std::mutex mutex_;
    std::deque<Key> keys_;  // front: the current key
};

}  // namespace castellan::tls
