// SPDX-License-Identifier: GPL-2.0
#include <machvm/readahead.hpp>

#include <algorithm>

namespace machvm {

namespace {
std::uint64_t round_up(std::uint64_t v, std::uint64_t page) noexcept {
    return (v + page - 1) / page * page;
}
} // namespace

SequentialDetector::SequentialDetector(const Config& config) : config_(config) {
    if (config_.page_size == 0)
        config_.page_size = 4096;
    if (config_.streams == 0)
        config_.streams = 1;
    config_.max_window = round_up(config_.max_window, config_.page_size);
    config_.min_window =
        round_up(std::max<std::uint64_t>(config_.min_window, 1), config_.page_size);
    config_.min_window = std::min(config_.min_window, config_.max_window);
    streams_.resize(config_.streams);
}

void SequentialDetector::reset() noexcept {
    for (Stream& s : streams_)
        s = Stream{};
    clock_ = 0;
}

SequentialDetector::Range SequentialDetector::on_request(std::uint64_t offset, std::uint64_t length,
                                                         std::uint64_t object_size) noexcept {
    ++clock_;
    const std::uint64_t end = offset + length;
    Stream* match = nullptr;
    for (Stream& s : streams_) {
        if (s.used && offset >= s.next && offset <= std::max(s.ahead_end, s.next) &&
            (!match || s.next > match->next))
            match = &s;
    }
    if (!match) {
        Stream* victim = &streams_[0];
        for (Stream& s : streams_) {
            if (!s.used) {
                victim = &s;
                break;
            }
            if (s.last_use < victim->last_use)
                victim = &s;
        }
        *victim = Stream{end, end, 0, clock_, true};
        return {};
    }
    Stream& s = *match;
    s.last_use = clock_;
    s.next = end;
    if (config_.max_window == 0) {
        s.ahead_end = std::max(s.ahead_end, end);
        return {};
    }
    s.window = s.window ? std::min(s.window * 2, config_.max_window) : config_.min_window;
    std::uint64_t start = std::max(end, s.ahead_end);
    std::uint64_t stop = std::min(end + s.window, object_size);
    s.ahead_end = std::max({s.ahead_end, end, stop});
    if (start >= stop)
        return {};
    return {start, stop - start};
}

} // namespace machvm
