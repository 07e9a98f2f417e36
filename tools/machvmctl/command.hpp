// SPDX-License-Identifier: GPL-2.0
//
// machvmctl's command line: the subcommands and their options parsed into a
// Command, the manual (help.cpp), and the exit status of a failed
// operation.  The host unit tests (tests/unit/machvmctl_test.cpp) check
// them; main.cpp runs the commands over libmachvm's AdminClient.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <machvm/admin.hpp>
#include <machvm/cli.hpp>

namespace machvm {

namespace ctl {

// Exit statuses beyond kExitOk, kExitFailure and kExitUsage (cli.hpp).
inline constexpr int kExitNoModule = 3;   // the genl family is not registered
inline constexpr int kExitPermission = 4; // EPERM, EACCES
inline constexpr int kExitNotFound = 5;   // ENOENT: no such object or swap store

enum class Sub {
    None,
    Help,
    Status,
    Objects,
    ObjectShow,
    ObjectDestroy,
    Stats,
    Events,
    SwapAdd,
    SwapRemove,
    SwapList,
    SwapShow,
    PageoutShow,
    PageoutSet,
    PageoutRun,
};

struct Command {
    Sub sub = Sub::None;
    bool json = false;
    bool help = false;      // print help_text(topic) and exit 0
    std::string topic;      // "", "status", "objects", "object", "object show", ...
    std::uint64_t name = 0; // object show/destroy
    std::optional<std::chrono::milliseconds> watch;   // stats --watch
    std::optional<std::uint64_t> count;               // stats, events --count
    std::optional<std::chrono::milliseconds> timeout; // events --timeout
    // swap add
    std::string path; // canonical_swap_path(swap_path_arg(PATH, cwd))
    std::uint64_t size = 0;
    std::int32_t prio = 0;
    std::uint32_t swap_id = 0;           // swap remove, swap show
    PageoutSettings pageout;             // pageout set (global)
    std::optional<std::uint64_t> object; // pageout set --object, run --object
    std::uint64_t object_limit = 0;      // pageout set --object NAME --limit
    PageoutRun run;                      // pageout run
};

// Parses machvmctl's arguments (without argv[0]) into `out`; throws
// UsageError.  out.topic names the subcommand reached so far even when it
// throws, for the "Try 'machvmctl TOPIC --help'" hint.
void parse_command(const std::vector<std::string>& args, Command& out);

// Seconds as "N" or "N.NNN" (at most millisecond precision) within
// [min, max]; UsageError naming `option` otherwise.
std::chrono::milliseconds seconds_arg(std::string_view option, std::string_view value,
                                      std::chrono::milliseconds min, std::chrono::milliseconds max);

// The manual of the tool (topic "") or of one subcommand; nullptr for an
// unknown topic.  "object show" and "object destroy" share "object"'s.
const char* help_text(std::string_view topic) noexcept;

// The exit status for a failed operation: kExitNoModule,
// kExitPermission, kExitNotFound or kExitFailure.
int exit_status(std::error_code ec) noexcept;
// The same for subcommand `sub`: for swap add, ENOENT is a missing
// directory of the path (kExitFailure), not a missing object.
int exit_status(std::error_code ec, Sub sub) noexcept;

// swap add's PATH: non-empty, no NUL, shorter than PATH_MAX; a relative
// one made absolute against `cwd`.  UsageError otherwise.
std::string swap_path_arg(std::string_view value, std::string_view cwd);
// An absolute swap add PATH with symbolic links, "." and ".." resolved
// (realpath(3); for a file still to be created, of its directory), so that
// one file always has one name; the path as given when that fails.
std::string canonical_swap_path(const std::string& path);
// swap add --size: bytes or K/M/G/T, a multiple of `page_size`, 0 (the
// current size) or at least 16 pages.  UsageError otherwise.
std::uint64_t swap_size_arg(std::string_view value, std::uint64_t page_size);
// A signed decimal within [min, max]; UsageError naming `option`.
std::int64_t int_arg(std::string_view option, std::string_view value, std::int64_t min,
                     std::int64_t max);

} // namespace ctl

} // namespace machvm
