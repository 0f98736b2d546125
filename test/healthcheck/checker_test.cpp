// run_check against tiny real servers that each test starts itself on 127.0.0.1,
// port 0, in the same io_context as the check: every test is hermetic, bounded by
// io_context::run_for, and takes well under a second.
#include "healthcheck/checker.hpp"
#include "healthcheck/response_parsers.hpp"
#include "tls/upstream_tls.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <exception>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <unistd.h>

using castellan::conf::HealthCheck;
using castellan::conf::HealthCheckKind;
using castellan::healthcheck::build_http_check_request;
using castellan::healthcheck::CheckContext;
using castellan::healthcheck::CheckResult;
using castellan::healthcheck::run_check;

namespace {

namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;

constexpr auto use = net::as_tuple(net::use_awaitable);

// A listening socket on 127.0.0.1 and a port the kernel chose.
tcp::acceptor listen_on_loopback(net::io_context& io) {
    return tcp::acceptor(io, tcp::endpoint(net::ip::address_v4::loopback(), 0));
}

HealthCheck check_of(HealthCheckKind type, int timeout_ms = 1000) {
    HealthCheck check;
    check.type = type;
    check.timeout_ms = timeout_ms;
    return check;
}

struct CheckRun {
    std::optional<CheckResult> result;
    std::chrono::milliseconds wall{0};  // from the start of the check to its result
};

// Runs one check to its end, and the test's servers until they finish too.
CheckRun run_one_check(net::io_context& io, const HealthCheck& check, const tcp::endpoint& endpoint,
                       const CheckContext& context) {
    CheckRun run;
    const auto started = std::chrono::steady_clock::now();
    net::co_spawn(io, run_check(check, endpoint, context), [&run, started](std::exception_ptr error, CheckResult r) {
        run.wall = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
        if (!error) run.result = std::move(r);
    });
    io.run_for(3s);
    return run;
}

// Reads from `stream` until `text` ends with `terminator` (or the peer stops).
template <typename Stream>
net::awaitable<void> read_until(Stream& stream, std::string& text, std::string_view terminator) {
    char chunk[1024];
    while (text.find(terminator) == std::string::npos) {
        auto [error, got] = co_await stream.async_read_some(net::buffer(chunk), use);
        text.append(chunk, got);
        if (error) co_return;
    }
}

// An HTTP real server for one connection: reads the request head, answers
// `response` and closes.
net::awaitable<void> serve_http_once(tcp::acceptor& acceptor, std::string response, std::string& request) {
    auto [error, socket] = co_await acceptor.async_accept(use);
    if (error) co_return;
    co_await read_until(socket, request, "\r\n\r\n");
    co_await net::async_write(socket, net::buffer(response), use);
}

// Accepts and then says nothing until the check gives up and closes.
net::awaitable<void> serve_silence(tcp::acceptor& acceptor, bool& saw_close) {
    auto [error, socket] = co_await acceptor.async_accept(use);
    if (error) co_return;
    std::string ignored;
    co_await read_until(socket, ignored, "never sent");
    saw_close = true;
}

// Accepts and closes at once, before any byte.
net::awaitable<void> serve_close(tcp::acceptor& acceptor) {
    auto [error, socket] = co_await acceptor.async_accept(use);
    (void)error;
}

// Speaks first (`text`), then reads until the client closes.
net::awaitable<void> serve_greeting(tcp::acceptor& acceptor, std::string text) {
    auto [error, socket] = co_await acceptor.async_accept(use);
    if (error) co_return;
    auto [write_error, written] = co_await net::async_write(socket, net::buffer(text), use);
    if (write_error) co_return;
    std::string ignored;
    co_await read_until(socket, ignored, "never sent");
}

// An SMTP real server: sends `banner`, then records what the client says (QUIT)
// and answers 221.
net::awaitable<void> serve_smtp_once(tcp::acceptor& acceptor, std::string banner, std::string& said) {
    auto [error, socket] = co_await acceptor.async_accept(use);
    if (error) co_return;
    auto [write_error, written] = co_await net::async_write(socket, net::buffer(banner), use);
    if (write_error) co_return;
    co_await read_until(socket, said, "\r\n");
    if (said == "QUIT\r\n") co_await net::async_write(socket, net::buffer(std::string_view("221 bye\r\n")), use);
}

// --- a self-signed certificate for "localhost", made with OpenSSL at test time ---

struct TestCertificate {
    std::string cert_pem;
    std::string key_pem;
};

std::string bio_text(BIO* bio) {
    char* data = nullptr;
    const long size = BIO_get_mem_data(bio, &data);
    return std::string(data, static_cast<std::size_t>(size));
}

void add_extension(X509* cert, int nid, const char* value) {
    X509V3_CTX context;
    X509V3_set_ctx_nodb(&context);
    X509V3_set_ctx(&context, cert, cert, nullptr, nullptr, 0);
    X509_EXTENSION* extension = X509V3_EXT_conf_nid(nullptr, &context, nid, value);
    REQUIRE(extension != nullptr);
    X509_add_ext(cert, extension, -1);
    X509_EXTENSION_free(extension);
}

TestCertificate make_self_signed_localhost() {
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_EC_gen("P-256"), EVP_PKEY_free);
    REQUIRE(key != nullptr);
    std::unique_ptr<X509, decltype(&X509_free)> cert(X509_new(), X509_free);
    REQUIRE(cert != nullptr);
    X509_set_version(cert.get(), 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), 24 * 3600);
    X509_set_pubkey(cert.get(), key.get());
    X509_NAME* name = X509_get_subject_name(cert.get());
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("localhost"), -1, -1,
                               0);
    X509_set_issuer_name(cert.get(), name);
    add_extension(cert.get(), NID_basic_constraints, "critical,CA:TRUE");
    add_extension(cert.get(), NID_subject_alt_name, "DNS:localhost");
    REQUIRE(X509_sign(cert.get(), key.get(), EVP_sha256()) > 0);

    std::unique_ptr<BIO, decltype(&BIO_free)> cert_bio(BIO_new(BIO_s_mem()), BIO_free);
    std::unique_ptr<BIO, decltype(&BIO_free)> key_bio(BIO_new(BIO_s_mem()), BIO_free);
    REQUIRE(PEM_write_bio_X509(cert_bio.get(), cert.get()) == 1);
    REQUIRE(PEM_write_bio_PrivateKey(key_bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) == 1);
    return {bio_text(cert_bio.get()), bio_text(key_bio.get())};
}

