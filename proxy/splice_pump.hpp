// The zero-copy variant of pump(): bytes go socket -> pipe -> socket with
// splice(2) and never enter user space.
#pragma once

#include "proxy/pump.hpp"

namespace castellan::proxy {

// Same contract as pump() (EOF passed on as a shutdown, errors cancel both
// directions, bytes counted, activity stamped), without a user-space buffer. The
// pipe is made at the first byte and lives until the direction ends.
boost::asio::awaitable<PumpEnd> splice_pump(boost::asio::ip::tcp::socket& from, boost::asio::ip::tcp::socket& to,
                                            std::uint64_t& bytes, Activity& activity);

}  // namespace castellan::proxy
