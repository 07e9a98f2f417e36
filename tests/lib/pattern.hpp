// SPDX-License-Identifier: GPL-2.0
//
// The test pattern served by test-pager, and the FNV-1a-64 checksum that
// machvm-map prints.
//
// Pattern: the 8-byte little-endian word at object offset W (a multiple of
// 8) is W ^ 0x9e3779b97f4a7c15; byte X of the object is byte (X % 8) of the
// word at X & ~7.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

namespace machvm {

inline constexpr std::uint64_t kPatternKey = 0x9e3779b97f4a7c15ULL;

constexpr std::uint64_t pattern_word(std::uint64_t word_offset) noexcept {
    return word_offset ^ kPatternKey;
}

// The pattern byte at object offset `offset`.
constexpr std::byte pattern_byte(std::uint64_t offset) noexcept {
    return static_cast<std::byte>(pattern_word(offset & ~std::uint64_t{7}) >> (8 * (offset & 7)));
}

// Fills `out` with the pattern of object bytes [offset, offset + out.size()).
void fill_pattern(std::uint64_t offset, std::span<std::byte> out) noexcept;

// The first object offset in [offset, offset + data.size()) whose byte is
// not the pattern's, or nullopt.
std::optional<std::uint64_t> find_pattern_mismatch(std::uint64_t offset,
                                                   std::span<const std::byte> data) noexcept;

// The first offset in data that is not zero, or nullopt.
std::optional<std::uint64_t> find_nonzero(std::uint64_t offset,
                                          std::span<const std::byte> data) noexcept;

class Fnv1a64 {
  public:
    static constexpr std::uint64_t kOffsetBasis = 0xcbf29ce484222325ULL;
    static constexpr std::uint64_t kPrime = 0x100000001b3ULL;

    void update(std::span<const std::byte> data) noexcept;
    // n zero bytes.
    void update_zeros(std::uint64_t n) noexcept;
    std::uint64_t value() const noexcept { return h_; }

  private:
    std::uint64_t h_ = kOffsetBasis;
};

std::uint64_t fnv1a64(std::span<const std::byte> data) noexcept;

} // namespace machvm
