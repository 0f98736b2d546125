#include "tls/certificate_names.hpp"

#include <algorithm>

namespace castellan::tls {

namespace {

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool equal_ignoring_case(std::string_view a, std::string_view b) {
    return a.size() == b.size() &&
           std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return lower(x) == lower(y); });
}

std::string_view without_trailing_dot(std::string_view name) {
    if (!name.empty() && name.back() == '.') name.remove_suffix(1);
    return name;
}

bool exact_match(std::string_view pattern, std::string_view host) {
    return pattern.find('*') == std::string_view::npos && equal_ignoring_case(pattern, host);
}

bool wildcard_match(std::string_view pattern, std::string_view host) {
    if (pattern.size() < 3 || pattern.substr(0, 2) != "*.") return false;
    const std::string_view suffix = pattern.substr(1);  // ".contoso.com"
    // The suffix must itself have two labels: "*.com" would cover a whole TLD.
    if (suffix.find('.', 1) == std::string_view::npos) return false;
    if (suffix.find('*') != std::string_view::npos) return false;
    if (host.size() <= suffix.size()) return false;
    const std::string_view label = host.substr(0, host.size() - suffix.size());
    if (label.find('.') != std::string_view::npos) return false;  // one label only
    return equal_ignoring_case(host.substr(label.size()), suffix);
}

}  // namespace

bool dns_name_matches(std::string_view pattern, std::string_view host) {
    host = without_trailing_dot(host);
    if (host.empty() || pattern.empty()) return false;
    return exact_match(pattern, host) || wildcard_match(pattern, host);
}

std::size_t choose_certificate(const std::vector<std::vector<std::string>>& names, std::string_view sni) {
    sni = without_trailing_dot(sni);
    if (sni.empty()) return 0;
    for (std::size_t i = 0; i < names.size(); ++i) {
        for (const auto& name : names[i]) {
            if (exact_match(name, sni)) return i;
        }
    }
    for (std::size_t i = 0; i < names.size(); ++i) {
        for (const auto& name : names[i]) {
            if (wildcard_match(name, sni)) return i;
        }
    }
    return 0;
}

}  // namespace castellan::tls
