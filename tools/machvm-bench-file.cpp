// SPDX-License-Identifier: GPL-2.0
//
// machvm-bench-file: a cold file read through a mapping, three ways: the
// real file-pager program serving a machvm object of the file, a
// userfaultfd handler that preads the same clusters and copies them in, and
// a plain mmap(2) of the file (the kernel's own page cache and read-ahead,
// the limit).  Every run starts after drop_caches; MB/s and the ratios.
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <machvm/admin.hpp>
#include <machvm/cli.hpp>
#include <machvm/fd.hpp>
#include <machvm/fdpass.hpp>

#include "bench/bench.hpp"

#include "pattern.hpp"

extern char** environ;

namespace {

namespace bench = machvm::bench;
using bench::json_string;
using bench::Mapping;
using bench::now_ns;
using bench::page_size;
using bench::ratio_cell;
using bench::throw_errno;

constexpr const char* kProg = "machvm-bench-file";

const char kHelp[] =
    "NAME\n"
    "       machvm-bench-file - a cold file read through a mapping: file-pager\n"
    "       against userfaultfd and the kernel's own mmap\n"
    "\n"
    "SYNOPSIS\n"
    "       machvm-bench-file [--size SIZE] [--dir DIR] [--threads LIST]\n"
    "                         [--cluster LIST] [--cases LIST] [--server-threads N]\n"
    "                         [--readahead SIZE] [--pager PATH] [--runs N]\n"
    "                         [--no-drop-caches] [--timeout SEC] [--json PATH]\n"
    "                         [--json-name NAME] [--quiet | --verbose]\n"
    "\n"
    "DESCRIPTION\n"
    "       Writes a file of SIZE on DIR (a pattern that depends on the offset:\n"
    "       the 8-byte word at offset W is W ^ 0x9e3779b97f4a7c15), fsyncs it,\n"
    "       and then, for every cluster size, every reading-thread count and\n"
    "       every case in turn (and again in every --runs round): syncs and\n"
    "       drops the kernel's caches (echo 3 > /proc/sys/vm/drop_caches), maps\n"
    "       the file the case's way, releases the reading threads together from\n"
    "       a barrier, and has each read one byte of every page of its own\n"
    "       contiguous part of the file, in order.  MB/s is SIZE (in units of\n"
    "       10^6 bytes) over the wall time from the first thread leaving the\n"
    "       barrier to the last one finishing.  After the clock stops every byte\n"
    "       of the mapping is compared with the pattern; one wrong byte fails the\n"
    "       run (exit status 1).\n"
    "\n"
    "       The cases (--cases names in brackets):\n"
    "\n"
    "       machvm [machvm]\n"
    "              The file-pager program (--pager), started for the run as\n"
    "              \"file-pager --cluster N --threads S --timeout 60000\n"
    "              [--readahead R] --socket SOCK FILE\": the benchmark gets the\n"
    "              object's descriptor over SOCK (SCM_RIGHTS), maps it MAP_SHARED\n"
    "              and stops the pager (SIGTERM) after the run.  The kernel asks\n"
    "              for the aligned N pages around a fault; file-pager reads them\n"
    "              with io_uring and, once it sees the requests go in order,\n"
    "              supplies the pages after them unasked (its read-ahead, up to\n"
    "              --readahead).\n"
    "       userfaultfd [uffd]\n"
    "              An anonymous MAP_PRIVATE region registered with\n"
    "              UFFDIO_REGISTER_MODE_MISSING.  S handler threads each take a\n"
    "              fault, pread(2) the aligned N pages around it from the file\n"
    "              into a buffer of their own and put them in with one\n"
    "              UFFDIO_COPY (if some are there already: from the faulting page\n"
    "              to the end of the cluster, then that page alone, as\n"
    "              machvm-bench-faults does).  No read-ahead of its own; the\n"
    "              kernel's read-ahead still works under pread.\n"
    "       mmap [mmap]\n"
    "              The file opened read-only and mapped MAP_SHARED: the kernel's\n"
    "              page cache, fault-around and read-ahead.  N does not apply;\n"
    "              it runs with every N so that each ratio comes from one round.\n"
    "\n"
    "       Ratios: machvm's MB/s over userfaultfd's and over mmap's, with the\n"
    "       same N and the same number of reading threads (above 1: machvm is\n"
    "       faster).  For each run the tool also counts what the servers did:\n"
    "       the requests the server's user-space code got (machvm: the object's\n"
    "       data_requests, from the module's netlink counters; userfaultfd: the\n"
    "       faults read from the descriptor), the pages put in per request,\n"
    "       the server's CPU time, and the disk's reads in the meantime (from\n"
    "       /sys/dev/block/MAJ:MIN/stat of DIR's device): their count and mean\n"
    "       size.\n"
    "\n"
    "OUTPUT\n"
    "       Progress goes to stderr.  stdout gets the table, then a line\n"
    "       \"@@JSON file.json\" (see --json-name), the results as one JSON\n"
    "       document (machine, configuration, one entry per case, N and thread\n"
    "       count), and a line \"@@END\": the VM harness (make bench) extracts that\n"
    "       block into build/bench/<kernel>/file.json.\n"
    "\n"
    "OPTIONS\n"
    "       --size SIZE\n"
    "              The file's size (K, M, G suffixes; rounded up to whole pages,\n"
    "              at most 16G; default 128M).\n"
    "       --dir DIR\n"
    "              Where the file goes (default $MVM_DISK_DIR, the VM's ext4\n"
    "              disk).  It is removed at the end.\n"
    "       --threads LIST\n"
    "              Comma-separated reading-thread counts (each 1-64, default 1).\n"
    "       --cluster LIST\n"
    "              Comma-separated cluster sizes N in pages (powers of two, 1-64,\n"
    "              default 16,64).\n"
    "       --cases LIST\n"
    "              Comma-separated cases: machvm, uffd, mmap, or all (default\n"
    "              all).\n"
    "       --server-threads N\n"
    "              file-pager's --threads and the number of userfaultfd handler\n"
    "              threads (1-64, default 1).\n"
    "       --readahead SIZE\n"
    "              Passed to file-pager as --readahead (default: file-pager's\n"
    "              own, 1M; 0 turns its read-ahead off).\n"
    "       --pager PATH\n"
    "              The file-pager program (default: file-pager, found in PATH).\n"
    "       --runs N\n"
    "              Rounds (1-100, default 1), merged: MB/s over the summed wall\n"
    "              time.\n"
    "       --no-drop-caches\n"
    "              Do not drop the caches before a run (needs no root; the file\n"
    "              is then warm and the numbers are not of a cold file).\n"
    "       --timeout SEC\n"
    "              Give up (exit status 1) when one run takes longer (default 600).\n"
    "       --json PATH\n"
    "              Also write the JSON document to PATH.\n"
    "       --json-name NAME\n"
    "              The name on the \"@@JSON\" line (default file.json).\n"
    "       -q, --quiet\n"
    "              No progress lines on stderr.\n"
    "       -v, --verbose\n"
    "              One line per run on stderr.\n"
    "       -h, --help\n"
    "              Print this manual and exit.\n"
    "\n"
    "EXIT STATUS\n"
    "       0      Success.\n"
    "       1      Failure: a syscall failed (errno text on stderr), file-pager\n"
    "              could not be started or died, a read got SIGBUS, a page held\n"
    "              the wrong data, or a run timed out.\n"
    "       2      Bad command line.\n"
    "\n"
    "NOTES\n"
    "       Needs root for drop_caches, the machvm module (/dev/machvm) and\n"
    "       file-pager for machvm, and userfaultfd(2) for uffd.  Absolute numbers\n"
    "       depend on the machine and the disk; compare the ratios, which come\n"
    "       from the same round.\n"
    "\n"
    "EXAMPLES\n"
    "       machvm-bench-file\n"
    "       machvm-bench-file --size 32M --dir /tmp --threads 1,4 --cluster 16\n"
    "       machvm-bench-file --cases mmap --no-drop-caches --dir /tmp --size 1M\n";

enum class CaseKind { Machvm, Uffd, Mmap };

const char* case_name(CaseKind k) noexcept {
    switch (k) {
    case CaseKind::Machvm:
        return "machvm";
    case CaseKind::Uffd:
        return "userfaultfd";
    case CaseKind::Mmap:
        return "mmap";
    }
    return "?";
}

struct Options {
    std::uint64_t size = 128ull << 20;
    std::string dir;
    std::vector<unsigned> threads{1};
    std::vector<unsigned> clusters{16, 64};
    std::vector<CaseKind> cases{CaseKind::Machvm, CaseKind::Uffd, CaseKind::Mmap};
    unsigned server_threads = 1;
    std::optional<std::uint64_t> readahead;
    std::string pager = "file-pager";
    unsigned runs = 1;
    bool drop_caches = true;
    unsigned timeout_s = 600;
    bench::Output out{"", "file.json"};
    bool verbose = false;
};

// One option at the reader's position; false if it is none of ours.
bool option(machvm::ArgReader& args, Options& o) {
    if (auto v = args.value("--size")) {
        o.size = machvm::size_arg("--size", *v);
        if (o.size == 0 || o.size > (16ull << 30))
            throw machvm::UsageError("--size: " + *v + " is not 1 byte to 16G");
    } else if (auto v = args.value("--dir")) {
        if (v->empty())
            throw machvm::UsageError("--dir: empty path");
        o.dir = *v;
    } else if (auto v = args.value("--threads")) {
        o.threads.clear();
        for (std::string_view t : bench::split_commas(*v))
            o.threads.push_back(static_cast<unsigned>(machvm::uint_arg("--threads", t, 1, 64)));
    } else if (auto v = args.value("--cluster")) {
        o.clusters.clear();
        for (std::string_view c : bench::split_commas(*v)) {
            const auto n = static_cast<unsigned>(machvm::uint_arg("--cluster", c, 1, 64));
            if (n & (n - 1))
                throw machvm::UsageError("--cluster: " + std::string(c) + " is not a power of two");
            o.clusters.push_back(n);
        }
    } else if (auto v = args.value("--cases")) {
        o.cases = bench::list_arg<CaseKind>(
            "--cases", *v,
            {{"machvm", CaseKind::Machvm}, {"uffd", CaseKind::Uffd}, {"mmap", CaseKind::Mmap}},
            true);
    } else if (auto v = args.value("--server-threads")) {
        o.server_threads = static_cast<unsigned>(machvm::uint_arg("--server-threads", *v, 1, 64));
    } else if (auto v = args.value("--readahead")) {
        o.readahead = machvm::size_arg("--readahead", *v);
        if (*o.readahead > (64ull << 20))
            throw machvm::UsageError("--readahead: " + *v + " is more than 64M");
    } else if (auto v = args.value("--pager")) {
        if (v->empty())
            throw machvm::UsageError("--pager: empty path");
        o.pager = *v;
    } else if (auto v = args.value("--runs")) {
        o.runs = static_cast<unsigned>(machvm::uint_arg("--runs", *v, 1, 100));
    } else if (args.flag("--no-drop-caches")) {
        o.drop_caches = false;
    } else if (auto v = args.value("--timeout")) {
        o.timeout_s = static_cast<unsigned>(machvm::uint_arg("--timeout", *v, 1, 86400));
    } else if (bench::output_option(args, o.out)) {
    } else if (args.flag("--verbose", "-v")) {
        o.verbose = true;
    } else {
        return false;
    }
    return true;
}

// The combination of options; UsageError.
void check(Options& o) {
    if (o.dir.empty())
        throw machvm::UsageError("no --dir, and MVM_DISK_DIR is not set");
    const std::uint64_t page = page_size();
    o.size = (o.size + page - 1) / page * page;
    const unsigned most = *std::max_element(o.threads.begin(), o.threads.end());
    if (o.size / page < most)
        throw machvm::UsageError("--size: fewer pages than reading threads");
}

// ---- small helpers ----

// The benchmark's file: written with the pattern and fsynced, removed when
// it goes.
class PatternFile {
  public:
    PatternFile(const std::string& dir, std::uint64_t size)
        : path_(dir + "/machvm-bench-file." + std::to_string(::getpid()) + ".data") {
        machvm::Fd fd = machvm::Fd::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644)
                            .value_or_throw("create " + path_);
        created_ = true;
        std::vector<std::byte> buf(1u << 20);
        for (std::uint64_t off = 0; off < size;) {
            const std::size_t n =
                static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), size - off));
            machvm::fill_pattern(off, std::span<std::byte>(buf.data(), n));
            std::size_t done = 0;
            while (done < n) {
                const ssize_t w =
                    ::pwrite(fd.get(), buf.data() + done, n - done, static_cast<off_t>(off + done));
                if (w < 0 && errno == EINTR)
                    continue;
                if (w <= 0)
                    throw_errno("write " + path_, w < 0 ? errno : EIO);
                done += static_cast<std::size_t>(w);
            }
            off += n;
        }
        if (::fsync(fd.get()) < 0)
            throw_errno("fsync " + path_);
        struct stat st;
        if (::fstat(fd.get(), &st) < 0)
            throw_errno("fstat " + path_);
        dev_ = st.st_dev;
    }
    PatternFile(const PatternFile&) = delete;
    PatternFile& operator=(const PatternFile&) = delete;
    ~PatternFile() {
        if (created_)
            ::unlink(path_.c_str());
    }

    const std::string& path() const noexcept { return path_; }
    dev_t dev() const noexcept { return dev_; }

  private:
    std::string path_;
    bool created_ = false;
    dev_t dev_ = 0;
};

