// SPDX-License-Identifier: GPL-2.0
#include "bench.hpp"

#include <signal.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <system_error>

#include <machvm/admin.hpp>
#include <machvm/result.hpp>

namespace machvm::bench {

void throw_errno(const std::string& what, int err) {
    throw std::system_error(errno_code(err), what);
}

void die(const char* prog, const char* what, int err) noexcept {
    std::fprintf(stderr, "%s: %s: %s\n", prog, what, std::strerror(err));
    std::fflush(stderr);
    ::_exit(kExitFailure);
}

void Mapping::reset() noexcept {
    if (addr_)
        ::munmap(addr_, len_);
    addr_ = nullptr;
    len_ = 0;
    fd_.reset();
}

Mapping Mapping::map(std::size_t len, int prot, int flags, Fd fd, const char* what) {
    void* p = ::mmap(nullptr, len, prot, flags, fd.get(), 0);
    if (p == MAP_FAILED)
        throw_errno(what);
    return Mapping(p, len, std::move(fd));
}

Mapping Mapping::map(std::size_t len, int prot, int flags, int fd, const char* what) {
    void* p = ::mmap(nullptr, len, prot, flags, fd, 0);
    if (p == MAP_FAILED)
        throw_errno(what);
    return Mapping(p, len);
}

void emit_json(const Output& out, const std::string& doc) {
    const std::string& path = out.json_path;
    auto fail = [](const std::string& what) {
        throw std::system_error(errno_code(errno ? errno : EIO), what);
    };
    std::printf("@@JSON %s\n%s@@END\n", out.json_name.c_str(), doc.c_str());
    errno = 0;
    if (std::fflush(stdout) != 0)
        fail("write stdout");
    if (path.empty())
        return;
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "we"), &std::fclose);
    if (!f)
        fail("open " + path);
    if (std::fwrite(doc.data(), 1, doc.size(), f.get()) != doc.size() || std::fflush(f.get()) != 0)
        fail("write " + path);
    if (std::fclose(f.release()) != 0)
        fail("close " + path);
}

std::uint64_t now_ns() noexcept {
    timespec ts;
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000u +
           static_cast<std::uint64_t>(ts.tv_nsec);
}

std::uint64_t page_size() noexcept {
    const long p = ::sysconf(_SC_PAGESIZE);
    return p > 0 ? static_cast<std::uint64_t>(p) : 4096;
}

namespace {

const char* sigbus_prog = "";
const char* sigbus_why = "";

void on_sigbus(int, siginfo_t* info, void*) {
    char buf[256];
    const int n = std::snprintf(buf, sizeof(buf), "%s: SIGBUS touching %p (%s)\n", sigbus_prog,
                                info->si_addr, sigbus_why);
    if (n > 0)
        (void)!::write(2, buf, std::min(static_cast<std::size_t>(n), sizeof(buf) - 1));
    ::_exit(kExitFailure);
}

} // namespace

void report_sigbus(const char* prog, const char* why) {
    sigbus_prog = prog;
    sigbus_why = why;
    struct sigaction sa {};
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    if (::sigaction(SIGBUS, &sa, nullptr) < 0)
        throw std::system_error(errno_code(errno), "sigaction SIGBUS");
}

double clock_gettime_ns() noexcept {
    static std::atomic<std::uint64_t> sink{0};
    constexpr unsigned kCalls = 20000;
    const std::uint64_t a = now_ns();
    std::uint64_t x = 0;
    for (unsigned i = 0; i < kCalls; ++i)
        x += now_ns();
    const std::uint64_t b = now_ns();
    sink.fetch_add(x, std::memory_order_relaxed);
    return static_cast<double>(b - a) / kCalls;
}

std::string trim(std::string s) {
    const char* ws = " \t\r\n";
    s.erase(0, s.find_first_not_of(ws));
    s.erase(s.find_last_not_of(ws) + 1);
    return s;
}

std::string read_text(const std::string& path) {
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    return trim(ss.str());
}

