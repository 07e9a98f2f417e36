// SPDX-License-Identifier: GPL-2.0
//
// machvm-bench-pageout: how fast machvm's default pager pages an anonymous
// object out to swap and back in, against Linux's own swap doing the same
// for a memory-cgroup-limited process, on the same kind of swap area (a
// swap file on ext4 and a whole disk) in the same boot.  Each case runs in
// a child process that writes a buffer larger than its memory limit and
// reads it back; only one side has a swap area at any time.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/swap.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/magic.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <linux/machvm.h>
#include <machvm/admin.hpp>
#include <machvm/cli.hpp>
#include <machvm/fd.hpp>

#include "bench/bench.hpp"

extern char** environ;

namespace {

namespace bench = machvm::bench;
using bench::json_string;
using bench::now_ns;
using bench::page_size;
using bench::read_text;
using bench::throw_errno;

constexpr const char* kProg = "machvm-bench-pageout";
constexpr const char* kCgroupRoot = "/sys/fs/cgroup";
constexpr const char* kCgroup = "/sys/fs/cgroup/machvm-bench-pageout";

const char kHelp[] =
    "NAME\n"
    "       machvm-bench-pageout - pageout and pagein throughput of machvm's default\n"
    "       pager against Linux swap, to a swap file and to a swap partition\n"
    "\n"
    "SYNOPSIS\n"
    "       machvm-bench-pageout [--size BYTES] [--limit BYTES] [--file-size BYTES]\n"
    "                            [--rounds N] [--threads N]\n"
    "                            [--targets file,partition] [--sides linux,machvm]\n"
    "                            [--dir DIR] [--dev DEVICE] [--timeout SEC]\n"
    "                            [--json PATH] [--json-name NAME] [--quiet]\n"
    "\n"
    "DESCRIPTION\n"
    "       Every case is one child process that writes --size bytes (every byte of\n"
    "       every page, a pattern that depends on the page) while it may keep only\n"
    "       --limit bytes in memory, then reads all of it back in the same order,\n"
    "       checking every page.  write MiB/s is --size over the time of the writing\n"
    "       pass, in which everything beyond the limit must be paged out; read MiB/s\n"
    "       is --size over the time of the reading pass, in which the pages paged\n"
    "       out must be paged in (and others out again to make room).  The swap\n"
    "       traffic of each pass is counted too: /proc/vmstat pswpout and pswpin\n"
    "       for Linux, machvm's swap_writes and pageins counters for machvm.\n"
    "\n"
    "       linux   An anonymous MAP_PRIVATE buffer (MADV_NOHUGEPAGE), the child in\n"
    "               a cgroup v2 group with memory.max = --limit (cgroup2 is mounted at\n"
    "               /sys/fs/cgroup if it is not).  Swap: a file of --file-size in\n"
    "               DIR (fallocate, mkswap, swapon) or the whole DEVICE (mkswap,\n"
    "               swapon), swapoff after the case.\n"
    "       machvm  An anonymous machvm object (MACHVM_IOC_ANON_CREATE) of --size\n"
    "               bytes with resident_limit = --limit, mapped MAP_SHARED.  Swap: a\n"
    "               store added over generic netlink (SWAP_ADD) on a file of\n"
    "               --file-size in DIR or on DEVICE, removed (SWAP_REMOVE) after the\n"
    "               case.\n"
    "\n"
    "       The targets (file, partition) and sides (linux, machvm) go in that\n"
    "       order, every round; the caches are dropped before every case.  Ratios\n"
    "       are machvm over linux on the same target (above 1: machvm is faster).\n"
    "       zswap is turned off for the run if it is on.  Needs root.\n"
    "\n"
    "OUTPUT\n"
    "       Progress goes to stderr.  stdout gets the table, then a line\n"
    "       \"@@JSON pageout.json\" (see --json-name), the results as one JSON\n"
    "       document, and a line \"@@END\" (make bench keeps that block as\n"
    "       build/bench/<kernel>/pageout.json).  A page read back wrong, a child\n"
    "       that dies or times out, or a swap area that cannot be set up ends the\n"
    "       run with exit status 1.\n"
    "\n"
    "OPTIONS\n"
    "       --size BYTES\n"
    "              Bytes each case writes and reads (K, M, G suffixes; default 256M).\n"
    "       --limit BYTES\n"
    "              Memory the case may keep resident (default 64M); less than\n"
    "              --size.\n"
    "       --file-size BYTES\n"
    "              Size of the swap files (default 512M, the size of the VM's swap\n"
    "              disk; at least --size + 1M).  Linux frees a swap slot when it\n"
    "              reads the page back if swap is more than half full, and then\n"
    "              has to write the page again: keep the file and the partition\n"
    "              the same size to compare them.\n"
    "       --rounds N\n"
    "              Repeat every case N times (1-100, default 1); results are the\n"
    "              total bytes over the total time of each case.\n"
    "       --threads N\n"
    "              Threads per case (1-16, default 1): each writes, then reads,\n"
    "              its own contiguous part of the buffer, in order.  Several\n"
    "              threads fault on one object (machvm) or one mm (Linux) at once.\n"
    "       --targets LIST\n"
    "              file, partition or both (default file,partition).\n"
    "       --sides LIST\n"
    "              linux, machvm or both (default linux,machvm).\n"
    "       --dir DIR\n"
    "              Where the swap files go (default $MVM_DISK_DIR).\n"
    "       --dev DEVICE\n"
    "              The block device used whole (default $MVM_SWAP_DEV).  Its\n"
    "              contents are destroyed.\n"
    "       --timeout SEC\n"
    "              Kill a case that takes longer (default 600).\n"
    "       --json PATH\n"
    "              Also write the JSON document to PATH.\n"
    "       --json-name NAME\n"
    "              The name on the \"@@JSON\" line (default pageout.json).\n"
    "       --quiet, -q\n"
    "              No progress on stderr.\n"
    "\n"
    "EXIT STATUS\n"
    "       0 done, 1 failed, 2 usage.\n";

enum class Target { File, Partition };
enum class Side { Linux, Machvm };

const char* target_name(Target t) {
    return t == Target::File ? "file" : "partition";
}
const char* side_name(Side s) {
    return s == Side::Linux ? "linux" : "machvm";
}

struct Options {
    std::uint64_t size = 256ull << 20;
    std::uint64_t limit = 64ull << 20;
    std::uint64_t file_size = 512ull << 20;
    unsigned rounds = 1;
    unsigned threads = 1;
    std::vector<Target> targets{Target::File, Target::Partition};
    std::vector<Side> sides{Side::Linux, Side::Machvm};
    std::string dir;
    std::string dev;
    unsigned timeout_s = 600;
    bench::Output out{"", "pageout.json"};
};

std::string env_or(const char* name) {
    const char* v = std::getenv(name);
    return v ? v : "";
}

// One option at the reader's position; false if it is none of ours.
bool option(machvm::ArgReader& args, Options& o) {
    if (auto v = args.value("--size")) {
        o.size = machvm::size_arg("--size", *v);
    } else if (auto v = args.value("--limit")) {
        o.limit = machvm::size_arg("--limit", *v);
    } else if (auto v = args.value("--file-size")) {
        o.file_size = machvm::size_arg("--file-size", *v);
    } else if (auto v = args.value("--rounds")) {
        o.rounds = static_cast<unsigned>(machvm::uint_arg("--rounds", *v, 1, 100));
    } else if (auto v = args.value("--threads")) {
        o.threads = static_cast<unsigned>(machvm::uint_arg("--threads", *v, 1, 16));
    } else if (auto v = args.value("--targets")) {
        o.targets = bench::list_arg<Target>(
            "--targets", *v, {{"file", Target::File}, {"partition", Target::Partition}});
    } else if (auto v = args.value("--sides")) {
        o.sides = bench::list_arg<Side>("--sides", *v,
                                        {{"linux", Side::Linux}, {"machvm", Side::Machvm}});
    } else if (auto v = args.value("--dir")) {
        o.dir = *v;
    } else if (auto v = args.value("--dev")) {
        o.dev = *v;
    } else if (auto v = args.value("--timeout")) {
        o.timeout_s = static_cast<unsigned>(machvm::uint_arg("--timeout", *v, 1, 86400));
    } else if (bench::output_option(args, o.out)) {
    } else {
        return false;
    }
    return true;
}

// The options' defaults (the environment's swap areas).
Options defaults() {
    Options o;
    o.dir = env_or("MVM_DISK_DIR");
    o.dev = env_or("MVM_SWAP_DEV");
    return o;
}

// The combination of options; UsageError.
void check(Options& o) {
    const std::uint64_t page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
    if (o.size % page || o.limit % page || o.limit == 0)
        throw machvm::UsageError("--size and --limit must be non-zero multiples of the page size");
    if (o.limit >= o.size)
        throw machvm::UsageError("--limit must be less than --size: nothing would be paged out");
    if (o.file_size % page || o.file_size < o.size + (1 << 20))
        throw machvm::UsageError("--file-size must be a page multiple, at least --size + 1M");
    if (o.targets.empty() || o.sides.empty())
        throw machvm::UsageError("nothing to run");
    for (Target t : o.targets) {
        if (t == Target::File && o.dir.empty())
            throw machvm::UsageError("no directory for swap files: --dir or MVM_DISK_DIR");
        if (t == Target::Partition && o.dev.empty())
            throw machvm::UsageError("no swap device: --dev or MVM_SWAP_DEV");
    }
}

// ---- small helpers ----

void write_text(const std::string& path, std::string_view text) {
    machvm::Fd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd)
        throw_errno("open " + path);
    if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()))
        throw_errno("write '" + std::string(text) + "' to " + path);
}

