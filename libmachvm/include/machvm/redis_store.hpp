// SPDX-License-Identifier: GPL-2.0
//
// RedisStore: pages kept in Redis or a Redis Cluster (ARCHITECTURE.md,
// decision 11; issue 13).  One I/O thread runs hiredis's asynchronous API
// over poll(): store calls queue their batch and return; every page is
// one command, pipelined on its master's connection; completions run on
// the I/O thread.  The server must not evict (maxmemory-policy
// noeviction): a page it dropped would read back as zeros.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <machvm/redis_slots.hpp>
#include <machvm/store.hpp>

namespace machvm {

struct RedisOptions {
    // One server, or several seeds of a cluster (one seed: a cluster if
    // CLUSTER SLOTS says so).
    std::vector<redis::Node> seeds;
    std::string user;     // AUTH user password (Redis 6 ACLs), or
    std::string password; // AUTH password if user is empty; none if both are
    // Keys are mvm:{NS.OBJECT.GROUP}:OFFSET: pagers sharing a server give
    // different namespaces.  Empty: a random one of this store.
    std::string ns;
    // Connecting, and a command waiting for its server (a lost connection,
    // redirections, TRYAGAIN): after op_timeout the call fails.  Keep it
    // under the object's fault timeout (5 s by default) so that a fault
    // on a page the store cannot give back ends with the pager's error.
    std::chrono::milliseconds connect_timeout{2000};
    std::chrono::milliseconds op_timeout{3000};
    std::uint64_t page_size = 4096;
};

// redis://[[USER]:PASSWORD@]HOST[:PORT][,HOST[:PORT]...][/][?ns=NAME&timeout=MS]
// (port 6379 by default; timeout sets op_timeout).  Throws UsageError.
RedisOptions parse_redis_url(const std::string& url);

class RedisStore final : public Store {
  public:
    // Connects to the seeds (AUTH, the eviction policy, CLUSTER SLOTS)
    // and each master before it returns; throws std::system_error with
    // one line saying which server and why.
    explicit RedisStore(const RedisOptions& opts);
    ~RedisStore() override;
    RedisStore(const RedisStore&) = delete;
    RedisStore& operator=(const RedisStore&) = delete;

    void get(std::span<StoreGet> batch, Done done) noexcept override;
    void put(std::span<const StorePut> batch, Done done) noexcept override;
    void erase(std::uint64_t object, Done done) noexcept override;
    StoreStats stats() const noexcept override;
    // True with a namespace of its own (no ns= given): no key is there yet.
    bool starts_empty() const noexcept override;
    std::string describe() const override;

    bool cluster() const noexcept;
    // The key of a page.
    std::string key(std::uint64_t object, std::uint64_t offset) const;
    // The last error a command met ("" if none), for diagnostics.
    std::string last_error() const;
    // Redirections followed, connections made (the first ones included).
    std::uint64_t redirections() const noexcept;
    std::uint64_t connects() const noexcept;

    // Pages per hash tag: a group of 16 pages (64 KiB) shares a slot.
    static constexpr std::uint64_t kGroupPages = 16;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

} // namespace machvm
