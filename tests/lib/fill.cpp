// SPDX-License-Identifier: GPL-2.0
#include "fill.hpp"

#include <cstring>

#include <machvm/cli.hpp>

#include "pattern.hpp"

namespace machvm {

FillSpec parse_fill_spec(std::string_view option, std::string_view spec) {
    FillSpec f;
    const std::string opt(option);
    if (spec == "zero") {
        f.kind = FillSpec::Kind::Zero;
    } else if (spec == "pattern") {
        f.kind = FillSpec::Kind::Pattern;
    } else if (spec.substr(0, 5) == "byte:") {
        f.kind = FillSpec::Kind::Byte;
        f.byte = static_cast<std::uint8_t>(uint_arg(opt + " byte", spec.substr(5), 0, 255));
    } else if (spec.substr(0, 5) == "text:") {
        f.kind = FillSpec::Kind::Text;
        f.text = std::string(spec.substr(5));
        if (f.text.empty())
            throw UsageError(opt + ": text: needs at least one character");
    } else {
        throw UsageError(opt + ": '" + std::string(spec) +
                         "' is not zero, pattern, byte:N or text:STRING");
    }
    return f;
}

std::byte expected_byte(const FillSpec& spec, std::uint64_t offset) noexcept {
    switch (spec.kind) {
    case FillSpec::Kind::Zero:
        return std::byte{0};
    case FillSpec::Kind::Pattern:
        return pattern_byte(offset);
    case FillSpec::Kind::Byte:
        return std::byte{spec.byte};
    case FillSpec::Kind::Text:
        return static_cast<std::byte>(spec.text[offset % spec.text.size()]);
    }
    return std::byte{0};
}

void fill(const FillSpec& spec, std::uint64_t offset, std::span<std::byte> out) noexcept {
    switch (spec.kind) {
    case FillSpec::Kind::Zero:
        std::memset(out.data(), 0, out.size());
        return;
    case FillSpec::Kind::Pattern:
        fill_pattern(offset, out);
        return;
    case FillSpec::Kind::Byte:
        std::memset(out.data(), spec.byte, out.size());
        return;
    case FillSpec::Kind::Text:
        for (std::size_t i = 0; i < out.size(); ++i)
            out[i] = static_cast<std::byte>(spec.text[(offset + i) % spec.text.size()]);
        return;
    }
}

std::optional<std::uint64_t> find_mismatch(const FillSpec& spec, std::uint64_t offset,
                                           std::span<const std::byte> data) noexcept {
    switch (spec.kind) {
    case FillSpec::Kind::Zero:
        return find_nonzero(offset, data);
    case FillSpec::Kind::Pattern:
        return find_pattern_mismatch(offset, data);
    case FillSpec::Kind::Byte:
    case FillSpec::Kind::Text:
        for (std::size_t i = 0; i < data.size(); ++i)
            if (data[i] != expected_byte(spec, offset + i))
                return offset + i;
        return std::nullopt;
    }
    return std::nullopt;
}

} // namespace machvm
