// SPDX-License-Identifier: GPL-2.0
//
// FillSpec: what machvm-map writes (--write) or expects (--verify):
//   zero          every byte 0
//   pattern       the test pattern (see pattern.hpp)
//   byte:N        every byte N (0-255, decimal or 0x hex)
//   text:STRING   STRING repeated: object byte X is STRING[X % length]
// Contents are a function of the object offset, so mappings at different
// offsets agree.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace machvm {

struct FillSpec {
    enum class Kind { Zero, Pattern, Byte, Text };
    Kind kind = Kind::Zero;
    std::uint8_t byte = 0;
    std::string text;
};

// Throws UsageError naming `option`.
FillSpec parse_fill_spec(std::string_view option, std::string_view spec);

// Writes the contents of object bytes [offset, offset + out.size()).
void fill(const FillSpec& spec, std::uint64_t offset, std::span<std::byte> out) noexcept;

// The first object offset whose byte differs from the spec, or nullopt.
std::optional<std::uint64_t> find_mismatch(const FillSpec& spec, std::uint64_t offset,
                                           std::span<const std::byte> data) noexcept;

// The byte the spec puts at object offset `offset`.
std::byte expected_byte(const FillSpec& spec, std::uint64_t offset) noexcept;

} // namespace machvm
