// SPDX-License-Identifier: GPL-2.0
//
// The Redis Cluster slot map.  See redis_slots.hpp.
#include <machvm/redis_slots.hpp>

#include <hiredis/hiredis.h>

#include <charconv>

namespace machvm::redis {

std::uint16_t crc16(std::string_view bytes) noexcept {
    std::uint16_t crc = 0;
    for (const char ch : bytes) {
        crc ^= static_cast<std::uint16_t>(static_cast<unsigned char>(ch) << 8);
        for (int i = 0; i < 8; ++i)
            crc = (crc & 0x8000) ? static_cast<std::uint16_t>((crc << 1) ^ 0x1021)
                                 : static_cast<std::uint16_t>(crc << 1);
    }
    return crc;
}

unsigned key_slot(std::string_view key) noexcept {
    const auto open = key.find('{');
    if (open != std::string_view::npos) {
        const auto close = key.find('}', open + 1);
        if (close != std::string_view::npos && close > open + 1)
            key = key.substr(open + 1, close - open - 1);
    }
    return crc16(key) & (kSlots - 1);
}

bool parse_node(std::string_view s, Node& out) {
    const auto colon = s.rfind(':');
    if (colon == std::string_view::npos || colon == 0)
        return false;
    std::string_view host = s.substr(0, colon);
    const std::string_view port = s.substr(colon + 1);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
    int p = 0;
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (ec != std::errc() || end != port.data() + port.size() || p <= 0 || p > 65535)
        return false;
    out.host.assign(host);
    out.port = p;
    return true;
}

Redirect parse_redirect(std::string_view error) {
    Redirect r;
    Redirect::Kind kind;
    if (error.starts_with("MOVED "))
        kind = Redirect::Kind::Moved;
    else if (error.starts_with("ASK "))
        kind = Redirect::Kind::Ask;
    else
        return r;
    error.remove_prefix(error.find(' ') + 1);
    const auto sp = error.find(' ');
    if (sp == std::string_view::npos)
        return r;
    unsigned slot = 0;
    const auto [end, ec] = std::from_chars(error.data(), error.data() + sp, slot);
    if (ec != std::errc() || end != error.data() + sp || slot >= kSlots)
        return r;
    if (!parse_node(error.substr(sp + 1), r.node))
        return r;
    r.slot = slot;
    r.kind = kind;
    return r;
}

bool retry_later(std::string_view error) noexcept {
    return error.starts_with("TRYAGAIN") || error.starts_with("CLUSTERDOWN") ||
           error.starts_with("LOADING") || error.starts_with("MASTERDOWN");
}

int SlotMap::add_node(const Node& n) {
    for (std::size_t i = 0; i < nodes_.size(); ++i)
        if (nodes_[i] == n)
            return static_cast<int>(i);
    nodes_.push_back(n);
    return static_cast<int>(nodes_.size() - 1);
}

bool SlotMap::covered() const noexcept {
    for (const auto s : slot_)
        if (s < 0)
            return false;
    return true;
}

std::vector<int> SlotMap::masters() const {
    std::vector<bool> seen(nodes_.size());
    for (const auto s : slot_)
        if (s >= 0)
            seen[static_cast<std::size_t>(s)] = true;
    std::vector<int> out;
    for (std::size_t i = 0; i < seen.size(); ++i)
        if (seen[i])
            out.push_back(static_cast<int>(i));
    return out;
}

std::string SlotMap::load(const redisReply& reply, const Node& asked) {
    if (reply.type != REDIS_REPLY_ARRAY)
        return "CLUSTER SLOTS did not answer an array";
    struct Range {
        long long start, end;
        Node node;
    };
    std::vector<Range> ranges;
    for (std::size_t i = 0; i < reply.elements; ++i) {
        const redisReply* e = reply.element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 ||
            e->element[0]->type != REDIS_REPLY_INTEGER ||
            e->element[1]->type != REDIS_REPLY_INTEGER ||
            e->element[2]->type != REDIS_REPLY_ARRAY || e->element[2]->elements < 2)
            return "CLUSTER SLOTS: entry " + std::to_string(i) + " is not [start, end, master]";
        const redisReply* m = e->element[2];
        if (m->element[0]->type != REDIS_REPLY_STRING || m->element[1]->type != REDIS_REPLY_INTEGER)
            return "CLUSTER SLOTS: entry " + std::to_string(i) + "'s master is not [host, port]";
        Range r{e->element[0]->integer, e->element[1]->integer, {}};
        if (r.start < 0 || r.end >= kSlots || r.start > r.end)
            return "CLUSTER SLOTS: bad slot range " + std::to_string(r.start) + "-" +
                   std::to_string(r.end);
        r.node.host.assign(m->element[0]->str, m->element[0]->len);
        if (r.node.host.empty() || r.node.host == "?")
            r.node.host = asked.host;
        r.node.port = static_cast<int>(m->element[1]->integer);
        if (r.node.port <= 0 || r.node.port > 65535)
            return "CLUSTER SLOTS: bad port " + std::to_string(m->element[1]->integer);
        ranges.push_back(std::move(r));
    }
    slot_.fill(-1);
    for (const Range& r : ranges) {
        const int n = add_node(r.node);
        for (long long s = r.start; s <= r.end; ++s)
            slot_[static_cast<std::size_t>(s)] = static_cast<std::int16_t>(n);
    }
    return {};
}

} // namespace machvm::redis