// sync(2), then echo 3 > /proc/sys/vm/drop_caches.
void drop_caches() {
    ::sync();
    machvm::Fd fd =
        machvm::Fd::open("/proc/sys/vm/drop_caches", O_WRONLY)
            .value_or_throw("open /proc/sys/vm/drop_caches (root? or --no-drop-caches)");
    if (::write(fd.get(), "3\n", 2) != 2)
        throw_errno("write /proc/sys/vm/drop_caches");
}

// The reads a block device has completed, and their sectors (512 bytes):
// /sys/dev/block/MAJ:MIN/stat.  Zeros if there is no such file (tmpfs).
struct DiskReads {
    std::uint64_t ios = 0, sectors = 0;
};
DiskReads disk_reads(dev_t dev) {
    std::ifstream f("/sys/dev/block/" + std::to_string(major(dev)) + ":" +
                    std::to_string(minor(dev)) + "/stat");
    DiskReads d;
    std::uint64_t merges = 0;
    if (!(f >> d.ios >> merges >> d.sectors))
        return {};
    return d;
}

// User and system CPU time in seconds.
struct Cpu {
    double user = 0, sys = 0;
    Cpu operator-(const Cpu& o) const noexcept { return {user - o.user, sys - o.sys}; }
    Cpu& operator+=(const Cpu& o) noexcept {
        user += o.user;
        sys += o.sys;
        return *this;
    }
};