void progress(const Options& o, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
void progress(const Options& o, const char* fmt, ...) {
    if (o.out.quiet)
        return;
    std::fprintf(stderr, "%s: ", kProg);
    va_list ap;
    va_start(ap, fmt);
    std::vfprintf(stderr, fmt, ap);
    va_end(ap);
    std::fputc('\n', stderr);
}

// Runs a program (found in PATH) and waits; throws unless it exits 0.
void run_program(const std::vector<std::string>& argv) {
    std::vector<char*> args;
    for (const std::string& a : argv)
        args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    // Its chatter (mkswap prints the UUID) would land in the results.
    posix_spawn_file_actions_t fa;
    if (int e = ::posix_spawn_file_actions_init(&fa))
        throw std::system_error(e, std::generic_category(), "posix_spawn_file_actions_init");
    ::posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    int err = ::posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), environ);
    ::posix_spawn_file_actions_destroy(&fa);
    if (err)
        throw std::system_error(err, std::generic_category(), "spawn " + argv[0]);
    int st;
    while (::waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            throw_errno("waitpid " + argv[0]);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        std::string cmd;
        for (const std::string& a : argv)
            cmd += (cmd.empty() ? "" : " ") + a;
        throw std::runtime_error("'" + cmd + "' failed");
    }
}

