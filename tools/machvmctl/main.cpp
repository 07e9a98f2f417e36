// SPDX-License-Identifier: GPL-2.0
//
// machvmctl: the command-line admin tool of machvm, over the module's
// generic netlink family (AdminClient).  The command line is parsed in
// command.cpp and the manual is help.cpp; the JSON and the tables are
// libmachvm's (admin.hpp).  This file runs the subcommands and turns errors
// into messages and exit statuses.  See machvmctl --help.
#include <signal.h>
#include <time.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <string>
#include <vector>

#include "command.hpp"

#include <machvm/admin.hpp>
#include <machvm/cli.hpp>
#include <machvm/version.hpp>

#include <nlohmann/json.hpp>

namespace {

constexpr const char* kProg = "machvmctl";

volatile std::sig_atomic_t g_stop = 0;

void on_stop_signal(int) {
    g_stop = 1;
}

// SIGINT and SIGTERM end a following subcommand (no SA_RESTART: a waiting
// poll or sleep returns EINTR).
void catch_stop_signals() {
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGINT, &sa, nullptr);
    ::sigaction(SIGTERM, &sa, nullptr);
}

double wall_time() {
    timespec ts;
    ::clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// Writes `s` and flushes; false if stdout failed (closed pipe, full disk).
bool emit(const std::string& s) {
    std::fwrite(s.data(), 1, s.size(), stdout);
    return std::fflush(stdout) == 0 && !std::ferror(stdout);
}

int output_failed() {
    std::fprintf(stderr, "%s: write to standard output: %s\n", kProg,
                 machvm::errno_code().message().c_str());
    return machvm::kExitFailure;
}

// Reports a failed operation and returns its exit status.  `what` names the
// operation ("objects", "object show 12"); `missing` is what ENOENT means
// does not exist ("object", "swap store"), if it means that; `sub` picks
// the exit status (exit_status); `hint` explains an errno of the
// subcommand, if given.
int fail(const char* what, std::error_code ec, const std::string& detail,
         const char* missing = nullptr, machvm::ctl::Sub sub = machvm::ctl::Sub::None,
         const std::string& hint = "") {
    const int status = machvm::ctl::exit_status(ec, sub);
    // The kernel's "no such object" adds nothing to what is printed here.
    const bool said = missing && detail == std::string("no such ") + missing;
    std::string extra = detail.empty() || said ? "" : " (" + detail + ")";
    if (!hint.empty())
        extra += ": " + hint;
    switch (status) {
    case machvm::ctl::kExitNoModule:
        std::fprintf(stderr,
                     "%s: the machvm module is not loaded: no generic netlink family \"%s\" "
                     "(load it with insmod machvm.ko)\n",
                     kProg, MACHVM_GENL_NAME);
        break;
    case machvm::ctl::kExitPermission:
        std::fprintf(stderr, "%s: %s: %s%s: this needs CAP_SYS_ADMIN (run it as root)\n", kProg,
                     what, ec.message().c_str(), extra.c_str());
        break;
    case machvm::ctl::kExitNotFound:
        if (missing) {
            std::fprintf(stderr, "%s: %s: no such %s (%s)%s\n", kProg, what, missing,
                         ec.message().c_str(), extra.c_str());
            break;
        }
        [[fallthrough]];
    default:
        std::fprintf(stderr, "%s: %s: %s%s\n", kProg, what, ec.message().c_str(), extra.c_str());
        break;
    }
    return status;
}

int cmd_status(machvm::AdminClient& c, const machvm::ctl::Command& cmd) {
    auto s = c.status();
    if (!s)
        return fail("status", s.error(), c.error_detail());
    if (!emit(cmd.json ? machvm::to_json(*s) + "\n" : machvm::format_status(*s)))
        return output_failed();
    return machvm::kExitOk;
}

int cmd_objects(machvm::AdminClient& c, const machvm::ctl::Command& cmd) {
    auto v = c.objects();
    if (!v)
        return fail("objects", v.error(), c.error_detail());
    if (!emit(cmd.json ? machvm::to_json(*v) : machvm::format_objects(*v)))
        return output_failed();
    return machvm::kExitOk;
}

int cmd_object_show(machvm::AdminClient& c, const machvm::ctl::Command& cmd) {
    const std::string what = "object show " + std::to_string(cmd.name);
    auto o = c.object(cmd.name);
    if (!o)
        return fail(what.c_str(), o.error(), c.error_detail(), "object");
    if (!emit(cmd.json ? machvm::to_json(*o) + "\n" : machvm::format_object(*o)))
        return output_failed();
    return machvm::kExitOk;
}

int cmd_object_destroy(machvm::AdminClient& c, const machvm::ctl::Command& cmd) {
    const std::string what = "object destroy " + std::to_string(cmd.name);
    auto r = c.destroy(cmd.name);
    if (!r)
        return fail(what.c_str(), r.error(), c.error_detail(), "object");
    if (cmd.json &&
        !emit(machvm::to_json(machvm::Json{{"name", cmd.name}, {"destroyed", true}}) + "\n"))
        return output_failed();
    return machvm::kExitOk;
}

// Sleeps until `deadline` (CLOCK_MONOTONIC); false if a stop signal came.
bool sleep_until(const timespec& deadline) {
    for (;;) {
        if (g_stop)
            return false;
        int r = ::clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &deadline, nullptr);
        if (r == 0)
            return !g_stop;
        if (r != EINTR)
            return !g_stop;
    }
}

