// SPDX-License-Identifier: GPL-2.0
//
// The Redis Cluster slot map, written once and small (Debian 12 packages
// no cluster client): CRC16 and key slots as the Redis Cluster
// specification gives them, the map from CLUSTER SLOTS, and the MOVED and
// ASK redirections that update it.  No I/O here: RedisStore does that.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

struct redisReply;

namespace machvm::redis {

inline constexpr unsigned kSlots = 16384;

// CRC16-CCITT (XMODEM: polynomial 0x1021, initial 0), Redis's key hash.
std::uint16_t crc16(std::string_view bytes) noexcept;
// The key's slot: CRC16 of its hash tag (the bytes between the first '{'
// and the first '}' after it, if not empty) or of the whole key, mod 16384.
unsigned key_slot(std::string_view key) noexcept;

struct Node {
    std::string host;
    int port = 0;
    bool operator==(const Node&) const = default;
    std::string name() const { return host + ":" + std::to_string(port); }
};

// "HOST:PORT" (HOST may be an IPv6 address: the last colon splits); false
// if it is not one.
bool parse_node(std::string_view s, Node& out);

// A reply's error: -MOVED SLOT HOST:PORT, -ASK SLOT HOST:PORT, or neither.
struct Redirect {
    enum class Kind { None, Moved, Ask } kind = Kind::None;
    unsigned slot = 0;
    Node node;
};
Redirect parse_redirect(std::string_view error);

// Errors after which the same command is tried again, later, on the same
// node: -TRYAGAIN (a multi-key command during resharding), -CLUSTERDOWN,
// -LOADING (a restarted server reading its data), -MASTERDOWN.
bool retry_later(std::string_view error) noexcept;

// Slot -> master.  Nodes are only ever added: an index stays the same
// node, so a connection table can be indexed by it.
class SlotMap {
  public:
    SlotMap() { slot_.fill(-1); }

    // The master serving `slot`, or -1 if no node does.
    int node_of(unsigned slot) const noexcept { return slot_[slot % kSlots]; }
    const std::vector<Node>& nodes() const noexcept { return nodes_; }
    // The index of `n`, added if new.
    int add_node(const Node& n);
    void assign(unsigned slot, int node) noexcept {
        slot_[slot % kSlots] = static_cast<std::int16_t>(node);
    }
    // Every slot served.
    bool covered() const noexcept;
    // Masters that serve at least one slot.
    std::vector<int> masters() const;

    // Replaces the assignment with a CLUSTER SLOTS reply's ([start, end,
    // [host, port, id...], replicas...]...).  A master given as "" or "?"
    // (a node that does not know its address) is `asked`, the node the
    // reply came from.  Returns "" or what is wrong with the reply (the
    // map is then unchanged).
    std::string load(const redisReply& reply, const Node& asked);

  private:
    std::vector<Node> nodes_;
    std::array<std::int16_t, kSlots> slot_;
};

} // namespace machvm::redis