void drop_caches() {
    ::sync();
    write_text("/proc/sys/vm/drop_caches", "3");
}

// ---- the machvm genl family (libmachvm's AdminClient) ----

// An AdminClient whose failures are exceptions: std::system_error with the
// errno and "machvm CMD (the kernel's reason)".
class Admin {
  public:
    Admin() : c_(machvm::AdminClient::open().value_or_throw("machvm genl family")) {}

    // MACHVM_GENL_CMD_SWAP_ADD (priority 0); returns the store's id.
    std::uint32_t swap_add(const std::string& path, std::uint64_t bytes) {
        return check(c_.swap_add(path, bytes, 0), "machvm SWAP_ADD " + path).id;
    }
    void swap_remove(std::uint32_t id) { check(c_.swap_remove(id), "machvm SWAP_REMOVE"); }
    // MACHVM_GENL_CMD_GET_OBJECT: false once the object is gone.
    bool object_exists(std::uint64_t name) {
        auto r = c_.object(name);
        if (!r && r.error() == std::errc::no_such_file_or_directory)
            return false;
        check(std::move(r), "machvm GET_OBJECT");
        return true;
    }
    machvm::Stats stats() { return check(c_.stats(), "machvm GET_STATS"); }
    machvm::PageoutInfo pageout() { return check(c_.pageout(), "machvm GET_PAGEOUT"); }

  private:
    [[noreturn]] void fail(std::error_code ec, const std::string& what) {
        const std::string& why = c_.error_detail();
        throw std::system_error(ec, why.empty() ? what : what + " (" + why + ")");
    }
    template <class T> T check(machvm::Result<T> r, const std::string& what) {
        if (!r)
            fail(r.error(), what);
        return std::move(*r);
    }
    void check(machvm::Result<void> r, const std::string& what) {
        if (!r)
            fail(r.error(), what);
    }

    machvm::AdminClient c_;
};

// ---- swap areas (RAII: each goes away with its owner) ----

