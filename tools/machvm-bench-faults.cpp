// SPDX-License-Identifier: GPL-2.0
//
// machvm-bench-faults: page faults served per second and fault latency for
// a machvm object served by an in-process pager (zero-filling or copying),
// for userfaultfd doing the same copying work, and for the kernel's own
// shmem fault as the floor.  Everything runs in one process, one case and
// one thread count after the other, each on a fresh region.
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
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
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <machvm/cli.hpp>
#include <machvm/device.hpp>
#include <machvm/loop.hpp>
#include <machvm/pager.hpp>
#include <machvm/serve.hpp>

#include "bench/bench.hpp"

#include "pattern.hpp"

namespace {

namespace bench = machvm::bench;
using bench::json_string;
using bench::Mapping;
using bench::mean_us;
using bench::now_ns;
using bench::page_size;
using bench::percentile_us;
using bench::ratio_cell;
using bench::throw_errno;

constexpr const char* kProg = "machvm-bench-faults";
constexpr unsigned char kWriteByte = 0x5a;

const char kHelp[] =
    "NAME\n"
    "       machvm-bench-faults - page faults per second and fault latency: machvm\n"
    "       pagers against userfaultfd and shmem\n"
    "\n"
    "SYNOPSIS\n"
    "       machvm-bench-faults [--pages N] [--threads LIST] [--cases LIST]\n"
    "                           [--access read|write] [--pager-threads N] [--depth N]\n"
    "                           [--cluster N] [--transport uring|blocking]\n"
    "                           [--no-defer-taskrun]\n"
    "                           [--uffd-threads N] [--runs N] [--breakdown]\n"
    "                           [--metadata-pages N] [--timeout SEC]\n"
    "                           [--json PATH] [--json-name NAME]\n"
    "                           [--quiet | --verbose]\n"
    "\n"
    "DESCRIPTION\n"
    "       All the cases' servers start first.  Then, for every faulting-thread\n"
    "       count and every case in turn (and again in every --runs round), it maps\n"
    "       a fresh region of THREADS x N pages (plus one warm-up page, touched\n"
    "       before the clock starts), releases the faulting threads together from\n"
    "       a barrier, and has each touch its own N pages once, in order, timing\n"
    "       every touch with clock_gettime(CLOCK_MONOTONIC).  Every timed touch is\n"
    "       the first touch of a page that is not resident, so it is a real fault.\n"
    "       faults/s is the number of touches over the wall time from the first\n"
    "       thread leaving the barrier to the last thread finishing; p50 and p99\n"
    "       are percentiles of the per-touch times of all threads.  busy is the\n"
    "       share of all CPUs' time (/proc/stat) not idle over the same span, and\n"
    "       cpu us/f that busy time per fault, whoever spent it (faulting threads,\n"
    "       server, kernel): a case near 100% busy is bound by CPU, one well\n"
    "       below it by hand-offs and wake-ups.  After each run the first and\n"
    "       last byte of every page are checked.\n"
    "\n"
    "       The cases (--cases names in brackets):\n"
    "\n"
    "       machvm-zero [zero]\n"
    "              A machvm object mapped MAP_SHARED, served by a pager in this\n"
    "              process (libmachvm's PagerLoop over io_uring, --pager-threads\n"
    "              threads, --depth FETCHes in flight per thread) that answers\n"
    "              every data_request with data_unavailable: the kernel\n"
    "              zero-fills.  Cluster size 1: one request per fault.\n"
    "       machvm-copy [copy]\n"
    "              The same, answering data_supply from a prefilled buffer (the\n"
    "              page at the same offset).\n"
    "       userfaultfd [uffd]\n"
    "              An anonymous MAP_PRIVATE region registered with\n"
    "              UFFDIO_REGISTER_MODE_MISSING on a userfaultfd (O_NONBLOCK);\n"
    "              --uffd-threads handler threads each read(2) the descriptor\n"
    "              until EAGAIN, then poll(2) it, and answer every fault with\n"
    "              UFFDIO_COPY of the page from the same prefilled buffer.\n"
    "       shmem [shmem]\n"
    "              A memfd_create(2) file mapped MAP_SHARED: the kernel's own\n"
    "              fault allocating a zeroed shmem page.  The floor.\n"
    "       anon [anon]\n"
    "              Not run by default.  An anonymous MAP_PRIVATE region with no\n"
    "              userfaultfd: a read maps the shared zero page, a write\n"
    "              allocates a zeroed anonymous page.  The floor of what\n"
    "              UFFDIO_COPY builds, where shmem is that of machvm's page cache.\n"
    "\n"
    "       Then, memory per resident page: the slab memory (/proc/meminfo's Slab)\n"
    "       that --metadata-pages pages of an anonymous machvm object add when each\n"
    "       is written once (made resident), less what the same number of pages of\n"
    "       a memfd add (Linux's own page cache of the same size: its index is in\n"
    "       the slab too), over the pages: metadata_bytes_per_page, the module's\n"
    "       own bookkeeping per resident page, from the medians of three rounds.\n"
    "       Other slab users make it vary by a few bytes either way.\n"
    "\n"
    "       Ratios are to userfaultfd with the same number of faulting threads:\n"
    "       faults/s over userfaultfd's (above 1 is faster) and p50 and p99 over\n"
    "       userfaultfd's (below 1 is faster).\n"
    "\n"
    "OUTPUT\n"
    "       Progress goes to stderr.  stdout gets the table, then a line\n"
    "       \"@@JSON faults.json\" (see --json-name), the results as one JSON\n"
    "       document (machine, configuration, one entry per case and thread\n"
    "       count), and a line \"@@END\": the VM harness (make bench) extracts that\n"
    "       block into build/bench/<kernel>/faults.json.\n"
    "\n"
    "OPTIONS\n"
    "       --pages N\n"
    "              Pages each faulting thread touches per run (1-1048576, default\n"
    "              4096).\n"
    "       --threads LIST\n"
    "              Comma-separated faulting-thread counts (each 1-64, default\n"
    "              1,2,4).\n"
    "       --cases LIST\n"
    "              Comma-separated cases: zero, copy, uffd, shmem, anon, or all\n"
    "              (default zero,copy,uffd,shmem).  Ratios need uffd.\n"
    "       --access read|write\n"
    "              Touch each page by reading one byte (default) or writing one.\n"
    "       --pager-threads N\n"
    "              machvm pager threads, one io_uring each (1-64, default 2).\n"
    "       --depth N\n"
    "              FETCH commands in flight per pager thread (1-4096, default 1).\n"
    "              The kernel hands each message to the oldest idle FETCH, so with\n"
    "              several per thread consecutive faults queue on one pager thread\n"
    "              while the others sleep; with one per thread the next fault goes\n"
    "              to a thread that is free, as a userfaultfd fault goes to whichever\n"
    "              handler reads first.  Faults beyond the FETCHes in flight wait\n"
    "              in the kernel's queue and go out on the next COMMIT_AND_FETCH.\n"
    "       --cluster N\n"
    "              Serve a fault with the aligned N pages around it (a power of\n"
    "              two, 1-64, default 1): the machvm objects get cluster size N\n"
    "              (the kernel asks for the free run of those N pages, and the\n"
    "              pager supplies it), and the userfaultfd handler copies the same\n"
    "              N pages with one UFFDIO_COPY (from the faulting page on if some\n"
    "              are there already).  Since each thread touches its pages in\n"
    "              order, most touches then find their page mapped: faults/s counts\n"
    "              touches, that is pages per second, and the percentiles are of\n"
    "              touches.  (make bench runs copy and uffd at 16 and 64.)\n"
    "       --transport uring|blocking\n"
    "              The machvm pagers' transport: PagerLoop over io_uring (default)\n"
    "              or BlockingLoop (poll(2), read(2), write(2) on the endpoint).\n"
    "       --no-defer-taskrun\n"
    "              Make the pager's rings with IORING_SETUP_COOP_TASKRUN instead\n"
    "              of SINGLE_ISSUER | DEFER_TASKRUN (LoopOptions.defer_taskrun).\n"
    "       --uffd-threads N\n"
    "              userfaultfd handler threads (1-64, default: as many as\n"
    "              --pager-threads, so both sides have the same number of server\n"
    "              threads).\n"
    "       --runs N\n"
    "              Rounds (1-100, default 1).  Each round measures every thread\n"
    "              count of every case once, each on a fresh region, the cases\n"
    "              taking turns; the rounds are merged: faults/s over the summed\n"
    "              wall time, percentiles over all touches.\n"
    "       --breakdown\n"
    "              Also time when the server's user-space code gets each request\n"
    "              (the pager's on_data_request, the uffd handler after read(2))\n"
    "              and split every fault's time into \"to server\" (fault to\n"
    "              there) and \"back\" (answer, wake-up and retry of the fault).\n"
    "              Costs one clock read per fault on the server side.\n"
    "       --metadata-pages N\n"
    "              Pages of the memory-per-page measurement (0-1048576, default\n"
    "              65536: 256 MiB with 4 KiB pages; 0 skips it).\n"
    "       --timeout SEC\n"
    "              Give up (exit status 1) when one run takes longer (default 600).\n"
    "       --json PATH\n"
    "              Also write the JSON document to PATH.\n"
    "       --json-name NAME\n"
    "              The name on the \"@@JSON\" line (default faults.json), so that\n"
    "              several runs in one VM boot keep separate files.\n"
    "       -q, --quiet\n"
    "              No progress lines on stderr.\n"
    "       -v, --verbose\n"
    "              One line per run on stderr: faults/s, p50, p99, the slowest\n"
    "              touch and how many took over 1 ms.\n"
    "       -h, --help\n"
    "              Print this manual and exit.\n"
    "\n"
    "EXIT STATUS\n"
    "       0      Success.\n"
    "       1      Failure: no machvm device, a syscall failed (errno text on\n"
    "              stderr), a fault got SIGBUS, a page held the wrong data, or a\n"
    "              run timed out.\n"
    "       2      Bad command line.\n"
    "\n"
    "NOTES\n"
    "       Needs the machvm module (/dev/machvm) for the machvm cases and\n"
    "       userfaultfd(2) for uffd (root, or vm.unprivileged_userfaultfd=1).\n"
    "       Absolute numbers depend on the machine; compare the ratios, which come\n"
    "       from the same run.\n"
    "\n"
    "EXAMPLES\n"
    "       machvm-bench-faults\n"
    "       machvm-bench-faults --pages 1024 --threads 1 --cases zero,uffd --runs 5\n"
    "       machvm-bench-faults --access write --pager-threads 1 --uffd-threads 1\n";

enum class CaseKind { Zero, Copy, Uffd, Shmem, Anon };

const char* case_name(CaseKind k) noexcept {
    switch (k) {
    case CaseKind::Zero:
        return "machvm-zero";
    case CaseKind::Copy:
        return "machvm-copy";
    case CaseKind::Uffd:
        return "userfaultfd";
    case CaseKind::Shmem:
        return "shmem";
    case CaseKind::Anon:
        return "anon";
    }
    return "?";
}

struct Options {
    std::uint64_t pages = 4096;
    std::vector<unsigned> threads{1, 2, 4};
    std::vector<CaseKind> cases{CaseKind::Zero, CaseKind::Copy, CaseKind::Uffd, CaseKind::Shmem};
    bool write = false;
    unsigned pager_threads = 2;
    unsigned depth = 1;
    unsigned cluster = 1;
    bool blocking = false;
    bool defer_taskrun = true;
    std::optional<unsigned> uffd_threads;
    unsigned runs = 1;
    unsigned timeout_s = 600;
    std::uint64_t metadata_pages = 65536;
    bench::Output out{"", "faults.json"};
    bool verbose = false;
    bool breakdown = false;
};

// One option at the reader's position; false if it is none of ours.
bool option(machvm::ArgReader& args, Options& o) {
    if (auto v = args.value("--pages")) {
        o.pages = machvm::uint_arg("--pages", *v, 1, 1u << 20);
    } else if (auto v = args.value("--threads")) {
        o.threads.clear();
        for (std::string_view t : bench::split_commas(*v))
            o.threads.push_back(static_cast<unsigned>(machvm::uint_arg("--threads", t, 1, 64)));
    } else if (auto v = args.value("--cases")) {
        o.cases = bench::list_arg<CaseKind>("--cases", *v,
                                            {{"zero", CaseKind::Zero},
                                             {"copy", CaseKind::Copy},
                                             {"uffd", CaseKind::Uffd},
                                             {"shmem", CaseKind::Shmem},
                                             {"anon", CaseKind::Anon}},
                                            true);
    } else if (auto v = args.value("--access")) {
        o.write = bench::choice_arg<bool>("--access", *v, {{"read", false}, {"write", true}});
    } else if (auto v = args.value("--pager-threads")) {
        o.pager_threads = static_cast<unsigned>(machvm::uint_arg("--pager-threads", *v, 1, 64));
    } else if (auto v = args.value("--depth")) {
        o.depth = static_cast<unsigned>(machvm::uint_arg("--depth", *v, 1, 4096));
    } else if (auto v = args.value("--cluster")) {
        o.cluster = static_cast<unsigned>(machvm::uint_arg("--cluster", *v, 1, 64));
        if (o.cluster & (o.cluster - 1))
            throw std::invalid_argument("--cluster: a power of two, 1 to 64");
    } else if (auto v = args.value("--transport")) {
        o.blocking =
            bench::choice_arg<bool>("--transport", *v, {{"uring", false}, {"blocking", true}});
    } else if (args.flag("--no-defer-taskrun")) {
        o.defer_taskrun = false;
    } else if (auto v = args.value("--uffd-threads")) {
        o.uffd_threads = static_cast<unsigned>(machvm::uint_arg("--uffd-threads", *v, 1, 64));
    } else if (auto v = args.value("--runs")) {
        o.runs = static_cast<unsigned>(machvm::uint_arg("--runs", *v, 1, 100));
    } else if (auto v = args.value("--metadata-pages")) {
        o.metadata_pages = machvm::uint_arg("--metadata-pages", *v, 0, 1u << 20);
    } else if (auto v = args.value("--timeout")) {
        o.timeout_s = static_cast<unsigned>(machvm::uint_arg("--timeout", *v, 1, 86400));
    } else if (bench::output_option(args, o.out)) {
    } else if (args.flag("--verbose", "-v")) {
        o.verbose = true;
    } else if (args.flag("--breakdown")) {
        o.breakdown = true;
    } else {
        return false;
    }
    return true;
}

// The combination of options; UsageError.
void check(Options& o) {
    if (o.cases.empty() || o.threads.empty())
        throw machvm::UsageError("nothing to run");
}

// ---- small helpers ----

// The data the copying cases serve: the test pattern, resident.
Mapping make_source(std::size_t bytes) {
    Mapping m = Mapping::map(bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                             machvm::Fd(), "mmap source buffer");
    machvm::fill_pattern(0, std::span<std::byte>(m.data(), m.size()));
    return m;
}

// --breakdown: the servers note when their user-space code got the request
// for each page of the current run.
class Probe {
  public:
    void arm(std::uint64_t* received, std::uint64_t pages) noexcept {
        pages_.store(pages, std::memory_order_relaxed);
        received_.store(received, std::memory_order_release);
    }
    void disarm() noexcept { received_.store(nullptr, std::memory_order_release); }
    // Region offset `offset` was asked for (servers call it first thing).
    void mark(std::uint64_t offset, std::uint64_t page) noexcept {
        std::uint64_t* received = received_.load(std::memory_order_acquire);
        if (!received)
            return;
        const std::uint64_t i = offset / page;
        if (i < pages_.load(std::memory_order_relaxed))
            std::atomic_ref<std::uint64_t>(received[i]).store(now_ns(), std::memory_order_relaxed);
    }

