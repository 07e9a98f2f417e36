// SPDX-License-Identifier: GPL-2.0
//
// Command-line parsing shared by the pagers and tools: an argument reader
// that throws UsageError with a message fit for the user, number and size
// parsers, and the options every pager takes.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <linux/machvm.h>
#include <machvm/result.hpp>

namespace machvm {

// A bad command line; the message says what and where.  Exit status 2.
class UsageError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

// Decimal or 0x-hex, no sign.  EINVAL / ERANGE.
Result<std::uint64_t> parse_uint(std::string_view s) noexcept;
// parse_uint with an optional binary suffix: K, M, G, T (x 1024^n), upper
// or lower case, optionally followed by "B" or "iB" ("64M", "2GiB").
Result<std::uint64_t> parse_size(std::string_view s) noexcept;
// "r", "rw", "rx", "rwx", ... (any order, no repeats) or "none": PROT_*.
Result<std::uint32_t> parse_prot(std::string_view s) noexcept;
// "none", "call", "delay": MACHVM_COPY_*.
Result<std::uint8_t> parse_copy_strategy(std::string_view s) noexcept;

// Reads argv left to right.  Options are "--name VALUE", "--name=VALUE" or
// "-x VALUE"; "--" ends the options.
class ArgReader {
  public:
    ArgReader(int argc, char* const* argv); // skips argv[0]
    explicit ArgReader(std::vector<std::string> args);

    bool done() const noexcept { return pos_ >= args_.size(); }
    const std::string& peek() const; // requires !done()
    // The current argument is an option (not a positional, not after "--").
    bool at_option() const noexcept;

    // Consumes the current argument if it is this flag.
    bool flag(std::string_view long_name, std::string_view short_name = {});
    // Consumes the current argument (and its value) if it is this option.
    // Throws UsageError if the value is missing.
    std::optional<std::string> value(std::string_view long_name, std::string_view short_name = {});
    // Consumes a positional argument.
    std::string positional();
    // Consumes everything left, verbatim.
    std::vector<std::string> rest();
    // Throws UsageError for the current argument.
    [[noreturn]] void unknown() const;

  private:
    std::vector<std::string> args_;
    std::size_t pos_ = 0;
    bool end_of_options_ = false;
};

// Checked conversions of an option's value; UsageError names the option.
std::uint64_t uint_arg(std::string_view option, std::string_view value, std::uint64_t min,
                       std::uint64_t max);
std::uint64_t size_arg(std::string_view option, std::string_view value);

enum class Transport { Auto, Uring, Blocking };

// The options every pager takes (see kPagerOptionsHelp).
struct PagerOptions {
    std::string socket_path;            // --socket PATH
    std::vector<std::string> exec_argv; // --exec CMD ARGS...
    Transport transport = Transport::Auto;
    unsigned threads = 1;
    unsigned depth = 16;
    machvm_attr attr{0, MACHVM_COPY_DELAY, 1, 0};
    std::uint32_t max_prot = 3; // PROT_READ | PROT_WRITE
    bool verbose = false;
};

// Consumes one common pager option at the reader's position; false if the
// current argument is not one.
bool parse_pager_option(ArgReader& args, PagerOptions& opts);
// Consumes "--readahead SIZE" (at most 64M) into `bytes`, for the pagers
// that read ahead; false if the current argument is not it.
bool parse_readahead_option(ArgReader& args, std::uint64_t& bytes);
// Checks the combination (--socket or --exec given, ...); UsageError.
void validate_pager_options(const PagerOptions& opts);

// The OPTIONS entries for the common options, man-page style.
extern const char kPagerOptionsHelp[];
// The EXIT STATUS section shared by the pagers: the list of statuses,
// then (after any statuses of the pager's own) when a pager exits.
extern const char kPagerExitHelp[];
extern const char kPagerLifetimeHelp[];

// Print a pager's --help: its own head (NAME ... DESCRIPTION), the shared
// OPTIONS, EXIT STATUS with the pager's extra lines, the shared lifetime
// text, then its own tail (EXAMPLES ...).
void print_pager_help(const char* head, const char* exit_extra, const char* tail);

// A pager's parts of its --help (print_pager_help's arguments).
struct PagerHelp {
    const char* head;
    const char* exit_extra;
    const char* tail;
};

// Reads a pager's command line into `opts`, argument by argument:
// --help/-h prints `help` and makes it return false (exit 0 then); else
// `own` may consume the argument (returns true if it did: the pager's
// own options and positionals), else parse_pager_option; anything else
// is a UsageError.  At the end `check` (the pager's own checks, which
// come first), then validate_pager_options.
bool parse_pager_args(int argc, char* const* argv, const PagerHelp& help, PagerOptions& opts,
                      const std::function<bool(ArgReader&)>& own = {},
                      const std::function<void()>& check = {});

// Exit statuses.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

// For `catch (...)` in main: prints "prog: message" (with a hint for a
// missing module) and returns the exit status: 2 for UsageError, else 1.
int report_exception(const char* prog) noexcept;

} // namespace machvm