const TestCertificate& localhost_certificate() {
    static const TestCertificate certificate = make_self_signed_localhost();
    return certificate;
}

// A file in the temporary directory, removed with this object.
struct TempFile {
    explicit TempFile(std::string_view stem, std::string_view text)
        : path(std::filesystem::temp_directory_path() /
               ("castellan-checker-test-" + std::to_string(::getpid()) + "-" + std::string(stem))) {
        std::ofstream(path) << text;
    }
    ~TempFile() {
        std::error_code ignored;
        std::filesystem::remove(path, ignored);
    }
    TempFile(const TempFile&) = delete;
    TempFile& operator=(const TempFile&) = delete;
    std::filesystem::path path;
};

ssl::context make_server_tls_context() {
    ssl::context context(ssl::context::tls_server);
    const auto& certificate = localhost_certificate();
    context.use_certificate_chain(net::buffer(certificate.cert_pem));
    context.use_private_key(net::buffer(certificate.key_pem), ssl::context::pem);
    return context;
}

// What the https real server saw of one connection.
struct TlsSeen {
    bool handshake_ok = false;
    std::string sni;
    std::string request;
};

net::awaitable<void> serve_https_once(tcp::acceptor& acceptor, ssl::context& context, std::string response,
                                      TlsSeen& seen) {
    auto [error, socket] = co_await acceptor.async_accept(use);
    if (error) co_return;
    ssl::stream<tcp::socket> stream(std::move(socket), context);
    auto [handshake_error] = co_await stream.async_handshake(ssl::stream_base::server, use);
    if (handshake_error) co_return;
    seen.handshake_ok = true;
    if (const char* name = SSL_get_servername(stream.native_handle(), TLSEXT_NAMETYPE_host_name)) seen.sni = name;
    co_await read_until(stream, seen.request, "\r\n\r\n");
    co_await net::async_write(stream, net::buffer(response), use);
}

std::shared_ptr<const castellan::tls::UpstreamTls> client_tls(bool verify, const std::optional<std::string>& ca) {
    std::string error;
    std::shared_ptr<const castellan::tls::UpstreamTls> context = castellan::tls::UpstreamTls::make(verify, ca, error);
    INFO(error);
    REQUIRE(context != nullptr);
    return context;
}

CheckContext plain_context(const tcp::endpoint& endpoint) {
    CheckContext context;
    context.host = endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
    return context;
}

}  // namespace