  private:
    std::atomic<std::uint64_t*> received_{nullptr};
    std::atomic<std::uint64_t> pages_{0};
};

Probe g_probe;

// ---- the cases ----

class Case {
  public:
    virtual ~Case() = default;
    // A fresh region of `bytes`, nothing resident.
    virtual Mapping map(std::size_t bytes) = 0;
    // What byte `offset` of the region reads as before anyone writes it.
    virtual std::byte initial(std::uint64_t offset) const noexcept = 0;
    // Throws if the servers behind the case died.
    virtual void check() {}
};

class BenchPager final : public machvm::Pager {
  public:
    BenchPager(bool copy, std::span<const std::byte> src, unsigned cluster)
        : copy_(copy), src_(src), page_(page_size()), cluster_(cluster) {}

    // --cluster 1: one request, one page, every touch faults.  N: the
    // kernel asks for the free run of each aligned N pages, and gets it.
    static machvm_attr attr(unsigned cluster) noexcept {
        machvm_attr a = machvm::default_attr();
        a.cluster_pages = cluster;
        a.timeout_ms = 60000; // a slow emulator is not a dead pager
        return a;
    }
    void on_init(const machvm_msg& msg, machvm::Reply& reply) noexcept override {
        reply.ready(msg.object, attr(cluster_));
    }
    void on_data_request(const machvm_msg& msg, machvm::Reply& reply) noexcept override {
        g_probe.mark(msg.offset, page_);
        if (!copy_) {
            reply.data_unavailable(msg.object, msg.offset, msg.length);
            return;
        }
        if (msg.offset > src_.size() || msg.length > src_.size() - msg.offset) {
            reply.data_error(msg.object, msg.offset, msg.length, ERANGE);
            return;
        }
        reply.data_supply(msg.object, msg.offset, src_.subspan(msg.offset, msg.length));
    }
    void on_command_error(const machvm_cmd& c, std::error_code ec) noexcept override {
        errors_.fetch_add(1, std::memory_order_relaxed);
        machvm::Pager::on_command_error(c, ec);
    }
    unsigned long errors() const noexcept { return errors_.load(std::memory_order_relaxed); }

