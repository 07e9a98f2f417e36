// SPDX-License-Identifier: GPL-2.0
//
// SequentialDetector: decides what a pager supplies ahead of a request.
//
// It follows a few access streams.  A request that starts where a stream's
// last request ended, or inside (or right at the end of) what was already
// supplied ahead for it, continues that stream: the window doubles (from
// min_window up to max_window) and the range just past what was supplied
// before is returned.  Any other request starts a new stream (replacing
// the least recently used one) and gets nothing ahead.  Not thread-safe.
#pragma once

#include <cstdint>
#include <vector>

namespace machvm {

class SequentialDetector {
  public:
    struct Config {
        std::uint64_t page_size = 4096;
        std::uint64_t min_window = 64 * 1024;   // first supply ahead, bytes
        std::uint64_t max_window = 1024 * 1024; // bound, bytes (0: never)
        unsigned streams = 8;                   // streams followed at once
    };
    struct Range {
        std::uint64_t offset = 0;
        std::uint64_t length = 0;
        bool empty() const noexcept { return length == 0; }
        std::uint64_t end() const noexcept { return offset + length; }
    };

    explicit SequentialDetector(const Config& config);

    // A request for [offset, offset + length) of an object of
    // `object_size` bytes.  Returns the page-aligned range to supply ahead
    // (empty when the access does not look sequential).
    Range on_request(std::uint64_t offset, std::uint64_t length,
                     std::uint64_t object_size) noexcept;

    // Forget every stream (e.g. after the object changed).
    void reset() noexcept;

    const Config& config() const noexcept { return config_; }

  private:
    struct Stream {
        std::uint64_t next = 0;      // end of the last request
        std::uint64_t ahead_end = 0; // end of what was supplied ahead
        std::uint64_t window = 0;    // current window; 0: not sequential yet
        std::uint64_t last_use = 0;  // for LRU replacement
        bool used = false;
    };

    Config config_;
    std::vector<Stream> streams_;
    std::uint64_t clock_ = 0;
};

} // namespace machvm
