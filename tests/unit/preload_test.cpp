// SPDX-License-Identifier: GPL-2.0
// libmachvm-preload.so in a real process, on the host: no module here, so
// the library's test backing (MACHVM_RUN_BACKING=memfd: a shared memfd in
// place of the machvm object, mapped the same way) is used.  The test
// re-executes itself with the library preloaded and checks from inside
// that the malloc family and anonymous mmap are served from the region,
// behave as glibc's do, survive fork with copy semantics and threads; then
// that ordinary programs (sh, a pipeline, sort) run under it.
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <malloc.h>
#include <string>
#include <thread>
#include <vector>

#include "check.hpp"

namespace {

std::uintptr_t g_lo = 0, g_hi = 0;

// The region: the mapping of the memfd the library created.
bool find_region() {
    std::ifstream maps("/proc/self/maps");
    std::string line;
    while (std::getline(maps, line)) {
        if (line.find("memfd:machvm-run") == std::string::npos)
            continue;
        g_lo = std::stoull(line.substr(0, line.find('-')), nullptr, 16);
        g_hi = std::stoull(line.substr(line.find('-') + 1), nullptr, 16);
        return true;
    }
    return false;
}

bool in(const void* p) {
    const auto a = reinterpret_cast<std::uintptr_t>(p);
    return a >= g_lo && a < g_hi;
}

bool aligned_to(const void* p, std::size_t a) {
    return reinterpret_cast<std::uintptr_t>(p) % a == 0;
}

void child_malloc() {
    void* p = std::malloc(10);
    CHECK(in(p));
    CHECK(aligned_to(p, 16));
    CHECK(malloc_usable_size(p) >= 10);
    std::free(p);
    auto* z = static_cast<unsigned char*>(std::calloc(1000, 100));
    bool zero = z != nullptr;
    for (int i = 0; zero && i < 100000; ++i)
        zero = z[i] == 0;
    CHECK(zero && in(z));
    std::free(z);
    volatile std::size_t huge = SIZE_MAX / 2; // overflows times 4
    CHECK(std::calloc(huge, 4) == nullptr);
    char* r = static_cast<char*>(std::malloc(100));
    std::strcpy(r, "realloc keeps this");
    r = static_cast<char*>(std::realloc(r, 1 << 20));
    CHECK(r && in(r) && std::strcmp(r, "realloc keeps this") == 0);
    r = static_cast<char*>(std::realloc(r, 5));
    CHECK(r && std::strncmp(r, "reall", 5) == 0);
    std::free(r);
    void* a = nullptr;
    CHECK_EQ(posix_memalign(&a, 4096, 100), 0);
    CHECK(in(a) && aligned_to(a, 4096));
    std::free(a);
    CHECK_EQ(posix_memalign(&a, 24, 100), EINVAL);
    void* b = aligned_alloc(1 << 16, 1000);
    CHECK(in(b) && aligned_to(b, 1 << 16));
    std::free(b);
    void* c = memalign(64, 3);
    CHECK(in(c) && aligned_to(c, 64));
    std::free(c);
    void* v = valloc(10);
    CHECK(in(v) && aligned_to(v, 4096));
    std::free(v);
    void* pv = pvalloc(10);
    CHECK(in(pv) && malloc_usable_size(pv) >= 4096);
    std::free(pv);
    // C++ allocation goes through malloc.
    std::vector<std::string> strs;
    for (int i = 0; i < 1000; ++i)
        strs.push_back(std::string(static_cast<std::size_t>(i), 'x'));
    CHECK(in(strs.data()) && in(strs[999].data()));
    char* d = strdup("dup");
    CHECK(in(d));
    std::free(d);
    std::free(nullptr);
}

void child_mmap() {
    const std::size_t pg = 4096;
    auto* m = static_cast<unsigned char*>(
        mmap(nullptr, 10 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    CHECK(m != MAP_FAILED && in(m));
    bool zero = true;
    for (std::size_t i = 0; i < 10 * pg; ++i)
        zero = zero && m[i] == 0;
    CHECK(zero);
    std::memset(m, 1, 10 * pg);
    CHECK_EQ(munmap(m + 2 * pg, 2 * pg), 0);
    CHECK_EQ(munmap(m + 1, pg), -1); // unaligned: EINVAL, as the kernel says
    auto* g = static_cast<unsigned char*>(mremap(m + 4 * pg, 6 * pg, 20 * pg, MREMAP_MAYMOVE));
    CHECK(g != MAP_FAILED && in(g) && g[0] == 1 && g[6 * pg - 1] == 1 && g[6 * pg] == 0);
    // madvise(MADV_DONTNEED) zero-fills, as on private anonymous memory.
    CHECK_EQ(madvise(g, pg, MADV_DONTNEED), 0);
    CHECK(g[0] == 0 && g[pg] == 1);
    CHECK_EQ(munmap(g, 20 * pg), 0);
    CHECK_EQ(munmap(m, 2 * pg), 0);
    // Not served: other protections, stacks, hints.
    void* n = mmap(nullptr, pg, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(n != MAP_FAILED && !in(n));
    munmap(n, pg);
    void* s =
        mmap(nullptr, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    CHECK(s != MAP_FAILED && !in(s));
    munmap(s, pg);
    CHECK_EQ(mlock(g_lo ? reinterpret_cast<void*>(g_lo) : nullptr, pg), 0);
}

void child_fork() {
    char* shared = static_cast<char*>(std::malloc(64));
    std::strcpy(shared, "before fork");
    std::vector<char*> many;
    for (int i = 0; i < 200; ++i) {
        many.push_back(static_cast<char*>(std::malloc(static_cast<std::size_t>(100 + i * 97))));
        std::memset(many.back(), i, static_cast<std::size_t>(100 + i * 97));
    }
    int p[2];
    CHECK_EQ(pipe(p), 0);
    const pid_t pid = fork();
    if (pid == 0) {
        close(p[1]);
        char c;
        (void)!read(p[0], &c, 1); // the parent has written by now
        int bad = std::strcmp(shared, "before fork") != 0;
        for (int i = 0; i < 200; ++i)
            for (int j = 0; j < 100 + i * 97; ++j)
                bad += many[static_cast<std::size_t>(i)][j] != static_cast<char>(i);
        std::strcpy(shared, "child wrote");
        for (char* q : many)
            std::free(q);
        char* x = static_cast<char*>(std::malloc(5000));
        std::strcpy(x, "child heap");
        _exit(bad ? 1 : 0);
    }
    close(p[0]);
    std::strcpy(shared, "parent wrote");
    (void)!write(p[1], "x", 1);
    close(p[1]);
    int st = 0;
    CHECK_EQ(waitpid(pid, &st, 0), pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK(std::strcmp(shared, "parent wrote") == 0);
    bool ok = true;
    for (int i = 0; i < 200; ++i)
        for (int j = 0; j < 100 + i * 97; ++j)
            ok = ok && many[static_cast<std::size_t>(i)][j] == static_cast<char>(i);
    CHECK(ok);
    for (char* q : many)
        std::free(q);
    std::free(shared);
}

void child_threads() {
    std::atomic<int> bad{0};
    std::vector<std::thread> ts;
    for (int k = 0; k < 4; ++k)
        ts.emplace_back([&bad, k] {
            std::vector<std::pair<char*, int>> mine;
            for (int i = 0; i < 20000; ++i) {
                const int n = 1 + (i * 7919 + k) % 3000;
                char* p = static_cast<char*>(std::malloc(static_cast<std::size_t>(n)));
                if (!in(p))
                    ++bad;
                std::memset(p, k, static_cast<std::size_t>(n));
                mine.emplace_back(p, n);
                if (mine.size() > 50) {
                    auto [q, qn] = mine[static_cast<std::size_t>(i) % mine.size()];
                    for (int j = 0; j < qn; ++j)
                        bad += q[j] != k;
                    std::free(q);
                    mine[static_cast<std::size_t>(i) % mine.size()] = mine.back();
                    mine.pop_back();
                }
            }
            for (auto& [q, n] : mine)
                std::free(q);
        });
    for (auto& t : ts)
        t.join();
    CHECK_EQ(bad.load(), 0);
}

int child() {
    CHECK(find_region());
    if (!g_lo)
        return unit::finish("preload_test (preloaded)");
    child_malloc();
    child_mmap();
    child_fork();
    child_threads();
    return unit::finish("preload_test (preloaded)");
}

std::string library() {
    char buf[4096];
    const ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
    std::string p(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
    return p.substr(0, p.rfind('/')) + "/../../lib/libmachvm-preload.so";
}

// Runs argv with the library preloaded; returns the exit status.
int run_preloaded(const std::vector<const char*>& argv, const std::string& lib,
                  std::string* out = nullptr) {
    int p[2];
    if (pipe(p) != 0)
        return -1;
    const pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        dup2(p[1], STDOUT_FILENO);
        setenv("LD_PRELOAD", lib.c_str(), 1);
        setenv("MACHVM_RUN_BACKING", "memfd", 1);
        setenv("MACHVM_RUN_SIZE", "1073741824", 1);
        execv(argv[0], const_cast<char* const*>(argv.data()));
        _exit(127);
    }
    close(p[1]);
    char buf[4096];
    ssize_t n;
    while ((n = read(p[0], buf, sizeof(buf))) > 0)
        if (out)
            out->append(buf, static_cast<std::size_t>(n));
    close(p[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

} // namespace

int main(int argc, char** argv) {
    if (argc > 1 && std::strcmp(argv[1], "--child") == 0)
        return child();
    const std::string lib = library();
    CHECK(access(lib.c_str(), R_OK) == 0);
    std::string out;
    const int rc = run_preloaded({"/proc/self/exe", "--child", nullptr}, lib, &out);
    std::fputs(out.c_str(), stdout);
    CHECK_EQ(rc, 0);
    CHECK(out.find("0 failed") != std::string::npos);
    out.clear();
    CHECK_EQ(run_preloaded({"/bin/sh", "-c", "x=$(echo hello | tr a-z A-Z); echo $x", nullptr}, lib,
                           &out),
             0);
    CHECK(out == "HELLO\n");
    out.clear();
    CHECK_EQ(
        run_preloaded({"/bin/sh", "-c", "seq 1 200000 | sort -rn | head -1", nullptr}, lib, &out),
        0);
    CHECK(out == "200000\n");
    return unit::finish("preload_test");
}