int cmd_stats(machvm::AdminClient& c, const machvm::ctl::Command& cmd) {
    if (!cmd.watch) {
        auto s = c.stats();
        if (!s)
            return fail("stats", s.error(), c.error_detail());
        if (!emit(cmd.json ? machvm::to_json(*s) + "\n" : machvm::format_stats(*s)))
            return output_failed();
        return machvm::kExitOk;
    }
    catch_stop_signals();
    if (!cmd.json && !emit(machvm::format_stats_header()))
        return output_failed();
    const long long interval_ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(*cmd.watch).count();
    timespec next;
    ::clock_gettime(CLOCK_MONOTONIC, &next);
    std::optional<machvm::Stats> prev;
    for (std::uint64_t n = 0; !g_stop;) {
        auto s = c.stats();
        if (!s)
            return fail("stats", s.error(), c.error_detail());
        const double now = wall_time();
        const std::string line = cmd.json
                                     ? machvm::to_json(*s, now) + "\n"
                                     : machvm::format_stats_row(*s, prev ? &*prev : nullptr, now);
        if (!emit(line))
            return output_failed();
        prev = *s;
        if (cmd.count && ++n >= *cmd.count)
            break;
        // Samples on a fixed grid, so slow replies do not make it drift.
        long long ns = next.tv_nsec + interval_ns;
        next.tv_sec += static_cast<time_t>(ns / 1000000000LL);
        next.tv_nsec = static_cast<long>(ns % 1000000000LL);
        if (!sleep_until(next))
            break;
    }
    return machvm::kExitOk;
}

int cmd_events(machvm::AdminClient& c, const machvm::ctl::Command& cmd) {
    using Clock = std::chrono::steady_clock;
    catch_stop_signals();
    if (auto r = c.subscribe_events(); !r)
        return fail("events", r.error(), c.error_detail());
    const auto start = Clock::now();
    std::uint64_t seen = 0;
    while (!g_stop) {
        std::chrono::milliseconds wait(-1);
        if (cmd.timeout) {
            const auto left = *cmd.timeout - std::chrono::duration_cast<std::chrono::milliseconds>(
                                                 Clock::now() - start);
            wait = left.count() > 0 ? left : std::chrono::milliseconds(0);
        }
        auto ev = c.next_event(wait);
        if (!ev) {
            const auto ec = ev.error();
            if (ec == std::errc::interrupted)
                continue;
            if (ec == std::errc::no_buffer_space) {
                std::fprintf(stderr,
                             "%s: events: some events were lost (they came faster than they "
                             "were read)\n",
                             kProg);
                continue;
            }
            if (ec == std::errc::bad_message) {
                std::fprintf(stderr, "%s: events: skipped a malformed event (%s)\n", kProg,
                             c.error_detail().c_str());
                continue;
            }
            return fail("events", ec, c.error_detail());
        }
        if (!*ev) {
            // The timeout: a success unless --count asked for more.
            if (cmd.count && seen < *cmd.count) {
                std::fprintf(stderr,
                             "%s: events: timed out after %.3f s with %llu of %llu events\n", kProg,
                             static_cast<double>(cmd.timeout->count()) / 1000.0,
                             static_cast<unsigned long long>(seen),
                             static_cast<unsigned long long>(*cmd.count));
                return machvm::kExitFailure;
            }
            break;
        }
        const double now = wall_time();
        if (!emit(cmd.json ? machvm::to_json(**ev, now) + "\n"
                           : machvm::format_event(**ev, now) + "\n"))
            return output_failed();
        if (cmd.count && ++seen >= *cmd.count)
            break;
    }
    return machvm::kExitOk;
}

