// SPDX-License-Identifier: GPL-2.0
#include "command.hpp"

#include <limits.h>
#include <stdlib.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>

#include <machvm/admin.hpp>

namespace machvm::ctl {

namespace {

std::uint64_t object_name_arg(std::string_view action, std::string_view v) {
    auto r = parse_uint(v);
    if (!r)
        throw UsageError("object " + std::string(action) + ": '" + std::string(v) +
                         "' is not an object name (a number, decimal or 0x-hex, as "
                         "'machvmctl objects' lists it)");
    return *r;
}

constexpr std::chrono::milliseconds kMaxWatch{86400 * 1000LL};
constexpr std::chrono::milliseconds kMaxTimeout{7 * 86400 * 1000LL};
constexpr std::uint64_t kMaxCount = std::uint64_t{1} << 62;
// Most pages any limit or target may name (2^52 pages of 4 KiB: 16 EiB).
constexpr std::uint64_t kMaxPages = std::uint64_t{1} << 52;

// A page count for a limit where 0 or "none" means no limit.
std::uint64_t limit_arg(std::string_view option, std::string_view v) {
    if (v == "none")
        return 0;
    auto r = parse_uint(v);
    if (!r || *r > kMaxPages)
        throw UsageError(std::string(option) + ": '" + std::string(v) +
                         "' is not a number of pages from 0 to " + std::to_string(kMaxPages) +
                         " or none");
    return *r;
}

std::uint64_t option_object_arg(std::string_view option, std::string_view v) {
    auto r = parse_uint(v);
    if (!r)
        throw UsageError(std::string(option) + ": '" + std::string(v) +
                         "' is not an object name (a number, decimal or 0x-hex, as "
                         "'machvmctl objects' lists it)");
    return *r;
}

} // namespace

std::int64_t int_arg(std::string_view option, std::string_view value, std::int64_t min,
                     std::int64_t max) {
    auto bad = [&]() {
        return UsageError(std::string(option) + ": '" + std::string(value) +
                          "' is not a number from " + std::to_string(min) + " to " +
                          std::to_string(max));
    };
    std::string_view digits = value;
    const bool neg = !digits.empty() && digits[0] == '-';
    if (neg)
        digits.remove_prefix(1);
    if (digits.empty() || digits.size() > 19)
        throw bad();
    std::uint64_t mag = 0;
    for (char c : digits) {
        if (c < '0' || c > '9')
            throw bad();
        mag = mag * 10 + static_cast<std::uint64_t>(c - '0');
    }
    // |min| and max fit in 2^63 and a 19-digit magnitude below 10^19 does too.
    if (neg) {
        if (mag > std::uint64_t{1} << 63)
            throw bad();
        const std::int64_t v =
            mag == std::uint64_t{1} << 63 ? INT64_MIN : -static_cast<std::int64_t>(mag);
        if (v < min || v > max)
            throw bad();
        return v;
    }
    if (mag > static_cast<std::uint64_t>(INT64_MAX) || static_cast<std::int64_t>(mag) < min ||
        static_cast<std::int64_t>(mag) > max)
        throw bad();
    return static_cast<std::int64_t>(mag);
}

std::string swap_path_arg(std::string_view value, std::string_view cwd) {
    if (value.empty())
        throw UsageError("swap add: empty PATH");
    if (value.find('\0') != std::string_view::npos)
        throw UsageError("swap add: PATH has a NUL byte");
    std::string path;
    if (value[0] == '/') {
        path = value;
    } else {
        if (cwd.empty() || cwd[0] != '/')
            throw UsageError("swap add: cannot make '" + std::string(value) +
                             "' absolute: the current directory is unknown");
        path = std::string(cwd);
        if (path.back() != '/')
            path += '/';
        path += value;
    }
    if (path.size() >= PATH_MAX)
        throw UsageError("swap add: PATH is longer than " + std::to_string(PATH_MAX - 1) +
                         " bytes");
    return path;
}

namespace {
struct FreeDeleter {
    void operator()(char* p) const noexcept { std::free(p); }
};

// realpath(3), or nullopt.
std::optional<std::string> real_path(const std::string& p) {
    std::unique_ptr<char, FreeDeleter> r(::realpath(p.c_str(), nullptr));
    if (!r)
        return std::nullopt;
    return std::string(r.get());
}
} // namespace

std::string canonical_swap_path(const std::string& path) {
    if (auto r = real_path(path))
        return *r;
    if (errno != ENOENT)
        return path;
    // A file to be created: its directory resolved, its name kept.
    const std::size_t slash = path.rfind('/');
    if (slash == std::string::npos)
        return path;
    const std::string base = path.substr(slash + 1);
    if (base.empty() || base == "." || base == "..")
        return path;
    auto dir = real_path(slash ? path.substr(0, slash) : std::string("/"));
    if (!dir)
        return path;
    return (*dir == "/" ? "" : *dir) + "/" + base;
}

std::uint64_t swap_size_arg(std::string_view value, std::uint64_t page_size) {
    const std::uint64_t size = size_arg("--size", value);
    if (size == 0)
        return 0;
    if (page_size && size % page_size)
        throw UsageError("--size: '" + std::string(value) +
                         "' is not a multiple of the page size (" + std::to_string(page_size) +
                         " bytes)");
    if (page_size && size / page_size < 16)
        throw UsageError("--size: '" + std::string(value) + "' is smaller than 16 pages (" +
                         std::to_string(16 * page_size) + " bytes)");
    return size;
}

std::chrono::milliseconds seconds_arg(std::string_view option, std::string_view value,
                                      std::chrono::milliseconds min,
                                      std::chrono::milliseconds max) {
    auto bad = [&]() -> UsageError {
        char lo[32], hi[32];
        std::snprintf(lo, sizeof(lo), "%g", static_cast<double>(min.count()) / 1000.0);
        std::snprintf(hi, sizeof(hi), "%g", static_cast<double>(max.count()) / 1000.0);
        return UsageError(std::string(option) + ": '" + std::string(value) +
                          "' is not a number of seconds from " + lo + " to " + hi +
                          " (at most 3 decimals)");
    };
    const std::size_t dot = value.find('.');
    std::string_view whole = value.substr(0, dot);
    std::string_view frac =
        dot == std::string_view::npos ? std::string_view() : value.substr(dot + 1);
    if (whole.empty() || whole.size() > 9 || (dot != std::string_view::npos && frac.empty()) ||
        frac.size() > 3)
        throw bad();
    std::int64_t ms = 0;
    for (char c : whole) {
        if (c < '0' || c > '9')
            throw bad();
        ms = ms * 10 + (c - '0');
    }
    ms *= 1000;
    std::int64_t scale = 100;
    for (char c : frac) {
        if (c < '0' || c > '9')
            throw bad();
        ms += (c - '0') * scale;
        scale /= 10;
    }
    const std::chrono::milliseconds r(ms);
    if (r < min || r > max)
        throw bad();
    return r;
}

namespace {

// The current argument is a positional one, or the "--" before one.
bool at_positional(const ArgReader& a) {
    return !a.done() && (!a.at_option() || a.peek() == "--");
}

void parse_strict(const std::vector<std::string>& args, Command& out) {
    out = Command{};
    ArgReader a(args);
    // --json and --help are taken anywhere; true if the current one was.
    auto common = [&]() {
        if (a.flag("--json")) {
            out.json = true;
            return true;
        }
        if (a.flag("--help", "-h")) {
            out.help = true;
            return true;
        }
        return false;
    };

    while (a.at_option()) {
        if (!common())
            a.unknown();
        if (out.help) {
            out.sub = Sub::Help;
            return;
        }
    }
    if (a.done())
        throw UsageError("missing subcommand: status, objects, object, stats, events, pageout, "
                         "swap or help");
    const std::string word = a.positional();

    if (word == "help") {
        out.sub = Sub::Help;
        out.help = true;
        std::vector<std::string> rest = a.rest();
        std::string topic;
        for (const auto& r : rest)
            topic += (topic.empty() ? "" : " ") + r;
        if (!help_text(topic))
            throw UsageError("help: no subcommand '" + topic + "'");
        out.topic = topic;
        return;
    }

    if (word == "status" || word == "objects") {
        out.sub = word == "status" ? Sub::Status : Sub::Objects;
        out.topic = word;
        while (!a.done()) {
            if (!common())
                a.unknown();
            if (out.help)
                return;
        }
        return;
    }

    if (word == "object") {
        out.topic = "object";
        std::string action;
        while (!a.done() && action.empty()) {
            if (common()) {
                if (out.help)
                    return;
            } else if (!at_positional(a)) {
                a.unknown();
            } else {
                action = a.positional();
            }
        }
        if (action.empty())
            throw UsageError("object: missing action: show NAME or destroy NAME");
        if (action != "show" && action != "destroy")
            throw UsageError("object: unknown action '" + action + "' (show or destroy)");
        out.sub = action == "show" ? Sub::ObjectShow : Sub::ObjectDestroy;
        out.topic = "object " + action;
        bool have_name = false;
        while (!a.done()) {
            if (common()) {
                if (out.help)
                    return;
            } else if (!at_positional(a) || have_name) {
                a.unknown();
            } else {
                out.name = object_name_arg(action, a.positional());
                have_name = true;
            }
        }
        if (!have_name)
            throw UsageError("object " + action + ": missing NAME");
        return;
    }

    if (word == "stats") {
        out.sub = Sub::Stats;
        out.topic = "stats";
        while (!a.done()) {
            if (common()) {
                if (out.help)
                    return;
            } else if (auto v = a.value("--watch")) {
                out.watch = seconds_arg("--watch", *v, std::chrono::milliseconds(100), kMaxWatch);
            } else if (auto v = a.value("--count")) {
                out.count = uint_arg("--count", *v, 1, kMaxCount);
            } else {
                a.unknown();
            }
        }
        if (out.count && !out.watch)
            out.watch = std::chrono::seconds(1);
        return;
    }

    if (word == "events") {
        out.sub = Sub::Events;
        out.topic = "events";
        while (!a.done()) {
            if (common()) {
                if (out.help)
                    return;
            } else if (auto v = a.value("--count")) {
                out.count = uint_arg("--count", *v, 1, kMaxCount);
            } else if (auto v = a.value("--timeout")) {
                out.timeout =
                    seconds_arg("--timeout", *v, std::chrono::milliseconds(1), kMaxTimeout);
            } else {
                a.unknown();
            }
        }
        return;
    }

    // The ACTION after "pageout" or "swap"; --json and --help may come
    // before it.  Empty if --help was seen.
    auto action_of = [&](const char* what, std::initializer_list<const char*> actions) {
        std::string list;
        for (const char* x : actions)
            list += std::string(list.empty() ? "" : ", ") + x;
        std::string action;
        while (!a.done() && action.empty()) {
            if (common()) {
                if (out.help)
                    return std::string();
            } else if (!at_positional(a)) {
                a.unknown();
            } else {
                action = a.positional();
            }
        }
        if (action.empty())
            throw UsageError(std::string(what) + ": missing action (" + list + ")");
        for (const char* x : actions)
            if (action == x) {
                out.topic = std::string(what) + " " + action;
                return action;
            }
        throw UsageError(std::string(what) + ": unknown action '" + action + "' (" + list + ")");
    };

    if (word == "pageout") {
        out.topic = "pageout";
        const std::string action = action_of("pageout", {"show", "set", "run"});
        if (out.help)
            return;
        std::optional<std::uint64_t> limit;
        if (action == "show")
            out.sub = Sub::PageoutShow;
        else if (action == "set")
            out.sub = Sub::PageoutSet;
        else
            out.sub = Sub::PageoutRun;
        while (!a.done()) {
            if (common()) {
                if (out.help)
                    return;
                continue;
            }
            if (out.sub == Sub::PageoutSet) {
                if (auto v = a.value("--limit")) {
                    limit = limit_arg("--limit", *v);
                } else if (auto v = a.value("--high")) {
                    out.pageout.high = static_cast<std::uint32_t>(uint_arg("--high", *v, 2, 100));
                } else if (auto v = a.value("--low")) {
                    out.pageout.low = static_cast<std::uint32_t>(uint_arg("--low", *v, 1, 99));
                } else if (auto v = a.value("--object-limit")) {
                    out.pageout.obj_limit = limit_arg("--object-limit", *v);
                } else if (auto v = a.value("--batch")) {
                    out.pageout.batch =
                        static_cast<std::uint32_t>(uint_arg("--batch", *v, 1, 65536));
                } else if (auto v = a.value("--interval-ms")) {
                    out.pageout.interval_ms =
                        static_cast<std::uint32_t>(uint_arg("--interval-ms", *v, 10, 60000));
                } else if (auto v = a.value("--object")) {
                    out.object = option_object_arg("--object", *v);
                } else {
                    a.unknown();
                }
            } else if (out.sub == Sub::PageoutRun) {
                if (auto v = a.value("--target")) {
                    out.run.target = uint_arg("--target", *v, 1, kMaxPages);
                } else if (auto v = a.value("--object")) {
                    out.run.object = option_object_arg("--object", *v);
                } else if (a.flag("--force")) {
                    out.run.force = true;
                } else {
                    a.unknown();
                }
            } else {
                a.unknown();
            }
        }
        if (out.sub != Sub::PageoutSet)
            return;
        if (out.object) {
            if (!out.pageout.empty())
                throw UsageError("pageout set: --object takes only --limit (the object's "
                                 "resident limit); set the global tunables without --object");
            if (!limit)
                throw UsageError("pageout set: --object NAME needs --limit PAGES");
            out.object_limit = *limit;
            return;
        }
        if (limit) {
            if (*limit < 16)
                throw UsageError("--limit: '" + std::to_string(*limit) +
                                 "' is below 16 pages (the least global resident limit)");
            out.pageout.limit = limit;
        }
        if (out.pageout.empty())
            throw UsageError("pageout set: nothing to set (--limit, --high, --low, "
                             "--object-limit, --batch, --interval-ms, or --object NAME "
                             "--limit PAGES)");
        if (out.pageout.high && out.pageout.low && *out.pageout.low >= *out.pageout.high)
            throw UsageError("pageout set: --low " + std::to_string(*out.pageout.low) +
                             " must be below --high " + std::to_string(*out.pageout.high));
        return;
    }

    if (word == "swap") {
        out.topic = "swap";
        const std::string action = action_of("swap", {"add", "remove", "list", "show"});
        if (out.help)
            return;
        out.sub = action == "add"      ? Sub::SwapAdd
                  : action == "remove" ? Sub::SwapRemove
                  : action == "show"   ? Sub::SwapShow
                                       : Sub::SwapList;
        bool have_arg = false;
        while (!a.done()) {
            if (common()) {
                if (out.help)
                    return;
            } else if (auto v = out.sub == Sub::SwapAdd ? a.value("--size") : std::nullopt) {
                const long ps = ::sysconf(_SC_PAGESIZE);
                out.size = swap_size_arg(*v, ps > 0 ? static_cast<std::uint64_t>(ps) : 0);
            } else if (auto v = out.sub == Sub::SwapAdd ? a.value("--prio") : std::nullopt) {
                out.prio = static_cast<std::int32_t>(int_arg("--prio", *v, INT32_MIN, INT32_MAX));
            } else if (out.sub != Sub::SwapList && at_positional(a) && !have_arg) {
                const std::string v = a.positional();
                if (out.sub == Sub::SwapAdd) {
                    std::string cwd;
                    if (v.empty() || v[0] != '/') {
                        std::vector<char> buf(PATH_MAX);
                        if (::getcwd(buf.data(), buf.size()))
                            cwd = buf.data();
                    }
                    out.path = canonical_swap_path(swap_path_arg(v, cwd));
                } else {
                    auto id = parse_uint(v);
                    if (!id || *id > UINT32_MAX)
                        throw UsageError("swap " + action + ": '" + v +
                                         "' is not a swap store ID (a number from 0 to " +
                                         std::to_string(UINT32_MAX) +
                                         ", as 'machvmctl swap list' shows it)");
                    out.swap_id = static_cast<std::uint32_t>(*id);
                }
                have_arg = true;
            } else {
                a.unknown();
            }
        }
        if (out.sub == Sub::SwapAdd && !have_arg)
            throw UsageError("swap add: missing PATH");
        if ((out.sub == Sub::SwapRemove || out.sub == Sub::SwapShow) && !have_arg)
            throw UsageError("swap " + action + ": missing ID (as 'machvmctl swap list' shows it)");
        return;
    }

    throw UsageError("unknown subcommand '" + word +
                     "' (status, objects, object, stats, events, pageout, swap or help)");
}

} // namespace

void parse_command(const std::vector<std::string>& args, Command& out) {
    try {
        parse_strict(args, out);
    } catch (const UsageError&) {
        // --help anywhere (before "--") wins over mistakes elsewhere: the
        // help of the subcommand reached, or of the tool.
        for (const auto& a : args) {
            if (a == "--")
                break;
            if (a == "--help" || a == "-h") {
                const std::string topic = help_text(out.topic) ? out.topic : "";
                out = Command{};
                out.sub = Sub::Help;
                out.help = true;
                out.topic = topic;
                return;
            }
        }
        throw;
    }
}

int exit_status(std::error_code ec) noexcept {
    if (!ec)
        return kExitOk;
    if (ec == AdminErrc::family_not_found)
        return kExitNoModule;
    if (ec == AdminErrc::group_not_found)
        return kExitFailure;
    if (ec == std::errc::operation_not_permitted || ec == std::errc::permission_denied)
        return kExitPermission;
    if (ec == std::errc::no_such_file_or_directory)
        return kExitNotFound;
    return kExitFailure;
}

int exit_status(std::error_code ec, Sub sub) noexcept {
    const int st = exit_status(ec);
    if (sub == Sub::SwapAdd && st == kExitNotFound)
        return kExitFailure; // a missing directory on the way to PATH
    return st;
}

} // namespace machvm::ctl
