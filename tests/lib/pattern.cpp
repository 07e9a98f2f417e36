// SPDX-License-Identifier: GPL-2.0
#include "pattern.hpp"

#include <bit>
#include <cstring>

namespace machvm {

namespace {
inline std::uint64_t to_le(std::uint64_t v) noexcept {
    if constexpr (std::endian::native == std::endian::little)
        return v;
    else
        return __builtin_bswap64(v);
}
} // namespace

void fill_pattern(std::uint64_t offset, std::span<std::byte> out) noexcept {
    std::size_t i = 0;
    const std::size_t n = out.size();
    while (i < n && ((offset + i) & 7))
        out[i] = pattern_byte(offset + i), ++i;
    for (; i + 8 <= n; i += 8) {
        std::uint64_t w = to_le(pattern_word(offset + i));
        std::memcpy(out.data() + i, &w, 8);
    }
    for (; i < n; ++i)
        out[i] = pattern_byte(offset + i);
}

std::optional<std::uint64_t> find_pattern_mismatch(std::uint64_t offset,
                                                   std::span<const std::byte> data) noexcept {
    std::size_t i = 0;
    const std::size_t n = data.size();
    while (i < n && ((offset + i) & 7)) {
        if (data[i] != pattern_byte(offset + i))
            return offset + i;
        ++i;
    }
    for (; i + 8 <= n; i += 8) {
        std::uint64_t w = to_le(pattern_word(offset + i));
        if (std::memcmp(data.data() + i, &w, 8) != 0)
            break; // find the byte below
    }
    for (; i < n; ++i)
        if (data[i] != pattern_byte(offset + i))
            return offset + i;
    return std::nullopt;
}

std::optional<std::uint64_t> find_nonzero(std::uint64_t offset,
                                          std::span<const std::byte> data) noexcept {
    std::size_t i = 0;
    const std::size_t n = data.size();
    for (; i + 8 <= n; i += 8) {
        std::uint64_t w;
        std::memcpy(&w, data.data() + i, 8);
        if (w)
            break;
    }
    for (; i < n; ++i)
        if (data[i] != std::byte{0})
            return offset + i;
    return std::nullopt;
}

void Fnv1a64::update(std::span<const std::byte> data) noexcept {
    std::uint64_t h = h_;
    for (std::byte b : data) {
        h ^= static_cast<std::uint8_t>(b);
        h *= kPrime;
    }
    h_ = h;
}

void Fnv1a64::update_zeros(std::uint64_t n) noexcept {
    std::uint64_t h = h_;
    for (std::uint64_t i = 0; i < n; ++i)
        h *= kPrime; // h ^= 0 is a no-op
    h_ = h;
}

std::uint64_t fnv1a64(std::span<const std::byte> data) noexcept {
    Fnv1a64 f;
    f.update(data);
    return f.value();
}

} // namespace machvm
