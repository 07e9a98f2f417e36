// SPDX-License-Identifier: GPL-2.0
//
// Choosing a store from a --store value, and printing its statistics.
// See store.hpp.
#include <machvm/cli.hpp>
#include <machvm/redis_store.hpp>
#include <machvm/store.hpp>

#include <cstdio>

namespace machvm {

std::unique_ptr<Store> make_store(const std::string& spec, std::uint64_t page_size) {
    const std::string kind = spec.substr(0, spec.find(':'));
    if (kind == "compress") {
        int level = CompressStore::kDefaultLevel;
        if (spec.size() > kind.size()) {
            const std::string v = spec.substr(kind.size() + 1);
            const bool neg = !v.empty() && v[0] == '-';
            auto r = parse_uint(neg ? std::string_view(v).substr(1) : std::string_view(v));
            const long long lv =
                r ? (neg ? -static_cast<long long>(r.value()) : static_cast<long long>(r.value()))
                  : 0;
            if (!r || r.value() > 1000000 || lv < CompressStore::min_level() ||
                lv > CompressStore::max_level() || lv == 0)
                throw UsageError("--store: bad zstd level '" + v + "' in '" + spec + "' (1 to " +
                                 std::to_string(CompressStore::max_level()) +
                                 ", or negative for faster)");
            level = static_cast<int>(lv);
        }
        return std::make_unique<CompressStore>(level, page_size);
    }
    if (spec.starts_with("redis://")) {
        RedisOptions o = parse_redis_url(spec);
        o.page_size = page_size;
        return std::make_unique<RedisStore>(o);
    }
    throw UsageError("--store: unknown store '" + spec +
                     "' (known: compress[:LEVEL], redis://HOST:PORT[,HOST:PORT...])");
}

void check_store_spec(const std::string& spec) {
    if (spec.starts_with("redis://"))
        parse_redis_url(spec);
    else
        make_store(spec, 4096);
}

std::string format_store_stats(const Store& store, bool json) {
    const StoreStats st = store.stats();
    char ratio[32];
    std::snprintf(ratio, sizeof(ratio), "%.2f", st.ratio());
    if (json)
        return "{\"store\":\"" + store.describe() + "\",\"pages\":" + std::to_string(st.pages) +
               ",\"bytes_stored\":" + std::to_string(st.bytes_stored) + ",\"ratio\":" + ratio +
               ",\"same_filled\":" + std::to_string(st.same_filled) +
               ",\"incompressible\":" + std::to_string(st.incompressible) +
               ",\"gets\":" + std::to_string(st.gets) + ",\"puts\":" + std::to_string(st.puts) +
               "}";
    return store.describe() + ": pages " + std::to_string(st.pages) + ", bytes stored " +
           std::to_string(st.bytes_stored) + ", ratio " + ratio + ", same-filled " +
           std::to_string(st.same_filled) + ", incompressible " +
           std::to_string(st.incompressible) + ", gets " + std::to_string(st.gets) + ", puts " +
           std::to_string(st.puts);
}

} // namespace machvm