// A file of `bytes`, fully allocated, removed on destruction.
class SwapFile {
  public:
    SwapFile(std::string path, std::uint64_t bytes) : path_(std::move(path)) {
        ::unlink(path_.c_str());
        machvm::Fd fd(::open(path_.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
        if (!fd)
            throw_errno("create " + path_);
        if (::fallocate(fd.get(), 0, 0, static_cast<off_t>(bytes)) < 0)
            throw_errno("fallocate " + path_);
        if (::fsync(fd.get()) < 0)
            throw_errno("fsync " + path_);
    }
    SwapFile(const SwapFile&) = delete;
    SwapFile& operator=(const SwapFile&) = delete;
    ~SwapFile() { ::unlink(path_.c_str()); }
    const std::string& path() const noexcept { return path_; }

  private:
    std::string path_;
};

// Linux swap on `path` (mkswap, swapon) until destruction (swapoff).
class LinuxSwap {
  public:
    explicit LinuxSwap(std::string path) : path_(std::move(path)) {
        run_program({"mkswap", path_});
        if (::swapon(path_.c_str(), 0) < 0)
            throw_errno("swapon " + path_);
    }
    LinuxSwap(const LinuxSwap&) = delete;
    LinuxSwap& operator=(const LinuxSwap&) = delete;
    ~LinuxSwap() {
        if (::swapoff(path_.c_str()) < 0)
            std::fprintf(stderr, "%s: swapoff %s: %s\n", kProg, path_.c_str(),
                         std::strerror(errno));
    }

  private:
    std::string path_;
};

// A machvm swap store until remove() (SWAP_REMOVE) or destruction.
class MachvmSwap {
  public:
    MachvmSwap(Admin& admin, const std::string& path, std::uint64_t bytes)
        : admin_(admin), id_(admin.swap_add(path, bytes)) {}
    MachvmSwap(const MachvmSwap&) = delete;
    MachvmSwap& operator=(const MachvmSwap&) = delete;
    ~MachvmSwap() {
        if (removed_)
            return;
        try {
            admin_.swap_remove(id_);
        } catch (const std::exception& e) {
            std::fprintf(stderr, "%s: %s\n", kProg, e.what());
        }
    }

    // Removes the store once the benchmark's object is gone.  The object
    // dies with the child, but its swap slots may be freed a little later;
    // SWAP_REMOVE says EBUSY until then.  Slots still held after 10 s are a
    // leak: that fails the run.  Returns the milliseconds waited.
    std::uint64_t remove() {
        const std::uint64_t t0 = now_ns();
        for (;;) {
            try {
                admin_.swap_remove(id_);
                removed_ = true;
                return (now_ns() - t0) / 1000000;
            } catch (const std::system_error& e) {
                if (e.code().value() != EBUSY || now_ns() - t0 > 10000000000ull) {
                    const std::uint64_t held = admin_.stats().swapped;
                    throw std::runtime_error(std::string(e.what()) + "; " + std::to_string(held) +
                                             " swap slots still in use after the object died");
                }
            }
            ::usleep(50000);
        }
    }

  private:
    Admin& admin_;
    std::uint32_t id_;
    bool removed_ = false;
};

// The benchmark's memory cgroup (cgroup2 mounted and the memory controller
// enabled first if needed), removed on destruction.
class Cgroup {
  public:
    explicit Cgroup(std::uint64_t limit) {
        struct statfs sf;
        if (::statfs(kCgroupRoot, &sf) < 0 || sf.f_type != CGROUP2_SUPER_MAGIC) {
            if (::mount("cgroup2", kCgroupRoot, "cgroup2", 0, nullptr) < 0)
                throw_errno(std::string("mount cgroup2 on ") + kCgroupRoot);
        }
        const std::string ctl = read_text(std::string(kCgroupRoot) + "/cgroup.subtree_control");
        if (ctl.find("memory") == std::string::npos)
            write_text(std::string(kCgroupRoot) + "/cgroup.subtree_control", "+memory");
        ::rmdir(kCgroup);
        if (::mkdir(kCgroup, 0755) < 0)
            throw_errno(std::string("mkdir ") + kCgroup);
        write_text(std::string(kCgroup) + "/memory.max", std::to_string(limit));
        write_text(std::string(kCgroup) + "/memory.swap.max", "max");
    }
    Cgroup(const Cgroup&) = delete;
    Cgroup& operator=(const Cgroup&) = delete;
    ~Cgroup() { ::rmdir(kCgroup); }

    void add(pid_t pid) { write_text(std::string(kCgroup) + "/cgroup.procs", std::to_string(pid)); }

    std::uint64_t peak() const {
        const std::string p = read_text(std::string(kCgroup) + "/memory.peak");
        return p.empty() ? 0 : std::strtoull(p.c_str(), nullptr, 10);
    }
};

// zswap off for the run (restored after), so Linux swap really writes.
class ZswapOff {
  public:
    ZswapOff() {
        was_ = read_text(kPath);
        if (was_ == "Y")
            write_text(kPath, "N");
    }
    ZswapOff(const ZswapOff&) = delete;
    ZswapOff& operator=(const ZswapOff&) = delete;
    ~ZswapOff() {
        if (was_ == "Y") {
            try {
                write_text(kPath, "Y");
            } catch (const std::exception&) {
            }
        }
    }
    const std::string& was() const noexcept { return was_; }

  private:
    static constexpr const char* kPath = "/sys/module/zswap/parameters/enabled";
    std::string was_;
};

// ---- the workload, in a child ----

struct Counters {
    std::uint64_t out = 0; // pages written to swap
    std::uint64_t in = 0;  // pages read from swap
    // The disk holding the swap area (/sys/dev/block/M:m/stat): requests
    // and 512-byte sectors completed.
    std::uint64_t wr_ios = 0, wr_sectors = 0, rd_ios = 0, rd_sectors = 0;
    std::uint64_t waits = 0; // machvm: faults that waited for room

    Counters operator-(const Counters& b) const {
        return {out - b.out,       in - b.in,
                wr_ios - b.wr_ios, wr_sectors - b.wr_sectors,
                rd_ios - b.rd_ios, rd_sectors - b.rd_sectors,
                waits - b.waits};
    }
    Counters& operator+=(const Counters& b) {
        out += b.out;
        in += b.in;
        wr_ios += b.wr_ios;
        wr_sectors += b.wr_sectors;
        rd_ios += b.rd_ios;
        rd_sectors += b.rd_sectors;
        waits += b.waits;
        return *this;
    }
};

// /sys/dev/block/M:m/stat of the disk that holds `path` (a block device
// itself, or a file system's directory).
std::string disk_stat_path(const std::string& path) {
    struct stat st;
    if (::stat(path.c_str(), &st) < 0)
        throw_errno("stat " + path);
    const dev_t d = S_ISBLK(st.st_mode) ? st.st_rdev : st.st_dev;
    return "/sys/dev/block/" + std::to_string(major(d)) + ":" + std::to_string(minor(d)) + "/stat";
}

void add_disk_stat(const std::string& stat_path, Counters& c) {
    std::ifstream f(stat_path);
    std::uint64_t v[7] = {};
    for (auto& x : v)
        f >> x;
    c.rd_ios = v[0];
    c.rd_sectors = v[2];
    c.wr_ios = v[4];
    c.wr_sectors = v[6];
}

Counters linux_counters() {
    Counters c;
    std::ifstream f("/proc/vmstat");
    std::string key;
    std::uint64_t v;
    while (f >> key >> v) {
        if (key == "pswpout")
            c.out = v;
        else if (key == "pswpin")
            c.in = v;
    }
    return c;
}

Counters machvm_counters(Admin& admin) {
    const machvm::Stats s = admin.stats();
    Counters c;
    c.out = s.swap_writes;
    c.in = s.pageins;
    c.waits = s.limit_waits;
    return c;
}

// What a child sends back over its pipe.
struct ChildReport {
    int error = 0;      // errno of a failed step, 0 if none
    char what[96] = {}; // the step that failed
    std::uint64_t bad_pages = 0;
    std::uint64_t object = 0; // machvm: the object's name
    std::uint64_t write_ns = 0;
    std::uint64_t read_ns = 0;
    Counters c0, c1, c2; // before writing, after writing, after reading
};

std::uint64_t page_seed(std::uint64_t page) noexcept {
    return (page + 1) * 0x9e3779b97f4a7c15ull;
}

// Writes every word of every page, then reads every word back, summing each
// page: the two timed passes, each split into @threads contiguous parts
// done at once.  Pages whose sum is wrong go to r.bad_pages.
template <class Count>
void workload(std::byte* buf, std::uint64_t size, std::uint64_t page, unsigned threads, Count count,
              ChildReport& r) {
    const std::uint64_t pages = size / page;
    const std::uint64_t words = page / 8;
    // sum of (s + i) for i in [0, words): words * s + words * (words - 1) / 2
    const std::uint64_t tri = words * (words - 1) / 2;
    std::vector<std::uint64_t> bad(threads);
    auto write_part = [&](unsigned k) {
        for (std::uint64_t p = pages * k / threads; p < pages * (k + 1) / threads; ++p) {
            auto* w = reinterpret_cast<volatile std::uint64_t*>(buf + p * page);
            const std::uint64_t s = page_seed(p);
            for (std::uint64_t i = 0; i < words; ++i)
                w[i] = s + i;
        }
    };
    auto read_part = [&](unsigned k) {
        for (std::uint64_t p = pages * k / threads; p < pages * (k + 1) / threads; ++p) {
            const auto* w = reinterpret_cast<const volatile std::uint64_t*>(buf + p * page);
            std::uint64_t sum = 0;
            for (std::uint64_t i = 0; i < words; ++i)
                sum += w[i];
            if (sum != words * page_seed(p) + tri)
                ++bad[k];
        }
    };
    auto run = [threads](auto& part) {
        std::vector<std::jthread> ts;
        for (unsigned k = 1; k < threads; ++k)
            ts.emplace_back(part, k);
        part(0);
    };
    r.c0 = count();
    std::uint64_t t0 = now_ns();
    run(write_part);
    r.write_ns = now_ns() - t0;
    r.c1 = count();
    t0 = now_ns();
    run(read_part);
    r.read_ns = now_ns() - t0;
    r.c2 = count();
    for (std::uint64_t b : bad)
        r.bad_pages += b;
}

void child_fail(ChildReport& r, const char* what) {
    r.error = errno ? errno : EIO;
    std::snprintf(r.what, sizeof(r.what), "%s", what);
}

// The child's body for one side; fills r.
void child_main(Side side, const Options& o, const std::string& disk, ChildReport& r) {
    const std::uint64_t page = page_size();
    if (side == Side::Linux) {
        void* p =
            ::mmap(nullptr, o.size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            return child_fail(r, "mmap anonymous buffer");
        ::madvise(p, o.size, MADV_NOHUGEPAGE);
        workload(
            static_cast<std::byte*>(p), o.size, page, o.threads,
            [&] {
                Counters c = linux_counters();
                add_disk_stat(disk, c);
                return c;
            },
            r);
        ::munmap(p, o.size);
        return;
    }
    std::optional<Admin> admin;
    try {
        admin.emplace();
    } catch (const std::exception&) {
        errno = ENOENT;
        return child_fail(r, "machvm genl family");
    }
    machvm::Fd dev(::open(MACHVM_DEVICE, O_RDWR | O_CLOEXEC));
    if (!dev)
        return child_fail(r, "open " MACHVM_DEVICE);
    machvm_anon_create ac{};
    ac.size = o.size;
    ac.resident_limit = o.limit / page;
    if (::ioctl(dev.get(), MACHVM_IOC_ANON_CREATE, &ac) < 0)
        return child_fail(r, "MACHVM_IOC_ANON_CREATE");
    r.object = ac.name;
    machvm::Fd obj(ac.fd);
    void* p = ::mmap(nullptr, o.size, PROT_READ | PROT_WRITE, MAP_SHARED, obj.get(), 0);
    if (p == MAP_FAILED)
        return child_fail(r, "mmap machvm object");
    try {
        workload(
            static_cast<std::byte*>(p), o.size, page, o.threads,
            [&] {
                Counters c = machvm_counters(*admin);
                add_disk_stat(disk, c);
                return c;
            },
            r);
    } catch (const std::exception&) {
        errno = EPROTO;
        child_fail(r, "machvm GET_STATS");
    }
    ::munmap(p, o.size);
}

struct CaseResult {
    Target target;
    Side side;
    unsigned runs = 0;
    std::uint64_t bytes = 0; // per pass, summed over rounds
    std::uint64_t write_ns = 0;
    std::uint64_t read_ns = 0;
    Counters write; // swap traffic of the writing passes
    Counters read;  // and of the reading passes
    std::uint64_t cgroup_peak = 0;
    std::uint64_t remove_wait_ms = 0; // machvm: SWAP_REMOVE waited for slots
    std::uint64_t gone_wait_ms = 0;   // machvm: the object outlived its process

    double write_mib_s() const { return mib_s(write_ns); }
    double read_mib_s() const { return mib_s(read_ns); }
    double mib_s(std::uint64_t ns) const {
        return ns ? static_cast<double>(bytes) / (1 << 20) / (static_cast<double>(ns) / 1e9) : 0;
    }
};

// Forks the child (in `cg` if given), waits for it, adds its numbers to `res`.
// Returns the machvm object's name (0 for Linux).
std::uint64_t run_child(Side side, const Options& o, Cgroup* cg, const std::string& disk,
                        CaseResult& res) {
    int ready[2], report[2];
    if (::pipe2(ready, O_CLOEXEC) < 0 || ::pipe2(report, O_CLOEXEC) < 0)
        throw_errno("pipe");
    machvm::Fd ready_r(ready[0]), ready_w(ready[1]), report_r(report[0]), report_w(report[1]);
    std::fflush(nullptr);
    const pid_t pid = ::fork();
    if (pid < 0)
        throw_errno("fork");
    if (pid == 0) {
        ready_w.reset();
        report_r.reset();
        char go;
        if (::read(ready_r.get(), &go, 1) != 1) // in its cgroup now
            ::_exit(machvm::kExitFailure);
        ::alarm(o.timeout_s);
        ChildReport r;
        child_main(side, o, disk, r);
        const ssize_t n = ::write(report_w.get(), &r, sizeof(r));
        ::_exit(n == static_cast<ssize_t>(sizeof(r)) ? 0 : machvm::kExitFailure);
    }
    ready_r.reset();
    report_w.reset();
    auto reap = [&] {
        int st;
        while (::waitpid(pid, &st, 0) < 0)
            if (errno != EINTR)
                throw_errno("waitpid");
        return st;
    };
    try {
        if (cg)
            cg->add(pid);
    } catch (...) {
        ::kill(pid, SIGKILL);
        reap();
        throw;
    }
    if (::write(ready_w.get(), "g", 1) != 1)
        throw_errno("start child");
    ready_w.reset();
    ChildReport r;
    std::size_t got = 0;
    while (got < sizeof(r)) {
        const ssize_t n =
            ::read(report_r.get(), reinterpret_cast<char*>(&r) + got, sizeof(r) - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += static_cast<std::size_t>(n);
    }
    const int st = reap();
    const std::string name = std::string(side_name(side)) + "/" + target_name(res.target);
    if (WIFSIGNALED(st))
        throw std::runtime_error(name + ": the child died of signal " +
                                 std::to_string(WTERMSIG(st)) +
                                 (WTERMSIG(st) == SIGALRM ? " (--timeout)" : ""));
    if (got != sizeof(r) || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        throw std::runtime_error(name + ": the child failed without a report");
    if (r.error)
        throw std::system_error(r.error, std::generic_category(), name + ": " + r.what);
    if (r.bad_pages)
        throw std::runtime_error(name + ": " + std::to_string(r.bad_pages) +
                                 " pages read back wrong");
    // The limit must have bitten: at least half of what did not fit was
    // written to swap while writing, or the numbers measure nothing.
    const std::uint64_t must = (o.size - o.limit) / page_size() / 2;
    if (r.c1.out - r.c0.out < must)
        throw std::runtime_error(name + ": only " + std::to_string(r.c1.out - r.c0.out) +
                                 " pages went to swap while writing (expected at least " +
                                 std::to_string(must) + "): the memory limit did not hold");
    res.runs++;
    res.bytes += o.size;
    res.write_ns += r.write_ns;
    res.read_ns += r.read_ns;
    res.write += r.c1 - r.c0;
    res.read += r.c2 - r.c1;
    if (cg)
        res.cgroup_peak = std::max(res.cgroup_peak, cg->peak());
    return r.object;
}

// The object dies with the child's last mapping and descriptor, but may be
// freed a little after the child is reaped.  A SWAP_REMOVE before that would
// read its pages back in (over its limit), so wait until it is gone: at most
// 10 s, or the run fails.  Returns the milliseconds waited.
std::uint64_t wait_object_gone(Admin& admin, std::uint64_t name) {
    const std::uint64_t t0 = now_ns();
    while (admin.object_exists(name)) {
        if (now_ns() - t0 > 10000000000ull)
            throw std::runtime_error("machvm object " + std::to_string(name) +
                                     " still exists 10 s after its process exited");
        ::usleep(20000);
    }
    return (now_ns() - t0) / 1000000;
}

// One case: set up the side's swap area on the target, run, tear down.
void run_case(Target t, Side side, const Options& o, std::optional<Admin>& admin, CaseResult& res) {
    const std::uint64_t file_bytes = o.file_size;
    const std::string disk = disk_stat_path(t == Target::File ? o.dir : o.dev);
    drop_caches();
    if (side == Side::Linux) {
        Cgroup cg(o.limit);
        if (t == Target::File) {
            SwapFile f(o.dir + "/linux.swap", file_bytes);
            LinuxSwap s(f.path());
            run_child(side, o, &cg, disk, res);
        } else {
            LinuxSwap s(o.dev);
            run_child(side, o, &cg, disk, res);
        }
        return;
    }
    if (!admin)
        admin.emplace();
    if (t == Target::File) {
        const std::string path = o.dir + "/machvm.swap";
        ::unlink(path.c_str());
        struct Unlink {
            std::string p;
            ~Unlink() { ::unlink(p.c_str()); }
        } unlink_after{path};
        MachvmSwap s(*admin, path, file_bytes);
        const std::uint64_t name = run_child(side, o, nullptr, disk, res);
        res.gone_wait_ms += wait_object_gone(*admin, name);
        res.remove_wait_ms += s.remove();
    } else {
        MachvmSwap s(*admin, o.dev, 0);
        const std::uint64_t name = run_child(side, o, nullptr, disk, res);
        res.gone_wait_ms += wait_object_gone(*admin, name);
        res.remove_wait_ms += s.remove();
    }
}

// ---- output ----

struct Machine : bench::Machine {
    std::string fs; // of --dir
    std::string page_cluster;
    std::string zswap;
};

Machine describe_machine(const Options& o, const std::string& zswap) {
    Machine m;
    static_cast<bench::Machine&>(m) = bench::describe_machine();
    struct statfs sf;
    if (!o.dir.empty() && ::statfs(o.dir.c_str(), &sf) == 0)
        m.fs = sf.f_type == EXT4_SUPER_MAGIC ? "ext4"
               : sf.f_type == TMPFS_MAGIC    ? "tmpfs"
                                             : "other";
    m.page_cluster = read_text("/proc/sys/vm/page-cluster");
    m.zswap = zswap.empty() ? "absent" : zswap;
    return m;
}

const CaseResult* find(const std::vector<CaseResult>& rs, Target t, Side s) {
    for (const CaseResult& r : rs)
        if (r.target == t && r.side == s)
            return &r;
    return nullptr;
}

// machvm over linux on the same target, for a machvm row.
std::optional<double> ratio(const std::vector<CaseResult>& rs, const CaseResult& r, bool write) {
    const CaseResult* lin = find(rs, r.target, Side::Linux);
    if (r.side != Side::Machvm || !lin)
        return std::nullopt;
    const double a = write ? r.write_mib_s() : r.read_mib_s();
    const double b = write ? lin->write_mib_s() : lin->read_mib_s();
    if (b <= 0)
        return std::nullopt;
    return a / b;
}

std::string disk_json(const Counters& c) {
    return "{\"write_ios\": " + std::to_string(c.wr_ios) +
           ", \"write_kib\": " + std::to_string(c.wr_sectors / 2) +
           ", \"read_ios\": " + std::to_string(c.rd_ios) +
           ", \"read_kib\": " + std::to_string(c.rd_sectors / 2) + "}";
}

std::string json_document(const Machine& m, const Options& o,
                          const std::map<std::string, std::uint64_t>& po,
                          const std::vector<CaseResult>& rs) {
    std::string j = "{\n \"benchmark\": \"pageout\",\n";
    j += " \"machine\": {\"kernel\": " + json_string(m.kernel) +
         ", \"nproc\": " + std::to_string(m.nproc) + ", \"cpu\": " + json_string(m.cpu) +
         ", \"page_size\": " + std::to_string(m.page) + "},\n";
    j += " \"config\": {\"size_bytes\": " + std::to_string(o.size) +
         ", \"limit_bytes\": " + std::to_string(o.limit) +
         ", \"swap_file_bytes\": " + std::to_string(o.file_size) +
         ", \"rounds\": " + std::to_string(o.rounds) +
         ", \"threads\": " + std::to_string(o.threads) + ", \"swap_dir\": " + json_string(o.dir) +
         ", \"swap_dir_fs\": " + json_string(m.fs) + ", \"swap_dev\": " + json_string(o.dev) +
         ", \"vm_page_cluster\": " + json_string(m.page_cluster) +
         ", \"zswap_before\": " + json_string(m.zswap) + ", \"machvm_pageout\": {";
    bool first = true;
    for (const auto& [k, v] : po) {
        j += (first ? "" : ", ") + json_string(k) + ": " + std::to_string(v);
        first = false;
    }
    j += "}},\n \"results\": [";
    for (std::size_t i = 0; i < rs.size(); ++i) {
        const CaseResult& r = rs[i];
        j += i ? ",\n  " : "\n  ";
        j += "{\"target\": " + json_string(target_name(r.target)) +
             ", \"side\": " + json_string(side_name(r.side)) +
             ", \"runs\": " + std::to_string(r.runs) + ", \"bytes\": " + std::to_string(r.bytes) +
             ", \"write_s\": " + bench::number(static_cast<double>(r.write_ns) / 1e9, "%.6f") +
             ", \"read_s\": " + bench::number(static_cast<double>(r.read_ns) / 1e9, "%.6f") +
             ", \"write_mib_s\": " + bench::number(r.write_mib_s(), "%.2f") +
             ", \"read_mib_s\": " + bench::number(r.read_mib_s(), "%.2f") +
             ", \"write_pass_pages_out\": " + std::to_string(r.write.out) +
             ", \"write_pass_pages_in\": " + std::to_string(r.write.in) +
             ", \"read_pass_pages_out\": " + std::to_string(r.read.out) +
             ", \"read_pass_pages_in\": " + std::to_string(r.read.in) +
             ", \"write_pass_disk\": " + disk_json(r.write) +
             ", \"read_pass_disk\": " + disk_json(r.read) +
             ", \"write_pass_limit_waits\": " + std::to_string(r.write.waits) +
             ", \"read_pass_limit_waits\": " + std::to_string(r.read.waits) +
             ", \"cgroup_peak_bytes\": " + std::to_string(r.cgroup_peak) +
             ", \"swap_remove_wait_ms\": " + std::to_string(r.remove_wait_ms) +
             ", \"object_gone_wait_ms\": " + std::to_string(r.gone_wait_ms) +
             ", \"write_vs_linux\": " + bench::json_ratio(ratio(rs, r, true)) +
             ", \"read_vs_linux\": " + bench::json_ratio(ratio(rs, r, false)) + "}";
    }
    j += "\n ]\n}\n";
    return j;
}

void print_table(const Machine& m, const Options& o, const std::vector<CaseResult>& rs) {
    std::printf("pageout/pagein: %s, %ld CPUs, %s; swap files on %s (%s), partition %s\n",
                m.kernel.c_str(), m.nproc, m.cpu.empty() ? "?" : m.cpu.c_str(), o.dir.c_str(),
                m.fs.c_str(), o.dev.c_str());
    std::printf("%llu MiB written then read back with %llu MiB resident, %u round%s; "
                "MiB/s = buffer / pass time\n",
                static_cast<unsigned long long>(o.size >> 20),
                static_cast<unsigned long long>(o.limit >> 20), o.rounds, o.rounds == 1 ? "" : "s");
    const double mib_per_page = static_cast<double>(m.page) / (1 << 20);
    std::printf("%-10s %-7s %11s %10s %10s %11s %10s %10s %9s %9s\n", "target", "side",
                "write MiB/s", "out MiB", "in MiB", "read MiB/s", "in MiB", "out MiB", "write:lx",
                "read:lx");
    for (const CaseResult& r : rs) {
        std::printf("%-10s %-7s %11.1f %10.1f %10.1f %11.1f %10.1f %10.1f %9s %9s\n",
                    target_name(r.target), side_name(r.side), r.write_mib_s(),
                    static_cast<double>(r.write.out) * mib_per_page,
                    static_cast<double>(r.write.in) * mib_per_page, r.read_mib_s(),
                    static_cast<double>(r.read.in) * mib_per_page,
                    static_cast<double>(r.read.out) * mib_per_page,
                    bench::ratio_cell(ratio(rs, r, true)).c_str(),
                    bench::ratio_cell(ratio(rs, r, false)).c_str());
    }
    std::printf("(out/in MiB: swap traffic of the writing pass, then of the reading pass)\n");
    std::printf("\nrequests completed by the disk holding the swap area, and their average size\n");
    std::printf("%-10s %-7s %-5s %9s %10s %9s %10s %12s\n", "target", "side", "pass", "writes",
                "KiB/write", "reads", "KiB/read", "limit waits");
    for (const CaseResult& r : rs)
        for (const auto& [pass, c] : {std::pair{"write", &r.write}, {"read", &r.read}}) {
            auto avg = [](std::uint64_t sectors, std::uint64_t ios) {
                return ios ? static_cast<double>(sectors) / 2 / static_cast<double>(ios) : 0.0;
            };
            std::printf("%-10s %-7s %-5s %9llu %10.1f %9llu %10.1f %12s\n", target_name(r.target),
                        side_name(r.side), pass, static_cast<unsigned long long>(c->wr_ios),
                        avg(c->wr_sectors, c->wr_ios), static_cast<unsigned long long>(c->rd_ios),
                        avg(c->rd_sectors, c->rd_ios),
                        r.side == Side::Machvm ? std::to_string(c->waits).c_str() : "-");
        }
}

int run(const Options& o) {
    ZswapOff zswap;
    const Machine machine = describe_machine(o, zswap.was());
    std::optional<Admin> admin;
    std::map<std::string, std::uint64_t> po;
    if (std::find(o.sides.begin(), o.sides.end(), Side::Machvm) != o.sides.end()) {
        admin.emplace();
        const machvm::PageoutInfo p = admin->pageout();
        po = {{"limit", p.limit}, {"obj_limit", p.obj_limit}, {"high", p.high},
              {"low", p.low},     {"batch", p.batch},         {"interval_ms", p.interval_ms}};
    }
    std::vector<CaseResult> rs;
    for (Target t : o.targets)
        for (Side s : o.sides)
            rs.push_back(CaseResult{t, s, 0, 0, 0, 0, {}, {}, 0, 0, 0});
    for (unsigned round = 0; round < o.rounds; ++round)
        for (CaseResult& total : rs) {
            const std::uint64_t t0 = now_ns();
            CaseResult r{total.target, total.side, 0, 0, 0, 0, {}, {}, 0, 0, 0};
            run_case(r.target, r.side, o, admin, r);
            total.runs += r.runs;
            total.bytes += r.bytes;
            total.write_ns += r.write_ns;
            total.read_ns += r.read_ns;
            total.write += r.write;
            total.read += r.read;
            total.cgroup_peak = std::max(total.cgroup_peak, r.cgroup_peak);
            total.remove_wait_ms += r.remove_wait_ms;
            total.gone_wait_ms += r.gone_wait_ms;
            if (r.gone_wait_ms > 100)
                progress(o, "note: the object outlived its process by %llu ms",
                         static_cast<unsigned long long>(r.gone_wait_ms));
            if (r.remove_wait_ms > 100)
                progress(o, "note: SWAP_REMOVE waited %llu ms for the object's swap slots",
                         static_cast<unsigned long long>(r.remove_wait_ms));
            progress(o,
                     "round %u of %u: %s on a swap %s: write %.1f MiB/s, read %.1f MiB/s "
                     "(%.1f s)",
                     round + 1, o.rounds, side_name(r.side), target_name(r.target), r.write_mib_s(),
                     r.read_mib_s(), static_cast<double>(now_ns() - t0) / 1e9);
        }
    std::fflush(stderr);
    print_table(machine, o, rs);
    bench::emit_json(o.out, json_document(machine, o, po, rs));
    return machvm::kExitOk;
}

} // namespace

int main(int argc, char** argv) {
    return bench::main(argc, argv, kProg, kHelp, defaults(), option, check, run);
}