// The page size for the tables' byte sizes; 0 (sizes left out) if the
// status cannot be had.
std::uint32_t page_size(machvm::AdminClient& c) {
    auto s = c.status();
    return s ? s->page_size : 0;
}

int cmd_pageout_show(machvm::AdminClient& c, const machvm::ctl::Command& cmd) {
    auto p = c.pageout();
    if (!p)
        return fail("pageout show", p.error(), c.error_detail());
    if (!emit(cmd.json ? machvm::to_json(*p) + "\n" : machvm::format_pageout(*p, page_size(c))))
        return output_failed();
    return machvm::kExitOk;
}

int cmd_pageout_set(machvm::AdminClient& c, const machvm::ctl::Command& cmd) {
    if (cmd.object) {
        const std::string what = "pageout set --object " + std::to_string(*cmd.object);
        auto p = c.set_object_limit(*cmd.object, cmd.object_limit);
        if (!p)
            return fail(what.c_str(), p.error(), c.error_detail(), "object");
        std::string out;
        if (cmd.json)
            out =
                machvm::to_json(machvm::Json{{"name", *cmd.object}, {"limit", cmd.object_limit}}) +
                "\n";
        else
            out = "object " + std::to_string(*cmd.object) + ": resident limit " +
                  (cmd.object_limit ? machvm::format_pages(cmd.object_limit, page_size(c))
                                    : std::string("none")) +
                  "\n";
        if (!emit(out))
            return output_failed();
        return machvm::kExitOk;
    }
    auto p = c.set_pageout(cmd.pageout);
    if (!p)
        return fail("pageout set", p.error(), c.error_detail(), nullptr,
                    machvm::ctl::Sub::PageoutSet,
                    p.error() == std::errc::invalid_argument && c.error_detail().empty()
                        ? "the module refused a value (see 'machvmctl pageout --help')"
                        : "");
    if (!emit(cmd.json ? machvm::to_json(*p) + "\n" : machvm::format_pageout(*p, page_size(c))))
        return output_failed();
    return machvm::kExitOk;
}

int cmd_pageout_run(machvm::AdminClient& c, const machvm::ctl::Command& cmd) {
    std::string what = "pageout run";
    if (cmd.run.object)
        what += " --object " + std::to_string(*cmd.run.object);
    auto r = c.run_pageout(cmd.run);
    if (!r)
        return fail(what.c_str(), r.error(), c.error_detail(), cmd.run.object ? "object" : nullptr);
    if (!emit(cmd.json ? machvm::to_json(*r) + "\n" : machvm::format_pageout_result(*r)))
        return output_failed();
    return machvm::kExitOk;
}

int cmd_swap_add(machvm::AdminClient& c, const machvm::ctl::Command& cmd) {
    using machvm::ctl::Sub;
    const std::string what = "swap add " + cmd.path;
    auto w = c.swap_add(cmd.path, cmd.size, cmd.prio);
    if (!w) {
        const std::error_code ec = w.error();
        std::string hint; // when the module gave no reason of its own
        if (c.error_detail().empty()) {
            if (ec == std::errc::device_or_resource_busy)
                hint = "it is a swap store already";
            else if (ec == std::errc::no_space_on_device)
                hint = "a store needs at least 16 pages (--size), and the room to allocate them";
            else if (ec == std::errc::invalid_argument)
                hint = "not a regular file or block device that can be a swap store";
        }
        return fail(what.c_str(), ec, c.error_detail(), nullptr, Sub::SwapAdd, hint);
    }
    if (!emit(cmd.json ? machvm::to_json(*w) + "\n" : machvm::format_swap(*w, page_size(c))))
        return output_failed();
    return machvm::kExitOk;
}

