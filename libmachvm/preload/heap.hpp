// SPDX-License-Identifier: GPL-2.0
//
// The allocator behind machvm-run's preload library, over one contiguous
// region of memory it is given (in the preload: a mapping of one anonymous
// machvm object; in the unit tests: ordinary memory).  It never allocates
// through anything else, never throws, and keeps all of its bookkeeping in
// a separate metadata array (one Tag per page of the region) so that free
// memory in the region is never touched by it.
//
// Layout: the region is tiled, from its start up to `top`, by runs of
// whole pages.  A run is free, a large block (malloc > kSmallMax, page
// aligned), an mmap block (served to the interposed mmap), a small-object
// span, or foreign (pages a MAP_FIXED call put something else over; never
// reused).  Every run has a tag on its first and its last page naming its
// kind and length, so freeing a run finds its neighbours in O(1) and
// coalesces with free ones; free runs sit in size-binned lists.  Small
// blocks (<= kSmallMax) come from spans of one size class (16-byte steps
// up to 128, then four classes per power of two), each span with an
// intrusive free list of its freed blocks and a bump index for blocks never
// handed out; every page of a span names the span's first page.
//
// Locking: one lock per size class and one for the page runs, always taken
// in that order.  lock_all()/unlock_all() take every lock (fork).
#pragma once