// A process's or a thread's CPU time from its stat file (/proc/PID/stat,
// /proc/self/task/TID/stat), or zeros.
Cpu cpu_of(const std::string& stat) {
    const std::string s = bench::read_text(stat);
    const std::size_t paren = s.rfind(')');
    if (paren == std::string::npos)
        return {};
    std::istringstream in(s.substr(paren + 1));
    std::string field;
    unsigned long long utime = 0, stime = 0;
    // After "pid (comm)": state is field 3; utime and stime are 14 and 15.
    for (int i = 3; i <= 13 && in >> field; ++i) {
    }
    if (!(in >> utime >> stime))
        return {};
    const long hz = ::sysconf(_SC_CLK_TCK);
    const double tick = 1.0 / static_cast<double>(hz > 0 ? hz : 100);
    return {static_cast<double>(utime) * tick, static_cast<double>(stime) * tick};
}

// What a case's server did during one run.
struct ServerCounts {
    std::uint64_t requests = 0; // requests its user-space code got
    std::uint64_t pages = 0;    // pages it put in
    Cpu cpu;                    // its CPU time
    bool known = false;
};

// ---- the cases ----

class Case {
  public:
    virtual ~Case() = default;
    // Maps the file (cold, nothing resident): `size` bytes.
    virtual Mapping map(std::uint64_t size) = 0;
    // After the run, with the mapping still there: what the server did.
    virtual ServerCounts counts() { return {}; }
    // After the run and the check: the mapping is gone; let the server go.
    virtual void finish() {}
};

