// SPDX-License-Identifier: GPL-2.0
//
// What the benchmark tools (machvm-bench-faults, machvm-bench-netmem,
// machvm-bench-pageout) share: main, its option loop and error handling;
// option values that name choices or lists of them; the output options
// (--json, --json-name, --quiet) and the report that `make bench`
// collects; an mmap(2)ed region and the end of a thread that cannot
// report an error; the clock and the page size, the machine a run describes,
// nearest-rank percentiles, and the numbers and ratios of the JSON and
// of the tables.
#pragma once

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <machvm/cli.hpp>
#include <machvm/fd.hpp>

namespace machvm::bench {

// A benchmark's main: reads the command line into `defaults` (see
// parse_options), prints `help` for --help, else checks the combination
// (check throws UsageError) and runs.  Errors end it as report_exception
// says: 2 for a bad command line, else 1.
template <class Options>
int main(int argc, char** argv, const char* prog, const char* help, Options defaults,
         bool (*option)(ArgReader&, Options&), void (*check)(Options&),
         int (*run)(const Options&)) noexcept;

// "a,b,c" as {"a", "b", "c"}; "" as {""}.
std::vector<std::string_view> split_commas(std::string_view s);

// The command line into `o`: "--help" or "-h" sets `help` and ends the
// reading; any other argument must be an option that `option` consumes
// (it returns false for one it does not know: UsageError).
template <class Options>
Options parse_options(int argc, char** argv, bool& help, Options o,
                      bool (*option)(ArgReader&, Options&)) {
    ArgReader args(argc, argv);
    while (!args.done()) {
        if (args.flag("--help", "-h")) {
            help = true;
            return o;
        }
        if (!option(args, o))
            args.unknown();
    }
    return o;
}

// Names an option's value may take, and what each stands for.
template <class T> using Names = std::initializer_list<std::pair<std::string_view, T>>;

// UsageError "OPTION: 'VALUE' is not a, b or c".
[[noreturn]] void not_one_of(std::string_view option, std::string_view value,
                             const std::vector<std::string_view>& names);

// The value one of `names` stands for; UsageError naming them otherwise.
template <class T> T choice_arg(std::string_view option, std::string_view value, Names<T> names) {
    std::vector<std::string_view> known;
    for (const auto& [name, v] : names) {
        if (name == value)
            return v;
        known.push_back(name);
    }
    not_one_of(option, value, known);
}

// A comma-separated list of `names` as their values, each once, in the
// order first named; with `all`, "all" names every value.  UsageError for
// any other item (an empty one too).
template <class T>
std::vector<T> list_arg(std::string_view option, std::string_view value, Names<T> names,
                        bool all = false) {
    std::vector<T> out;
    auto add = [&](const T& v) {
        if (std::find(out.begin(), out.end(), v) == out.end())
            out.push_back(v);
    };
    for (std::string_view item : split_commas(value)) {
        if (all && item == "all") {
            for (const auto& [name, v] : names)
                add(v);
            continue;
        }
        std::vector<std::string_view> known;
        for (const auto& [name, v] : names) {
            if (name == item) {
                add(v);
                break;
            }
            known.push_back(name);
        }
        if (known.size() == names.size()) {
            if (all)
                known.push_back("all");
            not_one_of(option, item, known);
        }
    }
    return out;
}

template <class Options>
int main(int argc, char** argv, const char* prog, const char* help, Options defaults,
         bool (*option)(ArgReader&, Options&), void (*check)(Options&),
         int (*run)(const Options&)) noexcept {
    try {
        bool want_help = false;
        Options o = parse_options(argc, argv, want_help, std::move(defaults), option);
        if (want_help) {
            std::fputs(help, stdout);
            return kExitOk;
        }
        check(o);
        return run(o);
    } catch (...) {
        return report_exception(prog);
    }
}

// std::system_error of errno `err`, "what: strerror".
[[noreturn]] void throw_errno(const std::string& what, int err = errno);

// For threads that cannot hand an error back (a fault would wait
// forever): "PROG: what: strerror" on stderr, and the process ends with
// status 1.
[[noreturn]] void die(const char* prog, const char* what, int err) noexcept;

// An mmap(2)ed region, unmapped (and the descriptor it owns, if any,
// closed) when it goes.
class Mapping {
  public:
    Mapping() noexcept = default;
    Mapping(void* addr, std::size_t len, Fd fd = Fd()) noexcept
        : addr_(static_cast<std::byte*>(addr)), len_(len), fd_(std::move(fd)) {}
    Mapping(const Mapping&) = delete;
    Mapping& operator=(const Mapping&) = delete;
    Mapping(Mapping&& o) noexcept
        : addr_(std::exchange(o.addr_, nullptr)), len_(std::exchange(o.len_, 0)),
          fd_(std::move(o.fd_)) {}
    Mapping& operator=(Mapping&& o) noexcept {
        if (this != &o) {
            reset();
            addr_ = std::exchange(o.addr_, nullptr);
            len_ = std::exchange(o.len_, 0);
            fd_ = std::move(o.fd_);
        }
        return *this;
    }
    ~Mapping() { reset(); }

