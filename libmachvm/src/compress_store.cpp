// SPDX-License-Identifier: GPL-2.0
//
// CompressStore: pages compressed with zstd in the pager's memory.  See
// store.hpp.
#include <machvm/store.hpp>

#include <zstd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <unordered_map>

namespace machvm {

namespace {

constexpr std::size_t kShards = 64;

struct CCtxDeleter {
    void operator()(ZSTD_CCtx* c) const noexcept { ZSTD_freeCCtx(c); }
};
struct DCtxDeleter {
    void operator()(ZSTD_DCtx* d) const noexcept { ZSTD_freeDCtx(d); }
};

// One context of each kind per thread: zstd contexts are not thread-safe
// and cost a few hundred KiB, so they are made once.
ZSTD_CCtx* thread_cctx() noexcept {
    thread_local std::unique_ptr<ZSTD_CCtx, CCtxDeleter> c(ZSTD_createCCtx());
    return c.get();
}
ZSTD_DCtx* thread_dctx() noexcept {
    thread_local std::unique_ptr<ZSTD_DCtx, DCtxDeleter> d(ZSTD_createDCtx());
    return d.get();
}

// The word the page repeats, if it is one word repeated.
bool same_filled(std::span<const std::byte> page, std::uint64_t& word) noexcept {
    std::uint64_t first;
    std::memcpy(&first, page.data(), sizeof(first));
    for (std::size_t i = sizeof(first); i < page.size(); i += sizeof(first)) {
        std::uint64_t w;
        std::memcpy(&w, page.data() + i, sizeof(w));
        if (w != first)
            return false;
    }
    word = first;
    return true;
}

} // namespace

// How a page is held.
struct CompressedPage {
    enum class Kind : std::uint8_t { Same, Raw, Zstd };
    Kind kind = Kind::Same;
    std::uint64_t word = 0;       // Same
    std::vector<std::byte> bytes; // Raw, Zstd
    std::size_t stored() const noexcept { return kind == Kind::Same ? sizeof(word) : bytes.size(); }
};

struct PageKeyHash {
    std::size_t operator()(const std::pair<std::uint64_t, std::uint64_t>& k) const noexcept {
        return std::hash<std::uint64_t>()(k.first * 0x9e3779b97f4a7c15ull ^ k.second);
    }
};

struct CompressStore::Shard {
    mutable std::mutex mu;
    std::unordered_map<std::pair<std::uint64_t, std::uint64_t>, CompressedPage, PageKeyHash> map;
    std::uint64_t bytes = 0;
    std::uint64_t same = 0;
    std::uint64_t raw = 0;
    std::uint64_t gets = 0;
    std::uint64_t puts = 0;