// The real file-pager program, one process per run (a fresh object).
class MachvmCase final : public Case {
  public:
    MachvmCase(const Options& o, const std::string& file, unsigned cluster)
        : opts_(o), file_(file), cluster_(cluster),
          socket_("/tmp/machvm-bench-file." + std::to_string(::getpid()) + ".sock") {}
    ~MachvmCase() override { (void)stop(); }

    Mapping map(std::uint64_t size) override {
        start();
        machvm::Fd obj = receive();
        Mapping m = Mapping::map(size, PROT_READ, MAP_SHARED, obj.get(), "mmap machvm object");
        obj_ = std::move(obj);
        cpu0_ = cpu_of(stat_path());
        return m;
    }
    ServerCounts counts() override {
        ServerCounts c;
        c.cpu = cpu_of(stat_path()) - cpu0_;
        auto admin = machvm::AdminClient::open();
        if (!admin)
            return c;
        auto objects = admin->objects();
        if (!objects)
            return c;
        for (const machvm::ObjectInfo& i : *objects) {
            if (static_cast<pid_t>(i.pager_pid) != pid_)
                continue;
            c.requests = i.requests;
            c.pages = i.supplied;
            c.known = true;
        }
        return c;
    }
    void finish() override {
        obj_.reset();
        const int st = stop();
        if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0))
            throw std::runtime_error(opts_.pager + " did not exit cleanly (wait status " +
                                     std::to_string(st) + ")");
    }

  private:
    std::string stat_path() const { return "/proc/" + std::to_string(pid_) + "/stat"; }

    void start() {
        std::vector<std::string> args{opts_.pager,
                                      "--cluster",
                                      std::to_string(cluster_),
                                      "--threads",
                                      std::to_string(opts_.server_threads),
                                      "--timeout",
                                      "60000"};
        if (opts_.readahead) {
            args.push_back("--readahead");
            args.push_back(std::to_string(*opts_.readahead));
        }
        args.insert(args.end(), {"--socket", socket_, file_});
        std::vector<char*> argv;
        for (std::string& a : args)
            argv.push_back(a.data());
        argv.push_back(nullptr);
        pid_t pid = -1;
        const int err = ::posix_spawnp(&pid, argv[0], nullptr, nullptr, argv.data(), environ);
        if (err)
            throw_errno("start " + opts_.pager, err);
        pid_ = pid;
    }

    // The object's descriptor over the pager's socket, once it listens.
    machvm::Fd receive() {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        for (;;) {
            auto s = machvm::connect_unix(socket_);
            if (s)
                return machvm::recv_fd(s->get()).value_or_throw("receive the object from " +
                                                                opts_.pager);
            const auto ec = s.error();
            const bool retry =
                ec == std::errc::no_such_file_or_directory || ec == std::errc::connection_refused;
            int st = 0;
            if (::waitpid(pid_, &st, WNOHANG) == pid_) {
                pid_ = -1;
                throw std::runtime_error(opts_.pager + " exited before it served the file");
            }
            if (!retry || std::chrono::steady_clock::now() >= deadline)
                throw std::system_error(ec, "connect " + socket_);
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
    }

    // SIGTERM, then its wait status (0 if there is no pager).  file-pager
    // exits with status 0 on SIGTERM.
    int stop() noexcept {
        if (pid_ <= 0)
            return 0;
        const pid_t pid = std::exchange(pid_, -1);
        ::kill(pid, SIGTERM);
        int st = 0;
        while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
        }
        return st;
    }

    const Options& opts_;
    std::string file_;
    unsigned cluster_;
    std::string socket_;
    pid_t pid_ = -1;
    machvm::Fd obj_;
    Cpu cpu0_;
};

