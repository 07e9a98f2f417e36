// SPDX-License-Identifier: GPL-2.0
// The test pattern, FNV-1a-64 and fill specs.
#include <cstring>
#include <string_view>
#include <vector>

#include "fill.hpp"
#include "pattern.hpp"

#include "check.hpp"

using namespace machvm;

namespace {

std::span<const std::byte> bytes(std::string_view s) {
    return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

void test_pattern_words() {
    CHECK_EQ(pattern_word(0), kPatternKey);
    CHECK_EQ(pattern_word(8), kPatternKey ^ 8);
    CHECK_EQ(pattern_word(4096), kPatternKey ^ 4096);
    // Little-endian bytes of the word at 0.
    CHECK(pattern_byte(0) == std::byte{0x15});
    CHECK(pattern_byte(1) == std::byte{0x7c});
    CHECK(pattern_byte(7) == std::byte{0x9e});
    CHECK(pattern_byte(8) == std::byte{0x15 ^ 0x08});

    std::vector<std::byte> page(4096);
    fill_pattern(8192, page);
    std::uint64_t w;
    std::memcpy(&w, page.data() + 16, 8);
    CHECK_EQ(w, (8192 + 16) ^ kPatternKey); // host is little-endian in CI
    CHECK(!find_pattern_mismatch(8192, page));
}

void test_pattern_unaligned() {
    // Every start and length around a word boundary agrees with
    // pattern_byte.
    for (std::uint64_t start = 0; start < 24; ++start) {
        for (std::size_t len = 0; len < 40; ++len) {
            std::vector<std::byte> buf(len);
            fill_pattern(1000 + start, buf);
            bool ok = true;
            for (std::size_t i = 0; i < len; ++i)
                ok = ok && buf[i] == pattern_byte(1000 + start + i);
            CHECK(ok);
            CHECK(!find_pattern_mismatch(1000 + start, buf));
        }
    }
}

void test_pattern_mismatch() {
    std::vector<std::byte> buf(4096);
    fill_pattern(0, buf);
    buf[1234] ^= std::byte{1};
    auto bad = find_pattern_mismatch(0, buf);
    CHECK(bad && *bad == 1234);
    CHECK(find_pattern_mismatch(5, std::span(buf).subspan(5)) == bad);
    buf[1234] ^= std::byte{1};
    buf[4095] = ~buf[4095];
    bad = find_pattern_mismatch(0, buf);
    CHECK(bad && *bad == 4095);
    // Zeros are not the pattern, and the pattern is not zeros.
    std::vector<std::byte> zeros(64);
    CHECK(find_pattern_mismatch(0, zeros) == std::optional<std::uint64_t>(0));
    CHECK(!find_nonzero(0, zeros));
    zeros[63] = std::byte{1};
    CHECK(find_nonzero(100, zeros) == std::optional<std::uint64_t>(163));
}

void test_fnv() {
    // Reference values of FNV-1a 64.
    CHECK_EQ(fnv1a64({}), 0xcbf29ce484222325ULL);
    CHECK_EQ(fnv1a64(bytes("a")), 0xaf63dc4c8601ec8cULL);
    CHECK_EQ(fnv1a64(bytes("foobar")), 0x85944171f73967e8ULL);
    Fnv1a64 f;
    f.update(bytes("foo"));
    f.update(bytes("bar"));
    CHECK_EQ(f.value(), 0x85944171f73967e8ULL);
    // update_zeros is update with a buffer of zeros.
    std::vector<std::byte> z(5000);
    Fnv1a64 a, b;
    a.update(bytes("x"));
    a.update(z);
    b.update(bytes("x"));
    b.update_zeros(z.size());
    CHECK_EQ(a.value(), b.value());
}

void test_fill() {
    std::vector<std::byte> buf(100);
    FillSpec t;
    t.kind = FillSpec::Kind::Text;
    t.text = "abc";
    fill(t, 10, buf); // object byte 10 is "abc"[10 % 3] = 'b'
    CHECK(buf[0] == std::byte{'b'});
    CHECK(buf[1] == std::byte{'c'});
    CHECK(buf[2] == std::byte{'a'});
    CHECK(!find_mismatch(t, 10, buf));
    CHECK(find_mismatch(t, 11, buf) == std::optional<std::uint64_t>(11));

    FillSpec b;
    b.kind = FillSpec::Kind::Byte;
    b.byte = 0x5a;
    fill(b, 0, buf);
    CHECK(buf[99] == std::byte{0x5a});
    CHECK(!find_mismatch(b, 7, buf));

    FillSpec p;
    p.kind = FillSpec::Kind::Pattern;
    fill(p, 24, buf);
    CHECK(!find_pattern_mismatch(24, buf));
    CHECK(expected_byte(p, 24) == pattern_byte(24));

    FillSpec zero;
    fill(zero, 0, buf);
    CHECK(!find_mismatch(zero, 0, buf));
    CHECK(find_mismatch(p, 0, buf).has_value());
}

} // namespace

int main() {
    test_pattern_words();
    test_pattern_unaligned();
    test_pattern_mismatch();
    test_fnv();
    test_fill();
    return unit::finish("pattern_test");
}
