#include "proxy/source_addresses.hpp"

namespace castellan::proxy {

SourceAddresses::SourceAddresses(const std::vector<std::string>& texts) {
    for (const auto& text : texts) {
        boost::system::error_code error;
        const address parsed = boost::asio::ip::make_address(text, error);
        if (error) continue;  // conf/ refuses what does not parse; nothing to use here
        (parsed.is_v6() ? v6_ : v4_).push_back(parsed);
    }
}

}  // namespace castellan::proxy
