// SPDX-License-Identifier: GPL-2.0
//
// UringFileReader: reads several ranges of a file with one io_uring
// submission (pread(2) if io_uring is unavailable).  One per thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include <machvm/result.hpp>

namespace machvm {

class UringFileReader {
  public:
    struct Op {
        std::uint64_t offset = 0;
        std::span<std::byte> buf;
    };

    // Never throws for a missing io_uring: it falls back to pread(2).
    explicit UringFileReader(unsigned entries = 16);
    UringFileReader(const UringFileReader&) = delete;
    UringFileReader& operator=(const UringFileReader&) = delete;
    ~UringFileReader();

    // Fills every op's buffer from `fd` at its offset; bytes past the end
    // of the file are zero.  The first error wins.
    Result<void> read(int fd, std::span<const Op> ops) noexcept;

    bool uses_uring() const noexcept { return ring_ != nullptr; }

  private:
    struct Ring;
    Result<void> read_uring(int fd, std::span<const Op> ops) noexcept;
    std::unique_ptr<Ring> ring_;
    unsigned entries_;
};

} // namespace machvm