// A userfaultfd handler that preads the cluster around each fault.
class UffdCase final : public Case {
  public:
    UffdCase(const std::string& file, unsigned threads, unsigned cluster)
        : page_(page_size()), cluster_(cluster),
          file_(machvm::Fd::open(file.c_str(), O_RDONLY).value_or_throw("open " + file)) {
        int fd = static_cast<int>(::syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK));
        if (fd < 0)
            throw_errno("userfaultfd");
        uffd_.reset(fd);
        uffdio_api api{};
        api.api = UFFD_API;
        if (::ioctl(uffd_.get(), UFFDIO_API, &api) < 0)
            throw_errno("UFFDIO_API");
        fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (fd < 0)
            throw_errno("eventfd");
        stop_.reset(fd);
        try {
            for (unsigned i = 0; i < threads; ++i)
                threads_.emplace_back([this] { serve(); });
        } catch (...) {
            stop();
            throw;
        }
    }
    ~UffdCase() override { stop(); }

    Mapping map(std::uint64_t size) override {
        Mapping m = Mapping::map(size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
                                 "mmap anonymous region");
        if (::madvise(m.data(), m.size(), MADV_NOHUGEPAGE) < 0 && errno != EINVAL)
            throw_errno("madvise MADV_NOHUGEPAGE");
        len_.store(size, std::memory_order_relaxed);
        base_.store(reinterpret_cast<std::uintptr_t>(m.data()), std::memory_order_release);
        uffdio_register reg{};
        reg.range.start = reinterpret_cast<std::uintptr_t>(m.data());
        reg.range.len = size;
        reg.mode = UFFDIO_REGISTER_MODE_MISSING;
        if (::ioctl(uffd_.get(), UFFDIO_REGISTER, &reg) < 0)
            throw_errno("UFFDIO_REGISTER");
        if (!(reg.ioctls & (1ull << _UFFDIO_COPY)))
            throw std::runtime_error("UFFDIO_REGISTER: no UFFDIO_COPY on this range");
        requests_.store(0);
        pages_.store(0);
        cpu0_ = cpu();
        return m;
    }
    ServerCounts counts() override {
        return {requests_.load(), pages_.load(), cpu() - cpu0_, true};
    }

  private:
    // The handler threads' CPU time so far.
    Cpu cpu() {
        Cpu c;
        std::lock_guard<std::mutex> lock(tids_mu_);
        for (pid_t tid : tids_)
            c += cpu_of("/proc/self/task/" + std::to_string(tid) + "/stat");
        return c;
    }

    void stop() noexcept {
        std::uint64_t one = 1;
        if (stop_.valid())
            (void)!::write(stop_.get(), &one, sizeof(one));
        for (std::thread& t : threads_)
            if (t.joinable())
                t.join();
    }

    // UFFDIO_COPY of [off, off + len) of the region from `src`; false if
    // a page of it was there already (EEXIST).
    bool copy_range(std::uintptr_t base, std::uint64_t off, std::uint64_t len,
                    const std::byte* src) noexcept {
        while (len) {
            uffdio_copy c{};
            c.dst = base + off;
            c.src = reinterpret_cast<std::uintptr_t>(src);
            c.len = len;
            if (::ioctl(uffd_.get(), UFFDIO_COPY, &c) == 0) {
                pages_.fetch_add(len / page_, std::memory_order_relaxed);
                return true;
            }
            if (errno == EEXIST)
                return false;
            if (errno != EAGAIN && errno != EINTR)
                bench::die(kProg, "UFFDIO_COPY", errno);
            if (c.copy > 0) { // a part went in: go on after it
                const auto done = static_cast<std::uint64_t>(c.copy);
                pages_.fetch_add(done / page_, std::memory_order_relaxed);
                off += done;
                src += done;
                len -= done;
            }
        }
        return true;
    }

    // pread(2) all of [off, off + len) of the file into buf.
    void read_file(std::uint64_t off, std::uint64_t len, std::byte* buf) noexcept {
        std::uint64_t done = 0;
        while (done < len) {
            const ssize_t n =
                ::pread(file_.get(), buf + done, len - done, static_cast<off_t>(off + done));
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                bench::die(kProg, "pread", n < 0 ? errno : EIO);
            done += static_cast<std::uint64_t>(n);
        }
    }

    // The aligned N pages around the fault, read and copied in at once; if
    // some are there already, from the faulting page to the end of them;
    // then that page alone; else wake the fault (the page is there).
    void serve_fault(std::uint64_t address, std::vector<std::byte>& buf) noexcept {
        const std::uintptr_t base = base_.load(std::memory_order_acquire);
        const std::uint64_t len = len_.load(std::memory_order_relaxed);
        const std::uint64_t dst = address & ~(page_ - 1);
        const std::uint64_t off = dst - base;
        if (dst < base || off >= len)
            bench::die(kProg, "userfaultfd: fault outside the region", EFAULT);
        const std::uint64_t span = page_ * cluster_;
        const std::uint64_t lo = off - off % span;
        const std::uint64_t hi = std::min(lo + span, len);
        read_file(lo, hi - lo, buf.data());
        if (copy_range(base, lo, hi - lo, buf.data()))
            return;
        if (off != lo && copy_range(base, off, hi - off, buf.data() + (off - lo)))
            return;
        if (hi - off > page_ && copy_range(base, off, page_, buf.data() + (off - lo)))
            return;
        uffdio_range r{base + off, page_};
        if (::ioctl(uffd_.get(), UFFDIO_WAKE, &r) < 0)
            bench::die(kProg, "UFFDIO_WAKE", errno);
    }

    // Read until EAGAIN, then poll; answer every fault.
    void serve() noexcept {
        {
            std::lock_guard<std::mutex> lock(tids_mu_);
            tids_.push_back(static_cast<pid_t>(::syscall(SYS_gettid)));
        }
        std::vector<std::byte> buf(page_ * cluster_);
        uffd_msg msgs[16];
        pollfd fds[2] = {{uffd_.get(), POLLIN, 0}, {stop_.get(), POLLIN, 0}};
        for (;;) {
            ssize_t n = ::read(uffd_.get(), msgs, sizeof(msgs));
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                if (errno != EAGAIN)
                    bench::die(kProg, "read userfaultfd", errno);
                if (::poll(fds, 2, -1) < 0 && errno != EINTR)
                    bench::die(kProg, "poll userfaultfd", errno);
                if (fds[1].revents)
                    return;
                continue;
            }
            const std::size_t count = static_cast<std::size_t>(n) / sizeof(uffd_msg);
            for (std::size_t i = 0; i < count; ++i) {
                if (msgs[i].event != UFFD_EVENT_PAGEFAULT)
                    continue;
                requests_.fetch_add(1, std::memory_order_relaxed);
                serve_fault(msgs[i].arg.pagefault.address, buf);
            }
        }
    }

    std::uint64_t page_;
    unsigned cluster_;
    machvm::Fd file_;
    machvm::Fd uffd_;
    machvm::Fd stop_;
    std::atomic<std::uint64_t> len_{0};
    std::atomic<std::uintptr_t> base_{0};
    std::atomic<std::uint64_t> requests_{0}, pages_{0};
    Cpu cpu0_;
    std::mutex tids_mu_;
    std::vector<pid_t> tids_; // the handler threads
    std::vector<std::thread> threads_;
};

