#include "tls/socket_bio.hpp"

#include <openssl/bio.h>

#include <sys/socket.h>

#include <cerrno>

namespace castellan::tls {

namespace {

int fd_of(BIO* bio) { return static_cast<boost::asio::ip::tcp::socket*>(BIO_get_data(bio))->native_handle(); }

bool retriable(int error) { return error == EAGAIN || error == EWOULDBLOCK || error == EINTR; }

int bio_write(BIO* bio, const char* data, int size) {
    BIO_clear_retry_flags(bio);
    const ssize_t sent = ::send(fd_of(bio), data, static_cast<std::size_t>(size), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (sent < 0 && retriable(errno)) BIO_set_retry_write(bio);
    return static_cast<int>(sent);
}

int bio_read(BIO* bio, char* data, int size) {
    BIO_clear_retry_flags(bio);
    const ssize_t got = ::recv(fd_of(bio), data, static_cast<std::size_t>(size), MSG_DONTWAIT);
    if (got < 0 && retriable(errno)) BIO_set_retry_read(bio);
    if (got == 0) BIO_set_flags(bio, BIO_FLAGS_IN_EOF);  // lets OpenSSL tell EOF from an error
    return static_cast<int>(got);
}

long bio_control(BIO* bio, int command, long, void*) {
    switch (command) {
        case BIO_CTRL_FLUSH: return 1;  // nothing is held back
        case BIO_CTRL_EOF: return BIO_test_flags(bio, BIO_FLAGS_IN_EOF) != 0;
        default: return 0;
    }
}

int bio_create(BIO* bio) {
    BIO_set_init(bio, 1);
    return 1;
}

// One method table for the process, made on first use (thread-safe).
const BIO_METHOD* socket_method() {
    static const BIO_METHOD* method = [] {
        BIO_METHOD* made = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR,
                                        "castellan socket");
        if (!made) return static_cast<BIO_METHOD*>(nullptr);
        BIO_meth_set_write(made, bio_write);
        BIO_meth_set_read(made, bio_read);
        BIO_meth_set_ctrl(made, bio_control);
        BIO_meth_set_create(made, bio_create);
        return made;
    }();
    return method;
}

}  // namespace

bool attach_socket(SSL* ssl, boost::asio::ip::tcp::socket& socket) {
    const BIO_METHOD* method = socket_method();
    if (!method) return false;
    BIO* bio = BIO_new(method);
    if (!bio) return false;
    BIO_set_data(bio, &socket);
    SSL_set_bio(ssl, bio, bio);  // one BIO both ways: `ssl` owns it (one reference)
    return true;
}

}  // namespace castellan::tls