  private:
    bool copy_;
    std::span<const std::byte> src_;
    std::uint64_t page_;
    unsigned cluster_;
    std::atomic<unsigned long> errors_{0};
};

class MachvmCase final : public Case {
  public:
    MachvmCase(bool copy, std::span<const std::byte> src, const Options& o)
        : copy_(copy), src_(src), cluster_(o.cluster), setup_(machvm::open_pager_setup()),
          pager_(copy, src, o.cluster) {
        machvm::LoopOptions lo;
        lo.threads = o.pager_threads;
        lo.depth = o.depth;
        lo.defer_taskrun = o.defer_taskrun;
        if (o.blocking) {
            loop_ = std::make_unique<machvm::BlockingLoop>(setup_.endpoint, pager_, lo);
        } else {
            if (!(setup_.version.features & MACHVM_F_URING_CMD))
                throw std::runtime_error("the machvm module has no io_uring transport "
                                         "(try --transport blocking)");
            loop_ = std::make_unique<machvm::PagerLoop>(setup_.endpoint, pager_, lo);
        }
    }

    Mapping map(std::size_t bytes) override {
        if (setup_.version.max_object_size && bytes > setup_.version.max_object_size)
            throw std::runtime_error("region of " + std::to_string(bytes) +
                                     " bytes is over the module's object size limit");
        machvm::MemoryObject obj =
            setup_.endpoint.create_object(bytes, PROT_READ | PROT_WRITE, BenchPager::attr(cluster_))
                .value_or_throw("MACHVM_IOC_OBJECT_CREATE");
        return Mapping::map(bytes, PROT_READ | PROT_WRITE, MAP_SHARED, std::move(obj.fd),
                            "mmap machvm object");
    }
    std::byte initial(std::uint64_t offset) const noexcept override {
        return copy_ ? src_[offset] : std::byte{0};
    }
    void check() override {
        if (loop_->finished()) {
            machvm::Result<void> r = loop_->wait();
            throw std::system_error(r.ok() ? machvm::errno_code(EPIPE) : r.error(),
                                    "the pager loop ended");
        }
        if (pager_.errors())
            throw std::runtime_error("the kernel refused " + std::to_string(pager_.errors()) +
                                     " pager commands");
    }

