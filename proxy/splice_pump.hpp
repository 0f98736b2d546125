// The zero-copy way of moving bytes one way: socket -> pipe -> socket with
// splice(2); they never enter user space.
#pragma once

#include "proxy/pipe_pool.hpp"
#include "proxy/pump.hpp"

namespace castellan::proxy {

// Same contract as pump() (EOF passed on as a shutdown, errors cancel both
// directions, bytes counted, activity stamped), without a user-space buffer. The
// pipe is borrowed from the worker's pool at the first byte and given back when
// the direction ends. With `readable_now` the first splice is tried before
// waiting (pump() hands a bulk transfer over in the middle of it).
boost::asio::awaitable<PumpEnd> splice_pump(boost::asio::ip::tcp::socket& from, boost::asio::ip::tcp::socket& to,
                                            std::uint64_t& bytes, Activity& activity, PipePool& pipes,
                                            bool readable_now = false);

}  // namespace castellan::proxy
