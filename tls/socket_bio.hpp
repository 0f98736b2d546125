// The BIO through which castellan's TLS sessions read and write their socket.
#pragma once

#include <boost/asio/ip/tcp.hpp>

#include <openssl/ssl.h>

namespace castellan::tls {

// Attaches `socket` to `ssl` for reading and writing through a BIO that uses
// recv/send with MSG_DONTWAIT (and MSG_NOSIGNAL): the socket needs no
// O_NONBLOCK of its own (an ioctl per connection saved, as the fd pump does)
// and a reset peer raises no SIGPIPE. The BIO reads the socket's descriptor at
// each call, so a socket closed meanwhile (a deadline) fails cleanly instead of
// reaching a descriptor number reused by another connection. It does not close
// the socket, which must outlive `ssl`. False when OpenSSL cannot allocate it.
bool attach_socket(SSL* ssl, boost::asio::ip::tcp::socket& socket);

}  // namespace castellan::tls
