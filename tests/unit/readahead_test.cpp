// SPDX-License-Identifier: GPL-2.0
// SequentialDetector: what a pager supplies ahead of a request.
#include <machvm/readahead.hpp>

#include "check.hpp"

using machvm::SequentialDetector;

namespace {

constexpr std::uint64_t kPage = 4096;
constexpr std::uint64_t kK = 1024;
constexpr std::uint64_t kSize = 64 * 1024 * kK;

SequentialDetector::Config config(std::uint64_t min, std::uint64_t max, unsigned streams = 8) {
    SequentialDetector::Config c;
    c.page_size = kPage;
    c.min_window = min;
    c.max_window = max;
    c.streams = streams;
    return c;
}

void test_sequential_grows_and_is_bounded() {
    SequentialDetector d(config(64 * kK, 256 * kK));
    // The first request starts a stream: nothing ahead yet.
    CHECK(d.on_request(0, 64 * kK, kSize).empty());
    // The next one follows it: min_window after the request.
    auto r = d.on_request(64 * kK, 64 * kK, kSize);
    CHECK_EQ(r.offset, 128 * kK);
    CHECK_EQ(r.length, 64 * kK);
    // The next fault comes where the supplied pages end: window doubles,
    // and nothing already supplied is supplied again.
    r = d.on_request(192 * kK, 64 * kK, kSize);
    CHECK_EQ(r.offset, 256 * kK);
    CHECK_EQ(r.length, 128 * kK);
    r = d.on_request(384 * kK, 64 * kK, kSize);
    CHECK_EQ(r.offset, 448 * kK);
    CHECK_EQ(r.length, 256 * kK);
    // Bounded by max_window from now on.
    r = d.on_request(704 * kK, 64 * kK, kSize);
    CHECK_EQ(r.offset, 768 * kK);
    CHECK_EQ(r.length, 256 * kK);
}

void test_request_inside_supplied_window() {
    SequentialDetector d(config(64 * kK, 1024 * kK));
    CHECK(d.on_request(0, kPage, kSize).empty());
    auto r = d.on_request(kPage, kPage, kSize); // [2 pages, 2 pages + 64K)
    CHECK_EQ(r.offset, 2 * kPage);
    // A page inside what was supplied (evicted, say) still continues the
    // stream; only what lies past the old window end is new.
    r = d.on_request(10 * kPage, kPage, kSize);
    CHECK_EQ(r.offset, 2 * kPage + 64 * kK);
    CHECK_EQ(r.end(), 11 * kPage + 128 * kK);
}

void test_clipped_at_object_end() {
    const std::uint64_t size = 256 * kK;
    SequentialDetector d(config(64 * kK, 1024 * kK));
    CHECK(d.on_request(0, 64 * kK, size).empty());
    auto r = d.on_request(64 * kK, 64 * kK, size);
    CHECK_EQ(r.offset, 128 * kK);
    CHECK_EQ(r.length, 64 * kK);
    r = d.on_request(192 * kK, 64 * kK, size); // the last 64K: nothing after it
    CHECK(r.empty());
}

void test_random_gets_nothing() {
    SequentialDetector d(config(64 * kK, 1024 * kK));
    const std::uint64_t offs[] = {40, 3, 900, 17, 512, 5, 77, 1000, 200, 41 * 2};
    for (std::uint64_t p : offs)
        CHECK(d.on_request(p * kPage * 3, kPage, kSize).empty());
}

void test_backwards_gets_nothing() {
    SequentialDetector d(config(64 * kK, 1024 * kK));
    for (std::uint64_t p = 100; p > 90; --p)
        CHECK(d.on_request(p * kPage, kPage, kSize).empty());
}

void test_two_interleaved_streams() {
    SequentialDetector d(config(16 * kK, 64 * kK));
    const std::uint64_t a = 0, b = 32 * 1024 * kK;
    CHECK(d.on_request(a, kPage, kSize).empty());
    CHECK(d.on_request(b, kPage, kSize).empty());
    auto ra = d.on_request(a + kPage, kPage, kSize);
    auto rb = d.on_request(b + kPage, kPage, kSize);
    CHECK_EQ(ra.offset, a + 2 * kPage);
    CHECK_EQ(ra.length, 16 * kK);
    CHECK_EQ(rb.offset, b + 2 * kPage);
    CHECK_EQ(rb.length, 16 * kK);
}

void test_lru_replacement() {
    SequentialDetector d(config(16 * kK, 64 * kK, 1));
    CHECK(d.on_request(0, kPage, kSize).empty());
    CHECK(d.on_request(1024 * kK, kPage, kSize).empty());  // replaces stream 0
    CHECK(d.on_request(kPage, kPage, kSize).empty());      // stream 0 is forgotten
    CHECK(!d.on_request(2 * kPage, kPage, kSize).empty()); // but this follows it
}

void test_disabled_and_reset() {
    SequentialDetector off(config(64 * kK, 0));
    for (std::uint64_t p = 0; p < 10; ++p)
        CHECK(off.on_request(p * kPage, kPage, kSize).empty());

    SequentialDetector d(config(64 * kK, 128 * kK));
    CHECK(d.on_request(0, kPage, kSize).empty());
    CHECK(!d.on_request(kPage, kPage, kSize).empty());
    d.reset();
    CHECK(d.on_request(2 * kPage + 64 * kK, kPage, kSize).empty());
}

void test_config_rounding() {
    SequentialDetector d(config(1000, 5000)); // rounded up to pages
    CHECK_EQ(d.config().min_window, kPage);
    CHECK_EQ(d.config().max_window, 2 * kPage);
    CHECK(d.on_request(0, kPage, kSize).empty());
    auto r = d.on_request(kPage, kPage, kSize);
    CHECK_EQ(r.offset % kPage, 0u);
    CHECK_EQ(r.length % kPage, 0u);
}

} // namespace

int main() {
    test_sequential_grows_and_is_bounded();
    test_request_inside_supplied_window();
    test_clipped_at_object_end();
    test_random_gets_nothing();
    test_backwards_gets_nothing();
    test_two_interleaved_streams();
    test_lru_replacement();
    test_disabled_and_reset();
    test_config_rounding();
    return unit::finish("readahead_test");
}
