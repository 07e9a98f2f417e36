// SPDX-License-Identifier: GPL-2.0
//
// machvm-map: a client of a machvm memory object.  Gets the object's
// descriptor (Unix socket, inherited descriptor), maps it, touches every
// page, and prints the size and an FNV-1a-64 checksum of the contents.
// --file computes the same line for a regular file, to compare.
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <machvm/cli.hpp>
#include <machvm/device.hpp>
#include <machvm/fdpass.hpp>

#include "fill.hpp"
#include "pattern.hpp"

namespace {

constexpr const char* kProg = "machvm-map";
constexpr int kExitMismatch = 3;
constexpr int kExitSigbus = 4;

const char kHelp[] =
    "NAME\n"
    "       machvm-map - map a machvm memory object, touch it, checksum it\n"
    "\n"
    "SYNOPSIS\n"
    "       machvm-map [--socket PATH | --fd N] [OPTIONS]\n"
    "       machvm-map --file PATH [--no-pad] [--offset OFF] [--length LEN]\n"
    "                  [--verify SPEC]\n"
    "\n"
    "DESCRIPTION\n"
    "       Gets a memory object's descriptor, from a pager's Unix socket\n"
    "       (--socket), an inherited descriptor (--fd, or the environment\n"
    "       variable MACHVM_FD that the pagers' --exec sets), maps it\n"
    "       (MAP_SHARED unless --private), touches every page (reading one\n"
    "       byte, or writing the whole page with --write) in the --order asked\n"
    "       for, then reads the whole mapping and prints one line:\n"
    "\n"
    "              size=BYTES pages=N fnv1a64=0xHHHHHHHHHHHHHHHH\n"
    "\n"
    "       size is the mapped length, fnv1a64 the FNV-1a 64-bit hash of those\n"
    "       bytes.  With --file the line is computed from a regular file the\n"
    "       same way, over the file's size rounded up to the page size with the\n"
    "       tail read as zeros (what file-pager serves), so the two lines are\n"
    "       equal when the object holds the file.\n"
    "\n"
    "       A SIGBUS while touching (the pager failed, timed out or died) is\n"
    "       caught and reported with the offset, exit status 4.\n"
    "\n"
    "OPTIONS\n"
    "       --socket PATH\n"
    "              Connect to the pager's Unix socket PATH and receive the\n"
    "              descriptor (SCM_RIGHTS).\n"
    "       --wait SEC\n"
    "              With --socket: retry for up to SEC seconds while PATH does\n"
    "              not exist or refuses connections (default 5; 0: try once).\n"
    "       --fd N Use the inherited descriptor N.  Without --socket, --fd and\n"
    "              --file the descriptor is taken from MACHVM_FD.\n"
    "       --file PATH\n"
    "              Checksum the regular file PATH instead (no mapping).\n"
    "       --no-pad\n"
    "              With --file: stop at the end of the file, do not round up.\n"
    "       --private\n"
    "              Map with MAP_PRIVATE (copy-on-write) instead of MAP_SHARED.\n"
    "       --offset OFF\n"
    "              Map from object offset OFF, a multiple of the page size.\n"
    "       --length LEN\n"
    "              Map LEN bytes (default: to the end of the object).\n"
    "       --write SPEC\n"
    "              Map writable and write every page with SPEC before\n"
    "              checksumming.  SPEC is one of:\n"
    "              zero          zero bytes\n"
    "              pattern       test-pager's pattern (word at W: W^0x9e3779b97f4a7c15)\n"
    "              byte:N        the byte N, 0-255\n"
    "              text:STRING   STRING repeated; object byte X = STRING[X % len]\n"
    "              All are functions of the object offset.\n"
    "       --verify SPEC\n"
    "              Check that the contents are what SPEC describes (same SPEC\n"
    "              syntax); report the first differing offset, exit status 3.\n"
    "       --order seq|reverse|random\n"
    "              The order pages are first touched in (default seq).\n"
    "       --seed N\n"
    "              Seed for --order random (default 1).\n"
    "       --region\n"
    "              Print what MACHVM_IOC_REGION says about the mapping:\n"
    "              region start=.. end=.. name=.. offset=.. size=.. prot=..\n"
    "              max_prot=.. shared=..\n"
    "       --hold SEC\n"
    "              Keep the mapping SEC seconds after printing, then exit.\n"
    "       --stats\n"
    "              Print the touch time and rate on stderr.\n"
    "       -h, --help\n"
    "              Print this manual and exit.\n"
    "\n"
    "EXIT STATUS\n"
    "       0      Success.\n"
    "       1      Failure: no descriptor, connect, mmap, ... (errno text on\n"
    "              stderr).\n"
    "       2      Bad command line.\n"
    "       3      --verify found a difference.\n"
    "       4      SIGBUS while touching or reading the mapping.\n"
    "\n"
    "EXAMPLES\n"
    "       test-pager --socket /tmp/t & machvm-map --socket /tmp/t --verify pattern\n"
    "       zero-pager --exec machvm-map --write text:hello --verify text:hello\n"
    "       file-pager /bin/busybox --exec machvm-map; machvm-map --file /bin/busybox\n"
    "       machvm-map --socket /tmp/t --private --write byte:1 --region\n";

enum class Order { Seq, Reverse, Random };

struct Options {
    std::string socket_path;
    std::optional<int> fd;
    std::string file;
    bool no_pad = false;
    bool priv = false;
    std::uint64_t offset = 0;
    std::optional<std::uint64_t> length;
    std::optional<machvm::FillSpec> write;
    std::optional<machvm::FillSpec> verify;
    Order order = Order::Seq;
    std::uint64_t seed = 1;
    bool region = false;
    unsigned hold_s = 0;
    unsigned wait_s = 5;
    bool stats = false;
};

Options parse(int argc, char** argv, bool& help) {
    Options o;
    machvm::ArgReader args(argc, argv);
    while (!args.done()) {
        if (args.flag("--help", "-h")) {
            help = true;
            return o;
        }
        if (auto v = args.value("--socket")) {
            o.socket_path = *v;
        } else if (auto v = args.value("--fd")) {
            o.fd = static_cast<int>(machvm::uint_arg("--fd", *v, 0, 1 << 30));
        } else if (auto v = args.value("--file")) {
            o.file = *v;
        } else if (args.flag("--no-pad")) {
            o.no_pad = true;
        } else if (args.flag("--private")) {
            o.priv = true;
        } else if (auto v = args.value("--offset")) {
            o.offset = machvm::size_arg("--offset", *v);
        } else if (auto v = args.value("--length")) {
            o.length = machvm::size_arg("--length", *v);
            if (*o.length == 0)
                throw machvm::UsageError("--length: must not be 0");
        } else if (auto v = args.value("--write")) {
            o.write = machvm::parse_fill_spec("--write", *v);
        } else if (auto v = args.value("--verify")) {
            o.verify = machvm::parse_fill_spec("--verify", *v);
        } else if (auto v = args.value("--order")) {
            if (*v == "seq")
                o.order = Order::Seq;
            else if (*v == "reverse")
                o.order = Order::Reverse;
            else if (*v == "random")
                o.order = Order::Random;
            else
                throw machvm::UsageError("--order: '" + *v + "' is not seq, reverse or random");
        } else if (auto v = args.value("--seed")) {
            o.seed = machvm::uint_arg("--seed", *v, 0, ~std::uint64_t{0});
        } else if (args.flag("--region")) {
            o.region = true;
        } else if (auto v = args.value("--hold")) {
            o.hold_s = static_cast<unsigned>(machvm::uint_arg("--hold", *v, 0, 86400));
        } else if (auto v = args.value("--wait")) {
            o.wait_s = static_cast<unsigned>(machvm::uint_arg("--wait", *v, 0, 3600));
        } else if (args.flag("--stats")) {
            o.stats = true;
        } else {
            args.unknown();
        }
    }
    int sources = !o.socket_path.empty() + o.fd.has_value() + !o.file.empty();
    if (sources > 1)
        throw machvm::UsageError("give only one of --socket, --fd and --file");
    if (!o.file.empty()) {
        if (o.write)
            throw machvm::UsageError("--write does not go with --file");
        if (o.priv || o.region)
            throw machvm::UsageError("--private and --region do not go with --file");
    } else if (o.no_pad) {
        throw machvm::UsageError("--no-pad only goes with --file");
    }
    return o;
}

std::uint64_t page_size() {
    long p = ::sysconf(_SC_PAGESIZE);
    return p > 0 ? static_cast<std::uint64_t>(p) : 4096;
}

void print_line(std::uint64_t size, std::uint64_t fnv) {
    const std::uint64_t page = page_size();
    std::printf("size=%llu pages=%llu fnv1a64=0x%016llx\n", static_cast<unsigned long long>(size),
                static_cast<unsigned long long>((size + page - 1) / page),
                static_cast<unsigned long long>(fnv));
    std::fflush(stdout);
}

int report_mismatch(const machvm::FillSpec& spec, std::uint64_t at, std::byte got) {
    std::fprintf(stderr, "%s: --verify: offset %llu holds 0x%02x, expected 0x%02x\n", kProg,
                 static_cast<unsigned long long>(at), static_cast<unsigned>(got),
                 static_cast<unsigned>(machvm::expected_byte(spec, at)));
    return kExitMismatch;
}

// ---- --file ----

int checksum_file(const Options& o) {
    machvm::Fd fd = machvm::Fd::open(o.file.c_str(), O_RDONLY).value_or_throw(o.file);
    struct stat st;
    if (::fstat(fd.get(), &st) < 0)
        throw std::system_error(machvm::errno_code(), o.file);
    if (!S_ISREG(st.st_mode))
        throw machvm::UsageError(o.file + ": not a regular file");
    const std::uint64_t page = page_size();
    const std::uint64_t fsize = static_cast<std::uint64_t>(st.st_size);
    const std::uint64_t total = o.no_pad ? fsize : (fsize + page - 1) / page * page;
    if (o.offset > total || (o.length && *o.length > total - o.offset))
        throw machvm::UsageError("--offset/--length: beyond the end (" + std::to_string(total) +
                                 " bytes)");
    const std::uint64_t length = o.length ? *o.length : total - o.offset;
    std::vector<std::byte> buf(1 << 20);
    machvm::Fnv1a64 fnv;
    std::uint64_t pos = o.offset;
    const std::uint64_t end = o.offset + length;
    while (pos < end) {
        std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), end - pos));
        std::size_t got = 0;
        while (got < want) {
            ssize_t n =
                ::pread(fd.get(), buf.data() + got, want - got, static_cast<off_t>(pos + got));
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0)
                throw std::system_error(machvm::errno_code(), "read " + o.file);
            if (n == 0)
                break;
            got += static_cast<std::size_t>(n);
        }
        std::fill(buf.begin() + static_cast<std::ptrdiff_t>(got),
                  buf.begin() + static_cast<std::ptrdiff_t>(want), std::byte{0});
        std::span<const std::byte> chunk(buf.data(), want);
        if (o.verify)
            if (auto bad = machvm::find_mismatch(*o.verify, pos, chunk))
                return report_mismatch(*o.verify, *bad, chunk[*bad - pos]);
        fnv.update(chunk);
        pos += want;
    }
    print_line(length, fnv.value());
    return machvm::kExitOk;
}