    std::byte* data() const noexcept { return addr_; }
    std::size_t size() const noexcept { return len_; }
    void reset() noexcept;

    // mmap(2) of `fd` (kept open as long as the mapping), or throw
    // std::system_error "what: strerror".
    static Mapping map(std::size_t len, int prot, int flags, Fd fd, const char* what);
    // The same over a descriptor the caller keeps (-1: anonymous).
    static Mapping map(std::size_t len, int prot, int flags, int fd, const char* what);

  private:
    std::byte* addr_ = nullptr;
    std::size_t len_ = 0;
    Fd fd_;
};

// CLOCK_MONOTONIC in nanoseconds; the page size (4096 if sysconf fails).
std::uint64_t now_ns() noexcept;
std::uint64_t page_size() noexcept;
// What one clock_gettime(CLOCK_MONOTONIC) costs, in nanoseconds (the mean
// of 20,000 calls).
double clock_gettime_ns() noexcept;

// A SIGBUS (a fault its pager failed) ends the process with status 1 and
// "PROG: SIGBUS touching ADDR (WHY)" on stderr.  prog and why must live as
// long as the process (string literals).  Throws std::system_error.
void report_sigbus(const char* prog, const char* why);

// `s` without blanks and line ends at either end.
std::string trim(std::string s);
// A file's contents, trimmed ("" if it cannot be read): for /proc and
// /sys files of one value.
std::string read_text(const std::string& path);

// All CPUs' time from /proc/stat's "cpu" line, in clock ticks: `busy` is
// everything but idle and iowait.  The difference of two readings around a
// run says whether it kept the CPUs busy (bound by CPU) or left them idle
// (bound by wake-ups and hand-offs).  Zeroes if /proc/stat cannot be read.
struct CpuTimes {
    std::uint64_t busy = 0, total = 0;
};
CpuTimes cpu_times();
// Clock ticks per second (sysconf(_SC_CLK_TCK); 100 if that fails).
long clock_ticks() noexcept;

// The machine a run was measured on.
struct Machine {
    std::string kernel;      // uname -r
    long nproc = 0;          // online CPUs
    std::string cpu;         // /proc/cpuinfo's first model name ("" if none)
    std::string clocksource; // the current clocksource ("" if unknown)
    std::uint64_t page = 0;  // page size
};
Machine describe_machine();

// Nearest-rank percentile p (0 to 1) of sorted nanoseconds, in
// microseconds; 0 for no samples.
double percentile_us(const std::vector<std::uint64_t>& sorted, double p) noexcept;
// The mean of nanoseconds, in microseconds; 0 for no samples.
double mean_us(const std::vector<std::uint64_t>& ns) noexcept;

// `v` printed with the printf format `fmt` (one double): a JSON number or
// a table cell.
std::string number(double v, const char* fmt);
// a / b, or nullopt unless both are positive.
std::optional<double> ratio(double a, double b) noexcept;
// A ratio in the JSON ("%.4f", null if none) and in a table ("%.2fx", "-").
std::string json_ratio(const std::optional<double>& v);
std::string ratio_cell(const std::optional<double>& v);
// `s` as a JSON string literal (libmachvm's json_string).
std::string json_string(std::string_view s);

// How a benchmark reports: --json PATH (the JSON in a file too, besides
// stdout), --json-name NAME (the name make bench files it under) and
// --quiet, -q (no progress on stderr).
struct Output {
    std::string json_path;
    std::string json_name;
    bool quiet = false;
};
// Consumes --json, --json-name or --quiet at the reader's position; false
// if the current argument is none of them.  UsageError for an empty path
// or a name that is not a plain file name.
bool output_option(ArgReader& args, Output& out);

// The JSON document: printed on stdout between "@@JSON json_name" and
// "@@END" (what `make bench` collects), and written to json_path unless it
// is empty.  Throws std::system_error when stdout or the file fails.
void emit_json(const Output& out, const std::string& doc);

} // namespace machvm::bench