#include <pthread.h>

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace mvmrun {

inline constexpr std::size_t kPageShift = 12;
inline constexpr std::size_t kPage = std::size_t{1} << kPageShift;
inline constexpr std::size_t kSmallMax = 16384;
inline constexpr unsigned kClasses = 8 + 4 * 7; // 16..128 by 16, then 4 per 2^k up to 16 KiB
inline constexpr std::uint32_t kNone = 0xffffffffu;
inline constexpr std::size_t kMinAlign = 16;

// Run kinds.
enum : std::uint8_t { kUnused = 0, kFree, kLarge, kSmall, kMmap, kForeign };
// Tag flags.
enum : std::uint16_t { kHead = 1, kTail = 2 };

// One per page of the region.  Meaningful fields depend on the page's
// place in its run: head and tail have kind, len, flags; every page of a
// span has head; the head of a free run has the bin links, the head of a
// span the span's state.
struct Tag {
    std::uint8_t kind;
    std::uint8_t cls;
    std::uint16_t flags;
    std::uint32_t len;
    std::uint32_t head;
    std::uint32_t prev;
    std::uint32_t next;
    std::uint16_t used;     // span: blocks handed out
    std::uint16_t bump;     // span: blocks never handed out start here
    std::uint64_t freelist; // span: byte offset in the region + 1 of a freed block, 0: none
};
static_assert(sizeof(Tag) == 32);

constexpr std::size_t class_size(unsigned c) noexcept {
    if (c < 8)
        return 16 * (c + 1);
    const unsigned j = c - 8;
    const unsigned k = 7 + j / 4;
    const std::size_t step = std::size_t{1} << (k - 2);
    return (std::size_t{1} << k) + (j % 4 + 1) * step;
}

// The smallest class holding n bytes (1 <= n <= kSmallMax).
constexpr unsigned class_of(std::size_t n) noexcept {
    if (n == 0)
        n = 1;
    if (n <= 128)
        return static_cast<unsigned>((n - 1) / 16);
    const unsigned k = static_cast<unsigned>(std::bit_width(n - 1)) - 1; // 2^k <= n-1
    const std::size_t step = std::size_t{1} << (k - 2);
    return 8 + (k - 7) * 4 + static_cast<unsigned>((n - 1 - (std::size_t{1} << k)) / step);
}

// Pages per span of class c: room for at least 8 blocks, at most 32 pages.
constexpr std::uint32_t span_pages(unsigned c) noexcept {
    std::size_t bytes = class_size(c) * 8;
    if (bytes < kPage)
        bytes = kPage;
    std::size_t pages = (bytes + kPage - 1) / kPage;
    return static_cast<std::uint32_t>(pages > 32 ? 32 : pages);
}

constexpr std::uint32_t span_blocks(unsigned c) noexcept {
    return static_cast<std::uint32_t>(span_pages(c) * kPage / class_size(c));
}

class Lock {
  public:
    void lock() noexcept { pthread_mutex_lock(&m_); }
    void unlock() noexcept { pthread_mutex_unlock(&m_); }
    // After fork, in the child: the lock may have been held by a thread
    // that does not exist there.
    void reset() noexcept { m_ = PTHREAD_MUTEX_INITIALIZER; }

  private:
    pthread_mutex_t m_ = PTHREAD_MUTEX_INITIALIZER;
};

class Guard {
  public:
    explicit Guard(Lock& l) noexcept : l_(l) { l_.lock(); }
    ~Guard() { l_.unlock(); }
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;

  private:
    Lock& l_;
};

struct HeapStats {
    std::uint64_t top_pages;  // pages of the region ever tiled (high water)
    std::uint64_t used_pages; // pages in non-free runs now
    std::uint64_t peak_used_pages;
    std::uint64_t large_allocs;
    std::uint64_t small_spans;
    std::uint64_t mmap_allocs;
};

class Heap {
  public:
    // The region [base, base + size) and metadata for size / kPage tags,
    // zero-filled (fresh anonymous memory).  base and size page aligned.
    void init(void* base, std::size_t size, Tag* meta) noexcept {
        base_ = static_cast<char*>(base);
        npages_ = size >> kPageShift;
        if (npages_ > kNone - 1)
            npages_ = kNone - 1;
        tags_ = meta;
        top_ = hwm_ = 0;
        for (auto& b : bins_)
            b = kNone;
        for (auto& m : bin_mask_)
            m = 0;
        for (auto& p : partial_)
            p = kNone;
    }

    static constexpr std::size_t meta_bytes(std::size_t size) noexcept {
        return (size >> kPageShift) * sizeof(Tag);
    }

    char* base() const noexcept { return base_; }
    std::size_t size() const noexcept { return npages_ << kPageShift; }
    bool owns(const void* p) const noexcept {
        auto c = static_cast<const char*>(p);
        return base_ && c >= base_ && c < base_ + (npages_ << kPageShift);
    }

    // ---- malloc family -------------------------------------------------

    void* alloc(std::size_t n) noexcept {
        if (n <= kSmallMax)
            return alloc_small(class_of(n));
        return alloc_large(n, kPage, false);
    }

    void* alloc_zeroed(std::size_t n) noexcept {
        if (n <= kSmallMax) {
            void* p = alloc_small(class_of(n));
            if (p)
                std::memset(p, 0, n);
            return p;
        }
        return alloc_large(n, kPage, true);
    }

    // align: a power of two.
    void* alloc_aligned(std::size_t align, std::size_t n) noexcept {
        if (align <= kMinAlign)
            return alloc(n);
        if (n == 0)
            n = 1;
        if (align < kPage) {
            std::size_t need = (n + align - 1) & ~(align - 1);
            if (need <= kSmallMax) {
                unsigned c = class_of(need);
                // Blocks sit at multiples of the class size from a page
                // boundary: aligned when the size is a multiple of align,
                // else take the power-of-two class.
                if (class_size(c) % align != 0)
                    c = class_of(std::bit_ceil(need));
                return alloc_small(c);
            }
        }
        return alloc_large(n, align, false);
    }

    // False if p is not a block this heap handed out (nothing done).
    bool free(void* p) noexcept {
        if (!owns(p))
            return false;
        const std::uint32_t idx = page_of(p);
        const std::uint32_t h = resolve(idx);
        if (h == kNone)
            return true;
        if (tags_[h].kind == kSmall) {
            free_small(p, h);
            return true;
        }
        if (tags_[h].kind == kLarge) {
            Guard g(page_lock_);
            const Tag& t = tags_[idx];
            if (resolve(idx) == idx && t.kind == kLarge && addr(idx) == p)
                release_run(idx, t.len);
            return true;
        }
        return true; // not a malloc block: ignore rather than corrupt
    }

    // Bytes usable at p; 0 if p is not a live block of this heap.
    std::size_t usable(const void* p) const noexcept {
        if (!owns(p))
            return 0;
        const std::uint32_t i = page_of(p);
        const std::uint32_t h = resolve(i);
        if (h == kNone)
            return 0;
        const Tag& t = tags_[h];
        if (t.kind == kSmall && t.cls < kClasses)
            return class_size(t.cls);
        if (t.kind == kLarge && h == i)
            return std::size_t{t.len} << kPageShift;
        return 0;
    }

    // realloc of a block of this heap; nullptr (p untouched) if out of
    // room in the region.  n > 0.
    void* realloc(void* p, std::size_t n) noexcept {
        const std::size_t have = usable(p);
        if (have == 0)
            return nullptr;
        const Tag& t = tags_[resolve(page_of(p))];
        if (t.kind == kSmall) {
            // Same class or not worth moving down to a much smaller one.
            if (n <= have && (have <= 128 || n > have / 2))
                return p;
        } else if (n > kSmallMax) {
            const std::uint32_t want = pages_for(n);
            if (resize_run(page_of(p), want, kLarge))
                return p;
        }
        void* q = alloc(n);
        if (!q)
            return nullptr;
        std::memcpy(q, p, n < have ? n : have);
        free(p);
        return q;
    }

    // ---- mmap ----------------------------------------------------------

    // Zero-filled pages for an anonymous private mmap of len bytes.
    void* map(std::size_t len) noexcept {
        const std::uint32_t n = pages_for(len);
        if (n == 0)
            return nullptr;
        std::uint32_t dirty = 0;
        std::uint32_t idx;
        {
            Guard g(page_lock_);
            idx = take_run(n, kMmap, &dirty);
            if (idx != kNone)
                ++stats_.mmap_allocs;
        }
        if (idx == kNone)
            return nullptr;
        if (dirty)
            std::memset(addr(idx), 0, std::size_t{dirty} << kPageShift);
        return addr(idx);
    }

    // munmap of [p, p + len) where p is in the region: the mmap pages in
    // the range are freed (splitting runs), other pages are left alone.
    void unmap(void* p, std::size_t len) noexcept { carve_mmap(p, len, kFree); }

    // mremap of the mmap block [p, p + old_len) to new_len, in place when
    // possible; with may_move, elsewhere in the region (data copied).
    // nullptr if neither (nothing changed).
    void* remap(void* p, std::size_t old_len, std::size_t new_len, bool may_move) noexcept {
        const std::uint32_t idx = page_of(p);
        const std::uint32_t oldn = pages_for(old_len);
        const std::uint32_t newn = pages_for(new_len);
        if (newn == 0 || oldn == 0)
            return nullptr;
        {
            Guard g(page_lock_);
            const Tag& t = tags_[idx];
            if (t.kind != kMmap || !(t.flags & kHead) || t.len != oldn)
                return nullptr;
        }
        std::uint32_t zero_from = 0, dirty = 0;
        if (resize_run(idx, newn, kMmap, &zero_from, &dirty)) {
            if (dirty)
                std::memset(addr(zero_from), 0, std::size_t{dirty} << kPageShift);
            return p;
        }
        if (!may_move)
            return nullptr;
        void* q = map(new_len);
        if (!q)
            return nullptr;
        std::memcpy(q, p, std::size_t{oldn} << kPageShift);
        unmap(p, old_len);
        return q;
    }

    // Whether [p, p + len) lies wholly in mmap runs of this heap.
    bool all_mmap(const void* p, std::size_t len) noexcept {
        Guard g(page_lock_);
        return all_kind(page_of(p), pages_for(len), kMmap);
    }

    // The pages of [p, p + len) in mmap runs become foreign: something
    // else was mapped over them; they are never reused.
    void mark_foreign(const void* p, std::size_t len) noexcept { carve_mmap(p, len, kForeign); }

    // Zero [p, p + len), all mmap pages (a MAP_FIXED anonymous mapping
    // over them).
    void zero(void* p, std::size_t len) noexcept { std::memset(p, 0, len); }

    // ---- whole heap ----------------------------------------------------

    // Calls fn(first_page, pages) for every maximal range of pages below
    // top that is in use (not free, not foreign).  Caller holds every lock.
    template <class Fn> void for_each_used(Fn&& fn) const noexcept {
        std::uint32_t i = 0, start = kNone;
        while (i < top_) {
            const Tag& t = tags_[i];
            const bool used = t.kind != kFree && t.kind != kForeign;
            if (used && start == kNone)
                start = i;
            if (!used && start != kNone) {
                fn(start, i - start);
                start = kNone;
            }
            i += t.len ? t.len : 1;
        }
        if (start != kNone)
            fn(start, top_ - start);
    }

    // Same for the pages that are not foreign, up to the region's end.
    template <class Fn> void for_each_own(Fn&& fn) const noexcept {
        std::uint32_t i = 0, start = 0;
        while (i < top_) {
            const Tag& t = tags_[i];
            const std::uint32_t len = t.len ? t.len : 1;
            if (t.kind == kForeign) {
                if (i > start)
                    fn(start, i - start);
                start = i + len;
            }
            i += len;
        }
        if (npages_ > start)
            fn(start, static_cast<std::uint32_t>(npages_ - start));
    }

    void lock_all() noexcept {
        for (auto& l : class_lock_)
            l.lock();
        page_lock_.lock();
    }
    void unlock_all() noexcept {
        page_lock_.unlock();
        for (auto& l : class_lock_)
            l.unlock();
    }
    void reset_locks() noexcept {
        page_lock_.reset();
        for (auto& l : class_lock_)
            l.reset();
    }

    HeapStats stats() noexcept {
        Guard g(page_lock_);
        return stats_;
    }

    std::uint32_t top() const noexcept { return top_; }
    char* addr(std::uint32_t page) const noexcept {
        return base_ + (std::size_t{page} << kPageShift);
    }

    // Checks every invariant of the page runs and spans (tests); returns
    // the name of the first one broken, nullptr if all hold.
    const char* check() noexcept {
        lock_all();
        const char* bad = check_locked();
        unlock_all();
        return bad;
    }

  private:
    static constexpr unsigned kExactBins = 64;
    static constexpr unsigned kBins = kExactBins + 26;

    std::uint32_t page_of(const void* p) const noexcept {
        return static_cast<std::uint32_t>((static_cast<const char*>(p) - base_) >> kPageShift);
    }
    static std::uint32_t pages_for(std::size_t n) noexcept {
        const std::size_t pages = (n + kPage - 1) >> kPageShift;
        return pages >= kNone ? kNone - 1 : static_cast<std::uint32_t>(pages);
    }
    static unsigned bin_of(std::uint32_t n) noexcept {
        if (n <= kExactBins)
            return n - 1;
        return kExactBins + static_cast<unsigned>(std::bit_width(n)) - 7;
    }

    // The head of the run holding page i, kNone if i is past the tiled
    // area or inside a free run whose interior tags are stale (only the
    // head and tail of a free run are kept current).  A stale tag either
    // fails these checks or names the free run that really holds i.
    std::uint32_t resolve(std::uint32_t i) const noexcept {
        if (i >= top_)
            return kNone;
        const Tag& t = tags_[i];
        const std::uint32_t h = t.head;
        if (h > i)
            return kNone;
        const Tag& ht = tags_[h];
        if (!(ht.flags & kHead) || ht.head != h || ht.kind != t.kind || ht.len == 0 ||
            i - h >= ht.len)
            return kNone;
        return h;
    }

    // Marks [idx, idx + n) as one run of kind; every page records the head
    // (so any page finds its run), head and tail carry kind and length.
    void set_run(std::uint32_t idx, std::uint32_t n, std::uint8_t kind) noexcept {
        for (std::uint32_t i = 0; i < n; ++i) {
            Tag& t = tags_[idx + i];
            t.kind = kind;
            t.head = idx;
            t.len = (i == 0 || i == n - 1) ? n : 0;
            t.flags = static_cast<std::uint16_t>((i == 0 ? kHead : 0) | (i == n - 1 ? kTail : 0));
        }
    }

    // Cheaper form for free runs: head and tail only (their interior pages
    // are never looked at; a later set_run rewrites them).
    void set_free_tags(std::uint32_t idx, std::uint32_t n) noexcept {
        Tag& h = tags_[idx];
        h.kind = kFree;
        h.head = idx;
        h.len = n;
        h.flags = kHead | (n == 1 ? kTail : 0);
        if (n > 1) {
            Tag& t = tags_[idx + n - 1];
            t.kind = kFree;
            t.head = idx;
            t.len = n;
            t.flags = kTail;
        }
    }

    void bin_insert(std::uint32_t idx) noexcept {
        Tag& t = tags_[idx];
        const unsigned b = bin_of(t.len);
        t.prev = kNone;
        t.next = bins_[b];
        if (t.next != kNone)
            tags_[t.next].prev = idx;
        bins_[b] = idx;
        bin_mask_[b / 64] |= std::uint64_t{1} << (b % 64);
    }

    // Takes t out of the doubly linked list whose first index is `head`.
    void list_unlink(Tag& t, std::uint32_t& head) noexcept {
        if (t.prev != kNone)
            tags_[t.prev].next = t.next;
        else
            head = t.next;
        if (t.next != kNone)
            tags_[t.next].prev = t.prev;
    }

    void bin_remove(std::uint32_t idx) noexcept {
        Tag& t = tags_[idx];
        const unsigned b = bin_of(t.len);
        list_unlink(t, bins_[b]);
        if (bins_[b] == kNone)
            bin_mask_[b / 64] &= ~(std::uint64_t{1} << (b % 64));
    }

    // A free run of at least n pages from the bins, removed; kNone if none.
    std::uint32_t bin_find(std::uint32_t n) noexcept {
        unsigned b = bin_of(n);
        // The first bin may hold runs shorter than n (ranged bins).
        if (b >= kExactBins) {
            for (std::uint32_t i = bins_[b]; i != kNone; i = tags_[i].next)
                if (tags_[i].len >= n) {
                    bin_remove(i);
                    return i;
                }
            ++b;
        }
        for (; b < kBins; ++b) {
            const std::uint64_t m = bin_mask_[b / 64] >> (b % 64);
            if (m == 0) {
                b = (b / 64 + 1) * 64 - 1; // skip to the next mask word
                continue;
            }
            b += static_cast<unsigned>(std::countr_zero(m));
            if (b >= kBins)
                break;
            const std::uint32_t i = bins_[b];
            bin_remove(i);
            return i;
        }
        return kNone;
    }

    // Adds the free pages [idx, idx + n) to the heap, merging with free
    // neighbours and with the end of the tiled area.  Page lock held.
    void add_free(std::uint32_t idx, std::uint32_t n) noexcept {
        if (idx > 0) {
            const Tag& l = tags_[idx - 1];
            if (l.kind == kFree && (l.flags & kTail)) {
                const std::uint32_t h = l.head;
                bin_remove(h);
                n += idx - h;
                idx = h;
            }
        }
        if (idx + n < top_) {
            const Tag& r = tags_[idx + n];
            if (r.kind == kFree && (r.flags & kHead)) {
                const std::uint32_t rn = r.len;
                bin_remove(idx + n);
                n += rn;
            }
        }
        if (idx + n == top_) {
            // The end of the tiled area moves back; tags past it are dead.
            tags_[idx].kind = kUnused;
            tags_[idx + n - 1].kind = kUnused;
            top_ = idx;
            return;
        }
        set_free_tags(idx, n);
        bin_insert(idx);
    }

    // Frees a whole run.  Page lock held.
    void release_run(std::uint32_t idx, std::uint32_t n) noexcept {
        stats_.used_pages -= n;
        add_free(idx, n);
    }

    // Takes n pages as a run of kind.  *dirty gets how many of its first
    // pages may hold old data (the rest are fresh: zero).  Page lock held.
    std::uint32_t take_run(std::uint32_t n, std::uint8_t kind, std::uint32_t* dirty) noexcept {
        std::uint32_t idx = bin_find(n);
        if (idx != kNone) {
            const std::uint32_t have = tags_[idx].len;
            set_run(idx, n, kind); // first: the rest's left neighbour must be current
            if (have > n)
                add_free(idx + n, have - n);
        } else {
            idx = top_;
            if (std::uint64_t{idx} + n > npages_)
                return kNone;
            top_ = idx + n;
            set_run(idx, n, kind);
        }
        *dirty = take_pages(idx, n);
        return idx;
    }

    // The n pages at idx newly in use: raises the high-water mark and the
    // usage counts; returns how many of them may hold old data (those
    // below the old mark).  Page lock held.
    std::uint32_t take_pages(std::uint32_t idx, std::uint32_t n) noexcept {
        const std::uint32_t end = idx + n;
        const std::uint32_t dirty = hwm_ <= idx ? 0 : (hwm_ >= end ? n : hwm_ - idx);
        if (end > hwm_)
            hwm_ = end;
        stats_.used_pages += n;
        if (stats_.used_pages > stats_.peak_used_pages)
            stats_.peak_used_pages = stats_.used_pages;
        stats_.top_pages = hwm_;
        return dirty;
    }

    // Resizes the run at idx (kind) to want pages in place: shrinking
    // frees the tail, growing takes a free neighbour or the end of the
    // tiled area.  *zero_from / *dirty: the added pages that may hold old
    // data.  False (nothing changed) if it cannot grow in place.
    bool resize_run(std::uint32_t idx, std::uint32_t want, std::uint8_t kind,
                    std::uint32_t* zero_from = nullptr, std::uint32_t* dirty = nullptr) noexcept {
        Guard g(page_lock_);
        Tag& h = tags_[idx];
        if (h.kind != kind || !(h.flags & kHead))
            return false;
        const std::uint32_t have = h.len;
        if (dirty)
            *dirty = 0;
        if (want == have)
            return true;
        if (want < have) {
            set_run(idx, want, kind);
            stats_.used_pages -= have - want;
            add_free(idx + want, have - want);
            return true;
        }
        const std::uint32_t more = want - have;
        const std::uint32_t end = idx + have;
        if (end == top_) {
            if (std::uint64_t{end} + more > npages_)
                return false;
            top_ = end + more;
        } else {
            const Tag& r = tags_[end];
            if (r.kind != kFree || !(r.flags & kHead) || r.len < more)
                return false;
            const std::uint32_t rn = r.len;
            bin_remove(end);
            set_run(idx, want, kind);
            if (rn > more)
                add_free(end + more, rn - more);
        }
        set_run(idx, want, kind);
        const std::uint32_t old = take_pages(end, more);
        if (zero_from && dirty) {
            *zero_from = end;
            *dirty = old;
        }
        return true;
    }

    // The mmap pages of [p, p + len) carved out of their runs `as` (free
    // or foreign); other pages are left alone.
    void carve_mmap(const void* p, std::size_t len, std::uint8_t as) noexcept {
        std::uint32_t first = page_of(p);
        std::uint64_t last = std::uint64_t{first} + pages_for(len); // exclusive
        Guard g(page_lock_);
        if (last > top_)
            last = top_;
        std::uint32_t i = first;
        while (i < last) {
            const std::uint32_t h = resolve(i);
            if (h == kNone) {
                ++i; // inside a free run: its tail resolves
                continue;
            }
            const Tag& t = tags_[h];
            const std::uint32_t end = h + t.len;
            const std::uint32_t cut_end = end < last ? end : static_cast<std::uint32_t>(last);
            if (t.kind == kMmap)
                carve(h, i, cut_end - i, as);
            i = cut_end;
        }
    }

    // Splits [from, from + n) out of the run at h (kind mmap) and frees it
    // (or, with kind kForeign, makes it a foreign run).  Page lock held.
    void carve(std::uint32_t h, std::uint32_t from, std::uint32_t n,
               std::uint8_t as = kFree) noexcept {
        const Tag t = tags_[h];
        const std::uint32_t end = h + t.len;
        if (from > h)
            set_run(h, from - h, t.kind);
        if (from + n < end)
            set_run(from + n, end - (from + n), t.kind);
        if (as == kFree) {
            stats_.used_pages -= n;
            add_free(from, n);
        } else {
            set_run(from, n, as);
        }
    }

    bool all_kind(std::uint32_t first, std::uint32_t n, std::uint8_t kind) const noexcept {
        if (std::uint64_t{first} + n > top_)
            return false;
        for (std::uint32_t i = first; i < first + n;) {
            const std::uint32_t h = resolve(i);
            if (h == kNone || tags_[h].kind != kind)
                return false;
            i = h + tags_[h].len;
        }
        return true;
    }

    void* alloc_large(std::size_t n, std::size_t align, bool zeroed) noexcept {
        const std::uint32_t want = pages_for(n);
        if (want == 0 || want >= npages_ || (align >> kPageShift) >= npages_ - want)
            return nullptr;
        const std::uint32_t slack =
            align > kPage ? static_cast<std::uint32_t>((align >> kPageShift) - 1) : 0;
        std::uint32_t dirty = 0, idx;
        {
            Guard g(page_lock_);
            idx = take_run(want + slack, kLarge, &dirty);
            if (idx == kNone)
                return nullptr;
            ++stats_.large_allocs;
            if (slack) {
                // Keep the aligned part; give back what is before and after.
                const std::uintptr_t a = reinterpret_cast<std::uintptr_t>(addr(idx));
                const std::uintptr_t al = (a + align - 1) & ~(std::uintptr_t{align} - 1);
                const std::uint32_t lead = static_cast<std::uint32_t>((al - a) >> kPageShift);
                const std::uint32_t total = want + slack;
                set_run(idx + lead, want, kLarge);
                if (lead) {
                    stats_.used_pages -= lead;
                    add_free(idx, lead);
                }
                if (total - lead - want) {
                    stats_.used_pages -= total - lead - want;
                    add_free(idx + lead + want, total - lead - want);
                }
                dirty = dirty > lead ? dirty - lead : 0;
                if (dirty > want)
                    dirty = want;
                idx += lead;
            }
        }
        if (zeroed && dirty)
            std::memset(addr(idx), 0, std::size_t{dirty} << kPageShift);
        return addr(idx);
    }

    void* alloc_small(unsigned c) noexcept {
        Guard g(class_lock_[c]);
        std::uint32_t s = partial_[c];
        if (s == kNone) {
            std::uint32_t dirty;
            {
                Guard pg(page_lock_);
                s = take_run(span_pages(c), kSmall, &dirty);
                if (s == kNone)
                    return nullptr;
                ++stats_.small_spans;
            }
            Tag& h = tags_[s];
            h.cls = static_cast<std::uint8_t>(c);
            h.used = 0;
            h.bump = 0;
            h.freelist = 0;
            h.prev = kNone;
            h.next = kNone;
            partial_[c] = s;
        }
        Tag& h = tags_[s];
        char* p;
        if (h.freelist) {
            p = base_ + (h.freelist - 1);
            std::uint64_t next;
            std::memcpy(&next, p, sizeof(next));
            h.freelist = next;
        } else {
            p = addr(s) + std::size_t{h.bump} * class_size(c);
            ++h.bump;
        }
        ++h.used;
        if (h.used == span_blocks(c))
            partial_unlink(c, s); // full: off the partial list
        return p;
    }

    void partial_unlink(unsigned c, std::uint32_t s) noexcept {
        Tag& h = tags_[s];
        list_unlink(h, partial_[c]);
        h.prev = h.next = kNone;
    }

    void partial_push(unsigned c, std::uint32_t s) noexcept {
        Tag& h = tags_[s];
        h.prev = kNone;
        h.next = partial_[c];
        if (h.next != kNone)
            tags_[h.next].prev = s;
        partial_[c] = s;
    }

    void free_small(void* p, std::uint32_t s) noexcept {
        // The class is read before locking; a span's class never changes
        // while it has live blocks, and p is one of them.
        const unsigned c = tags_[s].cls;
        if (c >= kClasses)
            return;
        Guard g(class_lock_[c]);
        Tag& h = tags_[s];
        if (h.kind != kSmall || h.cls != c || h.used == 0 || resolve(page_of(p)) != s)
            return;
        const std::size_t off = static_cast<char*>(p) - addr(s);
        if (off % class_size(c) != 0 || off / class_size(c) >= h.bump)
            return; // not a block start: ignore
        const bool was_full = h.used == span_blocks(c);
        std::uint64_t next = h.freelist;
        std::memcpy(p, &next, sizeof(next));
        h.freelist = static_cast<std::uint64_t>(static_cast<char*>(p) - base_) + 1;
        --h.used;
        if (h.used == 0) {
            // Empty: give the pages back, unless it is the class's only
            // partial span (keeps a steady malloc/free pair from churning).
            if (!(was_full == false && partial_[c] == s && h.next == kNone)) {
                if (!was_full)
                    partial_unlink(c, s);
                Guard pg(page_lock_);
                release_run(s, span_pages(c));
                return;
            }
        }
        if (was_full)
            partial_push(c, s);
    }

    const char* check_locked() noexcept {
        std::uint32_t i = 0;
        std::uint64_t used = 0, free_pages = 0;
        while (i < top_) {
            const Tag& t = tags_[i];
            if (!(t.flags & kHead) || t.len == 0 || t.head != i)
                return "run head tag";
            if (std::uint64_t{i} + t.len > top_)
                return "run past top";
            const Tag& e = tags_[i + t.len - 1];
            if (!(e.flags & kTail) || e.len != t.len || e.kind != t.kind || e.head != i)
                return "run tail tag";
            if (t.kind == kFree) {
                free_pages += t.len;
                if (i + t.len < top_ && tags_[i + t.len].kind == kFree)
                    return "adjacent free runs";
                if (i > 0 && tags_[i - 1].kind == kFree)
                    return "adjacent free runs (left)";
                bool found = false;
                for (std::uint32_t j = bins_[bin_of(t.len)]; j != kNone; j = tags_[j].next)
                    found = found || j == i;
                if (!found)
                    return "free run not in its bin";
            } else if (t.kind == kForeign) {
            } else {
                if (t.kind != kLarge && t.kind != kSmall && t.kind != kMmap)
                    return "bad kind";
                for (std::uint32_t j = 0; j < t.len; ++j)
                    if (tags_[i + j].head != i || tags_[i + j].kind != t.kind)
                        return "page head";
                if (t.kind == kSmall && t.len != span_pages(t.cls))
                    return "span length";
                used += t.len;
            }
            i += t.len;
        }
        std::uint64_t binned = 0;
        for (unsigned b = 0; b < kBins; ++b) {
            const bool bit = bin_mask_[b / 64] >> (b % 64) & 1;
            if (bit != (bins_[b] != kNone))
                return "bin mask";
            for (std::uint32_t j = bins_[b]; j != kNone; j = tags_[j].next) {
                if (tags_[j].kind != kFree || bin_of(tags_[j].len) != b)
                    return "bin entry";
                binned += tags_[j].len;
            }
        }
        if (binned != free_pages)
            return "binned pages";
        (void)used;
        if (top_ > 0 && tags_[top_ - 1].kind == kFree)
            return "free run at top";
        return nullptr;
    }

    char* base_ = nullptr;
    std::size_t npages_ = 0;
    Tag* tags_ = nullptr;
    std::uint32_t top_ = 0; // pages [0, top_) are tiled by runs
    std::uint32_t hwm_ = 0; // pages at or above never handed out: zero
    std::uint32_t bins_[kBins]{};
    std::uint64_t bin_mask_[(kBins + 63) / 64]{};
    std::uint32_t partial_[kClasses]{};
    Lock page_lock_;
    Lock class_lock_[kClasses];
    HeapStats stats_{};
};

} // namespace mvmrun