    void account(const CompressedPage& e, int sign) noexcept {
        const auto s = static_cast<std::uint64_t>(e.stored());
        bytes += sign > 0 ? s : -s;
        if (e.kind == CompressedPage::Kind::Same)
            same += sign > 0 ? 1 : -1;
        else if (e.kind == CompressedPage::Kind::Raw)
            raw += sign > 0 ? 1 : -1;
    }
};

CompressStore::CompressStore(int level, std::uint64_t page_size)
    : level_(level), page_size_(page_size) {
    shards_.reserve(kShards);
    for (std::size_t i = 0; i < kShards; ++i)
        shards_.push_back(std::make_unique<Shard>());
}

CompressStore::~CompressStore() = default;

int CompressStore::max_level() noexcept {
    return ZSTD_maxCLevel();
}

int CompressStore::min_level() noexcept {
    return ZSTD_minCLevel();
}

CompressStore::Shard& CompressStore::shard(std::uint64_t object,
                                           std::uint64_t offset) const noexcept {
    const std::size_t h = PageKeyHash()({object, offset / page_size_});
    return *shards_[(h >> 7) % kShards];
}

void CompressStore::put(std::span<const StorePut> batch, Done done) noexcept {
    std::error_code ec;
    ZSTD_CCtx* cctx = thread_cctx();
    try {
        if (!cctx)
            throw std::bad_alloc();
        std::vector<std::byte> tmp(ZSTD_compressBound(page_size_));
        for (const StorePut& p : batch) {
            CompressedPage e;
            if (same_filled(p.page, e.word)) {
                e.kind = CompressedPage::Kind::Same;
            } else {
                const std::size_t n = ZSTD_compressCCtx(cctx, tmp.data(), tmp.size(), p.page.data(),
                                                        p.page.size(), level_);
                // Not worth an eighth of the page: keep it as it is (no
                // decompression on the way back).
                if (ZSTD_isError(n) || n > p.page.size() - p.page.size() / 8) {
                    e.kind = CompressedPage::Kind::Raw;
                    e.bytes.assign(p.page.begin(), p.page.end());
                } else {
                    e.kind = CompressedPage::Kind::Zstd;
                    e.bytes.assign(tmp.begin(), tmp.begin() + static_cast<std::ptrdiff_t>(n));
                }
            }
            Shard& s = shard(p.object, p.offset);
            std::lock_guard<std::mutex> lock(s.mu);
            auto [it, inserted] = s.map.try_emplace({p.object, p.offset});
            if (!inserted)
                s.account(it->second, -1);
            it->second = std::move(e);
            s.account(it->second, +1);
            ++s.puts;
        }
    } catch (const std::bad_alloc&) {
        ec = std::make_error_code(std::errc::not_enough_memory);
    }
    done(ec);
}

void CompressStore::get(std::span<StoreGet> batch, Done done) noexcept {
    std::error_code ec;
    ZSTD_DCtx* dctx = thread_dctx();
    for (StoreGet& g : batch) {
        g.found = false;
        Shard& s = shard(g.object, g.offset);
        std::lock_guard<std::mutex> lock(s.mu);
        auto it = s.map.find({g.object, g.offset});
        if (it == s.map.end())
            continue;
        const CompressedPage& e = it->second;
        switch (e.kind) {
        case CompressedPage::Kind::Same:
            for (std::size_t i = 0; i < g.page.size(); i += sizeof(e.word))
                std::memcpy(g.page.data() + i, &e.word, sizeof(e.word));
            break;
        case CompressedPage::Kind::Raw:
            std::memcpy(g.page.data(), e.bytes.data(), g.page.size());
            break;
        case CompressedPage::Kind::Zstd: {
            const std::size_t n = dctx ? ZSTD_decompressDCtx(dctx, g.page.data(), g.page.size(),
                                                             e.bytes.data(), e.bytes.size())
                                       : 0;
            if (!dctx || ZSTD_isError(n) || n != g.page.size()) {
                ec =
                    std::make_error_code(dctx ? std::errc::io_error : std::errc::not_enough_memory);
                continue;
            }
            break;
        }
        }
        g.found = true;
        ++s.gets;
    }
    done(ec);
}

void CompressStore::erase(std::uint64_t object, Done done) noexcept {
    for (auto& sp : shards_) {
        Shard& s = *sp;
        std::lock_guard<std::mutex> lock(s.mu);
        for (auto it = s.map.begin(); it != s.map.end();) {
            if (it->first.first == object) {
                s.account(it->second, -1);
                it = s.map.erase(it);
            } else {
                ++it;
            }
        }
    }
    done({});
}

StoreStats CompressStore::stats() const noexcept {
    StoreStats st;
    st.page_size = page_size_;
    for (const auto& sp : shards_) {
        std::lock_guard<std::mutex> lock(sp->mu);
        st.pages += sp->map.size();
        st.bytes_stored += sp->bytes;
        st.same_filled += sp->same;
        st.incompressible += sp->raw;
        st.gets += sp->gets;
        st.puts += sp->puts;
    }
    return st;
}

std::string CompressStore::describe() const {
    return "compress:" + std::to_string(level_);
}

} // namespace machvm
