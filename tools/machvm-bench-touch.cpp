// SPDX-License-Identifier: GPL-2.0
//
// machvm-bench-touch: where a program's time goes under machvm-run when
// nothing is paged.  Run it plain and under machvm-run: it times the first
// touch of fresh memory from malloc (under machvm-run: the anonymous machvm
// object), from an anonymous private mapping made with the raw system call
// (never served by the preload library: Linux's anonymous fault either
// way) and from a memfd mapped shared (a shmem page-cache fault), and the
// malloc family itself on memory already touched.  See --help.
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <machvm/cli.hpp>

namespace {

const char kHelp[] =
    "NAME\n"
    "       machvm-bench-touch - first-touch faults and malloc, plain or under machvm-run\n"
    "\n"
    "SYNOPSIS\n"
    "       machvm-bench-touch [--size SIZE] [--ops N] [--rounds N]\n"
    "       machvm-run --resident 1G -- machvm-bench-touch ...\n"
    "\n"
    "DESCRIPTION\n"
    "       Prints one line per case, the best of --rounds rounds (fresh memory\n"
    "       each round: the malloc'd blocks are freed only at the end):\n"
    "       malloc-touch   malloc(SIZE), then one write per page: first-touch\n"
    "                      faults of wherever malloc's memory comes from (glibc:\n"
    "                      an anonymous mmap; under machvm-run: the machvm object)\n"
    "       retouch        the same pages again (no faults): the loop's own cost\n"
    "       anon-touch     mmap(MAP_PRIVATE|MAP_ANONYMOUS) by the raw system call,\n"
    "                      one write per page: Linux's anonymous fault\n"
    "       shmem-touch    a memfd of SIZE mapped MAP_SHARED, one write per page:\n"
    "                      a page-cache (shmem) fault\n"
    "       malloc-ops     N operations on a pool of 4096 live blocks of 16..4096\n"
    "                      bytes (a pseudo-random slot freed and refilled, the block\n"
    "                      written once), after one warm-up pass: the allocator, not\n"
    "                      the faults\n"
    "       Each line: ns per page (or per operation) and minor faults per page\n"
    "       (getrusage).  MADV_NOHUGEPAGE on every region: 4 KiB faults only.\n"
    "\n"
    "OPTIONS\n"
    "       --size SIZE   bytes touched per case and round (default 32M; K, M, G)\n"
    "       --ops N       malloc-ops operations (default 400000)\n"
    "       --rounds N    rounds (default 3)\n"
    "       --help, -h    this text\n"
    "\n"
    "EXIT STATUS\n"
    "       0 done, 1 a mapping failed, 2 usage.\n";

double now() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

long minflt() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_minflt;
}

struct Result {
    double ns = 1e30; // best per unit
    double flt = 0;   // minor faults per unit in that round
};

void keep(Result& r, double secs, long faults, std::size_t units) {
    const double ns = secs * 1e9 / static_cast<double>(units);
    if (ns < r.ns) {
        r.ns = ns;
        r.flt = static_cast<double>(faults) / static_cast<double>(units);
    }
}

// One write per page of [p, p + size); seconds and minor faults.
void touch(char* p, std::size_t size, Result& r) {
    const long f0 = minflt();
    const double t0 = now();
    for (std::size_t off = 0; off < size; off += 4096)
        p[off] = static_cast<char>(off >> 12 | 1);
    keep(r, now() - t0, minflt() - f0, size / 4096);
}

[[noreturn]] void fail(const char* what) {
    std::fprintf(stderr, "machvm-bench-touch: %s: %s\n", what, std::strerror(errno));
    std::exit(1);
}

void* raw_mmap(std::size_t size, int flags, int fd) {
    void* p = reinterpret_cast<void*>(
        ::syscall(SYS_mmap, nullptr, size, PROT_READ | PROT_WRITE, flags, fd, 0));
    if (p == MAP_FAILED)
        fail("mmap");
    ::madvise(p, size, MADV_NOHUGEPAGE);
    return p;
}