  private:
    bool copy_;
    std::span<const std::byte> src_;
    unsigned cluster_;
    machvm::PagerSetup setup_;
    BenchPager pager_;
    std::unique_ptr<machvm::Loop> loop_; // last: stopped before the rest goes
};

class UffdCase final : public Case {
  public:
    UffdCase(std::span<const std::byte> src, unsigned threads, unsigned cluster)
        : src_(src), page_(page_size()), cluster_(cluster) {
        int fd = static_cast<int>(::syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK));
        if (fd < 0)
            throw_errno("userfaultfd");
        uffd_.reset(fd);
        uffdio_api api{};
        api.api = UFFD_API;
        api.features = 0;
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

    Mapping map(std::size_t bytes) override {
        Mapping m = Mapping::map(bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                                 machvm::Fd(), "mmap anonymous region");
        len_.store(bytes, std::memory_order_relaxed);
        base_.store(reinterpret_cast<std::uintptr_t>(m.data()), std::memory_order_release);
        uffdio_register reg{};
        reg.range.start = reinterpret_cast<std::uintptr_t>(m.data());
        reg.range.len = bytes;
        reg.mode = UFFDIO_REGISTER_MODE_MISSING;
        if (::ioctl(uffd_.get(), UFFDIO_REGISTER, &reg) < 0)
            throw_errno("UFFDIO_REGISTER");
        if (!(reg.ioctls & (1ull << _UFFDIO_COPY)))
            throw std::runtime_error("UFFDIO_REGISTER: no UFFDIO_COPY on this range");
        return m;
    }
    std::byte initial(std::uint64_t offset) const noexcept override { return src_[offset]; }

  private:
    void stop() noexcept {
        std::uint64_t one = 1;
        if (stop_.valid())
            (void)!::write(stop_.get(), &one, sizeof(one));
        for (std::thread& t : threads_)
            if (t.joinable())
                t.join();
    }

    // UFFDIO_COPY of [off, off + len) of the region; false if a page of
    // it was there already (EEXIST).
    bool copy_range(std::uintptr_t base, std::uint64_t off, std::uint64_t len) noexcept {
        for (;;) {
            uffdio_copy c{};
            c.dst = base + off;
            c.src = reinterpret_cast<std::uintptr_t>(src_.data() + off);
            c.len = len;
            c.mode = 0;
            if (::ioctl(uffd_.get(), UFFDIO_COPY, &c) == 0)
                return true;
            if (errno == EEXIST)
                return false;
            if (errno != EAGAIN && errno != EINTR)
                bench::die(kProg, "UFFDIO_COPY", errno);
        }
    }

    // The policy of a machvm pager with --cluster N, as near as
    // userfaultfd allows: the whole aligned N pages around the fault in
    // one UFFDIO_COPY; if some are there already, from the faulting page
    // to the end of them; then that page alone.
    void copy(std::uint64_t address) noexcept {
        const std::uintptr_t base = base_.load(std::memory_order_acquire);
        const std::uint64_t len = len_.load(std::memory_order_relaxed);
        const std::uint64_t dst = address & ~(page_ - 1);
        const std::uint64_t off = dst - base;
        if (dst < base || off >= src_.size() || off >= len)
            bench::die(kProg, "userfaultfd: fault outside the region", EFAULT);
        g_probe.mark(off, page_);
        const std::uint64_t span = page_ * cluster_;
        const std::uint64_t lo = off - off % span;
        const std::uint64_t hi = std::min({lo + span, len, std::uint64_t{src_.size()}});
        if (cluster_ > 1 && (copy_range(base, lo, hi - lo) || copy_range(base, off, hi - off)))
            return;
        (void)copy_range(base, off, page_);
    }

