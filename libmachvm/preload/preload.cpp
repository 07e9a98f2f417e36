// SPDX-License-Identifier: GPL-2.0
//
// libmachvm-preload.so: machvm-run's LD_PRELOAD library.  It puts a
// program's anonymous memory in one anonymous machvm object (Mach's
// vm_allocate: zero-filled, paged by the in-kernel default pager under the
// object's own resident limit): the malloc family is replaced by the Heap
// of heap.hpp over one MAP_SHARED mapping of the object, and anonymous
// private mmap/munmap/mremap calls are served from the same mapping.
//
// Environment (machvm-run sets it):
//   MACHVM_RUN_RESIDENT  resident limit of the object, bytes (0: none)
//   MACHVM_RUN_SIZE      virtual size of the object, bytes (default 64 GiB)
//   MACHVM_RUN_BACKING   machvm (default), memfd or anon: what backs the
//                        region (memfd and anon are for tests without the
//                        module; anon is private memory, memfd shared)
//   MACHVM_RUN_FD        descriptor of an object a pager serves (machvm-run
//                        --pager): the heap maps it instead of creating an
//                        anonymous object, and closes it.  Unset once used,
//                        so programs this one executes get objects of their
//                        own.
//   MACHVM_RUN_VERBOSE   1: report the object at start and stats at exit
//   MACHVM_RUN_NOINHERIT 1: drop the library from LD_PRELOAD so programs
//                        this one executes run without it
//
// Nothing here may allocate through libc's malloc, throw or recurse into
// itself: initialisation uses system calls and getenv only.  Whatever the
// heap cannot serve (before initialisation, region full, foreign pointers,
// mmap calls of other kinds) goes to glibc (__libc_malloc and friends, the
// next mmap in the lookup order), so the program always runs.
//
// fork(): the region is MAP_SHARED, so a child would share the heap's
// pages with its parent.  The child's atfork handler copies the pages in
// use to a fresh object of its own (or, failing that, private memory),
// which restores fork's copy semantics at a cost proportional to the heap.
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>

#include "heap.hpp"
#include <linux/machvm.h>

extern "C" {
void* __libc_malloc(size_t);
void __libc_free(void*);
void* __libc_calloc(size_t, size_t);
void* __libc_realloc(void*, size_t);
void* __libc_memalign(size_t, size_t);
}

namespace {

using namespace mvmrun;

constexpr std::size_t kDefaultSize = std::size_t{64} << 30;
constexpr int kRW = PROT_READ | PROT_WRITE;

enum : int { kUninit, kBusy, kReady, kFailed };
enum class Backing { Machvm, Memfd, Anon };

constinit Heap g_heap;
std::atomic<int> g_state{kUninit};
std::atomic<long> g_init_tid{0};
Backing g_backing = Backing::Machvm;
std::uint64_t g_name = 0;
std::uint64_t g_limit_pages = 0;
bool g_verbose = false;
std::atomic<bool> g_prot_changed{false};
std::atomic<std::uint64_t> g_fallbacks{0};

using MmapFn = void* (*)(void*, size_t, int, int, int, off_t);
using MunmapFn = int (*)(void*, size_t);
using MremapFn = void* (*)(void*, size_t, size_t, int, ...);
using MprotectFn = int (*)(void*, size_t, int);
using UsableFn = size_t (*)(void*);
MmapFn g_real_mmap = nullptr;
MunmapFn g_real_munmap = nullptr;
MremapFn g_real_mremap = nullptr;
MprotectFn g_real_mprotect = nullptr;
UsableFn g_real_usable = nullptr;

// ---- output without malloc ----

class Line {
  public:
    Line& s(const char* t) noexcept {
        while (*t && n_ < sizeof(b_) - 1)
            b_[n_++] = *t++;
        return *this;
    }
    Line& u(std::uint64_t v) noexcept {
        char t[24];
        int i = 0;
        do {
            t[i++] = static_cast<char>('0' + v % 10);
            v /= 10;
        } while (v);
        while (i && n_ < sizeof(b_) - 1)
            b_[n_++] = t[--i];
        return *this;
    }
    void out() noexcept {
        b_[n_++] = '\n';
        ssize_t r = ::write(STDERR_FILENO, b_, n_);
        (void)r;
    }