TEST_CASE("checker: type none passes without a connection", "[healthcheck]") {
    net::io_context io;
    auto run = run_one_check(io, check_of(HealthCheckKind::none), tcp::endpoint(net::ip::address_v4::loopback(), 1),
                             {});
    REQUIRE(run.result);
    CHECK(run.result->ok);
    CHECK(run.result->detail == "no check");
}

TEST_CASE("checker: tcp passes on a listening port", "[healthcheck]") {
    net::io_context io;
    auto acceptor = listen_on_loopback(io);  // the kernel completes the handshake from its backlog
    const auto endpoint = acceptor.local_endpoint();
    auto run = run_one_check(io, check_of(HealthCheckKind::tcp), endpoint, plain_context(endpoint));
    REQUIRE(run.result);
    CHECK(run.result->ok);
    CHECK(run.result->detail == "connected");
    CHECK(run.result->latency < 1000ms);
}

TEST_CASE("checker: tcp fails with connect refused on a closed port", "[healthcheck]") {
    net::io_context io;
    tcp::endpoint endpoint;
    {
        auto acceptor = listen_on_loopback(io);
        endpoint = acceptor.local_endpoint();
    }  // closed: nothing listens there now
    auto run = run_one_check(io, check_of(HealthCheckKind::tcp), endpoint, plain_context(endpoint));
    REQUIRE(run.result);
    CHECK_FALSE(run.result->ok);
    CHECK(run.result->detail == "connect refused");
}