CpuTimes cpu_times() {
    std::ifstream f("/proc/stat");
    std::string key;
    CpuTimes t;
    if (!(f >> key) || key != "cpu")
        return t;
    // user nice system idle iowait irq softirq steal (guest time is in user)
    std::uint64_t v[8] = {};
    for (std::uint64_t& x : v)
        if (!(f >> x))
            break;
    for (std::size_t i = 0; i < 8; ++i) {
        t.total += v[i];
        if (i != 3 && i != 4)
            t.busy += v[i];
    }
    return t;
}

long clock_ticks() noexcept {
    const long t = ::sysconf(_SC_CLK_TCK);
    return t > 0 ? t : 100;
}

void not_one_of(std::string_view option, std::string_view value,
                const std::vector<std::string_view>& names) {
    std::string list;
    for (std::size_t i = 0; i < names.size(); ++i) {
        if (i)
            list += i + 1 == names.size() ? " or " : ", ";
        list += names[i];
    }
    throw UsageError(std::string(option) + ": '" + std::string(value) + "' is not " + list);
}

std::vector<std::string_view> split_commas(std::string_view s) {
    std::vector<std::string_view> out;
    for (;;) {
        std::size_t c = s.find(',');
        out.push_back(s.substr(0, c));
        if (c == std::string_view::npos)
            return out;
        s.remove_prefix(c + 1);
    }
}

Machine describe_machine() {
    Machine m;
    utsname u;
    if (::uname(&u) == 0)
        m.kernel = u.release;
    m.nproc = ::sysconf(_SC_NPROCESSORS_ONLN);
    std::ifstream cpuinfo("/proc/cpuinfo");
    for (std::string line; std::getline(cpuinfo, line);) {
        if (line.rfind("model name", 0) == 0) {
            std::size_t colon = line.find(':');
            if (colon != std::string::npos)
                m.cpu = trim(line.substr(colon + 1));
            break;
        }
    }
    m.clocksource = read_text("/sys/devices/system/clocksource/clocksource0/current_clocksource");
    m.page = page_size();
    return m;
}

double percentile_us(const std::vector<std::uint64_t>& sorted, double p) noexcept {
    if (sorted.empty())
        return 0;
    std::size_t rank = static_cast<std::size_t>(p * static_cast<double>(sorted.size()) + 0.999999);
    rank = std::clamp<std::size_t>(rank, 1, sorted.size());
    return static_cast<double>(sorted[rank - 1]) / 1000.0;
}

double mean_us(const std::vector<std::uint64_t>& ns) noexcept {
    if (ns.empty())
        return 0;
    long double sum = 0;
    for (std::uint64_t x : ns)
        sum += static_cast<long double>(x);
    return static_cast<double>(sum / static_cast<long double>(ns.size()) / 1000.0L);
}

std::string number(double v, const char* fmt) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), fmt, v);
    return buf;
}

std::optional<double> ratio(double a, double b) noexcept {
    if (a <= 0 || b <= 0)
        return std::nullopt;
    return a / b;
}

std::string json_ratio(const std::optional<double>& v) {
    return v ? number(*v, "%.4f") : "null";
}

std::string ratio_cell(const std::optional<double>& v) {
    return v ? number(*v, "%.2fx") : "-";
}

std::string json_string(std::string_view s) {
    return machvm::json_string(s);
}

bool output_option(ArgReader& args, Output& out) {
    if (auto v = args.value("--json")) {
        if (v->empty())
            throw UsageError("--json: empty path");
        out.json_path = *v;
        return true;
    }
    if (auto v = args.value("--json-name")) {
        if (v->empty() || v->find_first_of("/ \t") != std::string::npos)
            throw UsageError("--json-name: '" + *v + "' is not a plain file name");
        out.json_name = *v;
        return true;
    }
    if (args.flag("--quiet", "-q")) {
        out.quiet = true;
        return true;
    }
    return false;
}

} // namespace machvm::bench
