#include "persistence/client_key.hpp"
#include "persistence/round_robin.hpp"
#include "persistence/source_ip_table.hpp"
#include "scheduler_test_util.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <iostream>
#include <thread>
#include <vector>

using namespace castellan::persistence;
using namespace std::chrono_literals;
using castellan::persistence::test::Pool;
using time_point = SourceIpTable::time_point;

namespace {

// An arbitrary fixed start: the table never reads a clock, tests pass time in.
const time_point t0 = time_point{} + 1000h;

ClientKey client(int i) {
    const std::array<std::uint8_t, 4> address{10, static_cast<std::uint8_t>(i >> 16),
                                              static_cast<std::uint8_t>(i >> 8), static_cast<std::uint8_t>(i)};
    return client_key_from_v4(address);
}

}  // namespace

TEST_CASE("source_ip_table: find after acquire", "[persistence]") {
    SourceIpTable table(60s, 100);
    CHECK(table.timeout() == 60s);
    CHECK_FALSE(table.find(client(1), t0));
    CHECK(table.acquire(client(1), "cas1", t0));
    CHECK(table.find(client(1), t0) == "cas1");
    CHECK_FALSE(table.find(client(2), t0));
    CHECK(table.size() == 1);
}

TEST_CASE("source_ip_table: alive while open, however long", "[persistence]") {
    SourceIpTable table(60s, 100);
    table.acquire(client(1), "cas1", t0);
    table.acquire(client(1), "cas1", t0 + 1s);
    table.release(client(1), t0 + 2s);  // one of two closed
    CHECK(table.find(client(1), t0 + 48h) == "cas1");
    table.expire(t0 + 48h);
    CHECK(table.size() == 1);
}

TEST_CASE("source_ip_table: expires timeout after the last release", "[persistence]") {
    SourceIpTable table(60s, 100);
    table.acquire(client(1), "cas1", t0);
    table.acquire(client(1), "cas1", t0);
    table.release(client(1), t0 + 10s);
    table.release(client(1), t0 + 20s);  // the last one: 60 s from here
    CHECK(table.find(client(1), t0 + 79s) == "cas1");
    CHECK_FALSE(table.find(client(1), t0 + 80s));
    // A release with nothing open changes nothing.
    table.release(client(1), t0 + 70s);
    CHECK_FALSE(table.find(client(1), t0 + 80s));
}

TEST_CASE("source_ip_table: a new connection within the timeout keeps the entry", "[persistence]") {
    SourceIpTable table(60s, 100);
    table.acquire(client(1), "cas1", t0);
    table.release(client(1), t0 + 1s);
    table.acquire(client(1), "cas1", t0 + 50s);
    CHECK(table.find(client(1), t0 + 500s) == "cas1");
    table.release(client(1), t0 + 600s);
    CHECK(table.find(client(1), t0 + 659s) == "cas1");
    CHECK_FALSE(table.find(client(1), t0 + 660s));
}

TEST_CASE("source_ip_table: acquire to another server rebinds the client", "[persistence]") {
    SourceIpTable table(60s, 100);
    table.acquire(client(1), "cas1", t0);
    table.release(client(1), t0 + 1s);
    table.acquire(client(1), "cas2", t0 + 2s);  // cas1 failed: the session went to cas2
    CHECK(table.find(client(1), t0 + 3s) == "cas2");
    CHECK(table.size() == 1);

    // Rebinding with a connection still open keeps counting both.
    table.acquire(client(1), "cas3", t0 + 4s);
    table.release(client(1), t0 + 5s);
    CHECK(table.find(client(1), t0 + 500s) == "cas3");
    table.release(client(1), t0 + 501s);
    CHECK_FALSE(table.find(client(1), t0 + 561s));
}

TEST_CASE("source_ip_table: expire() drops expired entries and shrinks size", "[persistence]") {
    SourceIpTable table(60s, 100);
    for (int i = 0; i < 10; ++i) {
        table.acquire(client(i), "cas1", t0);
        if (i < 8) table.release(client(i), t0 + std::chrono::seconds(i));
    }
    CHECK(table.size() == 10);
    table.expire(t0 + 59s);
    CHECK(table.size() == 10);
    table.expire(t0 + 63s);  // released at 0..3 s have expired
    CHECK(table.size() == 6);
    table.expire(t0 + 24h);  // 8 and 9 are still open
    CHECK(table.size() == 2);
    CHECK(table.find(client(9), t0 + 24h) == "cas1");
}

