// SPDX-License-Identifier: GPL-2.0
// machvm-run's allocator core (libmachvm/preload/heap.hpp) over ordinary
// memory: size classes, alignment, reuse and coalescing, realloc in place,
// the mmap runs (partial munmap, mremap), zero-fill, exhaustion, threads,
// and the run/bin invariants after every step of a random workload.
#include <sys/mman.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "../../libmachvm/preload/heap.hpp"
#include "check.hpp"

using namespace mvmrun;

namespace {

// A heap over size bytes of fresh private memory.
struct TestHeap {
    explicit TestHeap(std::size_t size) : size_(size) {
        base_ = ::mmap(nullptr, size, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        meta_ = ::mmap(nullptr, Heap::meta_bytes(size), PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        heap = new Heap;
        heap->init(base_, size, static_cast<Tag*>(meta_));
    }
    ~TestHeap() {
        delete heap;
        ::munmap(base_, size_);
        ::munmap(meta_, Heap::meta_bytes(size_));
    }
    TestHeap(const TestHeap&) = delete;
    TestHeap& operator=(const TestHeap&) = delete;

    Heap* heap;
    std::size_t size_;
    void* base_;
    void* meta_;
};

bool check_ok(Heap& h) {
    const char* bad = h.check();
    if (bad)
        std::fprintf(stderr, "heap invariant broken: %s\n", bad);
    return bad == nullptr;
}

void fill(void* p, std::size_t n, std::uint8_t v) {
    std::memset(p, v, n);
}

bool holds(const void* p, std::size_t n, std::uint8_t v) {
    auto c = static_cast<const std::uint8_t*>(p);
    for (std::size_t i = 0; i < n; ++i)
        if (c[i] != v)
            return false;
    return true;
}

void test_classes() {
    bool ok = true;
    for (std::size_t n = 1; n <= kSmallMax; ++n) {
        const unsigned c = class_of(n);
        ok = ok && c < kClasses && class_size(c) >= n && (c == 0 || class_size(c - 1) < n) &&
             class_size(c) % 16 == 0;
    }
    CHECK(ok);
    CHECK_EQ(class_size(kClasses - 1), kSmallMax);
    bool spans = true;
    for (unsigned c = 0; c < kClasses; ++c)
        spans = spans && span_blocks(c) >= 4 && span_pages(c) <= 32;
    CHECK(spans);
}

void test_basic() {
    TestHeap t(64 << 20);
    Heap& h = *t.heap;
    void* a = h.alloc(1);
    void* b = h.alloc(100);
    void* c = h.alloc(100000);
    CHECK(a && b && c);
    CHECK(h.owns(a) && h.owns(b) && h.owns(c));
    CHECK(reinterpret_cast<std::uintptr_t>(a) % 16 == 0);
    CHECK(reinterpret_cast<std::uintptr_t>(b) % 16 == 0);
    CHECK(reinterpret_cast<std::uintptr_t>(c) % kPage == 0);
    CHECK_EQ(h.usable(a), 16u);
    CHECK_EQ(h.usable(b), 112u);
    CHECK_EQ(h.usable(c), 25u * kPage);
    CHECK(!h.owns(&t));
    CHECK_EQ(h.usable(static_cast<char*>(b) + 1), 112u); // inside a block: its class
    h.free(a);
    h.free(b);
    h.free(c);
    h.free(c); // double free of a large block: ignored
    CHECK(check_ok(h));
    // Freed memory is reused.
    void* c2 = h.alloc(100000);
    CHECK(c2 == c);
    h.free(c2);
    // Everything freed: the tiled area shrinks to the kept partial spans.
    CHECK(h.top() <= 2 * 32);
    CHECK(check_ok(h));
}

void test_aligned() {
    TestHeap t(256 << 20);
    Heap& h = *t.heap;
    bool ok = true;
    std::vector<void*> ps;
    for (std::size_t align = 16; align <= (std::size_t{1} << 22); align <<= 1) {
        for (std::size_t n : {std::size_t{1}, std::size_t{24}, align - 1, align, align + 1,
                              std::size_t{5000}, std::size_t{70000}}) {
            void* p = h.alloc_aligned(align, n);
            ok = ok && p && reinterpret_cast<std::uintptr_t>(p) % align == 0 && h.usable(p) >= n;
            if (p) {
                fill(p, n, 0x5a);
                ps.push_back(p);
            }
        }
    }
    CHECK(ok);
    CHECK(check_ok(h));
    for (void* p : ps)
        h.free(p);
    CHECK(check_ok(h));
}

void test_realloc() {
    TestHeap t(64 << 20);
    Heap& h = *t.heap;
    char* p = static_cast<char*>(h.alloc(20000));
    fill(p, 20000, 7);
    // Growing into fresh room at the end of the heap stays in place.
    char* q = static_cast<char*>(h.realloc(p, 200000));
    CHECK(q == p);
    CHECK(holds(q, 20000, 7));
    // Shrinking stays in place and frees the tail.
    char* r = static_cast<char*>(h.realloc(q, 30000));
    CHECK(r == q);
    CHECK_EQ(h.usable(r), 8u * kPage);
    // A block after it: growing must move, keeping the data.
    void* blocker = h.alloc(kPage * 40);
    CHECK(blocker);
    char* s = static_cast<char*>(h.realloc(r, 500000));
    CHECK(s && holds(s, 20000, 7));
    // Small: same class stays, growing moves and keeps the bytes.
    char* a = static_cast<char*>(h.alloc(40));
    fill(a, 40, 9);
    CHECK(h.realloc(a, 48) == a);
    char* b = static_cast<char*>(h.realloc(a, 5000));
    CHECK(b && holds(b, 40, 9));
    char* c = static_cast<char*>(h.realloc(b, 100000));
    CHECK(c && holds(c, 40, 9));
    char* d = static_cast<char*>(h.realloc(c, 10));
    CHECK(d && holds(d, 10, 9));
    h.free(d);
    h.free(s);
    h.free(blocker);
    CHECK(check_ok(h));
}

void test_zeroed() {
    TestHeap t(64 << 20);
    Heap& h = *t.heap;
    void* p = h.alloc(300000);
    fill(p, 300000, 0xff);
    h.free(p);
    void* z = h.alloc_zeroed(300000);
    CHECK(z == p);
    CHECK(holds(z, 300000, 0));
    void* s = h.alloc(64);
    fill(s, 64, 0xff);
    h.free(s);
    void* zs = h.alloc_zeroed(64);
    CHECK(holds(zs, 64, 0));
    // mmap pages are zero even when reused.
    char* m = static_cast<char*>(h.map(5 * kPage));
    fill(m, 5 * kPage, 0xee);
    h.unmap(m, 5 * kPage);
    char* m2 = static_cast<char*>(h.map(5 * kPage));
    CHECK(m2 && holds(m2, 5 * kPage, 0));
    CHECK(check_ok(h));
}

void test_map() {
    TestHeap t(64 << 20);
    Heap& h = *t.heap;
    char* m = static_cast<char*>(h.map(10 * kPage));
    CHECK(m && h.all_mmap(m, 10 * kPage));
    CHECK(!h.all_mmap(m, 11 * kPage));
    void* big = h.alloc(100000); // not mmap pages: free() only
    CHECK(!h.all_mmap(big, kPage));
    h.unmap(big, kPage); // munmap of malloc memory: ignored
    CHECK(h.usable(big) > 0);
    // Punch a hole in the middle, then the ends.
    h.unmap(m + 3 * kPage, 2 * kPage);
    CHECK(check_ok(h));
    CHECK(h.all_mmap(m, 3 * kPage) && h.all_mmap(m + 5 * kPage, 5 * kPage));
    CHECK(!h.all_mmap(m + 3 * kPage, kPage));
    h.unmap(m, kPage);
    h.unmap(m + 9 * kPage, kPage);
    CHECK(check_ok(h));
    // A freed hole is handed out again.
    char* again = static_cast<char*>(h.map(2 * kPage));
    CHECK(again == m + 3 * kPage);
    // mremap: shrink in place, grow in place into free room, move.
    char* r = static_cast<char*>(h.map(4 * kPage));
    fill(r, 4 * kPage, 3);
    CHECK(h.remap(r, 4 * kPage, 2 * kPage, false) == r);
    CHECK(h.remap(r, 2 * kPage, 3 * kPage, false) == r);
    CHECK(holds(r, 2 * kPage, 3) && holds(r + 2 * kPage, kPage, 0));
    void* after = h.map(kPage); // something right after r
    (void)after;
    char* moved = static_cast<char*>(h.remap(r, 3 * kPage, 50 * kPage, true));
    CHECK(moved != nullptr);
    CHECK(moved && holds(moved, 2 * kPage, 3));
    CHECK(moved && holds(moved + 2 * kPage, 48 * kPage, 0));
    CHECK(h.remap(moved, kPage, 2 * kPage, true) == nullptr); // not the whole run
    // Foreign pages are never handed out again.
    char* f = static_cast<char*>(h.map(3 * kPage));
    h.mark_foreign(f + kPage, kPage);
    h.unmap(f, 3 * kPage);
    CHECK(check_ok(h));
    bool reused = false;
    std::vector<void*> ps;
    for (int i = 0; i < 200; ++i) {
        void* p = h.map(kPage);
        reused = reused || p == f + kPage;
        ps.push_back(p);
    }
    CHECK(!reused);
    CHECK(check_ok(h));
}

void test_exhaustion() {
    TestHeap t(16 << 20);
    Heap& h = *t.heap;
    CHECK(h.alloc(32 << 20) == nullptr);
    CHECK(h.map(32 << 20) == nullptr);
    CHECK(h.alloc_aligned(std::size_t{1} << 40, 100000) == nullptr);
    std::vector<void*> ps;
    void* p;
    while ((p = h.alloc(1 << 20)) != nullptr)
        ps.push_back(p);
    CHECK(ps.size() >= 14 && ps.size() <= 16);
    CHECK(check_ok(h));
    for (void* q : ps)
        h.free(q);
    CHECK(h.alloc(8 << 20) != nullptr);
    CHECK(check_ok(h));
}

// A random workload; every block holds its own byte and must keep it.
void test_random() {
    TestHeap t(512 << 20);
    Heap& h = *t.heap;
    std::mt19937_64 rng(42);
    struct Block {
        char* p;
        std::size_t n;
        std::uint8_t v;
        bool map;
    };
    std::vector<Block> live;
    bool ok = true, inv = true;
    for (int step = 0; step < 40000 && ok; ++step) {
        const unsigned op = rng() % 10;
        if (op < 5 || live.empty()) {
            std::size_t n;
            const unsigned kind = rng() % 10;
            if (kind < 6)
                n = 1 + rng() % 512;
            else if (kind < 9)
                n = 1 + rng() % 40000;
            else
                n = 1 + rng() % 2000000;
            const auto v = static_cast<std::uint8_t>(rng());
            const bool map = rng() % 8 == 0;
            char* p;
            if (map)
                p = static_cast<char*>(h.map(n));
            else if (rng() % 6 == 0)
                p = static_cast<char*>(h.alloc_aligned(std::size_t{16} << (rng() % 10), n));
            else
                p = static_cast<char*>(h.alloc(n));
            if (!p)
                continue;
            if (map)
                ok = ok && holds(p, n, 0);
            fill(p, n, v);
            live.push_back({p, n, v, map});
        } else if (op < 8) {
            const std::size_t i = rng() % live.size();
            ok = ok && holds(live[i].p, live[i].n, live[i].v);
            if (live[i].map)
                h.unmap(live[i].p, live[i].n);
            else
                h.free(live[i].p);
            live[i] = live.back();
            live.pop_back();
        } else {
            const std::size_t i = rng() % live.size();
            Block& b = live[i];
            ok = ok && holds(b.p, b.n, b.v);
            const std::size_t n = 1 + rng() % (rng() % 2 ? 1000 : 300000);
            const std::size_t keep = n < b.n ? n : b.n;
            char* q;
            if (b.map) {
                q = static_cast<char*>(h.remap(b.p, b.n, n, true));
                if (q && n > b.n) {
                    const std::size_t oldp = (b.n + kPage - 1) & ~(kPage - 1);
                    // Bytes past the old pages are fresh zero pages.
                    if (n > oldp)
                        ok = ok && holds(q + oldp, n - oldp, 0);
                }
            } else {
                q = static_cast<char*>(h.realloc(b.p, n));
            }
            if (!q)
                continue;
            ok = ok && holds(q, keep, b.v);
            fill(q, n, b.v);
            b.p = q;
            b.n = n;
        }
        if (step % 997 == 0)
            inv = inv && check_ok(h);
    }
    CHECK(ok);
    CHECK(inv);
    for (auto& b : live) {
        ok = ok && holds(b.p, b.n, b.v);
        if (b.map)
            h.unmap(b.p, b.n);
        else
            h.free(b.p);
    }
    CHECK(ok);
    CHECK(check_ok(h));
    CHECK(h.stats().used_pages <= kClasses * 32); // only kept partial spans remain
}

void test_threads() {
    TestHeap t(512 << 20);
    Heap& h = *t.heap;
    std::vector<std::thread> ts;
    std::atomic<int> bad{0};
    for (int k = 0; k < 4; ++k) {
        ts.emplace_back([&h, &bad, k] {
            std::mt19937 rng(static_cast<unsigned>(k));
            std::vector<std::pair<char*, std::size_t>> mine;
            for (int i = 0; i < 30000; ++i) {
                if (mine.size() < 200 && rng() % 2) {
                    const std::size_t n = 1 + rng() % (rng() % 16 ? 600 : 70000);
                    char* p = static_cast<char*>(h.alloc(n));
                    if (!p) {
                        ++bad;
                        continue;
                    }
                    std::memset(p, k + 1, n);
                    mine.emplace_back(p, n);
                } else if (!mine.empty()) {
                    const std::size_t j = rng() % mine.size();
                    if (!holds(mine[j].first, mine[j].second, static_cast<std::uint8_t>(k + 1)))
                        ++bad;
                    h.free(mine[j].first);
                    mine[j] = mine.back();
                    mine.pop_back();
                }
            }
            for (auto& [p, n] : mine)
                h.free(p);
        });
    }
    for (auto& th : ts)
        th.join();
    CHECK_EQ(bad.load(), 0);
    CHECK(check_ok(h));
}

void test_used_ranges() {
    TestHeap t(64 << 20);
    Heap& h = *t.heap;
    void* a = h.alloc(5 * kPage); // large blocks, one after the other
    void* b = h.alloc(5 * kPage);
    void* c = h.alloc(5 * kPage);
    h.free(b);
    (void)a;
    (void)c;
    h.lock_all();
    std::vector<std::pair<std::uint32_t, std::uint32_t>> used;
    h.for_each_used([&](std::uint32_t f, std::uint32_t n) { used.emplace_back(f, n); });
    std::vector<std::pair<std::uint32_t, std::uint32_t>> own;
    h.for_each_own([&](std::uint32_t f, std::uint32_t n) { own.emplace_back(f, n); });
    h.unlock_all();
    CHECK_EQ(used.size(), 2u);
    CHECK(used.size() == 2 && used[0] == std::make_pair(0u, 5u) &&
          used[1] == std::make_pair(10u, 5u));
    CHECK_EQ(own.size(), 1u);
    CHECK(own.size() == 1 && own[0].first == 0 && own[0].second == (64u << 20) / kPage);
}

} // namespace

int main() {
    test_classes();
    test_basic();
    test_aligned();
    test_realloc();
    test_zeroed();
    test_map();
    test_exhaustion();
    test_random();
    test_threads();
    test_used_ranges();
    return unit::finish("heap_test");
}
