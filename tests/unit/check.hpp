// SPDX-License-Identifier: GPL-2.0
//
// A tiny check library for the host unit tests: every CHECK counts, a
// failed one prints where and what, and finish() gives the exit status.
#pragma once

#include <cstdio>
#include <string>

namespace unit {

inline int checks = 0;
inline int failures = 0;

inline void fail(const char* file, int line, const std::string& what) {
    ++failures;
    std::fprintf(stderr, "%s:%d: FAILED: %s\n", file, line, what.c_str());
}

inline int finish(const char* name) {
    std::printf("%s: %d checks, %d failed\n", name, checks, failures);
    return failures ? 1 : 0;
}

} // namespace unit

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        ++unit::checks;                                                                            \
        if (!(cond))                                                                               \
            unit::fail(__FILE__, __LINE__, "CHECK(" #cond ")");                                    \
    } while (0)

#define CHECK_EQ(a, b)                                                                             \
    do {                                                                                           \
        ++unit::checks;                                                                            \
        const auto& check_a_ = (a);                                                                \
        const auto& check_b_ = (b);                                                                \
        if (!(check_a_ == check_b_))                                                               \
            unit::fail(__FILE__, __LINE__,                                                         \
                       "CHECK_EQ(" #a ", " #b "): " + std::to_string(check_a_) +                   \
                           " != " + std::to_string(check_b_));                                     \
    } while (0)

#define CHECK_THROWS(expr, type)                                                                   \
    do {                                                                                           \
        ++unit::checks;                                                                            \
        bool check_thrown_ = false;                                                                \
        try {                                                                                      \
            (void)(expr);                                                                          \
        } catch (const type&) {                                                                    \
            check_thrown_ = true;                                                                  \
        } catch (...) {                                                                            \
        }                                                                                          \
        if (!check_thrown_)                                                                        \
            unit::fail(__FILE__, __LINE__, "CHECK_THROWS(" #expr ", " #type ")");                  \
    } while (0)