std::uint64_t rng = 88172645463325252ull;
std::uint64_t next() {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

// The pool: fill, then ops replacements.  Returns a checksum so that the
// work cannot be optimised away.
std::uint64_t pool_ops(std::vector<char*>& pool, std::size_t ops) {
    std::uint64_t sum = 0;
    for (std::size_t i = 0; i < ops; ++i) {
        const std::size_t slot = next() % pool.size();
        std::free(pool[slot]);
        const std::size_t n = 16 + next() % 4081;
        char* b = static_cast<char*>(std::malloc(n));
        if (!b)
            fail("malloc");
        b[0] = static_cast<char>(i);
        b[n - 1] = static_cast<char>(i);
        sum += reinterpret_cast<std::uintptr_t>(b) & 0xff;
        pool[slot] = b;
    }
    return sum;
}

} // namespace

int main(int argc, char** argv) {
    std::size_t size = std::size_t{32} << 20;
    std::size_t ops = 400000;
    unsigned rounds = 3;
    try {
        machvm::ArgReader args(argc, argv);
        while (!args.done()) {
            if (args.flag("--help", "-h")) {
                std::fputs(kHelp, stdout);
                return 0;
            } else if (auto v = args.value("--size")) {
                auto r = machvm::parse_size(*v);
                if (!r || r.value() < 4096)
                    throw machvm::UsageError("--size: bad size '" + *v + "'");
                size = r.value() & ~std::size_t{4095};
            } else if (auto o = args.value("--ops")) {
                ops = std::strtoul(o->c_str(), nullptr, 10);
                if (ops == 0)
                    throw machvm::UsageError("--ops: bad number '" + *o + "'");
            } else if (auto n = args.value("--rounds")) {
                rounds = static_cast<unsigned>(std::strtoul(n->c_str(), nullptr, 10));
                if (rounds == 0)
                    throw machvm::UsageError("--rounds: bad number '" + *n + "'");
            } else {
                args.unknown();
            }
        }
    } catch (const machvm::UsageError& e) {
        std::fprintf(stderr, "machvm-bench-touch: %s (see --help)\n", e.what());
        return 2;
    }

    Result mt, rt, at, st, mo;
    std::uint64_t sum = 0;
    std::vector<char*> fresh;
    for (unsigned r = 0; r < rounds; ++r) {
        char* m = static_cast<char*>(std::malloc(size));
        if (!m)
            fail("malloc");
        ::madvise(
            reinterpret_cast<void*>(reinterpret_cast<std::uintptr_t>(m) & ~std::uintptr_t{4095}),
            size, MADV_NOHUGEPAGE);
        touch(m, size, mt);
        touch(m, size, rt);
        fresh.push_back(m); // freed at the end: every round's memory is new

        char* a = static_cast<char*>(raw_mmap(size, MAP_PRIVATE | MAP_ANONYMOUS, -1));
        touch(a, size, at);
        ::syscall(SYS_munmap, a, size);

        const int fd = memfd_create("machvm-bench-touch", 0);
        if (fd < 0 || ftruncate(fd, static_cast<off_t>(size)) < 0)
            fail("memfd");
        char* s = static_cast<char*>(raw_mmap(size, MAP_SHARED, fd));
        touch(s, size, st);
        ::syscall(SYS_munmap, s, size);
        close(fd);

        std::vector<char*> pool(4096, nullptr);
        sum += pool_ops(pool, pool.size() * 4); // warm-up: memory touched
        const long f0 = minflt();
        const double t0 = now();
        sum += pool_ops(pool, ops);
        keep(mo, now() - t0, minflt() - f0, ops);
        for (char* b : pool)
            std::free(b);
    }
    for (char* m : fresh)
        std::free(m);
    std::printf("touch: %zu KiB, %u rounds, best round (checksum %llu)\n", size >> 10, rounds,
                static_cast<unsigned long long>(sum & 0xff));
    std::printf("%-13s %10s %12s\n", "case", "ns/unit", "minflt/unit");
    std::printf("%-13s %10.0f %12.3f\n", "malloc-touch", mt.ns, mt.flt);
    std::printf("%-13s %10.0f %12.3f\n", "retouch", rt.ns, rt.flt);
    std::printf("%-13s %10.0f %12.3f\n", "anon-touch", at.ns, at.flt);
    std::printf("%-13s %10.0f %12.3f\n", "shmem-touch", st.ns, st.flt);
    std::printf("%-13s %10.0f %12.3f\n", "malloc-ops", mo.ns, mo.flt);
    return 0;
}
