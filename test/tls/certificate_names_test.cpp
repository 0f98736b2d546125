#include "tls/certificate_names.hpp"

#include <catch2/catch.hpp>

using castellan::tls::choose_certificate;
using castellan::tls::dns_name_matches;

TEST_CASE("certificate names: exact names match whatever their case, a trailing dot ignored", "[tls]") {
    CHECK(dns_name_matches("mail.contoso.com", "mail.contoso.com"));
    CHECK(dns_name_matches("Mail.Contoso.COM", "mail.contoso.com"));
    CHECK(dns_name_matches("mail.contoso.com", "MAIL.contoso.com."));
    CHECK_FALSE(dns_name_matches("mail.contoso.com", "autodiscover.contoso.com"));
    CHECK_FALSE(dns_name_matches("mail.contoso.com", "mail.contoso.com.evil"));
    CHECK_FALSE(dns_name_matches("mail.contoso.com", ""));
    CHECK_FALSE(dns_name_matches("", "mail.contoso.com"));
}

TEST_CASE("certificate names: a wildcard stands for exactly one left-most label", "[tls]") {
    CHECK(dns_name_matches("*.contoso.com", "mail.contoso.com"));
    CHECK(dns_name_matches("*.Contoso.com", "AUTODISCOVER.contoso.com"));
    CHECK_FALSE(dns_name_matches("*.contoso.com", "contoso.com"));
    CHECK_FALSE(dns_name_matches("*.contoso.com", "a.b.contoso.com"));
    CHECK_FALSE(dns_name_matches("*.contoso.com", ".contoso.com"));
    CHECK_FALSE(dns_name_matches("*.contoso.com", "mail.fabrikam.com"));
}

TEST_CASE("certificate names: partial, inner and top-level wildcards cover nothing", "[tls]") {
    CHECK_FALSE(dns_name_matches("*.com", "contoso.com"));
    CHECK_FALSE(dns_name_matches("m*.contoso.com", "mail.contoso.com"));
    CHECK_FALSE(dns_name_matches("mail.*.com", "mail.contoso.com"));
    CHECK_FALSE(dns_name_matches("*.*.com", "a.contoso.com"));
    CHECK_FALSE(dns_name_matches("*", "mail"));
    // A literal star in the host is no wildcard.
    CHECK_FALSE(dns_name_matches("mail.contoso.com", "*.contoso.com"));
}

TEST_CASE("certificate names: the first certificate is the default", "[tls]") {
    const std::vector<std::vector<std::string>> names = {{"a.test"}, {"b.test", "www.b.test"}};
    CHECK(choose_certificate(names, "") == 0);
    CHECK(choose_certificate(names, "unknown.test") == 0);
    CHECK(choose_certificate(names, "a.test") == 0);
    CHECK(choose_certificate(names, "b.test") == 1);
    CHECK(choose_certificate(names, "WWW.B.TEST.") == 1);
    CHECK(choose_certificate({}, "b.test") == 0);
}

TEST_CASE("certificate names: an exact name wins over an earlier wildcard, else the first wildcard", "[tls]") {
    const std::vector<std::vector<std::string>> names = {
        {"a.test"}, {"*.contoso.com"}, {"mail.contoso.com"}, {"*.contoso.com", "contoso.com"}};
    CHECK(choose_certificate(names, "mail.contoso.com") == 2);
    CHECK(choose_certificate(names, "owa.contoso.com") == 1);
    CHECK(choose_certificate(names, "contoso.com") == 3);
    CHECK(choose_certificate(names, "a.b.contoso.com") == 0);
}