// The file mapped the plain way: the kernel's page cache and read-ahead.
class MmapCase final : public Case {
  public:
    explicit MmapCase(const std::string& file)
        : file_(machvm::Fd::open(file.c_str(), O_RDONLY).value_or_throw("open " + file)) {}
    Mapping map(std::uint64_t size) override {
        return Mapping::map(size, PROT_READ, MAP_SHARED, file_.get(), "mmap file");
    }

  private:
    machvm::Fd file_;
};

std::unique_ptr<Case> make_case(CaseKind k, const Options& o, const std::string& file,
                                unsigned cluster) {
    switch (k) {
    case CaseKind::Machvm:
        return std::make_unique<MachvmCase>(o, file, cluster);
    case CaseKind::Uffd:
        return std::make_unique<UffdCase>(file, o.server_threads, cluster);
    case CaseKind::Mmap:
        return std::make_unique<MmapCase>(file);
    }
    throw std::logic_error("unknown case");
}

// ---- measuring ----

struct Samples {
    std::uint64_t wall_ns = 0, bytes = 0; // summed over runs
    std::uint64_t requests = 0, pages = 0, disk_ios = 0, disk_sectors = 0;
    Cpu cpu;
    bool counts_known = false;
};

std::atomic<unsigned> g_sink{0};

void run_once(CaseKind kind, unsigned cluster, Case& c, unsigned nthreads, const Options& o,
              const PatternFile& file, Samples& out) {
    const std::uint64_t page = page_size();
    const std::uint64_t pages = o.size / page;
    if (o.drop_caches)
        drop_caches();
    Mapping m = c.map(o.size);
    const std::byte* base = m.data();
    const DiskReads d0 = disk_reads(file.dev());

    std::vector<std::uint64_t> begin(nthreads), end(nthreads);
    std::barrier gate(static_cast<std::ptrdiff_t>(nthreads) + 1);
    std::mutex mu;
    std::condition_variable cv;
    unsigned done = 0;
    std::vector<std::thread> threads;
    threads.reserve(nthreads);
    for (unsigned t = 0; t < nthreads; ++t) {
        threads.emplace_back([&, t] {
            const std::uint64_t first = pages * t / nthreads, last = pages * (t + 1) / nthreads;
            unsigned s = 0;
            gate.arrive_and_wait();
            begin[t] = now_ns();
            for (std::uint64_t i = first; i < last; ++i)
                s += *reinterpret_cast<const volatile unsigned char*>(base + i * page);
            end[t] = now_ns();
            g_sink.fetch_add(s, std::memory_order_relaxed);
            std::lock_guard<std::mutex> lock(mu);
            ++done;
            cv.notify_one();
        });
    }
    gate.arrive_and_wait();
    {
        std::unique_lock<std::mutex> lock(mu);
        if (!cv.wait_for(lock, std::chrono::seconds(o.timeout_s), [&] { return done == nthreads; }))
            bench::die(kProg, "a run timed out (--timeout); reads are stuck", ETIMEDOUT);
    }
    for (std::thread& t : threads)
        t.join();
    const DiskReads d1 = disk_reads(file.dev());
    const ServerCounts sc = c.counts();

    if (auto bad = machvm::find_pattern_mismatch(0, std::span<const std::byte>(base, o.size)))
        throw std::runtime_error(std::string(case_name(kind)) + ": the page at offset " +
                                 std::to_string(*bad / page * page) +
                                 " holds the wrong data (first wrong byte at " +
                                 std::to_string(*bad) + ")");
    m.reset();
    c.finish();

    const std::uint64_t t0 = *std::min_element(begin.begin(), begin.end());
    const std::uint64_t t1 = *std::max_element(end.begin(), end.end());
    out.wall_ns += t1 - t0;
    out.bytes += o.size;
    out.disk_ios += d1.ios - d0.ios;
    out.disk_sectors += d1.sectors - d0.sectors;
    out.requests += sc.requests;
    out.pages += sc.pages;
    out.cpu += sc.cpu;
    out.counts_known = sc.known;
    if (o.verbose)
        std::fprintf(stderr,
                     "%s: %-11s N %2u threads %u: %.1f MB/s (%.3f s), %llu requests, "
                     "%llu disk reads\n",
                     kProg, case_name(kind), cluster, nthreads,
                     static_cast<double>(o.size) * 1e3 / static_cast<double>(t1 - t0),
                     static_cast<double>(t1 - t0) / 1e9,
                     static_cast<unsigned long long>(sc.requests),
                     static_cast<unsigned long long>(d1.ios - d0.ios));
}