int cmd_swap_remove(machvm::AdminClient& c, const machvm::ctl::Command& cmd) {
    const std::string what = "swap remove " + std::to_string(cmd.swap_id);
    auto r = c.swap_remove(cmd.swap_id);
    if (!r) {
        const std::error_code ec = r.error();
        std::string hint;
        if (ec == std::errc::not_enough_memory)
            hint = "its pages do not fit in memory below the resident limit; nothing was changed";
        return fail(what.c_str(), ec, c.error_detail(), "swap store", machvm::ctl::Sub::SwapRemove,
                    hint);
    }
    if (cmd.json &&
        !emit(machvm::to_json(machvm::Json{{"id", cmd.swap_id}, {"removed", true}}) + "\n"))
        return output_failed();
    return machvm::kExitOk;
}

int cmd_swap_list(machvm::AdminClient& c, const machvm::ctl::Command& cmd) {
    auto v = c.swaps();
    if (!v)
        return fail("swap list", v.error(), c.error_detail());
    if (!emit(cmd.json ? machvm::to_json(*v) : machvm::format_swaps(*v, page_size(c))))
        return output_failed();
    return machvm::kExitOk;
}

int cmd_swap_show(machvm::AdminClient& c, const machvm::ctl::Command& cmd) {
    const std::string what = "swap show " + std::to_string(cmd.swap_id);
    auto w = c.swap(cmd.swap_id);
    if (!w)
        return fail(what.c_str(), w.error(), c.error_detail(), "swap store",
                    machvm::ctl::Sub::SwapShow);
    if (!emit(cmd.json ? machvm::to_json(*w) + "\n" : machvm::format_swap(*w, page_size(c))))
        return output_failed();
    return machvm::kExitOk;
}

int run(const machvm::ctl::Command& cmd) {
    using machvm::ctl::Sub;
    // A module of another ABI version would misread our requests: say so
    // first, with both releases (0: no /dev/machvm; netlink will tell).
    if (std::uint32_t abi = machvm::module_abi(); abi != 0) {
        if (std::string m = machvm::abi_mismatch(kProg, abi); !m.empty()) {
            std::fprintf(stderr, "%s: %s\n", kProg, m.c_str());
            return machvm::kExitFailure;
        }
    }
    auto client = machvm::AdminClient::open();
    if (!client)
        return fail("connect to the machvm genl family", client.error(), "");
    machvm::AdminClient& c = *client;
    switch (cmd.sub) {
    case Sub::Status:
        return cmd_status(c, cmd);
    case Sub::Objects:
        return cmd_objects(c, cmd);
    case Sub::ObjectShow:
        return cmd_object_show(c, cmd);
    case Sub::ObjectDestroy:
        return cmd_object_destroy(c, cmd);
    case Sub::Stats:
        return cmd_stats(c, cmd);
    case Sub::Events:
        return cmd_events(c, cmd);
    case Sub::PageoutShow:
        return cmd_pageout_show(c, cmd);
    case Sub::PageoutSet:
        return cmd_pageout_set(c, cmd);
    case Sub::PageoutRun:
        return cmd_pageout_run(c, cmd);
    case Sub::SwapAdd:
        return cmd_swap_add(c, cmd);
    case Sub::SwapRemove:
        return cmd_swap_remove(c, cmd);
    case Sub::SwapList:
        return cmd_swap_list(c, cmd);
    case Sub::SwapShow:
        return cmd_swap_show(c, cmd);
    case Sub::None:
    case Sub::Help:
        break;
    }
    return machvm::kExitUsage;
}

} // namespace

int main(int argc, char** argv) {
    machvm::ctl::Command cmd;
    try {
        std::vector<std::string> args(argv + (argc > 0 ? 1 : 0), argv + argc);
        machvm::ctl::parse_command(args, cmd);
    } catch (const machvm::UsageError& e) {
        const std::string topic = cmd.topic.empty() ? "" : " " + cmd.topic;
        std::fprintf(stderr, "%s: %s\nTry '%s%s --help' for more information.\n", kProg, e.what(),
                     kProg, topic.c_str());
        return machvm::kExitUsage;
    } catch (...) {
        return machvm::report_exception(kProg);
    }
    try {
        if (cmd.help) {
            const char* text = machvm::ctl::help_text(cmd.topic);
            return emit(text ? text : "") ? machvm::kExitOk : output_failed();
        }
        return run(cmd);
    } catch (...) {
        return machvm::report_exception(kProg);
    }
}