TEST_CASE("source_ip_table: when full, the least recently released idle entry goes", "[persistence]") {
    SourceIpTable table(3600s, 3);
    table.acquire(client(1), "cas1", t0);
    table.acquire(client(2), "cas2", t0);
    table.acquire(client(3), "cas3", t0);
    table.release(client(2), t0 + 1s);
    table.release(client(1), t0 + 2s);
    // 3 still open; 2 released before 1.
    CHECK(table.acquire(client(4), "cas4", t0 + 3s));
    CHECK(table.size() == 3);
    CHECK_FALSE(table.find(client(2), t0 + 3s));
    CHECK(table.find(client(1), t0 + 3s) == "cas1");
    CHECK(table.acquire(client(5), "cas5", t0 + 4s));
    CHECK_FALSE(table.find(client(1), t0 + 4s));
    CHECK(table.find(client(3), t0 + 4s) == "cas3");
    CHECK(table.size() == 3);
}

TEST_CASE("source_ip_table: entries with open connections are never evicted", "[persistence]") {
    SourceIpTable table(3600s, 2);
    CHECK(table.acquire(client(1), "cas1", t0));
    CHECK(table.acquire(client(2), "cas2", t0));
    CHECK_FALSE(table.acquire(client(3), "cas3", t0));  // served, but not recorded
    CHECK_FALSE(table.find(client(3), t0));
    CHECK(table.find(client(1), t0) == "cas1");
    CHECK(table.find(client(2), t0) == "cas2");
    CHECK(table.size() == 2);
    // A recorded client's further connections are still counted.
    CHECK(table.acquire(client(1), "cas1", t0));
    // The uncounted client's release touches nothing.
    table.release(client(3), t0 + 1s);
    CHECK(table.size() == 2);
}

TEST_CASE("source_ip_table: an expired entry frees its room for a newcomer", "[persistence]") {
    SourceIpTable table(60s, 1);
    table.acquire(client(1), "cas1", t0);
    table.release(client(1), t0);
    CHECK(table.acquire(client(2), "cas2", t0 + 61s));
    CHECK(table.size() == 1);
    CHECK(table.find(client(2), t0 + 61s) == "cas2");
}

TEST_CASE("source_ip_table: a table of 0 entries records nothing", "[persistence]") {
    SourceIpTable table(60s, 0);
    CHECK_FALSE(table.acquire(client(1), "cas1", t0));
    CHECK_FALSE(table.find(client(1), t0));
    CHECK(table.size() == 0);
}

TEST_CASE("source_ip_table: a persistence group is one table shared by services", "[persistence]") {
    // Two services list the same machines in a different order: the table holds
    // the name, and each service finds its own index for it.
    SourceIpTable group(7200s, 1000);
    const std::vector<std::string> epm{"cas1", "cas2"};
    const std::vector<std::string> mailbox{"cas2", "cas1"};
    RoundRobinScheduler epm_scheduler(2);
    Pool pool(2);
    epm_scheduler.pick(pool.request());  // the next epm client goes to cas2
    const std::string chosen = epm[*epm_scheduler.pick(pool.request())];
    group.acquire(client(7), chosen, t0);

    auto found = group.find(client(7), t0 + 1s);
    REQUIRE(found);
    CHECK(*found == "cas2");
    CHECK(mailbox[0] == *found);  // the mailbox service sends it to its entry 0, cas2
}