struct Row {
    CaseKind kind = CaseKind::Mmap;
    unsigned cluster = 0, threads = 0;
    double seconds = 0, mb_s = 0;
    std::optional<double> vs_uffd, vs_mmap; // machvm's MB/s over theirs
    Samples s;
};

Row summarize(CaseKind kind, unsigned cluster, unsigned threads, const Samples& s) {
    Row r;
    r.kind = kind;
    r.cluster = cluster;
    r.threads = threads;
    r.s = s;
    r.seconds = static_cast<double>(s.wall_ns) / 1e9;
    r.mb_s = r.seconds > 0 ? static_cast<double>(s.bytes) / 1e6 / r.seconds : 0;
    return r;
}

void add_ratios(std::vector<Row>& rows) {
    for (Row& r : rows) {
        if (r.kind != CaseKind::Machvm)
            continue;
        for (const Row& u : rows) {
            if (u.cluster != r.cluster || u.threads != r.threads)
                continue;
            if (u.kind == CaseKind::Uffd)
                r.vs_uffd = bench::ratio(r.mb_s, u.mb_s);
            if (u.kind == CaseKind::Mmap)
                r.vs_mmap = bench::ratio(r.mb_s, u.mb_s);
        }
    }
}

// Per run: the server's requests, pages per request, wall time per
// request, the server's user and system CPU ms, disk reads, mean KiB per
// disk read.
struct PerRun {
    std::optional<double> requests, pages_per_request, us_per_request, user_ms, sys_ms;
    double disk_reads = 0, disk_kib_per_read = 0;
};
PerRun per_run(const Row& r, unsigned runs) {
    PerRun p;
    const double n = runs;
    if (r.s.counts_known) {
        p.requests = static_cast<double>(r.s.requests) / n;
        if (r.s.requests) {
            p.pages_per_request =
                static_cast<double>(r.s.pages) / static_cast<double>(r.s.requests);
            p.us_per_request =
                static_cast<double>(r.s.wall_ns) / 1e3 / static_cast<double>(r.s.requests);
        }
    }
    if (r.kind != CaseKind::Mmap) {
        p.user_ms = r.s.cpu.user * 1e3 / n;
        p.sys_ms = r.s.cpu.sys * 1e3 / n;
    }
    p.disk_reads = static_cast<double>(r.s.disk_ios) / n;
    if (r.s.disk_ios)
        p.disk_kib_per_read =
            static_cast<double>(r.s.disk_sectors) / 2 / static_cast<double>(r.s.disk_ios);
    return p;
}

std::string opt_number(const std::optional<double>& v, const char* fmt) {
    return v ? bench::number(*v, fmt) : "null";
}
std::string opt_cell(const std::optional<double>& v, const char* fmt) {
    return v ? bench::number(*v, fmt) : "-";
}

// ---- output ----

std::string json_document(const bench::Machine& m, const Options& o, const std::string& fs,
                          const std::vector<Row>& rows) {
    std::string j = "{\n";
    j += " \"benchmark\": \"file\",\n";
    j += " \"machine\": {\"kernel\": " + json_string(m.kernel) +
         ", \"nproc\": " + std::to_string(m.nproc) + ", \"cpu\": " + json_string(m.cpu) +
         ", \"clocksource\": " + json_string(m.clocksource) +
         ", \"page_size\": " + std::to_string(m.page) + "},\n";
    j += " \"config\": {\"size\": " + std::to_string(o.size) + ", \"dir\": " + json_string(o.dir) +
         ", \"filesystem\": " + json_string(fs) +
         ", \"server_threads\": " + std::to_string(o.server_threads) +
         ", \"pager_readahead\": " + (o.readahead ? std::to_string(*o.readahead) : "null") +
         ", \"drop_caches\": " + (o.drop_caches ? "true" : "false") +
         ", \"runs\": " + std::to_string(o.runs) + "},\n";
    j += " \"results\": [";
    for (std::size_t i = 0; i < rows.size(); ++i) {
        const Row& r = rows[i];
        const PerRun p = per_run(r, o.runs);
        j += i ? ",\n  " : "\n  ";
        j += "{\"case\": " + json_string(case_name(r.kind)) +
             ", \"cluster_pages\": " + std::to_string(r.cluster) +
             ", \"threads\": " + std::to_string(r.threads) +
             ", \"seconds\": " + bench::number(r.seconds, "%.6f") +
             ", \"mb_per_s\": " + bench::number(r.mb_s, "%.2f") +
             ", \"vs_uffd\": " + bench::json_ratio(r.vs_uffd) +
             ", \"vs_mmap\": " + bench::json_ratio(r.vs_mmap) +
             ", \"server_requests\": " + opt_number(p.requests, "%.0f") +
             ", \"pages_per_request\": " + opt_number(p.pages_per_request, "%.2f") +
             ", \"us_per_request\": " + opt_number(p.us_per_request, "%.2f") +
             ", \"server_user_ms\": " + opt_number(p.user_ms, "%.0f") +
             ", \"server_sys_ms\": " + opt_number(p.sys_ms, "%.0f") +
             ", \"disk_reads\": " + bench::number(p.disk_reads, "%.0f") +
             ", \"disk_kib_per_read\": " + bench::number(p.disk_kib_per_read, "%.1f") + "}";
    }
    j += "\n ]\n}\n";
    return j;
}

