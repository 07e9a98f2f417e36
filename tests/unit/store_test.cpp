// SPDX-License-Identifier: GPL-2.0
// CompressStore: round trips, same-filled and incompressible pages, stats,
// overwrite, erase; make_store's parsing of --store; StorePager's answers
// to data requests and returns, through a Reply without an endpoint.
#include <machvm/cli.hpp>
#include <machvm/store.hpp>

#include <cstring>
#include <random>
#include <vector>

#include "check.hpp"

using machvm::CompressStore;
using machvm::StoreGet;
using machvm::StorePut;

namespace {

constexpr std::size_t kPage = 4096;

std::vector<std::byte> page_of(int kind, std::uint64_t seed) {
    std::vector<std::byte> p(kPage);
    if (kind == 0) { // same-filled
        for (std::size_t i = 0; i < kPage; i += 8)
            std::memcpy(p.data() + i, &seed, 8);
    } else if (kind == 1) { // text
        const char t[] = "the quick brown fox jumps over the lazy machvm ";
        for (std::size_t i = 0; i < kPage; ++i)
            p[i] = static_cast<std::byte>(t[(i + seed) % (sizeof(t) - 1)]);
    } else { // noise
        std::mt19937_64 g(seed);
        for (std::size_t i = 0; i < kPage; i += 8) {
            const std::uint64_t v = g();
            std::memcpy(p.data() + i, &v, 8);
        }
    }
    return p;
}

int puts(CompressStore& s, std::uint64_t object, std::uint64_t offset,
         const std::vector<std::byte>& p) {
    StorePut put{object, offset, p};
    int calls = 0;
    s.put(std::span(&put, 1), [&](std::error_code ec) {
        CHECK(!ec);
        ++calls;
    });
    return calls;
}

bool get_eq(CompressStore& s, std::uint64_t object, std::uint64_t offset,
            const std::vector<std::byte>& want) {
    std::vector<std::byte> got(kPage);
    StoreGet g{object, offset, got, false};
    bool ok = false;
    s.get(std::span(&g, 1), [&](std::error_code ec) { ok = !ec; });
    return ok && g.found && got == want;
}

void test_round_trip_kinds_and_stats() {
    CompressStore s(3, kPage);
    CHECK(s.synchronous());
    for (std::uint64_t i = 0; i < 30; ++i)
        CHECK_EQ(puts(s, 1, i * kPage, page_of(static_cast<int>(i % 3), i)), 1);
    for (std::uint64_t i = 0; i < 30; ++i)
        CHECK(get_eq(s, 1, i * kPage, page_of(static_cast<int>(i % 3), i)));
    const machvm::StoreStats st = s.stats();
    CHECK_EQ(st.pages, 30u);
    CHECK_EQ(st.same_filled, 10u);
    CHECK_EQ(st.incompressible, 10u);
    CHECK_EQ(st.puts, 30u);
    CHECK_EQ(st.gets, 30u);
    // 10 raw pages, 10 words, 10 small text frames.
    CHECK(st.bytes_stored > 10 * kPage + 80);
    CHECK(st.bytes_stored < 10 * kPage + 80 + 10 * kPage / 4);
    CHECK(st.ratio() > 2.0);
    // A page nobody put is not found, and the batch still succeeds.
    std::vector<std::byte> buf(kPage);
    StoreGet miss{1, 999 * kPage, buf, true};
    bool done = false;
    s.get(std::span(&miss, 1), [&](std::error_code ec) { done = !ec; });
    CHECK(done);
    CHECK(!miss.found);
    // Objects are separate key spaces.
    StoreGet other{2, 0, buf, true};
    s.get(std::span(&other, 1), [](std::error_code) {});
    CHECK(!other.found);
}

void test_overwrite_and_erase() {
    CompressStore s(1, kPage);
    puts(s, 7, 0, page_of(2, 1));
    puts(s, 7, 0, page_of(0, 5)); // now same-filled
    puts(s, 8, 0, page_of(1, 2));
    CHECK(get_eq(s, 7, 0, page_of(0, 5)));
    machvm::StoreStats st = s.stats();
    CHECK_EQ(st.pages, 2u);
    CHECK_EQ(st.incompressible, 0u);
    CHECK_EQ(st.same_filled, 1u);
    bool done = false;
    s.erase(7, [&](std::error_code ec) { done = !ec; });
    CHECK(done);
    st = s.stats();
    CHECK_EQ(st.pages, 1u);
    CHECK_EQ(st.same_filled, 0u);
    CHECK(get_eq(s, 8, 0, page_of(1, 2)));
    s.erase(8, [](std::error_code) {});
    CHECK_EQ(s.stats().bytes_stored, 0u);
    CHECK(s.stats().ratio() == 1.0);
}

void test_make_store() {
    auto s = machvm::make_store("compress", kPage);
    CHECK(s->describe() == "compress:3");
    CHECK(machvm::make_store("compress:19", kPage)->describe() == "compress:19");
    CHECK(machvm::make_store("compress:-5", kPage)->describe() == "compress:-5");
    CHECK_THROWS(machvm::make_store("compress:0", kPage), machvm::UsageError);
    CHECK_THROWS(machvm::make_store("compress:99", kPage), machvm::UsageError);
    CHECK_THROWS(machvm::make_store("compress:x", kPage), machvm::UsageError);
    CHECK_THROWS(machvm::make_store("compress:", kPage), machvm::UsageError);
    CHECK_THROWS(machvm::make_store("redis", kPage), machvm::UsageError);
    const std::string j = machvm::format_store_stats(*s, true);
    CHECK(j.find("\"pages\":0") != std::string::npos);
    CHECK(j.find("\"ratio\":1.00") != std::string::npos);
}

// StorePager over a store, answering into a Reply with no endpoint: a
// request for pages the store lacks is data_unavailable, for pages it has
// data_supply; a return is put before its RETURN_DONE.
void test_store_pager_answers() {
    CompressStore s(3, kPage);
    machvm::StorePagerOptions o;
    o.page_size = kPage;
    machvm::StorePager pager(s, o);
    machvm_msg init{};
    init.type = MACHVM_MSG_INIT;
    init.object = 3;
    init.size = 64 * kPage;
    machvm::Reply r0;
    pager.on_init(init, r0);
    CHECK_EQ(r0.commands().size(), 1u);

    puts(s, 3, 2 * kPage, page_of(1, 9));
    machvm_msg req{};
    req.type = MACHVM_MSG_DATA_REQUEST;
    req.object = 3;
    req.offset = 0;
    req.length = 4 * kPage;
    machvm::Reply r1;
    pager.on_data_request(req, r1);
    // pages 0-1 unavailable, 2 supplied, 3 unavailable.
    const auto c = r1.commands();
    CHECK_EQ(c.size(), 3u);
    CHECK_EQ(c[0].type, static_cast<std::uint32_t>(MACHVM_CMD_DATA_UNAVAILABLE));
    CHECK_EQ(c[0].length, 2 * kPage);
    CHECK_EQ(c[1].type, static_cast<std::uint32_t>(MACHVM_CMD_DATA_SUPPLY));
    CHECK_EQ(c[1].offset, 2 * kPage);
    CHECK(std::memcmp(reinterpret_cast<const void*>(c[1].addr), page_of(1, 9).data(), kPage) == 0);
    CHECK_EQ(c[2].type, static_cast<std::uint32_t>(MACHVM_CMD_DATA_UNAVAILABLE));
    CHECK_EQ(c[2].offset, 3 * kPage);
    CHECK_EQ(pager.in_flight(), 0u);

    machvm_msg term{};
    term.type = MACHVM_MSG_TERMINATE;
    term.object = 3;
    pager.on_terminate(term, r1);
    CHECK_EQ(s.stats().pages, 0u);
}

} // namespace

int main() {
    test_round_trip_kinds_and_stats();
    test_overwrite_and_erase();
    test_make_store();
    test_store_pager_answers();
    return unit::finish("store_test");
}