TEST_CASE("source_ip_table: concurrent use stays bounded and consistent", "[persistence]") {
    constexpr int thread_count = 4;
    constexpr int clients_per_thread = 5000;

    SECTION("a large, sharded table") {
        SourceIpTable table(60s, 100000);
        std::atomic<int> lost{0};
        std::vector<std::thread> threads;
        for (int t = 0; t < thread_count; ++t) {
            threads.emplace_back([&, t] {
                const std::string server = "cas" + std::to_string(t);
                for (int round = 0; round < 3; ++round) {
                    for (int i = 0; i < clients_per_thread; ++i) {
                        const ClientKey key = client(t * clients_per_thread + i);
                        const time_point now = t0 + std::chrono::seconds(round);
                        if (!table.acquire(key, server, now)) ++lost;
                        if (table.find(key, now) != server) ++lost;
                        table.release(key, now);
                    }
                }
            });
        }
        for (auto& thread : threads) thread.join();
        CHECK(lost == 0);
        CHECK(table.size() == thread_count * clients_per_thread);
        table.expire(t0 + 2s + 60s);
        CHECK(table.size() == 0);
    }

    SECTION("a small table under constant eviction") {
        constexpr std::size_t bound = 64;
        SourceIpTable table(60s, bound);
        std::atomic<int> wrong{0};
        std::atomic<int> unrecorded{0};
        std::atomic<std::size_t> largest{0};
        std::vector<std::thread> threads;
        for (int t = 0; t < thread_count; ++t) {
            threads.emplace_back([&, t] {
                const std::string server = "cas" + std::to_string(t);
                for (int i = 0; i < clients_per_thread; ++i) {
                    // Each thread keeps 8 of its clients open at a time.
                    const ClientKey key = client(t * clients_per_thread + i);
                    const time_point now = t0 + std::chrono::milliseconds(i);
                    if (table.acquire(key, server, now)) {
                        if (table.find(key, now) != server) ++wrong;  // open: cannot be evicted
                    } else {
                        ++unrecorded;
                    }
                    if (i >= 8) table.release(client(t * clients_per_thread + i - 8), now);
                    std::size_t size = table.size();
                    std::size_t seen = largest.load();
                    while (size > seen && !largest.compare_exchange_weak(seen, size)) {
                    }
                }
            });
        }
        for (auto& thread : threads) thread.join();
        std::cout << "source_ip_table 4 threads, bound " << bound << ": largest size " << largest
                  << ", unrecorded " << unrecorded << "\n";
        CHECK(wrong == 0);
        CHECK(unrecorded == 0);  // 4 x 8 open < 64: there was always an idle entry to evict
        CHECK(largest <= bound);
        CHECK(table.size() <= bound);
    }
}

TEST_CASE("source-IP table: concurrent first connections of one client agree on a server", "[persistence]") {
    using namespace std::chrono_literals;
    castellan::persistence::SourceIpTable table(60s, 100);
    const auto now = std::chrono::steady_clock::time_point{} + 1h;
    castellan::persistence::ClientKey client{};
    client[15] = 7;
    // Two services picked different servers before either connected.
    CHECK(table.claim(client, "cas1", now) == "cas1");
    CHECK(table.claim(client, "cas2", now) == "cas1");
    CHECK(table.find(client, now) == std::optional<std::string>("cas1"));
    // A claim with no connection lives the timeout, then a new claim wins.
    CHECK_FALSE(table.find(client, now + 61s));
    CHECK(table.claim(client, "cas2", now + 61s) == "cas2");
    CHECK(table.size() == 1);
    // A connection on the claim keeps it past the timeout.
    CHECK(table.acquire(client, "cas2", now + 62s));
    CHECK(table.claim(client, "cas1", now + 200s) == "cas2");
    table.release(client, now + 200s);
    CHECK(table.find(client, now + 259s) == std::optional<std::string>("cas2"));
}

TEST_CASE("source_ip_table: lookup gives server, open count and expiry", "[persistence]") {
    SourceIpTable table(60s, 100);
    CHECK_FALSE(table.lookup(client(1), t0));
    table.acquire(client(1), "cas1", t0);
    table.acquire(client(1), "cas1", t0 + 1s);

    auto open = table.lookup(client(1), t0 + 2s);
    REQUIRE(open);
    CHECK(open->server == "cas1");
    CHECK(open->open_connections == 2);
    CHECK_FALSE(open->expires);  // no end while connections are open

    table.release(client(1), t0 + 3s);
    table.release(client(1), t0 + 10s);
    auto idle = table.lookup(client(1), t0 + 11s);
    REQUIRE(idle);
    CHECK(idle->server == "cas1");
    CHECK(idle->open_connections == 0);
    REQUIRE(idle->expires);
    CHECK(*idle->expires == t0 + 70s);
    CHECK(table.lookup(client(1), t0 + 69s));
    CHECK_FALSE(table.lookup(client(1), t0 + 70s));  // expired, though not yet dropped
    CHECK_FALSE(table.lookup(client(2), t0 + 11s));
}

TEST_CASE("source_ip_table: a claim without a connection shows its expiry", "[persistence]") {
    SourceIpTable table(60s, 100);
    table.claim(client(1), "cas2", t0);
    auto claimed = table.lookup(client(1), t0 + 1s);
    REQUIRE(claimed);
    CHECK(claimed->server == "cas2");
    CHECK(claimed->open_connections == 0);
    CHECK(claimed->expires == std::optional<time_point>(t0 + 60s));
}