TEST_CASE("checker: http passes on 200 and sends the check request", "[healthcheck]") {
    net::io_context io;
    auto acceptor = listen_on_loopback(io);
    const auto endpoint = acceptor.local_endpoint();
    std::string request;
    net::co_spawn(io, serve_http_once(acceptor, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", request),
                  net::detached);
    auto check = check_of(HealthCheckKind::http);
    check.path = "/owa/healthcheck.htm";
    CheckContext context = plain_context(endpoint);
    context.host = "mail.contoso.com";
    auto run = run_one_check(io, check, endpoint, context);
    REQUIRE(run.result);
    CHECK(run.result->ok);
    CHECK(run.result->detail == "status 200");
    CHECK(request == build_http_check_request(check, "mail.contoso.com"));
    CHECK(request.rfind("GET /owa/healthcheck.htm HTTP/1.1\r\nHost: mail.contoso.com\r\n", 0) == 0);
}

TEST_CASE("checker: http fails on 500 and passes on 401 with the default expect_status", "[healthcheck]") {
    struct Case {
        const char* response;
        bool ok;
        const char* detail;
    };
    const Case cases[] = {
        {"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n", false, "status 500"},
        {"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Negotiate\r\n\r\n", true, "status 401"},
        {"HTTP/1.1 302\r\nLocation: /owa/\r\n\r\n", true, "status 302"},
        {"HTTP/1.1 404 Not Found\r\n\r\n", false, "status 404"},
        {"HTTP/1.0 200 OK", true, "status 200"},  // the close ends the status line
        {"SSH-2.0-OpenSSH_9.2\r\n", false, "bad status line"},
        {"HTTP/1.1 abc\r\n\r\n", false, "bad status line"},
    };
    for (const auto& c : cases) {
        INFO(c.response);
        net::io_context io;
        auto acceptor = listen_on_loopback(io);
        const auto endpoint = acceptor.local_endpoint();
        std::string request;
        net::co_spawn(io, serve_http_once(acceptor, c.response, request), net::detached);
        auto run = run_one_check(io, check_of(HealthCheckKind::http), endpoint, plain_context(endpoint));
        REQUIRE(run.result);
        CHECK(run.result->ok == c.ok);
        CHECK(run.result->detail == c.detail);
    }
}

TEST_CASE("checker: http fails at the timeout when the server never answers", "[healthcheck]") {
    net::io_context io;
    auto acceptor = listen_on_loopback(io);
    const auto endpoint = acceptor.local_endpoint();
    bool saw_close = false;
    net::co_spawn(io, serve_silence(acceptor, saw_close), net::detached);
    auto run = run_one_check(io, check_of(HealthCheckKind::http, 300), endpoint, plain_context(endpoint));
    REQUIRE(run.result);
    CHECK_FALSE(run.result->ok);
    CHECK(run.result->detail == "timeout after 300 ms");
    CHECK(run.result->latency >= 290ms);
    CHECK(run.wall >= 290ms);
    CHECK(run.wall < 800ms);
    CHECK(saw_close);  // the check closed its connection when it gave up
}

TEST_CASE("checker: http fails when the server closes at once", "[healthcheck]") {
    net::io_context io;
    auto acceptor = listen_on_loopback(io);
    const auto endpoint = acceptor.local_endpoint();
    net::co_spawn(io, serve_close(acceptor), net::detached);
    auto run = run_one_check(io, check_of(HealthCheckKind::http), endpoint, plain_context(endpoint));
    REQUIRE(run.result);
    CHECK_FALSE(run.result->ok);
    // The request may cross the close (then the peer resets), or arrive after the FIN.
    const std::string& detail = run.result->detail;
    CHECK((detail == "connection closed" || detail == "connection reset" || detail.rfind("send failed", 0) == 0));
    CHECK(run.wall < 800ms);
}

TEST_CASE("checker: http fails with connection closed when the server reads and closes", "[healthcheck]") {
    net::io_context io;
    auto acceptor = listen_on_loopback(io);
    const auto endpoint = acceptor.local_endpoint();
    std::string request;
    net::co_spawn(io, serve_http_once(acceptor, "", request), net::detached);
    auto run = run_one_check(io, check_of(HealthCheckKind::http), endpoint, plain_context(endpoint));
    REQUIRE(run.result);
    CHECK_FALSE(run.result->ok);
    CHECK(run.result->detail == "connection closed");
}

TEST_CASE("checker: smtp passes on a 220 banner and says QUIT", "[healthcheck]") {
    net::io_context io;
    auto acceptor = listen_on_loopback(io);
    const auto endpoint = acceptor.local_endpoint();
    std::string said;
    net::co_spawn(io,
                  serve_smtp_once(acceptor, "220-cas1.contoso.com Microsoft ESMTP MAIL Service\r\n220 ready\r\n", said),
                  net::detached);
    auto run = run_one_check(io, check_of(HealthCheckKind::smtp), endpoint, plain_context(endpoint));
    REQUIRE(run.result);
    CHECK(run.result->ok);
    CHECK(run.result->detail == "banner 220");
    CHECK(said == "QUIT\r\n");
}

TEST_CASE("checker: smtp fails on a 554 banner", "[healthcheck]") {
    net::io_context io;
    auto acceptor = listen_on_loopback(io);
    const auto endpoint = acceptor.local_endpoint();
    std::string said;
    net::co_spawn(io, serve_smtp_once(acceptor, "554 no service\r\n", said), net::detached);
    auto run = run_one_check(io, check_of(HealthCheckKind::smtp), endpoint, plain_context(endpoint));
    REQUIRE(run.result);
    CHECK_FALSE(run.result->ok);
    CHECK(run.result->detail == "banner 554");
}

TEST_CASE("checker: smtp fails on garbage and at the timeout without a banner", "[healthcheck]") {
    SECTION("garbage") {
        net::io_context io;
        auto acceptor = listen_on_loopback(io);
        const auto endpoint = acceptor.local_endpoint();
        std::string said;
        net::co_spawn(io, serve_smtp_once(acceptor, "HTTP/1.1 400 Bad Request\r\n\r\n", said), net::detached);
        auto run = run_one_check(io, check_of(HealthCheckKind::smtp), endpoint, plain_context(endpoint));
        REQUIRE(run.result);
        CHECK_FALSE(run.result->ok);
        CHECK(run.result->detail == "bad banner");
    }
    SECTION("silence") {
        net::io_context io;
        auto acceptor = listen_on_loopback(io);
        const auto endpoint = acceptor.local_endpoint();
        bool saw_close = false;
        net::co_spawn(io, serve_silence(acceptor, saw_close), net::detached);
        auto run = run_one_check(io, check_of(HealthCheckKind::smtp, 200), endpoint, plain_context(endpoint));
        REQUIRE(run.result);
        CHECK_FALSE(run.result->ok);
        CHECK(run.result->detail == "timeout after 200 ms");
        CHECK(run.wall < 700ms);
    }
}

TEST_CASE("checker: https with a self-signed certificate", "[healthcheck]") {
    net::io_context io;
    auto acceptor = listen_on_loopback(io);
    const auto endpoint = acceptor.local_endpoint();
    ssl::context server_tls = make_server_tls_context();
    TlsSeen seen;
    net::co_spawn(io, serve_https_once(acceptor, server_tls, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", seen),
                  net::detached);

    auto check = check_of(HealthCheckKind::https);
    CheckContext context = plain_context(endpoint);

    SECTION("verify false accepts it and sends the SNI") {
        context.tls = client_tls(false, std::nullopt);
        context.sni = "localhost";
        auto run = run_one_check(io, check, endpoint, context);
        REQUIRE(run.result);
        CHECK(run.result->ok);
        CHECK(run.result->detail == "status 200");
        CHECK(seen.sni == "localhost");
        CHECK(seen.request == build_http_check_request(check, context.host));
    }
    SECTION("verify true against the certificate as CA, matching name") {
        TempFile ca("ca.pem", localhost_certificate().cert_pem);
        check.verify = true;
        context.tls = client_tls(true, ca.path.string());
        context.sni = "localhost";
        auto run = run_one_check(io, check, endpoint, context);
        REQUIRE(run.result);
        CHECK(run.result->ok);
        CHECK(run.result->detail == "status 200");
    }
    SECTION("verify true against the system CAs refuses it") {
        check.verify = true;
        context.tls = client_tls(true, std::nullopt);
        context.sni = "localhost";
        auto run = run_one_check(io, check, endpoint, context);
        REQUIRE(run.result);
        CHECK_FALSE(run.result->ok);
        CHECK_THAT(run.result->detail, Catch::StartsWith("TLS handshake failed: ") &&
                                           Catch::Contains("certificate verify failed"));
        CHECK_FALSE(seen.handshake_ok);
    }
    SECTION("verify true with the right CA but another name refuses it") {
        TempFile ca("ca-other.pem", localhost_certificate().cert_pem);
        check.verify = true;
        context.tls = client_tls(true, ca.path.string());
        context.sni = "mail.contoso.com";
        auto run = run_one_check(io, check, endpoint, context);
        REQUIRE(run.result);
        CHECK_FALSE(run.result->ok);
        CHECK_THAT(run.result->detail, Catch::StartsWith("TLS handshake failed: "));
    }
}

TEST_CASE("checker: https fails at the timeout when the server never handshakes", "[healthcheck]") {
    net::io_context io;
    auto acceptor = listen_on_loopback(io);
    const auto endpoint = acceptor.local_endpoint();
    bool saw_close = false;
    net::co_spawn(io, serve_silence(acceptor, saw_close), net::detached);
    CheckContext context = plain_context(endpoint);
    context.tls = client_tls(false, std::nullopt);
    auto run = run_one_check(io, check_of(HealthCheckKind::https, 200), endpoint, context);
    REQUIRE(run.result);
    CHECK_FALSE(run.result->ok);
    CHECK(run.result->detail == "timeout after 200 ms");
    CHECK(run.wall < 700ms);
    CHECK(saw_close);
}

TEST_CASE("checker: https against a plain HTTP server fails the handshake", "[healthcheck]") {
    net::io_context io;
    auto acceptor = listen_on_loopback(io);
    const auto endpoint = acceptor.local_endpoint();
    // Its answer to the ClientHello is not TLS.
    net::co_spawn(io, serve_greeting(acceptor, "HTTP/1.1 400 Bad Request\r\n\r\n"), net::detached);
    CheckContext context = plain_context(endpoint);
    context.tls = client_tls(false, std::nullopt);
    auto run = run_one_check(io, check_of(HealthCheckKind::https), endpoint, context);
    REQUIRE(run.result);
    CHECK_FALSE(run.result->ok);
    CHECK_THAT(run.result->detail, Catch::StartsWith("TLS handshake failed: "));
    CHECK(run.wall < 800ms);
}

TEST_CASE("tls client context: a missing or empty CA file is refused with a reason", "[healthcheck][tls]") {
    using castellan::tls::UpstreamTls;
    std::string error;
    CHECK(UpstreamTls::make(true, std::string("/nonexistent/ca.pem"), error) == nullptr);
    CHECK_THAT(error, Catch::Contains("/nonexistent/ca.pem"));

    TempFile garbage("garbage.pem", "not a certificate\n");
    error.clear();
    CHECK(UpstreamTls::make(false, garbage.path.string(), error) == nullptr);
    CHECK_FALSE(error.empty());

    error.clear();
    auto context = UpstreamTls::make(false, std::nullopt, error);
    REQUIRE(context != nullptr);
    CHECK(error.empty());
    CHECK(SSL_CTX_get_min_proto_version(context->native_handle()) == TLS1_2_VERSION);
    CHECK(SSL_CTX_get_verify_mode(context->native_handle()) == SSL_VERIFY_NONE);

    auto verifying = UpstreamTls::make(true, std::nullopt, error);
    REQUIRE(verifying != nullptr);
    CHECK(SSL_CTX_get_verify_mode(verifying->native_handle()) == SSL_VERIFY_PEER);
}