    // Read until EAGAIN, then poll; answer every fault with UFFDIO_COPY.
    void serve() noexcept {
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
            for (std::size_t i = 0; i < count; ++i)
                if (msgs[i].event == UFFD_EVENT_PAGEFAULT)
                    copy(msgs[i].arg.pagefault.address);
        }
    }

    std::span<const std::byte> src_;
    std::uint64_t page_;
    unsigned cluster_;
    machvm::Fd uffd_;
    machvm::Fd stop_;
    std::atomic<std::uint64_t> len_{0};
    std::atomic<std::uintptr_t> base_{0};
    std::vector<std::thread> threads_;
};

class ShmemCase final : public Case {
  public:
    Mapping map(std::size_t bytes) override {
        int fd = ::memfd_create("machvm-bench-faults", MFD_CLOEXEC);
        if (fd < 0)
            throw_errno("memfd_create");
        machvm::Fd f(fd);
        if (::ftruncate(f.get(), static_cast<off_t>(bytes)) < 0)
            throw_errno("ftruncate memfd");
        return Mapping::map(bytes, PROT_READ | PROT_WRITE, MAP_SHARED, std::move(f), "mmap memfd");
    }
    std::byte initial(std::uint64_t) const noexcept override { return std::byte{0}; }
};

class AnonCase final : public Case {
  public:
    Mapping map(std::size_t bytes) override {
        return Mapping::map(bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                            machvm::Fd(), "mmap anonymous region");
    }
    std::byte initial(std::uint64_t) const noexcept override { return std::byte{0}; }
};

// ---- measuring ----

struct Samples {
    std::vector<std::uint64_t> lat_ns;  // every timed touch
    std::vector<std::uint64_t> to_ns;   // --breakdown: fault start to server has it
    std::vector<std::uint64_t> back_ns; // --breakdown: server has it to touch done
    std::uint64_t wall_ns = 0;          // summed over runs
    std::uint64_t busy_ticks = 0;       // all CPUs' busy time over the runs
    std::uint64_t total_ticks = 0;      // all CPUs' time over the runs
};

template <bool Write> inline void touch(std::byte* p, unsigned& sink) noexcept {
    if constexpr (Write)
        *reinterpret_cast<volatile unsigned char*>(p) = kWriteByte;
    else
        sink += *reinterpret_cast<volatile const unsigned char*>(p);
}

// Each touch's start time goes to start[i], its duration to lat[i].
template <bool Write>
void fault_pages(std::byte* first, std::uint64_t pages, std::uint64_t page, std::uint64_t* start,
                 std::uint64_t* lat, unsigned& sink) noexcept {
    for (std::uint64_t i = 0; i < pages; ++i) {
        std::byte* p = first + i * page;
        const std::uint64_t a = now_ns();
        touch<Write>(p, sink);
        const std::uint64_t b = now_ns();
        start[i] = a;
        lat[i] = b - a;
    }
}

std::atomic<unsigned> g_sink{0};

void run_once(CaseKind kind, Case& c, unsigned nthreads, const Options& o, Samples& out) {
    const std::uint64_t page = page_size();
    const std::uint64_t pages = o.pages * nthreads;
    Mapping m = c.map((pages + 1) * page);
    std::byte* base = m.data();
    // 4 KiB pages everywhere: no huge zero page or THP making most touches
    // fault-free (anon), no huge-PMD path for the first uffd fault.
    if (::madvise(base, m.size(), MADV_NOHUGEPAGE) < 0 && errno != EINVAL)
        throw_errno("madvise MADV_NOHUGEPAGE");

    // Warm-up: the last page, before the clock (machvm: init and ready).
    unsigned sink = 0;
    if (o.write)
        touch<true>(base + pages * page, sink);
    else
        touch<false>(base + pages * page, sink);
    c.check();

    // Allocated (and so resident) before any timed touch.
    std::vector<std::vector<std::uint64_t>> lat(nthreads, std::vector<std::uint64_t>(o.pages));
    std::vector<std::vector<std::uint64_t>> start(nthreads, std::vector<std::uint64_t>(o.pages));
    std::vector<std::uint64_t> received(o.breakdown ? pages : 0);
    std::vector<std::uint64_t> begin(nthreads), end(nthreads);
    std::barrier gate(static_cast<std::ptrdiff_t>(nthreads) + 1);
    std::mutex mu;
    std::condition_variable cv;
    unsigned done = 0;
    if (o.breakdown)
        g_probe.arm(received.data(), pages);

    std::vector<std::thread> threads;
    threads.reserve(nthreads);
    for (unsigned t = 0; t < nthreads; ++t) {
        threads.emplace_back([&, t] {
            std::byte* first = base + std::uint64_t{t} * o.pages * page;
            unsigned s = 0;
            gate.arrive_and_wait();
            begin[t] = now_ns();
            if (o.write)
                fault_pages<true>(first, o.pages, page, start[t].data(), lat[t].data(), s);
            else
                fault_pages<false>(first, o.pages, page, start[t].data(), lat[t].data(), s);
            end[t] = now_ns();
            g_sink.fetch_add(s, std::memory_order_relaxed);
            std::lock_guard<std::mutex> lock(mu);
            ++done;
            cv.notify_one();
        });
    }
    gate.arrive_and_wait();
    const bench::CpuTimes cpu0 = bench::cpu_times();
    {
        std::unique_lock<std::mutex> lock(mu);
        if (!cv.wait_for(lock, std::chrono::seconds(o.timeout_s), [&] { return done == nthreads; }))
            bench::die(kProg, "a run timed out (--timeout); faults are stuck", ETIMEDOUT);
    }
    for (std::thread& t : threads)
        t.join();
    const bench::CpuTimes cpu1 = bench::cpu_times();
    out.busy_ticks += cpu1.busy - cpu0.busy;
    out.total_ticks += cpu1.total - cpu0.total;
    g_probe.disarm();
    c.check();

    // Every page: first byte as touched, last byte as served.
    for (std::uint64_t i = 0; i < pages; ++i) {
        const std::uint64_t off = i * page;
        const auto first = static_cast<unsigned char>(base[off]);
        const unsigned char want_first =
            o.write ? kWriteByte : static_cast<unsigned char>(c.initial(off));
        const auto last = static_cast<unsigned char>(base[off + page - 1]);
        const auto want_last = static_cast<unsigned char>(c.initial(off + page - 1));
        if (first != want_first || last != want_last)
            throw std::runtime_error("page at offset " + std::to_string(off) +
                                     " holds the wrong data");
    }

    const std::uint64_t t0 = *std::min_element(begin.begin(), begin.end());
    const std::uint64_t t1 = *std::max_element(end.begin(), end.end());
    out.wall_ns += t1 - t0;
    const std::size_t first_new = out.lat_ns.size();
    for (const auto& v : lat)
        out.lat_ns.insert(out.lat_ns.end(), v.begin(), v.end());
    if (o.verbose) {
        std::vector<std::uint64_t> mine(out.lat_ns.begin() + static_cast<std::ptrdiff_t>(first_new),
                                        out.lat_ns.end());
        std::sort(mine.begin(), mine.end());
        const auto slow =
            std::count_if(mine.begin(), mine.end(), [](std::uint64_t v) { return v > 1000000; });
        std::fprintf(stderr,
                     "%s: %-12s threads %u: %llu faults in %.3f s, %.0f/s, p50 %.2f us, p99 "
                     "%.2f us, max %.0f us, %ld over 1 ms\n",
                     kProg, case_name(kind), nthreads, static_cast<unsigned long long>(pages),
                     static_cast<double>(t1 - t0) / 1e9,
                     static_cast<double>(pages) * 1e9 / static_cast<double>(t1 - t0),
                     percentile_us(mine, 0.5), percentile_us(mine, 0.99),
                     static_cast<double>(mine.back()) / 1000.0, static_cast<long>(slow));
    }
    if (!o.breakdown)
        return;
    for (unsigned t = 0; t < nthreads; ++t) {
        for (std::uint64_t i = 0; i < o.pages; ++i) {
            const std::uint64_t got = std::atomic_ref<std::uint64_t>(received[t * o.pages + i])
                                          .load(std::memory_order_relaxed);
            const std::uint64_t a = start[t][i];
            const std::uint64_t b = a + lat[t][i];
            if (got < a || got > b)
                continue; // not served by user space (shmem), or clock skew
            out.to_ns.push_back(got - a);
            out.back_ns.push_back(b - got);
        }
    }
}