TEST_CASE("source_ip_table: forget an idle entry", "[persistence]") {
    SourceIpTable table(60s, 100);
    table.acquire(client(1), "cas1", t0);
    table.release(client(1), t0 + 1s);
    CHECK(table.forget(client(1), t0 + 2s));
    CHECK_FALSE(table.find(client(1), t0 + 2s));
    CHECK_FALSE(table.lookup(client(1), t0 + 2s));
    CHECK(table.size() == 0);
    CHECK_FALSE(table.forget(client(1), t0 + 3s));  // nothing left
    // The next connection binds anew, and its accounting starts from scratch.
    CHECK(table.claim(client(1), "cas2", t0 + 4s) == "cas2");
    CHECK(table.acquire(client(1), "cas2", t0 + 4s));
    table.release(client(1), t0 + 5s);
    CHECK(table.find(client(1), t0 + 64s) == "cas2");
    CHECK_FALSE(table.find(client(1), t0 + 65s));
}

TEST_CASE("source_ip_table: forgetting an expired entry counts nothing", "[persistence]") {
    SourceIpTable table(60s, 100);
    table.acquire(client(1), "cas1", t0);
    table.release(client(1), t0);
    CHECK_FALSE(table.forget(client(1), t0 + 60s));
    CHECK(table.size() == 0);  // its memory is returned all the same
}

TEST_CASE("source_ip_table: forget with connections open unbinds, and keeps counting them", "[persistence]") {
    SourceIpTable table(60s, 100);
    table.acquire(client(1), "cas1", t0);
    table.acquire(client(1), "cas1", t0);
    CHECK(table.forget(client(1), t0 + 1s));
    CHECK_FALSE(table.find(client(1), t0 + 1s));
    CHECK_FALSE(table.lookup(client(1), t0 + 1s));
    CHECK_FALSE(table.forget(client(1), t0 + 1s));  // once is enough: counted once
    CHECK(table.size() == 1);                        // still holds the two open connections

    SECTION("the old connections close: nothing is resurrected") {
        table.release(client(1), t0 + 2s);
        table.release(client(1), t0 + 3s);
        CHECK_FALSE(table.find(client(1), t0 + 3s));
        CHECK(table.size() == 0);
        // More releases than acquires (none counted) change nothing.
        table.release(client(1), t0 + 4s);
        CHECK(table.size() == 0);
        CHECK_FALSE(table.lookup(client(1), t0 + 4s));
    }

    SECTION("a new connection binds afresh, the old ones close later") {
        // A group's second service agrees on the new choice.
        CHECK(table.claim(client(1), "cas2", t0 + 2s) == "cas2");
        CHECK(table.claim(client(1), "cas1", t0 + 2s) == "cas2");
        CHECK(table.acquire(client(1), "cas2", t0 + 2s));
        auto bound = table.lookup(client(1), t0 + 2s);
        REQUIRE(bound);
        CHECK(bound->server == "cas2");
        CHECK(bound->open_connections == 3);  // the client's two old ones and the new one
        // The two old connections (still on cas1) close: the new one keeps the entry.
        table.release(client(1), t0 + 3s);
        table.release(client(1), t0 + 4s);
        CHECK(table.find(client(1), t0 + 1000s) == "cas2");
        auto still = table.lookup(client(1), t0 + 1000s);
        REQUIRE(still);
        CHECK(still->open_connections == 1);
        CHECK_FALSE(still->expires);
        // Its close starts the timeout.
        table.release(client(1), t0 + 1000s);
        CHECK(table.find(client(1), t0 + 1059s) == "cas2");
        CHECK_FALSE(table.find(client(1), t0 + 1060s));
        table.expire(t0 + 1060s);
        CHECK(table.size() == 0);
    }

    SECTION("a new connection acquired without a claim binds it too") {
        CHECK(table.acquire(client(1), "cas2", t0 + 2s));
        CHECK(table.find(client(1), t0 + 2s) == "cas2");
        table.release(client(1), t0 + 3s);
        table.release(client(1), t0 + 3s);
        table.release(client(1), t0 + 3s);
        CHECK(table.find(client(1), t0 + 62s) == "cas2");
        CHECK_FALSE(table.find(client(1), t0 + 63s));
    }
}

TEST_CASE("source_ip_table: forget touches only its client", "[persistence]") {
    SourceIpTable table(60s, 100);
    table.acquire(client(1), "cas1", t0);
    table.acquire(client(2), "cas2", t0);
    table.release(client(2), t0);
    CHECK(table.forget(client(1), t0));
    CHECK(table.find(client(2), t0 + 1s) == "cas2");
    // An IPv4 client and the IPv6 address ::1 are different keys.
    std::array<std::uint8_t, 16> v6{};
    v6[15] = 1;
    CHECK_FALSE(table.forget(client_key_from_v6(v6), t0));
    CHECK(table.find(client(2), t0 + 1s) == "cas2");
}
