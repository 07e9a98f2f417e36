// SPDX-License-Identifier: GPL-2.0
//
// Pagers whose pages live in a store (ARCHITECTURE.md, decision 11).
//
//  Store       a small asynchronous, batched page store: get, put, erase.
//              Each call takes a batch and a completion; the completion may
//              run inside the call (an in-memory store) or later, on any
//              thread (a network store).  Calls never block on I/O.
//  StorePager  the engine every store pager shares: a data request reads
//              its cluster, plus pages ahead of a sequential stream, from
//              the store; a DATA_RETURN is copied, put, and only once the
//              store holds it answered RETURN_DONE; TERMINATE erases.
//  CompressStore  pages compressed with zstd in the pager's own memory.
//  RedisStore  pages in Redis or a Redis Cluster (redis_store.hpp).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <system_error>
#include <vector>

#include <machvm/pager.hpp>
#include <machvm/readahead.hpp>

namespace machvm {

// One page of a get: the store fills `page` and sets `found`.
struct StoreGet {
    std::uint64_t object = 0;
    std::uint64_t offset = 0;
    std::span<std::byte> page;
    bool found = false;
};

// One page of a put: the store copies `page` before the completion runs.
struct StorePut {
    std::uint64_t object = 0;
    std::uint64_t offset = 0;
    std::span<const std::byte> page;
};

struct StoreStats {
    std::uint64_t pages = 0;          // pages held
    std::uint64_t bytes_stored = 0;   // bytes their data takes in the store
    std::uint64_t same_filled = 0;    // pages held as one word
    std::uint64_t incompressible = 0; // pages held as they are
    std::uint64_t gets = 0;           // pages read (found)
    std::uint64_t puts = 0;           // pages written
    std::uint64_t page_size = 4096;
    // Bytes the pages would take uncompressed over bytes_stored (1 if empty).
    double ratio() const noexcept;
};

class Store {
  public:
    // error: zero, or why the whole batch failed (a put that failed holds
    // none of its pages for sure; the caller refuses the return).
    using Done = std::function<void(std::error_code error)>;

    virtual ~Store() = default;
    // The batch's spans stay valid until done runs.  done runs exactly
    // once, inside the call or later.
    virtual void get(std::span<StoreGet> batch, Done done) noexcept = 0;
    virtual void put(std::span<const StorePut> batch, Done done) noexcept = 0;
    // Every page of `object`.
    virtual void erase(std::uint64_t object, Done done) noexcept = 0;
    virtual StoreStats stats() const noexcept = 0;
    // True if every call completes inside the call (the StorePager then
    // answers with the handler's own Reply).
    virtual bool synchronous() const noexcept { return false; }
    // True if the store holds no page of this pager's objects but those
    // put into it: the kernel may then zero-fill every other page itself
    // (StorePagerOptions::ready_flags, MACHVM_READY_F_EXISTENCE).
    virtual bool starts_empty() const noexcept { return false; }
    // "compress:3", for messages.
    virtual std::string describe() const = 0;
};

struct StorePagerOptions {
    machvm_attr attr{0, MACHVM_COPY_DELAY, 1, 0};
    std::uint64_t page_size = 4096;
    // Supply pages precious: the kernel returns them even when clean.
    bool precious = false;
    // Sequential read-ahead (max_window 0: off).
    SequentialDetector::Config readahead{4096, 0, 0, 8};
    // MACHVM_READY_F_* for READY (MACHVM_READY_F_EXISTENCE where the module
    // has it and the store starts_empty(): pages never put are zero-filled
    // by the kernel without a DATA_REQUEST).
    std::uint32_t ready_flags = 0;
};

class StorePager final : public Pager {
  public:
    StorePager(Store& store, const StorePagerOptions& opts);
    ~StorePager() override;

    void on_init(const machvm_msg& msg, Reply& reply) noexcept override;
    void on_data_request(const machvm_msg& msg, Reply& reply) noexcept override;
    void on_data_return(const machvm_msg& msg, Reply& reply) noexcept override;
    void on_terminate(const machvm_msg& msg, Reply& reply) noexcept override;

    // Requests and returns whose store call has not completed yet.
    unsigned in_flight() const noexcept { return in_flight_.load(std::memory_order_acquire); }
    std::uint64_t returns_taken() const noexcept {
        return returns_taken_.load(std::memory_order_relaxed);
    }
    std::uint64_t returns_refused() const noexcept {
        return returns_refused_.load(std::memory_order_relaxed);
    }

  private:
    struct Job;
    struct Objects;
    void finish(Job& job) noexcept;

    Store& store_;
    StorePagerOptions opts_;
    std::unique_ptr<Objects> objects_;
    std::atomic<unsigned> in_flight_{0};
    std::atomic<std::uint64_t> returns_taken_{0};
    std::atomic<std::uint64_t> returns_refused_{0};
};

// zstd in the pager's memory.  Same-filled pages (one 64-bit word repeated)
// are held as that word; pages zstd cannot shrink by an eighth are held as
// they are.  Thread-safe (sharded locks, one zstd context per thread);
// every call completes inside the call.
class CompressStore final : public Store {
  public:
    static constexpr int kDefaultLevel = 3;
    // level: zstd's, 1 .. ZSTD_maxCLevel() (or negative: faster).
    explicit CompressStore(int level = kDefaultLevel, std::uint64_t page_size = 4096);
    ~CompressStore() override;

    void get(std::span<StoreGet> batch, Done done) noexcept override;
    void put(std::span<const StorePut> batch, Done done) noexcept override;
    void erase(std::uint64_t object, Done done) noexcept override;
    StoreStats stats() const noexcept override;
    bool synchronous() const noexcept override { return true; }
    bool starts_empty() const noexcept override { return true; }
    std::string describe() const override;

    int level() const noexcept { return level_; }
    static int max_level() noexcept;
    static int min_level() noexcept;

  private:
    struct Shard;
    Shard& shard(std::uint64_t object, std::uint64_t offset) const noexcept;

    int level_;
    std::uint64_t page_size_;
    std::vector<std::unique_ptr<Shard>> shards_;
};

// Parses a --store value ("compress", "compress:LEVEL",
// "redis://HOST:PORT[,HOST:PORT...]", see redis_store.hpp) into a store;
// throws UsageError (naming the option) for anything else, and what the
// store's constructor throws (a Redis server unreachable, say).
std::unique_ptr<Store> make_store(const std::string& spec, std::uint64_t page_size);
// The same checks of the value, without making the store (no connection).
void check_store_spec(const std::string& spec);

// "pages 12 bytes_stored 3456 ratio 14.22 ..." or, json, one JSON object.
std::string format_store_stats(const Store& store, bool json);

} // namespace machvm