struct Split {
    double p50_us = 0, p99_us = 0, mean_us = 0;
};

struct Row {
    CaseKind kind;
    unsigned threads = 0;
    std::uint64_t faults = 0;
    double seconds = 0;
    double fps = 0;
    double p50_us = 0, p99_us = 0, mean_us = 0, max_us = 0;
    double cpu_busy = 0;         // share of all CPUs' time not idle, 0 to 1
    double cpu_us_per_fault = 0; // busy CPU time (all tasks) per fault
    std::optional<double> fps_ratio, p50_ratio, p99_ratio; // vs userfaultfd
    std::optional<Split> to, back;                         // --breakdown
};

std::optional<Split> split(std::vector<std::uint64_t>& v) {
    if (v.empty())
        return std::nullopt;
    std::sort(v.begin(), v.end());
    return Split{percentile_us(v, 0.50), percentile_us(v, 0.99), mean_us(v)};
}

Row summarize(CaseKind kind, unsigned threads, Samples& s) {
    Row r;
    r.kind = kind;
    r.threads = threads;
    r.faults = s.lat_ns.size();
    r.seconds = static_cast<double>(s.wall_ns) / 1e9;
    r.fps = r.seconds > 0 ? static_cast<double>(r.faults) / r.seconds : 0;
    std::sort(s.lat_ns.begin(), s.lat_ns.end());
    r.p50_us = percentile_us(s.lat_ns, 0.50);
    r.p99_us = percentile_us(s.lat_ns, 0.99);
    r.mean_us = mean_us(s.lat_ns);
    r.max_us = s.lat_ns.empty() ? 0 : static_cast<double>(s.lat_ns.back()) / 1000.0;
    if (s.total_ticks)
        r.cpu_busy = static_cast<double>(s.busy_ticks) / static_cast<double>(s.total_ticks);
    if (r.faults)
        r.cpu_us_per_fault = static_cast<double>(s.busy_ticks) * 1e6 /
                             static_cast<double>(bench::clock_ticks()) /
                             static_cast<double>(r.faults);
    r.to = split(s.to_ns);
    r.back = split(s.back_ns);
    return r;
}

void add_ratios(std::vector<Row>& rows) {
    for (Row& r : rows) {
        for (const Row& u : rows) {
            if (u.kind != CaseKind::Uffd || u.threads != r.threads)
                continue;
            if (u.fps > 0)
                r.fps_ratio = r.fps / u.fps;
            if (u.p50_us > 0)
                r.p50_ratio = r.p50_us / u.p50_us;
            if (u.p99_us > 0)
                r.p99_ratio = r.p99_us / u.p99_us;
        }
    }
}

// ---- the machine ----

struct Machine : bench::Machine {
    double clock_ns = 0; // one clock_gettime(CLOCK_MONOTONIC)
};

Machine describe_machine() {
    Machine m;
    static_cast<bench::Machine&>(m) = bench::describe_machine();
    m.clock_ns = bench::clock_gettime_ns();
    return m;
}

// ---- memory per resident page ----

// /proc/meminfo's Slab, in bytes.
std::int64_t slab_bytes() {
    std::ifstream f("/proc/meminfo");
    std::string key, rest;
    std::int64_t kib = 0;
    while (f >> key >> kib) {
        std::getline(f, rest);
        if (key == "Slab:")
            return kib * 1024;
    }
    throw std::runtime_error("/proc/meminfo: no Slab line");
}