// ---- the object ----

// For the SIGBUS handler, set before the mapping is touched.
std::byte* volatile g_base = nullptr;
volatile std::uint64_t g_offset = 0;
const char* volatile g_phase = "touching";

// Async-signal-safe: formats with no library calls, then _exit.
void on_sigbus(int, siginfo_t* info, void*) {
    char buf[160];
    std::size_t n = 0;
    auto put = [&](const char* s) {
        while (*s && n < sizeof(buf))
            buf[n++] = *s++;
    };
    put(kProg);
    put(": SIGBUS while ");
    put(g_phase);
    put(" the mapping at object offset ");
    auto* at = static_cast<std::byte*>(info->si_addr);
    std::uint64_t v = g_offset + static_cast<std::uint64_t>(at - g_base);
    char digits[24];
    std::size_t d = 0;
    do {
        digits[d++] = static_cast<char>('0' + v % 10);
        v /= 10;
    } while (v);
    while (d && n < sizeof(buf))
        buf[n++] = digits[--d];
    put("\n");
    ssize_t w = ::write(STDERR_FILENO, buf, n);
    (void)w;
    ::_exit(kExitSigbus);
}

machvm::Fd get_object_fd(const Options& o) {
    if (!o.socket_path.empty()) {
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(o.wait_s);
        for (;;) {
            auto s = machvm::connect_unix(o.socket_path);
            if (s)
                return machvm::recv_fd(s->get()).value_or_throw("receive descriptor from " +
                                                                o.socket_path);
            const auto ec = s.error();
            const bool retry =
                ec == std::errc::no_such_file_or_directory || ec == std::errc::connection_refused;
            if (!retry || std::chrono::steady_clock::now() >= deadline)
                throw std::system_error(ec, "connect " + o.socket_path);
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
    }
    int n;
    if (o.fd) {
        n = *o.fd;
    } else {
        const char* env = std::getenv("MACHVM_FD");
        if (!env)
            throw machvm::UsageError("no object: give --socket PATH, --fd N or --file PATH, or "
                                     "set MACHVM_FD");
        auto v = machvm::parse_uint(env);
        if (!v || *v > (1u << 30))
            throw machvm::UsageError(std::string("MACHVM_FD='") + env + "' is not a descriptor");
        n = static_cast<int>(*v);
    }
    if (::fcntl(n, F_GETFD) < 0)
        throw std::system_error(machvm::errno_code(), "descriptor " + std::to_string(n));
    return machvm::Fd(n);
}

std::string prot_string(std::uint32_t p) {
    std::string s = "---";
    if (p & PROT_READ)
        s[0] = 'r';
    if (p & PROT_WRITE)
        s[1] = 'w';
    if (p & PROT_EXEC)
        s[2] = 'x';
    return s;
}

int map_object(const Options& o) {
    machvm::Fd fd = get_object_fd(o);
    struct stat st;
    if (::fstat(fd.get(), &st) < 0)
        throw std::system_error(machvm::errno_code(), "fstat of the object");
    const std::uint64_t size = static_cast<std::uint64_t>(st.st_size);
    if (size == 0)
        throw std::runtime_error("the object has size 0 (is this a machvm object?)");
    const std::uint64_t page = page_size();
    if (o.offset % page)
        throw machvm::UsageError("--offset: must be a multiple of the page size (" +
                                 std::to_string(page) + ")");
    if (o.offset >= size || (o.length && *o.length > size - o.offset))
        throw machvm::UsageError("--offset/--length: beyond the object's " + std::to_string(size) +
                                 " bytes");
    const std::uint64_t length = o.length ? *o.length : size - o.offset;

    const int prot = PROT_READ | (o.write ? PROT_WRITE : 0);
    const int flags = o.priv ? MAP_PRIVATE : MAP_SHARED;
    void* addr = ::mmap(nullptr, length, prot, flags, fd.get(), static_cast<off_t>(o.offset));
    if (addr == MAP_FAILED)
        throw std::system_error(machvm::errno_code(),
                                std::string("mmap ") + (o.priv ? "MAP_PRIVATE" : "MAP_SHARED") +
                                    (o.write ? " PROT_READ|PROT_WRITE" : " PROT_READ"));
    auto* base = static_cast<std::byte*>(addr);

    if (o.region) {
        machvm::Device dev = machvm::Device::open().value_or_throw("open " MACHVM_DEVICE);
        machvm_region r = dev.region(base).value_or_throw("MACHVM_IOC_REGION");
        std::printf("region start=0x%llx end=0x%llx name=%llu offset=%llu size=%llu prot=%s "
                    "max_prot=%s shared=%u\n",
                    static_cast<unsigned long long>(r.start),
                    static_cast<unsigned long long>(r.end), static_cast<unsigned long long>(r.name),
                    static_cast<unsigned long long>(r.offset),
                    static_cast<unsigned long long>(r.size), prot_string(r.prot).c_str(),
                    prot_string(r.max_prot).c_str(), r.shared);
    }

    const std::uint64_t npages = (length + page - 1) / page;
    std::vector<std::uint64_t> order(npages);
    std::iota(order.begin(), order.end(), std::uint64_t{0});
    if (o.order == Order::Reverse)
        std::reverse(order.begin(), order.end());
    else if (o.order == Order::Random)
        std::shuffle(order.begin(), order.end(), std::mt19937_64(o.seed));

    g_base = base;
    g_offset = o.offset;
    g_phase = "touching";
    std::fflush(stdout);
    struct sigaction sa {};
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGBUS, &sa, nullptr);

    const auto t0 = std::chrono::steady_clock::now();
    volatile std::byte sink{};
    for (std::uint64_t p : order) {
        std::byte* pg = base + p * page;
        const std::size_t n = static_cast<std::size_t>(std::min(page, length - p * page));
        if (o.write)
            machvm::fill(*o.write, o.offset + p * page, std::span(pg, n));
        else
            sink = *static_cast<volatile std::byte*>(pg);
    }
    (void)sink;
    const auto t1 = std::chrono::steady_clock::now();
    if (o.stats) {
        const double ms = std::chrono::duration<double, std::milli>(t1 - t0).count();
        std::fprintf(stderr, "%s: touched %llu pages in %.1f ms (%.1f MiB/s)\n", kProg,
                     static_cast<unsigned long long>(npages), ms,
                     ms > 0 ? static_cast<double>(length) / (1 << 20) / (ms / 1000) : 0.0);
    }

    g_phase = "reading";
    std::span<const std::byte> all(base, length);
    if (o.verify)
        if (auto bad = machvm::find_mismatch(*o.verify, o.offset, all))
            return report_mismatch(*o.verify, *bad, all[*bad - o.offset]);
    print_line(length, machvm::fnv1a64(all));
    if (o.hold_s)
        std::this_thread::sleep_for(std::chrono::seconds(o.hold_s));
    ::munmap(addr, length);
    return machvm::kExitOk;
}

} // namespace

int main(int argc, char** argv) {
    try {
        bool help = false;
        Options o = parse(argc, argv, help);
        if (help) {
            std::fputs(kHelp, stdout);
            return machvm::kExitOk;
        }
        return o.file.empty() ? map_object(o) : checksum_file(o);
    } catch (...) {
        return machvm::report_exception(kProg);
    }
}