  private:
    char b_[512];
    std::size_t n_ = 0;
};

Line line() noexcept {
    Line l;
    l.s("machvm-run[").u(static_cast<std::uint64_t>(::getpid())).s("]: ");
    return l;
}

// ---- the real calls ----

void* sys_mmap(void* a, size_t l, int p, int f, int fd, off_t o) noexcept {
    if (g_real_mmap)
        return g_real_mmap(a, l, p, f, fd, o);
    return reinterpret_cast<void*>(::syscall(SYS_mmap, a, l, p, f, fd, o));
}

int sys_munmap(void* a, size_t l) noexcept {
    if (g_real_munmap)
        return g_real_munmap(a, l);
    return static_cast<int>(::syscall(SYS_munmap, a, l));
}

int sys_mprotect(void* a, size_t l, int p) noexcept {
    if (g_real_mprotect)
        return g_real_mprotect(a, l, p);
    return static_cast<int>(::syscall(SYS_mprotect, a, l, p));
}

std::uint64_t env_u64(const char* name, std::uint64_t def) noexcept {
    const char* v = ::getenv(name);
    if (!v || !*v)
        return def;
    std::uint64_t x = 0;
    for (; *v >= '0' && *v <= '9'; ++v)
        x = x * 10 + static_cast<std::uint64_t>(*v - '0');
    return *v ? def : x;
}

bool env_is(const char* name, const char* want) noexcept {
    const char* v = ::getenv(name);
    return v && ::strcmp(v, want) == 0;
}

// A new backing object of the region's size: its descriptor, or -errno.
int create_backing(std::size_t size) noexcept {
    if (g_backing == Backing::Memfd) {
        int fd = static_cast<int>(::syscall(SYS_memfd_create, "machvm-run", MFD_CLOEXEC));
        if (fd < 0)
            return -errno;
        if (::ftruncate(fd, static_cast<off_t>(size)) != 0) {
            int e = errno;
            ::close(fd);
            return -e;
        }
        return fd;
    }
    int dev = ::open(MACHVM_DEVICE, O_RDWR | O_CLOEXEC);
    if (dev < 0)
        return -errno;
    machvm_anon_create ac{};
    ac.size = size;
    ac.resident_limit = g_limit_pages;
    int r = ::ioctl(dev, MACHVM_IOC_ANON_CREATE, &ac);
    int e = errno;
    ::close(dev);
    if (r != 0)
        return -e;
    g_name = ac.name;
    return ac.fd;
}

// The name of the machvm object mapped at addr (0 if unknown): a pager's
// object, which this process did not create.
std::uint64_t region_name(void* addr) noexcept {
    int dev = ::open(MACHVM_DEVICE, O_RDWR | O_CLOEXEC);
    if (dev < 0)
        return 0;
    machvm_region r{};
    r.addr = reinterpret_cast<std::uint64_t>(addr);
    const int rc = ::ioctl(dev, MACHVM_IOC_REGION, &r);
    ::close(dev);
    return rc == 0 ? r.name : 0;
}

const char* errname(int e) noexcept {
    const char* d = ::strerrordesc_np(e);
    return d ? d : "unknown error";
}

void do_init() noexcept {
    if (::sysconf(_SC_PAGESIZE) != static_cast<long>(kPage)) {
        g_state.store(kFailed);
        return;
    }
    std::size_t size = env_u64("MACHVM_RUN_SIZE", kDefaultSize);
    size &= ~(kPage - 1);
    if (size < (std::size_t{16} << 20))
        size = std::size_t{16} << 20;
    g_limit_pages = env_u64("MACHVM_RUN_RESIDENT", 0) >> kPageShift;
    g_verbose = env_is("MACHVM_RUN_VERBOSE", "1");
    if (env_is("MACHVM_RUN_BACKING", "memfd"))
        g_backing = Backing::Memfd;
    else if (env_is("MACHVM_RUN_BACKING", "anon"))
        g_backing = Backing::Anon;

    void* meta = sys_mmap(nullptr, Heap::meta_bytes(size), kRW,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (meta == MAP_FAILED) {
        g_state.store(kFailed);
        return;
    }
    // An object a pager serves (machvm-run --pager), used once.
    int pager_fd = -1;
    if (const char* v = ::getenv("MACHVM_RUN_FD"); v && *v) {
        pager_fd = 0;
        for (; *v >= '0' && *v <= '9' && pager_fd < (1 << 20); ++v)
            pager_fd = pager_fd * 10 + (*v - '0');
        if (*v)
            pager_fd = -1;
        ::unsetenv("MACHVM_RUN_FD");
    }
    void* base = MAP_FAILED;
    if (g_backing != Backing::Anon) {
        int fd = pager_fd >= 0 ? pager_fd : create_backing(size);
        if (fd >= 0) {
            base = sys_mmap(nullptr, size, kRW, MAP_SHARED | MAP_NORESERVE, fd, 0);
            int e = errno;
            ::close(fd); // the mapping keeps the object
            if (base != MAP_FAILED && pager_fd >= 0)
                g_name = region_name(base);
            if (base == MAP_FAILED)
                line()
                    .s("cannot map the heap object: ")
                    .s(errname(e))
                    .s("; using private memory")
                    .out();
        } else {
            line()
                .s("cannot create the heap object (")
                .s(MACHVM_DEVICE)
                .s("): ")
                .s(errname(-fd))
                .s("; using private memory")
                .out();
        }
    }
    if (base == MAP_FAILED) {
        g_backing = Backing::Anon;
        base = sys_mmap(nullptr, size, kRW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    }
    if (base == MAP_FAILED) {
        sys_munmap(meta, Heap::meta_bytes(size));
        g_state.store(kFailed);
        return;
    }
    g_heap.init(base, size, static_cast<Tag*>(meta));
    g_state.store(kReady, std::memory_order_release);
    if (g_verbose) {
        Line l = line();
        if (g_backing == Backing::Machvm)
            l.s("heap in machvm object ").u(g_name);
        else
            l.s(g_backing == Backing::Memfd ? "heap in a memfd" : "heap in private memory");
        l.s(", ")
            .u(size >> 20)
            .s(" MiB virtual, resident limit ")
            .u(g_limit_pages)
            .s(" pages")
            .out();
    }
}

// True when the heap serves calls; initialises it on first use.
bool ready() noexcept {
    int s = g_state.load(std::memory_order_acquire);
    if (s == kReady) [[likely]]
        return true;
    if (s == kFailed)
        return false;
    const long tid = ::syscall(SYS_gettid);
    int expect = kUninit;
    if (g_state.compare_exchange_strong(expect, kBusy)) {
        g_init_tid.store(tid);
        do_init();
        return g_state.load() == kReady;
    }
    if (g_init_tid.load() == tid)
        return false; // re-entered from our own initialisation: use libc
    while ((s = g_state.load(std::memory_order_acquire)) == kBusy)
        ::sched_yield();
    return s == kReady;
}

bool in_region(const void* p) noexcept {
    return g_state.load(std::memory_order_acquire) == kReady && g_heap.owns(p);
}

void* fallback_note(void* p) noexcept {
    g_fallbacks.fetch_add(1, std::memory_order_relaxed);
    return p;
}

// ---- fork ----
//
// The child copies the heap pages in use before it lets go of its parent:
// until then the pages are shared, so the parent must not change them.  The
// parent's handler waits on a pipe that the child writes once it has its
// copy (or EOF: the child died, or fork failed and there is no child).

int g_fork_pipe[2] = {-1, -1};

void fork_prepare() noexcept {
    if (g_state.load() != kReady)
        return;
    if (g_backing == Backing::Anon || ::pipe2(g_fork_pipe, O_CLOEXEC) != 0)
        g_fork_pipe[0] = g_fork_pipe[1] = -1;
    g_heap.lock_all();
}

void fork_parent() noexcept {
    if (g_state.load() != kReady)
        return;
    if (g_fork_pipe[0] >= 0) {
        ::close(g_fork_pipe[1]);
        char c;
        while (::read(g_fork_pipe[0], &c, 1) < 0 && errno == EINTR) {
        }
        ::close(g_fork_pipe[0]);
    }
    g_heap.unlock_all();
}

void release_parent() noexcept {
    if (g_fork_pipe[0] < 0)
        return;
    ::close(g_fork_pipe[0]);
    const char c = 1;
    ssize_t r = ::write(g_fork_pipe[1], &c, 1);
    (void)r;
    ::close(g_fork_pipe[1]);
    g_fork_pipe[0] = g_fork_pipe[1] = -1;
}

// In the child: give it a heap of its own with the same contents.
void fork_child() noexcept {
    if (g_state.load() != kReady)
        return;
    g_heap.reset_locks(); // we held them all; reset is the same as unlock here
    if (g_backing == Backing::Anon) {
        release_parent();
        return; // private memory: fork already copied it
    }
    char* base = g_heap.base();
    const std::size_t used = std::size_t{g_heap.top()} << kPageShift;
    char* tmp = nullptr;
    if (used) {
        void* t = sys_mmap(nullptr, used, kRW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (t == MAP_FAILED) {
            release_parent();
            line().s("fork: no memory to copy the heap; the child shares it with its parent").out();
            return;
        }
        tmp = static_cast<char*>(t);
        if (g_prot_changed.load())
            sys_mprotect(base, used, kRW); // the child's own mapping only
        g_heap.for_each_used([&](std::uint32_t first, std::uint32_t n) {
            const std::size_t off = std::size_t{first} << kPageShift;
            std::memcpy(tmp + off, base + off, std::size_t{n} << kPageShift);
        });
    }
    release_parent();
    const int fd = create_backing(g_heap.size());
    bool ok = true;
    g_heap.for_each_own([&](std::uint32_t first, std::uint32_t n) {
        const std::size_t off = std::size_t{first} << kPageShift;
        const std::size_t len = std::size_t{n} << kPageShift;
        void* r = fd >= 0
                      ? sys_mmap(base + off, len, kRW, MAP_SHARED | MAP_FIXED | MAP_NORESERVE, fd,
                                 static_cast<off_t>(off))
                      : sys_mmap(base + off, len, kRW,
                                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
        ok = ok && r != MAP_FAILED;
    });
    if (fd >= 0)
        ::close(fd);
    else
        g_backing = Backing::Anon;
    if (tmp) {
        g_heap.for_each_used([&](std::uint32_t first, std::uint32_t n) {
            const std::size_t off = std::size_t{first} << kPageShift;
            std::memcpy(base + off, tmp + off, std::size_t{n} << kPageShift);
        });
        sys_munmap(tmp, used);
    }
    g_prot_changed.store(false);
    if (!ok)
        line().s("fork: could not remap the heap").out();
    if (g_verbose) {
        Line l = line();
        if (g_backing == Backing::Machvm)
            l.s("fork: child heap copied to machvm object ").u(g_name);
        else
            l.s(g_backing == Backing::Memfd ? "fork: child heap copied to a memfd"
                                            : "fork: child heap copied to private memory");
        l.out();
    }
}

void drop_from_ld_preload() noexcept {
    const char* me = ::getenv("MACHVM_RUN_LIB");
    const char* lp = ::getenv("LD_PRELOAD");
    if (!me || !*me || !lp)
        return;
    char out[4096];
    std::size_t n = 0;
    const std::size_t mel = ::strlen(me);
    for (const char* p = lp; *p;) {
        while (*p == ' ' || *p == ':')
            ++p;
        const char* e = p;
        while (*e && *e != ' ' && *e != ':')
            ++e;
        const std::size_t len = static_cast<std::size_t>(e - p);
        if (len && !(len == mel && ::strncmp(p, me, len) == 0) && n + len + 2 < sizeof(out)) {
            if (n)
                out[n++] = ':';
            std::memcpy(out + n, p, len);
            n += len;
        }
        p = e;
    }
    out[n] = 0;
    if (n)
        ::setenv("LD_PRELOAD", out, 1);
    else
        ::unsetenv("LD_PRELOAD");
}

__attribute__((constructor)) void preload_init() {
    g_real_mmap = reinterpret_cast<MmapFn>(::dlsym(RTLD_NEXT, "mmap"));
    g_real_munmap = reinterpret_cast<MunmapFn>(::dlsym(RTLD_NEXT, "munmap"));
    g_real_mremap = reinterpret_cast<MremapFn>(::dlsym(RTLD_NEXT, "mremap"));
    g_real_mprotect = reinterpret_cast<MprotectFn>(::dlsym(RTLD_NEXT, "mprotect"));
    g_real_usable = reinterpret_cast<UsableFn>(::dlsym(RTLD_NEXT, "malloc_usable_size"));
    (void)ready();
    ::pthread_atfork(fork_prepare, fork_parent, fork_child);
    if (env_is("MACHVM_RUN_NOINHERIT", "1"))
        drop_from_ld_preload();
}

__attribute__((destructor)) void preload_fini() {
    if (!g_verbose || g_state.load() != kReady)
        return;
    const HeapStats st = g_heap.stats();
    line()
        .s("heap at exit: ")
        .u(st.used_pages * kPage >> 10)
        .s(" KiB in use, peak ")
        .u(st.peak_used_pages * kPage >> 10)
        .s(" KiB, ")
        .u(st.top_pages * kPage >> 10)
        .s(" KiB of the object touched; ")
        .u(st.large_allocs)
        .s(" large blocks, ")
        .u(st.small_spans)
        .s(" spans, ")
        .u(st.mmap_allocs)
        .s(" mmaps; ")
        .u(g_fallbacks.load())
        .s(" calls served by libc")
        .out();
}

bool pow2(std::size_t a) noexcept {
    return a && !(a & (a - 1));
}

void* aligned(std::size_t align, std::size_t n) noexcept {
    if (ready()) {
        if (void* p = g_heap.alloc_aligned(align, n))
            return p;
    }
    return fallback_note(__libc_memalign(align, n));
}

} // namespace

// ---- the malloc family ----

extern "C" {

__attribute__((visibility("default"))) void* malloc(size_t n) noexcept {
    if (ready()) {
        if (void* p = g_heap.alloc(n))
            return p;
    }
    return fallback_note(__libc_malloc(n));
}

__attribute__((visibility("default"))) void free(void* p) noexcept {
    if (!p)
        return;
    if (in_region(p)) {
        g_heap.free(p);
        return;
    }
    __libc_free(p);
}

__attribute__((visibility("default"))) void* calloc(size_t n, size_t m) noexcept {
    size_t total;
    if (__builtin_mul_overflow(n, m, &total)) {
        errno = ENOMEM;
        return nullptr;
    }
    if (ready()) {
        if (void* p = g_heap.alloc_zeroed(total))
            return p;
    }
    return fallback_note(__libc_calloc(n, m));
}

__attribute__((visibility("default"))) void* realloc(void* p, size_t n) noexcept {
    if (!p)
        return malloc(n);
    if (n == 0) {
        free(p);
        return nullptr;
    }
    if (!in_region(p))
        return __libc_realloc(p, n);
    if (void* q = g_heap.realloc(p, n))
        return q;
    void* q = fallback_note(__libc_malloc(n));
    if (!q)
        return nullptr;
    const size_t have = g_heap.usable(p);
    std::memcpy(q, p, have < n ? have : n);
    g_heap.free(p);
    return q;
}

__attribute__((visibility("default"))) void* reallocarray(void* p, size_t n, size_t m) noexcept {
    size_t total;
    if (__builtin_mul_overflow(n, m, &total)) {
        errno = ENOMEM;
        return nullptr;
    }
    return realloc(p, total);
}

__attribute__((visibility("default"))) void* memalign(size_t align, size_t n) noexcept {
    if (align < kMinAlign)
        align = kMinAlign;
    if (!pow2(align)) {
        if (align > (SIZE_MAX >> 1)) {
            errno = EINVAL;
            return nullptr;
        }
        size_t a = 1;
        while (a < align)
            a <<= 1;
        align = a;
    }
    return aligned(align, n);
}

__attribute__((visibility("default"))) int posix_memalign(void** out, size_t align,
                                                          size_t n) noexcept {
    if (!pow2(align) || align % sizeof(void*) != 0)
        return EINVAL;
    void* p = aligned(align < kMinAlign ? kMinAlign : align, n);
    if (!p)
        return ENOMEM;
    *out = p;
    return 0;
}

__attribute__((visibility("default"))) void* aligned_alloc(size_t align, size_t n) noexcept {
    if (!pow2(align)) {
        errno = EINVAL;
        return nullptr;
    }
    return aligned(align < kMinAlign ? kMinAlign : align, n);
}

__attribute__((visibility("default"))) void* valloc(size_t n) noexcept {
    return aligned(kPage, n);
}

__attribute__((visibility("default"))) void* pvalloc(size_t n) noexcept {
    if (n > SIZE_MAX - kPage) {
        errno = ENOMEM;
        return nullptr;
    }
    return aligned(kPage, n ? (n + kPage - 1) & ~(kPage - 1) : kPage);
}

__attribute__((visibility("default"))) size_t malloc_usable_size(void* p) noexcept {
    if (!p)
        return 0;
    if (in_region(p))
        return g_heap.usable(p);
    return g_real_usable ? g_real_usable(p) : 0;
}

// ---- anonymous memory ----

__attribute__((visibility("default"))) void* mmap(void* addr, size_t len, int prot, int flags,
                                                  int fd, off_t off) noexcept {
    constexpr int kServed = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_POPULATE;
    const bool anon_rw =
        (flags & MAP_ANONYMOUS) && (flags & MAP_TYPE) == MAP_PRIVATE && prot == kRW;
    if (anon_rw && !addr && len && (flags & ~kServed) == 0 && ready()) {
        if (void* p = g_heap.map(len))
            return p;
    }
    if (addr && (flags & MAP_FIXED) && in_region(addr)) {
        const std::size_t room =
            g_heap.size() - static_cast<std::size_t>(static_cast<char*>(addr) - g_heap.base());
        const std::size_t inlen = len < room ? len : room;
        if (anon_rw && inlen == len && (flags & ~(kServed | MAP_FIXED)) == 0 &&
            g_heap.all_mmap(addr, len)) {
            g_heap.zero(addr, len); // fresh pages in place
            return addr;
        }
        g_heap.mark_foreign(addr, inlen); // never handed out again
    }
    return sys_mmap(addr, len, prot, flags, fd, off);
}

__attribute__((visibility("default"))) void* mmap64(void* addr, size_t len, int prot, int flags,
                                                    int fd, off_t off) noexcept {
    return mmap(addr, len, prot, flags, fd, off);
}

__attribute__((visibility("default"))) int munmap(void* addr, size_t len) noexcept {
    if (in_region(addr)) {
        if (len == 0 || reinterpret_cast<std::uintptr_t>(addr) % kPage) {
            errno = EINVAL;
            return -1;
        }
        const std::size_t room =
            g_heap.size() - static_cast<std::size_t>(static_cast<char*>(addr) - g_heap.base());
        const std::size_t inlen = len < room ? len : room;
        if (g_prot_changed.load() && g_heap.all_mmap(addr, inlen))
            sys_mprotect(addr, inlen, kRW);
        g_heap.unmap(addr, inlen);
        if (inlen < len)
            return sys_munmap(static_cast<char*>(addr) + inlen, len - inlen);
        return 0;
    }
    return sys_munmap(addr, len);
}

__attribute__((visibility("default"))) void* mremap(void* old, size_t old_len, size_t new_len,
                                                    int flags, ...) noexcept {
    void* new_addr = nullptr;
    if (flags & MREMAP_FIXED) {
        va_list ap;
        va_start(ap, flags);
        new_addr = va_arg(ap, void*);
        va_end(ap);
    }
    if (!in_region(old)) {
        if (in_region(new_addr) && (flags & MREMAP_FIXED)) {
            errno = EINVAL; // would map over the heap
            return MAP_FAILED;
        }
        if (g_real_mremap)
            return g_real_mremap(old, old_len, new_len, flags, new_addr);
        return reinterpret_cast<void*>(
            ::syscall(SYS_mremap, old, old_len, new_len, flags, new_addr));
    }
    if (old_len == 0 || new_len == 0 || (flags & MREMAP_DONTUNMAP) ||
        !g_heap.all_mmap(old, old_len)) {
        errno = EINVAL;
        return MAP_FAILED;
    }
    if (!(flags & MREMAP_FIXED)) {
        if (void* p = g_heap.remap(old, old_len, new_len, flags & MREMAP_MAYMOVE))
            return p;
        if (!(flags & MREMAP_MAYMOVE)) {
            errno = ENOMEM;
            return MAP_FAILED;
        }
    } else if (in_region(new_addr)) {
        errno = EINVAL;
        return MAP_FAILED;
    }
    // Moves out of the heap: ordinary private memory, contents copied.
    const int extra = (flags & MREMAP_FIXED) ? MAP_FIXED : 0;
    void* p = sys_mmap(new_addr, new_len, kRW, MAP_PRIVATE | MAP_ANONYMOUS | extra, -1, 0);
    if (p == MAP_FAILED)
        return MAP_FAILED;
    std::memcpy(p, old, old_len < new_len ? old_len : new_len);
    munmap(old, old_len);
    return p;
}

__attribute__((visibility("default"))) int mprotect(void* addr, size_t len, int prot) noexcept {
    const int r = sys_mprotect(addr, len, prot);
    if (r == 0 && prot != kRW && in_region(addr))
        g_prot_changed.store(true);
    return r;
}

// Locking heap pages in memory would defeat the resident limit (and
// mlockall would populate the whole sparse object): calls on the heap
// succeed without locking; mlockall is accepted and does nothing.
__attribute__((visibility("default"))) int mlock(const void* addr, size_t len) noexcept {
    if (in_region(addr))
        return 0;
    return static_cast<int>(::syscall(SYS_mlock, addr, len));
}

__attribute__((visibility("default"))) int mlock2(const void* addr, size_t len,
                                                  unsigned int flags) noexcept {
    if (in_region(addr))
        return 0;
    return static_cast<int>(::syscall(SYS_mlock2, addr, len, flags));
}

__attribute__((visibility("default"))) int munlock(const void* addr, size_t len) noexcept {
    if (in_region(addr))
        return 0;
    return static_cast<int>(::syscall(SYS_munlock, addr, len));
}

__attribute__((visibility("default"))) int mlockall(int flags) noexcept {
    (void)flags;
    if (g_verbose)
        line().s("mlockall ignored: the machvm heap is paged under its resident limit").out();
    return 0;
}

__attribute__((visibility("default"))) int munlockall(void) noexcept {
    return 0;
}

// MADV_DONTNEED on private anonymous memory means "zero-fill on next
// touch"; the heap is a shared mapping where it would not, so the pages
// are zeroed here.  MADV_FREE may keep the data: nothing to do.
// MADV_DONTFORK would hide the heap from the fork handler: ignored.
__attribute__((visibility("default"))) int madvise(void* addr, size_t len, int advice) noexcept {
    if (in_region(addr)) {
        switch (advice) {
        case MADV_DONTNEED:
        case MADV_REMOVE:
            if (g_heap.all_mmap(addr, len))
                std::memset(addr, 0, len);
            return 0;
        case MADV_FREE:
        case MADV_DONTFORK:
        case MADV_DOFORK:
            return 0;
        default:
            break;
        }
    }
    return static_cast<int>(::syscall(SYS_madvise, addr, len, advice));
}

} // extern "C"
