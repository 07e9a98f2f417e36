// SPDX-License-Identifier: GPL-2.0
//
// test-pager's --misbehave list: the ways a pager can fail the kernel.
#pragma once

#include <string>
#include <string_view>

namespace machvm {

struct Misbehavior {
    unsigned delay_ms = 0;    // delay:MS   sleep before every answer
    int error = 0;            // error[:ERRNO]  data_error for every request
    unsigned die_at = 0;      // die[:N]    exit at the Nth data request (1: first)
    unsigned flood_pages = 0; // flood[:PAGES]  unsolicited supplies around each request
    bool unasked = false; // unasked    supply pages that were not asked for, not those that were
    bool silent = false;  // silent     ready, then never answer a data request
    bool mute = false;    // mute       never answer anything, not even init

    bool any() const noexcept {
        return delay_ms || error || die_at || flood_pages || unasked || silent || mute;
    }
};

inline constexpr unsigned kDefaultFloodPages = 256;

// A comma-separated list, e.g. "delay:200,flood".  Throws UsageError.
Misbehavior parse_misbehavior(std::string_view spec);

// Back to the spec syntax, for logs ("" when well-behaved).
std::string to_string(const Misbehavior& m);

} // namespace machvm