void print_table(const bench::Machine& m, const Options& o, const std::string& fs,
                 const std::vector<Row>& rows) {
    std::printf("cold file: %s, %ld CPUs, %s\n", m.kernel.c_str(), m.nproc,
                m.cpu.empty() ? "?" : m.cpu.c_str());
    std::printf("%llu MiB file on %s (%s), %s, %u run%s; %u server thread%s\n",
                static_cast<unsigned long long>(o.size >> 20), o.dir.c_str(), fs.c_str(),
                o.drop_caches ? "caches dropped before each run" : "caches NOT dropped", o.runs,
                o.runs == 1 ? "" : "s", o.server_threads, o.server_threads == 1 ? "" : "s");
    std::printf("%-11s %3s %7s %8s %7s %7s %8s %7s %8s %7s %7s %7s %7s\n", "case", "N", "threads",
                "MB/s", "vs uffd", "vs mmap", "requests", "pg/req", "us/req", "user ms", "sys ms",
                "disk rd", "KiB/rd");
    for (const Row& r : rows) {
        const PerRun p = per_run(r, o.runs);
        std::printf("%-11s %3u %7u %8.1f %7s %7s %8s %7s %8s %7s %7s %7.0f %7.1f\n",
                    case_name(r.kind), r.cluster, r.threads, r.mb_s, ratio_cell(r.vs_uffd).c_str(),
                    ratio_cell(r.vs_mmap).c_str(), opt_cell(p.requests, "%.0f").c_str(),
                    opt_cell(p.pages_per_request, "%.1f").c_str(),
                    opt_cell(p.us_per_request, "%.0f").c_str(), opt_cell(p.user_ms, "%.0f").c_str(),
                    opt_cell(p.sys_ms, "%.0f").c_str(), p.disk_reads, p.disk_kib_per_read);
    }
}

// The file system DIR is on, from /proc/mounts: the longest mount point
// that is a prefix of its real path ("?" if unknown).
std::string filesystem_of(const std::string& dir) {
    char buf[PATH_MAX];
    const std::string path = ::realpath(dir.c_str(), buf) ? buf : dir;
    std::ifstream mounts("/proc/mounts");
    std::string dev, mnt, type, best = "?";
    std::size_t best_len = 0;
    for (std::string line; std::getline(mounts, line);) {
        std::istringstream in(line);
        if (!(in >> dev >> mnt >> type))
            continue;
        const bool under =
            path == mnt || (path.rfind(mnt, 0) == 0 && (mnt == "/" || path[mnt.size()] == '/'));
        if (under && mnt.size() >= best_len) {
            best = type;
            best_len = mnt.size();
        }
    }
    return best;
}

int run(const Options& o) {
    bench::report_sigbus(kProg, "the server failed?");
    const bench::Machine machine = bench::describe_machine();
    const std::string fs = filesystem_of(o.dir);
    if (!o.out.quiet)
        std::fprintf(stderr, "%s: writing %llu MiB to %s (%s)\n", kProg,
                     static_cast<unsigned long long>(o.size >> 20), o.dir.c_str(), fs.c_str());
    const PatternFile file(o.dir, o.size);

    std::vector<Samples> samples(o.clusters.size() * o.threads.size() * o.cases.size());
    auto at = [&](std::size_t ni, std::size_t ti, std::size_t ci) -> Samples& {
        return samples[(ni * o.threads.size() + ti) * o.cases.size() + ci];
    };
    for (unsigned round = 0; round < o.runs; ++round) {
        const std::uint64_t t0 = now_ns();
        for (std::size_t ni = 0; ni < o.clusters.size(); ++ni) {
            std::vector<std::unique_ptr<Case>> cases;
            for (CaseKind k : o.cases)
                cases.push_back(make_case(k, o, file.path(), o.clusters[ni]));
            for (std::size_t ti = 0; ti < o.threads.size(); ++ti)
                for (std::size_t ci = 0; ci < cases.size(); ++ci)
                    run_once(o.cases[ci], o.clusters[ni], *cases[ci], o.threads[ti], o, file,
                             at(ni, ti, ci));
        }
        if (!o.out.quiet)
            std::fprintf(stderr, "%s: round %u of %u done in %.1f s\n", kProg, round + 1, o.runs,
                         static_cast<double>(now_ns() - t0) / 1e9);
    }
    std::vector<Row> rows;
    for (std::size_t ni = 0; ni < o.clusters.size(); ++ni)
        for (std::size_t ti = 0; ti < o.threads.size(); ++ti)
            for (std::size_t ci = 0; ci < o.cases.size(); ++ci)
                rows.push_back(
                    summarize(o.cases[ci], o.clusters[ni], o.threads[ti], at(ni, ti, ci)));
    add_ratios(rows);

    std::fflush(stderr);
    print_table(machine, o, fs, rows);
    bench::emit_json(o.out, json_document(machine, o, fs, rows));
    return machvm::kExitOk;
}

Options defaults() {
    Options o;
    if (const char* d = std::getenv("MVM_DISK_DIR"))
        o.dir = d;
    return o;
}

} // namespace

int main(int argc, char** argv) {
    return bench::main(argc, argv, kProg, kHelp, defaults(), option, check, run);
}
