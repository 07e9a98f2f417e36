// SPDX-License-Identifier: GPL-2.0
#include <machvm/cli.hpp>

#include <signal.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <memory>
#include <system_error>

namespace machvm {

namespace {

std::string lower(std::string_view s) {
    std::string r(s);
    for (char& c : r)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return r;
}

bool is_hex_prefix(std::string_view s) noexcept {
    return s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
}

// The longest number at the front of s; `rest` is what follows it.
Result<std::uint64_t> parse_number_prefix(std::string_view s, std::string_view& rest) noexcept {
    int base = 10;
    std::size_t skip = 0;
    if (is_hex_prefix(s)) {
        base = 16;
        skip = 2;
    }
    const char* first = s.data() + skip;
    const char* last = s.data() + s.size();
    if (first == last || !std::isxdigit(static_cast<unsigned char>(*first)) ||
        (base == 10 && !std::isdigit(static_cast<unsigned char>(*first))))
        return std::make_error_code(std::errc::invalid_argument);
    std::uint64_t v = 0;
    auto [ptr, err] = std::from_chars(first, last, v, base);
    if (err == std::errc::result_out_of_range)
        return std::make_error_code(std::errc::result_out_of_range);
    if (err != std::errc())
        return std::make_error_code(std::errc::invalid_argument);
    rest = s.substr(static_cast<std::size_t>(ptr - s.data()));
    return v;
}

} // namespace

Result<std::uint64_t> parse_uint(std::string_view s) noexcept {
    std::string_view rest;
    Result<std::uint64_t> v = parse_number_prefix(s, rest);
    if (v && !rest.empty())
        return std::make_error_code(std::errc::invalid_argument);
    return v;
}

Result<std::uint64_t> parse_size(std::string_view s) noexcept {
    std::string_view suffix;
    Result<std::uint64_t> number = parse_number_prefix(s, suffix);
    if (!number)
        return number;
    std::uint64_t v = *number;
    unsigned shift = 0;
    if (!suffix.empty()) {
        switch (std::tolower(static_cast<unsigned char>(suffix[0]))) {
        case 'k':
            shift = 10;
            break;
        case 'm':
            shift = 20;
            break;
        case 'g':
            shift = 30;
            break;
        case 't':
            shift = 40;
            break;
        case 'b':
            if (suffix.size() != 1)
                return std::make_error_code(std::errc::invalid_argument);
            return v;
        default:
            return std::make_error_code(std::errc::invalid_argument);
        }
        std::string rest;
        try {
            rest = lower(suffix.substr(1));
        } catch (...) {
            return std::make_error_code(std::errc::not_enough_memory);
        }
        if (!rest.empty() && rest != "b" && rest != "ib")
            return std::make_error_code(std::errc::invalid_argument);
    }
    if (shift && v > (~std::uint64_t{0} >> shift))
        return std::make_error_code(std::errc::result_out_of_range);
    return v << shift;
}

Result<std::uint32_t> parse_prot(std::string_view s) noexcept {
    if (s == "none")
        return std::uint32_t{PROT_NONE};
    if (s.empty())
        return std::make_error_code(std::errc::invalid_argument);
    std::uint32_t prot = 0;
    for (char c : s) {
        std::uint32_t bit;
        switch (c) {
        case 'r':
            bit = PROT_READ;
            break;
        case 'w':
            bit = PROT_WRITE;
            break;
        case 'x':
            bit = PROT_EXEC;
            break;
        default:
            return std::make_error_code(std::errc::invalid_argument);
        }
        if (prot & bit)
            return std::make_error_code(std::errc::invalid_argument);
        prot |= bit;
    }
    return prot;
}

Result<std::uint8_t> parse_copy_strategy(std::string_view s) noexcept {
    if (s == "none")
        return std::uint8_t{MACHVM_COPY_NONE};
    if (s == "call")
        return std::uint8_t{MACHVM_COPY_CALL};
    if (s == "delay")
        return std::uint8_t{MACHVM_COPY_DELAY};
    return std::make_error_code(std::errc::invalid_argument);
}

// ---- ArgReader ----

ArgReader::ArgReader(int argc, char* const* argv) {
    for (int i = 1; i < argc; ++i)
        args_.emplace_back(argv[i]);
}

ArgReader::ArgReader(std::vector<std::string> args) : args_(std::move(args)) {}

const std::string& ArgReader::peek() const {
    return args_.at(pos_);
}

bool ArgReader::at_option() const noexcept {
    if (done() || end_of_options_)
        return false;
    const std::string& a = args_[pos_];
    return a.size() > 1 && a[0] == '-';
}

bool ArgReader::flag(std::string_view long_name, std::string_view short_name) {
    if (!at_option())
        return false;
    const std::string& a = args_[pos_];
    if (a == long_name || (!short_name.empty() && a == short_name)) {
        ++pos_;
        return true;
    }
    if (a.size() > long_name.size() && a.compare(0, long_name.size(), long_name) == 0 &&
        a[long_name.size()] == '=')
        throw UsageError("option '" + std::string(long_name) + "' takes no value");
    return false;
}

std::optional<std::string> ArgReader::value(std::string_view long_name,
                                            std::string_view short_name) {
    if (!at_option())
        return std::nullopt;
    const std::string& a = args_[pos_];
    if (a.size() > long_name.size() && a.compare(0, long_name.size(), long_name) == 0 &&
        a[long_name.size()] == '=') {
        std::string v = a.substr(long_name.size() + 1);
        ++pos_;
        return v;
    }
    if (a == long_name || (!short_name.empty() && a == short_name)) {
        if (pos_ + 1 >= args_.size())
            throw UsageError("option '" + a + "' needs a value");
        pos_ += 2;
        return args_[pos_ - 1];
    }
    return std::nullopt;
}

std::string ArgReader::positional() {
    if (done())
        throw UsageError("missing argument");
    if (!end_of_options_ && args_[pos_] == "--") {
        end_of_options_ = true;
        ++pos_;
        if (done())
            throw UsageError("missing argument after '--'");
    }
    return args_[pos_++];
}

std::vector<std::string> ArgReader::rest() {
    std::vector<std::string> r(args_.begin() + static_cast<std::ptrdiff_t>(pos_), args_.end());
    pos_ = args_.size();
    return r;
}

void ArgReader::unknown() const {
    if (done())
        throw UsageError("missing argument");
    const std::string& a = args_[pos_];
    if (at_option())
        throw UsageError("unknown option '" + a + "'");
    throw UsageError("unexpected argument '" + a + "'");
}

std::uint64_t uint_arg(std::string_view option, std::string_view value, std::uint64_t min,
                       std::uint64_t max) {
    auto r = parse_uint(value);
    if (!r || *r < min || *r > max)
        throw UsageError(std::string(option) + ": '" + std::string(value) +
                         "' is not a number from " + std::to_string(min) + " to " +
                         std::to_string(max));
    return *r;
}

std::uint64_t size_arg(std::string_view option, std::string_view value) {
    auto r = parse_size(value);
    if (!r)
        throw UsageError(
            std::string(option) + ": '" + std::string(value) +
            "' is not a size (bytes, or a number with K, M, G or T): " + r.error().message());
    return *r;
}

// ---- common pager options ----

bool parse_pager_option(ArgReader& args, PagerOptions& o) {
    if (!args.at_option())
        return false;
    if (auto v = args.value("--socket")) {
        if (v->empty())
            throw UsageError("--socket: empty path");
        o.socket_path = *v;
        return true;
    }
    if (args.flag("--exec")) {
        o.exec_argv = args.rest();
        if (o.exec_argv.empty())
            throw UsageError("--exec: missing command");
        return true;
    }
    if (args.flag("--uring")) {
        o.transport = Transport::Uring;
        return true;
    }
    if (args.flag("--blocking")) {
        o.transport = Transport::Blocking;
        return true;
    }
    if (auto v = args.value("--threads")) {
        o.threads = static_cast<unsigned>(uint_arg("--threads", *v, 1, 256));
        return true;
    }
    if (auto v = args.value("--depth")) {
        o.depth = static_cast<unsigned>(uint_arg("--depth", *v, 1, 4096));
        return true;
    }
    if (auto v = args.value("--cluster")) {
        auto n = uint_arg("--cluster", *v, 1, MACHVM_MAX_CLUSTER_PAGES);
        if (n & (n - 1))
            throw UsageError("--cluster: " + *v + " is not a power of two");
        o.attr.cluster_pages = static_cast<std::uint16_t>(n);
        return true;
    }
    if (auto v = args.value("--timeout")) {
        o.attr.timeout_ms = static_cast<std::uint32_t>(uint_arg("--timeout", *v, 10, 600000));
        return true;
    }
    if (args.flag("--may-cache")) {
        o.attr.may_cache = 1;
        return true;
    }
    if (auto v = args.value("--copy")) {
        auto c = parse_copy_strategy(*v);
        if (!c)
            throw UsageError("--copy: '" + *v + "' is not none, call or delay");
        o.attr.copy_strategy = *c;
        return true;
    }
    if (auto v = args.value("--max-prot")) {
        auto p = parse_prot(*v);
        if (!p)
            throw UsageError("--max-prot: '" + *v + "' is not r, rw, rx, rwx, ... or none");
        o.max_prot = *p;
        return true;
    }
    if (args.flag("--verbose", "-v")) {
        o.verbose = true;
        return true;
    }
    return false;
}

bool parse_readahead_option(ArgReader& args, std::uint64_t& bytes) {
    auto v = args.value("--readahead");
    if (!v)
        return false;
    bytes = size_arg("--readahead", *v);
    if (bytes > (64ull << 20))
        throw UsageError("--readahead: " + *v + " is more than 64M");
    return true;
}

void validate_pager_options(const PagerOptions& o) {
    if (o.socket_path.empty() && o.exec_argv.empty())
        throw UsageError("nothing would get the object: give --socket PATH and/or --exec CMD");
}

const char kPagerOptionsHelp[] =
    "   Handing out the object (at least one of):\n"
    "       --socket PATH\n"
    "              Listen on the Unix stream socket PATH and send the object's\n"
    "              descriptor (SCM_RIGHTS) to every client that connects, e.g.\n"
    "              machvm-map --socket PATH.  A stale socket file is replaced;\n"
    "              the socket is removed at exit.\n"
    "       --exec CMD [ARG...]\n"
    "              Run CMD with the object's descriptor inherited; its number is\n"
    "              in the environment variable MACHVM_FD.  Everything after CMD\n"
    "              is CMD's arguments, so --exec comes last.\n"
    "\n"
    "   Transport:\n"
    "       --uring\n"
    "              Serve over io_uring (IORING_OP_URING_CMD FETCH and\n"
    "              COMMIT_AND_FETCH).  The default; without this option the pager\n"
    "              falls back to --blocking, with a note, when the module or the\n"
    "              kernel lacks the io_uring path.\n"
    "       --blocking\n"
    "              Serve with read(2) and write(2) on the pager endpoint.\n"
    "       --threads N\n"
    "              Serving threads, each with its own ring (1-256, default 1).\n"
    "       --depth N\n"
    "              FETCH commands in flight per ring, or messages per read(2)\n"
    "              (1-4096, default 16).\n"
    "\n"
    "   Object attributes:\n"
    "       --cluster N\n"
    "              Pages per data request, a power of two from 1 to 64\n"
    "              (default 1 unless said above).\n"
    "       --timeout MS\n"
    "              How long a fault waits for this pager before SIGBUS, 10 to\n"
    "              600000 ms (default: the module's, 5000).\n"
    "       --may-cache\n"
    "              Pages may stay resident after the last unmap.\n"
    "       --copy none|call|delay\n"
    "              Copy strategy (default delay).\n"
    "       --max-prot PROT\n"
    "              The most any mapping may get: r, rw, rx, rwx, ... (default rw).\n"
    "\n"
    "   Other:\n"
    "       -v, --verbose\n"
    "              Log every message from the kernel on stderr.\n"
    "       -h, --help\n"
    "              Print this manual and exit.\n";

const char kPagerExitHelp[] =
    "EXIT STATUS\n"
    "       0      Stopped by SIGINT or SIGTERM, or CMD (--exec) exited with 0.\n"
    "       1      Setup or serving failed: no /dev/machvm, the module refused a\n"
    "              request, the socket could not be created, CMD could not be\n"
    "              run, ...  The message on stderr says which, with the errno\n"
    "              text.\n"
    "       2      Bad command line.\n"
    "       N      With --exec: CMD's exit status; 128+S if a signal S killed it.\n";

const char kPagerLifetimeHelp[] =
    "       With --exec and no --socket the pager exits once CMD has exited and\n"
    "       the object has terminated (every mapping and descriptor gone; at\n"
    "       once if it was never mapped), or 5 seconds after CMD's exit at the\n"
    "       latest.  With --socket it runs until SIGINT or SIGTERM, or until CMD\n"
    "       exits if --exec is given too.  SIGINT and SIGTERM are passed on to\n"
    "       CMD.  Before exiting, the pager lets go of the object and serves\n"
    "       until it terminates, so that pages written through mappings come\n"
    "       back to it (data_return), for 5 seconds at most; a second signal\n"
    "       ends that wait.  Stopping takes up to about 2 seconds more with\n"
    "       --uring (commands in flight are drained, not abandoned).\n";

int report_exception(const char* prog) noexcept {
    try {
        throw;
    } catch (const UsageError& e) {
        std::fprintf(stderr, "%s: %s\nTry '%s --help' for more information.\n", prog, e.what(),
                     prog);
        return kExitUsage;
    } catch (const std::system_error& e) {
        std::fprintf(stderr, "%s: %s\n", prog, e.what());
        const int v = e.code().value();
        if (e.code().category() == std::system_category() && std::strstr(e.what(), MACHVM_DEVICE) &&
            (v == ENOENT || v == ENODEV || v == ENXIO))
            std::fprintf(stderr, "%s: is the machvm module loaded? (insmod machvm.ko)\n", prog);
        return kExitFailure;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s: %s\n", prog, e.what());
        return kExitFailure;
    } catch (...) {
        std::fprintf(stderr, "%s: unknown error\n", prog);
        return kExitFailure;
    }
}

void print_pager_help(const char* head, const char* exit_extra, const char* tail) {
    std::fputs(head, stdout);
    std::fputs("\n", stdout);
    std::fputs(kPagerOptionsHelp, stdout);
    std::fputs("\n", stdout);
    std::fputs(kPagerExitHelp, stdout);
    std::fputs(exit_extra, stdout);
    std::fputs("\n", stdout);
    std::fputs(kPagerLifetimeHelp, stdout);
    std::fputs(tail, stdout);
}

bool parse_pager_args(int argc, char* const* argv, const PagerHelp& help, PagerOptions& opts,
                      const std::function<bool(ArgReader&)>& own,
                      const std::function<void()>& check) {
    ArgReader args(argc, argv);
    while (!args.done()) {
        if (args.flag("--help", "-h")) {
            print_pager_help(help.head, help.exit_extra, help.tail);
            return false;
        }
        if (own && own(args))
            continue;
        if (parse_pager_option(args, opts))
            continue;
        args.unknown();
    }
    if (check)
        check();
    validate_pager_options(opts);
    return true;
}

} // namespace machvm