// Slab bytes that writing one byte to each page of `m` (making it resident)
// adds.
std::int64_t slab_growth(const Mapping& m, long page) {
    const std::int64_t before = slab_bytes();
    for (std::size_t off = 0; off < m.size(); off += static_cast<std::size_t>(page))
        m.data()[off] = std::byte{1};
    return slab_bytes() - before;
}

struct Metadata {
    std::uint64_t pages = 0;
    double machvm_slab_bytes = 0; // medians of the rounds
    double memfd_slab_bytes = 0;
    double bytes_per_page = 0;
};

// See "memory per resident page" in the manual.
Metadata measure_metadata(std::uint64_t pages, long page) {
    const std::size_t len = pages * static_cast<std::size_t>(page);
    std::vector<double> mvm, memfd;
    for (int round = 0; round < 3; ++round) {
        machvm::Fd mfd(::memfd_create("machvm-bench-metadata", MFD_CLOEXEC));
        if (!mfd)
            throw_errno("memfd_create");
        if (::ftruncate(mfd.get(), static_cast<off_t>(len)) < 0)
            throw_errno("ftruncate memfd");
        std::int64_t f = 0;
        {
            const Mapping m =
                Mapping::map(len, PROT_READ | PROT_WRITE, MAP_SHARED, std::move(mfd), "mmap memfd");
            f = slab_growth(m, page);
        }
        machvm::Fd dev(::open(MACHVM_DEVICE, O_RDWR | O_CLOEXEC));
        if (!dev)
            throw_errno("open " MACHVM_DEVICE);
        machvm_anon_create ac{};
        ac.size = len;
        if (::ioctl(dev.get(), MACHVM_IOC_ANON_CREATE, &ac) < 0)
            throw_errno("MACHVM_IOC_ANON_CREATE");
        std::int64_t g = 0;
        {
            const Mapping m = Mapping::map(len, PROT_READ | PROT_WRITE, MAP_SHARED,
                                           machvm::Fd(ac.fd), "mmap machvm object");
            g = slab_growth(m, page);
        }
        mvm.push_back(static_cast<double>(g));
        memfd.push_back(static_cast<double>(f));
    }
    const auto median = [](std::vector<double> v) {
        std::sort(v.begin(), v.end());
        return v[v.size() / 2];
    };
    const double m = median(mvm), f = median(memfd);
    return {pages, m, f, (m - f) / static_cast<double>(pages)};
}

// ---- output ----

std::string json_document(const Machine& m, const Options& o, unsigned uffd_threads,
                          const std::vector<Row>& rows, const std::optional<Metadata>& md) {
    std::string j = "{\n";
    j += " \"benchmark\": \"faults\",\n";
    j += " \"machine\": {\"kernel\": " + json_string(m.kernel) +
         ", \"nproc\": " + std::to_string(m.nproc) + ", \"cpu\": " + json_string(m.cpu) +
         ", \"clocksource\": " + json_string(m.clocksource) +
         ", \"clock_gettime_ns\": " + bench::number(m.clock_ns, "%.1f") +
         ", \"page_size\": " + std::to_string(m.page) + "},\n";
    j += " \"config\": {\"pages_per_thread\": " + std::to_string(o.pages) +
         ", \"access\": " + json_string(o.write ? "write" : "read") +
         ", \"pager_threads\": " + std::to_string(o.pager_threads) +
         ", \"pager_depth\": " + std::to_string(o.depth) +
         ", \"cluster_pages\": " + std::to_string(o.cluster) +
         ", \"pager_transport\": " + json_string(o.blocking ? "blocking" : "uring") +
         ", \"pager_defer_taskrun\": " + (o.defer_taskrun ? "true" : "false") +
         ", \"uffd_threads\": " + std::to_string(uffd_threads) +
         ", \"runs\": " + std::to_string(o.runs) +
         ", \"breakdown\": " + (o.breakdown ? "true" : "false") + "},\n";
    j += " \"results\": [";
    for (std::size_t i = 0; i < rows.size(); ++i) {
        const Row& r = rows[i];
        j += i ? ",\n  " : "\n  ";
        j += "{\"case\": " + json_string(case_name(r.kind)) +
             ", \"threads\": " + std::to_string(r.threads) +
             ", \"faults\": " + std::to_string(r.faults) +
             ", \"seconds\": " + bench::number(r.seconds, "%.6f") +
             ", \"faults_per_s\": " + bench::number(r.fps, "%.1f") +
             ", \"p50_us\": " + bench::number(r.p50_us, "%.3f") +
             ", \"p99_us\": " + bench::number(r.p99_us, "%.3f") +
             ", \"mean_us\": " + bench::number(r.mean_us, "%.3f") +
             ", \"max_us\": " + bench::number(r.max_us, "%.3f") +
             ", \"cpu_busy\": " + bench::number(r.cpu_busy, "%.3f") +
             ", \"cpu_us_per_fault\": " + bench::number(r.cpu_us_per_fault, "%.2f") +
             ", \"faults_per_s_vs_uffd\": " + bench::json_ratio(r.fps_ratio) +
             ", \"p50_vs_uffd\": " + bench::json_ratio(r.p50_ratio) +
             ", \"p99_vs_uffd\": " + bench::json_ratio(r.p99_ratio);
        for (const auto& [key, part] : {std::pair{"to_server", &r.to}, {"back", &r.back}}) {
            if (!*part)
                continue;
            j += std::string(", \"") + key +
                 "_p50_us\": " + bench::number((*part)->p50_us, "%.3f") + ", \"" + key +
                 "_p99_us\": " + bench::number((*part)->p99_us, "%.3f") + ", \"" + key +
                 "_mean_us\": " + bench::number((*part)->mean_us, "%.3f");
        }
        j += "}";
    }
    j += "\n ]";
    if (md)
        j += ",\n \"metadata_bytes_per_page\": " + bench::number(md->bytes_per_page, "%.2f") +
             ",\n \"metadata\": {\"pages\": " + std::to_string(md->pages) +
             ", \"machvm_slab_bytes\": " + bench::number(md->machvm_slab_bytes, "%.0f") +
             ", \"memfd_slab_bytes\": " + bench::number(md->memfd_slab_bytes, "%.0f") + "}";
    j += "\n}\n";
    return j;
}

