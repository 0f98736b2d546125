// Both directions of one connection, awaited as one operation by the session.
#pragma once

#include "proxy/pump.hpp"

#include <boost/asio/async_result.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <cstdint>
#include <utility>

namespace castellan::proxy {

// Runs the two pumps of a connection and completes once both have ended. Two
// handler-driven pumps under one completion cost less per connection than two
// coroutines joined by `&&` (a parallel group, a spawned coroutine per side and
// their cancellation state), in CPU and in memory while the connection idles.
// Runs on the connection's worker thread; the session keeps it, and both
// sockets, alive until the operation completes.
class Transfer {
public:
    // `upload` counts the bytes from the client, `download` those to it.
    Transfer(StreamSide client, StreamSide backend, const PumpTools& tools, ByteSink upload = {},
             ByteSink download = {})
        : finished_(client.socket->get_executor()),
          join_(finished_),
          upload_(client, backend, activity_, tools, join_, upload),
          download_(backend, client, activity_, tools, join_, download) {}
    Transfer(const Transfer&) = delete;
    Transfer& operator=(const Transfer&) = delete;

    // Completes (with an error_code to ignore) when both directions have ended;
    // then upload_end() and download_end() say how.
    template <typename CompletionToken>
    auto async_run(CompletionToken&& token) {
        return boost::asio::async_initiate<CompletionToken, void(boost::system::error_code)>(
            [this](auto handler) {
                // The wait on a timer that never expires is the completion: the
                // reactor, not this object, holds the session's handler, so a
                // worker that is torn down destroys the session as usual.
                finished_.expires_at(boost::asio::steady_timer::time_point::max());
                finished_.async_wait(std::move(handler));
                // Download first: a client that already failed makes the upload
                // cancel both sockets at once, and the download must be waiting
                // by then to see it.
                download_.start(false);
                upload_.start(true);
            },
            token);
    }

    Activity& activity() { return activity_; }
    const PumpEnd& upload_end() const { return upload_.end(); }
    const PumpEnd& download_end() const { return download_.end(); }
    std::uint64_t bytes_in() const { return upload_.bytes(); }     // from the client
    std::uint64_t bytes_out() const { return download_.bytes(); }  // to the client

private:
    Activity activity_;
    // The second pump to end cancels this timer, which posts the completion:
    // the session never resumes (and destroys this object) inside a pump's
    // handler.
    boost::asio::steady_timer finished_;
    PumpJoin join_;
    Pump upload_;
    Pump download_;
};

}  // namespace castellan::proxy