void print_table(const Machine& m, const Options& o, unsigned uffd_threads,
                 const std::vector<Row>& rows, const std::optional<Metadata>& md) {
    std::printf("page faults: %s, %ld CPUs, %s, clocksource %s (clock_gettime %.0f ns)\n",
                m.kernel.c_str(), m.nproc, m.cpu.empty() ? "?" : m.cpu.c_str(),
                m.clocksource.empty() ? "?" : m.clocksource.c_str(), m.clock_ns);
    std::printf("%llu pages per faulting thread, %s touches, %u run%s; machvm pager: %u %s "
                "thread%s (depth %u); userfaultfd: %u handler thread%s\n",
                static_cast<unsigned long long>(o.pages), o.write ? "write" : "read", o.runs,
                o.runs == 1 ? "" : "s", o.pager_threads, o.blocking ? "blocking" : "io_uring",
                o.pager_threads == 1 ? "" : "s", o.depth, uffd_threads,
                uffd_threads == 1 ? "" : "s");
    std::printf("%-12s %7s %12s %9s %9s %10s %10s %10s %6s %9s\n", "case", "threads", "faults/s",
                "p50 us", "p99 us", "f/s:uffd", "p50:uffd", "p99:uffd", "busy", "cpu us/f");
    for (const Row& r : rows)
        std::printf("%-12s %7u %12.0f %9.2f %9.2f %10s %10s %10s %5.0f%% %9.1f\n",
                    case_name(r.kind), r.threads, r.fps, r.p50_us, r.p99_us,
                    ratio_cell(r.fps_ratio).c_str(), ratio_cell(r.p50_ratio).c_str(),
                    ratio_cell(r.p99_ratio).c_str(), r.cpu_busy * 100, r.cpu_us_per_fault);
    if (md)
        std::printf("\nmemory per resident page: %.2f bytes of slab (%llu pages: machvm object "
                    "%.0f bytes, memfd %.0f bytes)\n",
                    md->bytes_per_page, static_cast<unsigned long long>(md->pages),
                    md->machvm_slab_bytes, md->memfd_slab_bytes);
    if (!o.breakdown)
        return;
    std::printf("\nbreakdown: \"to server\" is fault start to the server's user code having the\n"
                "request; \"back\" is from there to the touch done (answer, wake-up, retry)\n");
    std::printf("%-12s %7s %12s %12s %12s %12s %12s %12s\n", "case", "threads", "to p50 us",
                "to p99 us", "to mean us", "back p50 us", "back p99 us", "back mean us");
    for (const Row& r : rows)
        if (r.to && r.back)
            std::printf("%-12s %7u %12.2f %12.2f %12.2f %12.2f %12.2f %12.2f\n", case_name(r.kind),
                        r.threads, r.to->p50_us, r.to->p99_us, r.to->mean_us, r.back->p50_us,
                        r.back->p99_us, r.back->mean_us);
}

std::unique_ptr<Case> make_case(CaseKind k, std::span<const std::byte> src, const Options& o,
                                unsigned uffd_threads) {
    switch (k) {
    case CaseKind::Zero:
        return std::make_unique<MachvmCase>(false, src, o);
    case CaseKind::Copy:
        return std::make_unique<MachvmCase>(true, src, o);
    case CaseKind::Uffd:
        return std::make_unique<UffdCase>(src, uffd_threads, o.cluster);
    case CaseKind::Shmem:
        return std::make_unique<ShmemCase>();
    case CaseKind::Anon:
        return std::make_unique<AnonCase>();
    }
    throw std::logic_error("unknown case");
}

int run(const Options& o) {
    bench::report_sigbus(kProg, "the pager failed?");

    const unsigned uffd_threads = o.uffd_threads.value_or(o.pager_threads);
    const Machine machine = describe_machine();
    const unsigned max_threads = *std::max_element(o.threads.begin(), o.threads.end());
    const Mapping src = make_source((o.pages * max_threads + 1) * machine.page);
    const std::span<const std::byte> source(src.data(), src.size());

    // Every case's servers live for the whole run, and the rounds go
    // round-robin over the cases, so slow drifts of the machine hit all alike.
    std::vector<std::unique_ptr<Case>> cases;
    for (CaseKind k : o.cases)
        cases.push_back(make_case(k, source, o, uffd_threads));
    std::vector<Samples> samples(o.cases.size() * o.threads.size());
    for (unsigned round = 0; round < o.runs; ++round) {
        const std::uint64_t t0 = now_ns();
        for (std::size_t ti = 0; ti < o.threads.size(); ++ti)
            for (std::size_t ci = 0; ci < cases.size(); ++ci)
                run_once(o.cases[ci], *cases[ci], o.threads[ti], o,
                         samples[ci * o.threads.size() + ti]);
        if (!o.out.quiet)
            std::fprintf(stderr, "%s: round %u of %u done in %.1f s\n", kProg, round + 1, o.runs,
                         static_cast<double>(now_ns() - t0) / 1e9);
    }
    cases.clear();
    std::vector<Row> rows;
    for (std::size_t ci = 0; ci < o.cases.size(); ++ci)
        for (std::size_t ti = 0; ti < o.threads.size(); ++ti)
            rows.push_back(
                summarize(o.cases[ci], o.threads[ti], samples[ci * o.threads.size() + ti]));
    add_ratios(rows);
    std::optional<Metadata> md;
    if (o.metadata_pages)
        md = measure_metadata(o.metadata_pages, machine.page);

    std::fflush(stderr);
    print_table(machine, o, uffd_threads, rows, md);
    bench::emit_json(o.out, json_document(machine, o, uffd_threads, rows, md));
    return machvm::kExitOk;
}

} // namespace

int main(int argc, char** argv) {
    return bench::main(argc, argv, kProg, kHelp, Options{}, option, check, run);
}
