// SPDX-License-Identifier: GPL-2.0
#include "netmem.hpp"

#include <endian.h>
#include <sys/mman.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>

#include <machvm/device.hpp>

namespace machvm::netmem {

namespace {

std::uint64_t bit(std::uint32_t node) noexcept {
    return std::uint64_t{1} << node;
}

template <typename T> void put(std::byte*& p, T v) noexcept {
    std::memcpy(p, &v, sizeof(v));
    p += sizeof(v);
}

template <typename T> T get(const std::byte*& p) noexcept {
    T v;
    std::memcpy(&v, p, sizeof(v));
    p += sizeof(v);
    return v;
}

Access access_of(std::uint64_t arg) noexcept {
    return arg == 2 ? Access::Write : arg == 1 ? Access::Read : Access::None;
}

} // namespace

void encode_header(const Msg& m, std::byte out[sizeof(WireHeader)]) noexcept {
    std::byte* p = out;
    put(p, htole32(kMagic));
    put(p, htole16(static_cast<std::uint16_t>(m.type)));
    put(p, htole16(m.flags));
    put(p, htole32(m.from));
    put(p, htole32(static_cast<std::uint32_t>(m.data.size())));
    put(p, htole64(m.page));
    put(p, htole64(m.arg));
}

WireHeader decode_header(const std::byte in[sizeof(WireHeader)]) noexcept {
    const std::byte* p = in;
    WireHeader h;
    h.magic = le32toh(get<std::uint32_t>(p));
    h.type = le16toh(get<std::uint16_t>(p));
    h.flags = le16toh(get<std::uint16_t>(p));
    h.from = le32toh(get<std::uint32_t>(p));
    h.length = le32toh(get<std::uint32_t>(p));
    h.page = le64toh(get<std::uint64_t>(p));
    h.arg = le64toh(get<std::uint64_t>(p));
    return h;
}

void encode_hello(const Hello& h, std::byte out[sizeof(Hello)]) noexcept {
    std::byte* p = out;
    put(p, htole32(h.version));
    put(p, htole32(h.nodes));
    put(p, htole64(h.pages));
    put(p, htole32(h.page_size));
    put(p, htole32(0u));
    put(p, htole64(h.peers_hash));
}

Hello decode_hello(std::span<const std::byte> in) noexcept {
    Hello h{};
    if (in.size() != sizeof(Hello))
        return h;
    const std::byte* p = in.data();
    h.version = le32toh(get<std::uint32_t>(p));
    h.nodes = le32toh(get<std::uint32_t>(p));
    h.pages = le64toh(get<std::uint64_t>(p));
    h.page_size = le32toh(get<std::uint32_t>(p));
    h.pad = le32toh(get<std::uint32_t>(p));
    h.peers_hash = le64toh(get<std::uint64_t>(p));
    return h;
}

Result<void> check_header(const WireHeader& h, const Limits& lim, std::uint32_t peer) noexcept {
    if (h.magic != kMagic)
        return errno_code(EPROTO);
    if (h.from != peer)
        return errno_code(ERANGE);
    const auto t = static_cast<Type>(h.type);
    std::uint32_t len = 0;
    std::uint16_t flags = 0;
    bool paged = true, access = false;
    switch (t) {
    case Type::Hello:
        len = sizeof(Hello);
        paged = false;
        break;
    case Type::Ping:
        paged = false;
        break;
    case Type::Request:
    case Type::Fetch:
        access = true;
        break;
    case Type::Grant:
        access = true;
        flags = kData | kZero | kLost;
        break;
    case Type::Invalidate:
    case Type::InvalidateAck:
        break;
    case Type::FetchReply:
        flags = kData | kLost;
        break;
    case Type::Query:
    case Type::QueryReply:
        paged = false;
        // arg: the lost node, never the sender itself.
        if (h.arg >= lim.nodes || h.arg == h.from)
            return errno_code(ERANGE);
        if (t == Type::QueryReply)
            len = static_cast<std::uint32_t>(lim.pages);
        break;
    default:
        return errno_code(EPROTO);
    }
    if (h.flags & ~flags)
        return errno_code(EPROTO);
    // At most one of data, zero, lost; data comes with exactly one page.
    if (std::popcount(static_cast<unsigned>(h.flags)) > 1)
        return errno_code(EPROTO);
    if (t == Type::FetchReply && !h.flags)
        return errno_code(EPROTO); // data or lost, one of them
    if (h.flags & kData)
        len = lim.page_size;
    if (h.length != len)
        return errno_code(EPROTO);
    if (access ? h.arg != 1 && h.arg != 2 : t != Type::Query && t != Type::QueryReply && h.arg != 0)
        return errno_code(EPROTO);
    if (paged ? h.page >= lim.pages : h.page != 0)
        return errno_code(ERANGE);
    return {};
}

const char* type_name(Type t) noexcept {
    switch (t) {
    case Type::Hello:
        return "Hello";
    case Type::Ping:
        return "Ping";
    case Type::Request:
        return "Request";
    case Type::Grant:
        return "Grant";
    case Type::Invalidate:
        return "Invalidate";
    case Type::InvalidateAck:
        return "InvalidateAck";
    case Type::Fetch:
        return "Fetch";
    case Type::FetchReply:
        return "FetchReply";
    case Type::Query:
        return "Query";
    case Type::QueryReply:
        return "QueryReply";
    }
    return "?";
}

// FNV-1a, 64 bits (the hash machvm-map prints for a mapping).
std::uint64_t hash_string(std::string_view s) noexcept {
    std::uint64_t h = 0xcbf29ce484222325ULL;
    for (unsigned char c : s)
        h = (h ^ c) * 0x100000001b3ULL;
    return h;
}

Engine::Engine(const Config& cfg, Outputs& out)
    : cfg_(cfg), out_(out), alive_(cfg.nodes, true), local_(cfg.pages) {}

std::uint32_t Engine::home_of(std::uint64_t page, const std::vector<bool>& alive) const noexcept {
    const std::uint32_t n = cfg_.nodes;
    const auto start = static_cast<std::uint32_t>(page % n);
    for (std::uint32_t i = 0; i < n; i++) {
        std::uint32_t node = (start + i) % n;
        if (alive[node])
            return node;
    }
    return cfg_.self;
}

std::uint32_t Engine::home(std::uint64_t page) const noexcept {
    return home_of(page, alive_);
}

void Engine::post(std::uint32_t to, Msg&& m) {
    m.from = cfg_.self;
    if (cfg_.trace)
        out_.note(std::string("-> ") + std::to_string(to) + " " + type_name(m.type) + " page " +
                  std::to_string(m.page) + " arg " + std::to_string(m.arg) + " flags " +
                  std::to_string(m.flags));
    if (to == cfg_.self)
        selfq_.push_back(std::move(m));
    else if (alive_[to])
        out_.send(to, std::move(m));
}

// One command on the local object: 0 or a positive errno (ESRCH once the
// object is gone), failures logged.
int Engine::kernel(const machvm_cmd& c) {
    if (!object_live_)
        return ESRCH;
    if (cfg_.trace)
        out_.note(std::string("kernel ") + cmd_type_name(c.type) + " page " +
                  std::to_string(c.offset / cfg_.page_size) + " flags " + std::to_string(c.flags) +
                  " lock " + std::to_string(c.lock));
    const int e = out_.kernel(c);
    if (e)
        out_.note(std::string(cmd_type_name(c.type)) + " at page " +
                  std::to_string(c.offset / cfg_.page_size) + ": " + std::strerror(e));
    return e;
}

// A LOCK_REQUEST on one page; each one issued is answered by one
// LOCK_COMPLETED (lr_issued against lr_done).
int Engine::lock_request(std::uint64_t page, std::uint32_t flags, std::uint32_t lock) {
    const int e =
        kernel(cmd::lock_request(cfg_.object, page * cfg_.page_size, cfg_.page_size, flags, lock));
    if (!e)
        local_[page].lr_issued++;
    return e;
}

void Engine::send_request(std::uint64_t page, Access a) {
    Msg m;
    m.type = Type::Request;
    m.page = page;
    m.arg = static_cast<std::uint64_t>(a);
    post(home(page), std::move(m));
}

// Home side: ask `from` for the page's data on behalf of a requester of a.
void Engine::send_fetch(std::uint64_t page, std::uint32_t from, Access a) {
    Dir& d = dir(page);
    d.fetch_from = from;
    d.awaiting |= bit(from);
    Msg m;
    m.type = Type::Fetch;
    m.page = page;
    m.arg = static_cast<std::uint64_t>(a);
    post(from, std::move(m));
}

// An op we could not carry out now (the kernel failed a command): again
// in 10 ms, the home still waiting for our answer.
void Engine::retry_op(std::uint64_t page, const std::string& why) {
    Local& l = local_[page];
    out_.note("page " + std::to_string(page) + ": " + why + "; asking again");
    l.fetching = false;
    l.deferred = true;
    timers_.emplace(now_ + std::chrono::milliseconds(10), page);
}

// ---------------------------------------------------------------- node side

// Faults on a lost page get SIGBUS.
void Engine::fail(std::uint64_t page) {
    kernel(cmd::data_error(cfg_.object, page * cfg_.page_size, cfg_.page_size, EHOSTDOWN));
}

// Our copy to the kernel, write-locked unless we may write.  overwrite:
// the copy came from elsewhere, so a page the kernel kept (one a flush
// could not drop) is stale and is replaced.
void Engine::supply(std::uint64_t page, Local& l, bool overwrite) {
    if (l.data.size() != cfg_.page_size)
        l.data.assign(cfg_.page_size, std::byte{0});
    kernel(cmd::data_supply(cfg_.object, page * cfg_.page_size, l.data.data(), cfg_.page_size,
                            overwrite ? MACHVM_SUPPLY_F_OVERWRITE : 0,
                            l.have == Access::Write ? 0 : PROT_WRITE));
}

// A local fault needs `need` on page: ask the home unless we have or asked.
void Engine::want(std::uint64_t page, Access need) {
    Local& l = local_[page];
    l.need = std::max(l.need, need);
    if (l.fetching || l.lost)
        return; // after the operation under way
    if (l.have >= l.need) {
        satisfy(page, l.need, false);
        return;
    }
    if (l.want != Access::None)
        return; // one request at a time; the grant asks again if needed
    l.want = l.need;
    stats_.requests_sent++;
    send_request(page, l.want);
}

// We hold what local faults need: hand it to the kernel.
void Engine::satisfy(std::uint64_t page, Access need, bool overwrite) {
    Local& l = local_[page];
    supply(page, l, overwrite);
    // A page the kernel kept is unlocked here; an overwrite did it already.
    if (need == Access::Write && l.have == Access::Write && !overwrite)
        lock_request(page, MACHVM_LOCK_F_LOCK, 0);
    l.need = Access::None;
}

void Engine::data_request(std::uint64_t page, Access need, Clock::time_point now) {
    now_ = now;
    if (cfg_.trace)
        out_.note("DATA_REQUEST page " + std::to_string(page) + " need " +
                  std::to_string(static_cast<int>(need)) + " have " +
                  std::to_string(static_cast<int>(local_[page].have)));
    Local& l = local_[page];
    if (l.lost) {
        fail(page);
    } else if (l.fetching) {
        // Leaving us: a read copy stays after a downgrade, nothing after
        // a flush; either way the kernel gets what is left afterwards.
        l.need = std::max(l.need, need);
    } else if (l.have != Access::None) {
        stats_.local_hits++;
        supply(page, l, false); // read-locked if we only read: DATA_UNLOCK follows
        if (need > l.have)
            want(page, need);
    } else {
        want(page, need);
    }
    drain_self();
}

void Engine::data_unlock(std::uint64_t page, Clock::time_point now) {
    now_ = now;
    if (cfg_.trace)
        out_.note("DATA_UNLOCK page " + std::to_string(page) + " have " +
                  std::to_string(static_cast<int>(local_[page].have)));
    Local& l = local_[page];
    if (l.lost)
        fail(page);
    else if (l.have == Access::Write && !l.fetching)
        lock_request(page, MACHVM_LOCK_F_LOCK, 0);
    else
        want(page, Access::Write);
    drain_self();
}

void Engine::data_returned(std::uint64_t page, std::span<const std::byte> data) {
    Local& l = local_[page];
    stats_.returns++;
    if (cfg_.trace)
        out_.note("DATA_RETURN page " + std::to_string(page) + " have " +
                  std::to_string(static_cast<int>(l.have)));
    // Only a writer's page can be newer than our copy.
    if (l.have == Access::Write && data.size() == cfg_.page_size)
        l.data.assign(data.begin(), data.end());
}

void Engine::lock_completed(std::uint64_t page, std::uint32_t failed, Clock::time_point now) {
    now_ = now;
    Local& l = local_[page];
    l.lr_done++;
    if (failed && l.fetching && static_cast<std::int32_t>(l.lr_done - l.lr_target) >= 0) {
        // The kernel could not return the page (its queue was full, or
        // memory ran out): the page is newer than our copy.
        retry_op(page, "not returned");
        drain_self();
        return;
    }
    if (cfg_.trace)
        out_.note("LOCK_COMPLETED page " + std::to_string(page) + " fetching " +
                  std::to_string(l.fetching));
    if (l.fetching && static_cast<std::int32_t>(l.lr_done - l.lr_target) >= 0)
        finish_op(page);
    drain_self();
}

void Engine::object_gone() {
    object_live_ = false;
    for (std::uint64_t p = 0; p < cfg_.pages; p++)
        if (local_[p].fetching)
            finish_op(p); // no LOCK_COMPLETED will come: our copy is current
    drain_self();
}

void Engine::on_grant(Msg&& m, Clock::time_point now) {
    Local& l = local_[m.page];
    const Access a = access_of(m.arg);
    stats_.grants++;
    l.want = Access::None;
    const bool fresh = m.flags & (kData | kZero);
    if (!fresh && (l.have == Access::None || l.data.size() != cfg_.page_size)) {
        // The home thinks we have the data and we do not: nobody has.
        out_.note("page " + std::to_string(m.page) + ": granted without data we lack; lost");
        m.flags = kLost;
    }
    if (m.flags & kLost) {
        stats_.lost_pages++;
        l.lost = true;
        l.have = Access::None;
        l.need = Access::None;
        l.data.clear();
        l.data.shrink_to_fit();
        fail(m.page);
        return;
    }
    if (m.flags & kData)
        l.data = std::move(m.data);
    else if (fresh || l.data.size() != cfg_.page_size)
        l.data.assign(cfg_.page_size, std::byte{0});
    l.have = std::max(l.have, a);
    l.granted = now;
    // Unasked supplies are fine: the page is there when it is touched.
    const Access need = l.need;
    satisfy(m.page, a, fresh);
    if (need > l.have)
        want(m.page, need);
}

void Engine::on_remote_op(const Msg& m, Clock::time_point now) {
    Local& l = local_[m.page];
    if (l.op != Type::Ping) {
        // One from a new home while the lost one's is under way (the
        // latest wins: a home has one op out per page).
        waiting_ops_.insert_or_assign(m.page, m);
        return;
    }
    l.op = m.type;
    l.op_access = access_of(m.arg);
    l.op_home = m.from;
    const auto until = l.granted + cfg_.hold;
    if (l.have != Access::None && now < until) {
        l.deferred = true;
        timers_.emplace(until, m.page);
        return;
    }
    start_op(m.page);
}

void Engine::start_op(std::uint64_t page) {
    Local& l = local_[page];
    l.deferred = false;
    if (l.op_home == kNoNode || !alive_[l.op_home]) {
        // Its home was lost meanwhile: we keep what we have (the new home
        // counted it in its rebuild).
        l.op = Type::Ping;
        l.op_home = kNoNode;
        next_op(page);
        return;
    }
    if (l.op == Type::Invalidate && l.have == Access::Write)
        out_.note("page " + std::to_string(page) + ": Invalidate while writing (its home " +
                  "disagrees); the page is dropped");
    const bool leave = l.op == Type::Invalidate || l.op_access == Access::Write;
    int e = 0;
    if (l.op == Type::Fetch && l.have == Access::Write) {
        // The kernel's page may be newer than our copy: write-lock it (no
        // more writes), have it returned if dirty, and drop it for a
        // writer elsewhere.  Our copy is current at LOCK_COMPLETED.
        std::uint32_t flags = MACHVM_LOCK_RETURN_DIRTY | MACHVM_LOCK_F_LOCK;
        if (leave)
            flags |= MACHVM_LOCK_F_FLUSH;
        e = lock_request(page, flags, PROT_WRITE);
        if (!e) {
            l.fetching = true;
            l.lr_target = l.lr_issued;
            return;
        }
    } else if (leave && l.have != Access::None) {
        // A clean read copy: drop it, now.
        e = lock_request(page, MACHVM_LOCK_RETURN_NONE | MACHVM_LOCK_F_FLUSH | MACHVM_LOCK_F_LOCK,
                         PROT_WRITE);
    }
    // Unanswered until the kernel did it (without an object, ESRCH, our
    // copy is all there is).
    if (e && e != ESRCH) {
        retry_op(page, "the kernel refused the lock_request");
        return;
    }
    finish_op(page);
}

void Engine::finish_op(std::uint64_t page) {
    Local& l = local_[page];
    const std::uint32_t to = l.op_home;
    if (to == kNoNode || !alive_[to]) {
        // Nobody to hand it to: keep it (the kernel asks for it again).
        l.op = Type::Ping;
        l.op_home = kNoNode;
        l.fetching = false;
        if (l.need != Access::None)
            want(page, l.need);
        next_op(page);
        return;
    }
    Msg reply;
    reply.page = page;
    if (l.op == Type::Invalidate) {
        stats_.invalidations++;
        reply.type = Type::InvalidateAck;
        l.have = Access::None;
    } else {
        stats_.fetches++;
        reply.type = Type::FetchReply;
        if (l.have == Access::None) {
            reply.flags = kLost; // we do not have it (after a node loss)
        } else {
            reply.flags = kData;
            reply.data = l.data;
            if (reply.data.size() != cfg_.page_size)
                reply.data.assign(cfg_.page_size, std::byte{0});
            l.have = l.op_access == Access::Write ? Access::None : Access::Read;
        }
    }
    if (l.have == Access::None) {
        l.data.clear();
        l.data.shrink_to_fit();
    }
    l.op = Type::Ping;
    l.op_home = kNoNode;
    l.fetching = false;
    post(to, std::move(reply));
    // Local faults that came meanwhile: served from what is left, or asked
    // anew (after our reply, so the home sees them in that order).
    if (l.need != Access::None)
        want(page, l.need);
    next_op(page);
}

// An op that waited behind the one just ended.
void Engine::next_op(std::uint64_t page) {
    auto it = waiting_ops_.find(page);
    if (it == waiting_ops_.end())
        return;
    Msg next = std::move(it->second);
    waiting_ops_.erase(it);
    on_remote_op(next, now_);
}

// ---------------------------------------------------------------- home side

Engine::Dir& Engine::dir(std::uint64_t page) {
    return dirs_[page];
}

void Engine::on_request(std::uint32_t from, std::uint64_t page, Access a) {
    if (home(page) != cfg_.self) {
        // The sender knows of a lost node we have not noticed yet: kept
        // until we do (peer_lost), when this node becomes the home.
        if (foreign_.size() < kMaxForeign)
            foreign_.push_back({from, page, a});
        return;
    }
    Dir& d = dir(page);
    // A node has one request out per page: a repeat (after a node loss,
    // or from a broken peer) is not queued twice.
    if (d.busy && d.req == from)
        return;
    for (const auto& q : d.queue)
        if (q.first == from)
            return;
    d.queue.emplace_back(from, a);
    serve_next(page);
}

void Engine::serve_next(std::uint64_t page) {
    Dir& d = dir(page);
    while (!d.busy && !d.rebuilding && !d.queue.empty()) {
        auto [node, a] = d.queue.front();
        d.queue.erase(d.queue.begin());
        if (!alive_[node])
            continue;
        d.busy = true;
        d.req = node;
        d.req_access = a;
        d.awaiting = 0;
        d.fetch_from = kNoNode;
        d.have_data = d.zero = d.lost_fetch = false;
        d.data.clear();
        serve(page);
    }
}

// Asks for what request d.req needs; maybe_grant() answers once it came.
void Engine::serve(std::uint64_t page) {
    Dir& d = dir(page);
    const std::uint32_t r = d.req;
    const std::uint32_t self = cfg_.self;
    const Local& mine = local_[page];
    switch (d.state) {
    case DirState::Lost:
    case DirState::Unowned:
        d.zero = d.state == DirState::Unowned;
        break;
    case DirState::Exclusive:
        if (d.owner != r)
            send_fetch(page, d.owner, d.req_access);
        break;
    case DirState::Shared: {
        const bool has = d.copyset & bit(r);
        std::uint64_t others = d.copyset & ~bit(r);
        if (has) {
            // r's copy is current
        } else if (d.owner == kNoNode) {
            d.zero = true;
        } else if ((d.copyset & bit(self)) && mine.have == Access::Read && !mine.fetching) {
            d.data = mine.data;
            d.have_data = true;
        } else {
            send_fetch(page, d.owner, d.req_access);
            others &= ~bit(d.owner);
        }
        if (d.req_access == Access::Write) {
            for (std::uint32_t n = 0; n < cfg_.nodes; n++) {
                if (!(others & bit(n)))
                    continue;
                d.awaiting |= bit(n);
                Msg m;
                m.type = Type::Invalidate;
                m.page = page;
                post(n, std::move(m));
            }
        }
        break;
    }
    }
    maybe_grant(page);
}

void Engine::maybe_grant(std::uint64_t page) {
    Dir& d = dir(page);
    if (!d.busy || d.awaiting)
        return;
    std::uint32_t r = d.req;
    const Access a = d.req_access;
    Msg g;
    g.type = Type::Grant;
    g.page = page;
    g.arg = static_cast<std::uint64_t>(a);
    if (d.state == DirState::Lost || d.lost_fetch) {
        d.state = DirState::Lost;
        g.flags = kLost;
    } else {
        if (d.have_data) {
            g.flags = kData;
            g.data = std::move(d.data);
        } else if (d.zero) {
            g.flags = kZero;
        }
        if (!alive_[r] && a == Access::Write) {
            if (!d.have_data && !d.zero) {
                // Its own copy was the data, and the others are gone.
                d.state = DirState::Lost;
                d.busy = false;
                d.req = kNoNode;
                return;
            }
            r = cfg_.self; // the data must land somewhere: here
        }
        if (!alive_[r]) {
            // A reader gone: the owner was only downgraded.
            if (d.state == DirState::Exclusive) {
                d.state = DirState::Shared;
                d.copyset = bit(d.owner);
            }
        } else if (a == Access::Write) {
            d.state = DirState::Exclusive;
            d.owner = r;
            d.copyset = 0;
        } else if (d.state == DirState::Exclusive && d.owner == r) {
            // The writer asks to read: it keeps writing.
        } else if (d.state == DirState::Exclusive) {
            d.state = DirState::Shared;
            d.copyset = bit(d.owner) | bit(r);
        } else if (d.state == DirState::Unowned) {
            d.state = DirState::Shared;
            d.owner = kNoNode;
            d.copyset = bit(r);
        } else {
            d.copyset |= bit(r);
        }
    }
    d.busy = false;
    d.req = kNoNode;
    d.data.clear();
    if (alive_[r])
        post(r, std::move(g));
}

void Engine::on_invalidate_ack(std::uint32_t from, std::uint64_t page) {
    Dir& d = dir(page);
    if (!d.busy || !(d.awaiting & bit(from))) {
        out_.note("stray InvalidateAck from node " + std::to_string(from));
        return;
    }
    d.awaiting &= ~bit(from);
    d.copyset &= ~bit(from);
    maybe_grant(page);
    serve_next(page);
}

void Engine::on_fetch_reply(Msg&& m) {
    Dir& d = dir(m.page);
    if (!d.busy || d.fetch_from != m.from || !(d.awaiting & bit(m.from))) {
        out_.note("stray FetchReply from node " + std::to_string(m.from));
        return;
    }
    d.awaiting &= ~bit(m.from);
    if (m.flags & kLost) {
        d.lost_fetch = true;
    } else {
        d.data = std::move(m.data);
        d.have_data = true;
    }
    maybe_grant(m.page);
    serve_next(m.page);
}

void Engine::on_query(const Msg& m) {
    // Whoever asks has lost that node: so have we (one view of who is
    // lost, or two homes could serve one page).
    if (m.arg < cfg_.nodes && alive_[m.arg])
        peer_lost(static_cast<std::uint32_t>(m.arg), now_);
    Msg r;
    r.type = Type::QueryReply;
    r.arg = m.arg;
    r.data.resize(cfg_.pages);
    for (std::uint64_t p = 0; p < cfg_.pages; p++)
        r.data[p] = static_cast<std::byte>(local_[p].have);
    post(m.from, std::move(r));
}

void Engine::on_query_reply(Msg&& m) {
    for (auto& r : rebuilds_) {
        if (r.lost != m.arg || !(r.awaiting & bit(m.from)))
            continue;
        for (std::size_t i = 0; i < r.pages.size(); i++) {
            auto st = static_cast<Access>(m.data[r.pages[i]]);
            if (st == Access::Write)
                r.writer[i] = m.from;
            else if (st == Access::Read)
                r.readers[i] |= bit(m.from);
        }
        r.awaiting &= ~bit(m.from);
        break;
    }
    finish_rebuilds();
}

void Engine::finish_rebuilds() {
    std::vector<Rebuild> done;
    for (auto it = rebuilds_.begin(); it != rebuilds_.end();) {
        if (it->awaiting) {
            ++it;
            continue;
        }
        done.push_back(std::move(*it));
        it = rebuilds_.erase(it);
    }
    for (auto& r : done) {
        std::uint64_t lost = 0;
        for (std::size_t i = 0; i < r.pages.size(); i++) {
            Dir& d = dir(r.pages[i]);
            const std::uint64_t readers =
                r.readers[i] & ~(r.writer[i] != kNoNode ? bit(r.writer[i]) : 0);
            if (r.writer[i] != kNoNode) {
                d.state = DirState::Exclusive;
                d.owner = r.writer[i];
                d.copyset = 0;
            } else if (readers) {
                d.state = DirState::Shared;
                d.owner = static_cast<std::uint32_t>(std::countr_zero(readers));
                d.copyset = readers;
            } else {
                d.state = DirState::Lost;
                lost++;
            }
            d.rebuilding = false;
        }
        out_.note("node " + std::to_string(r.lost) + " lost: " + std::to_string(r.pages.size()) +
                  " pages now homed here, " + std::to_string(lost) +
                  " of them held by no survivor (lost)");
        for (std::uint64_t p : r.pages)
            serve_next(p);
    }
}

void Engine::peer_lost(std::uint32_t node, Clock::time_point now) {
    now_ = now;
    if (node >= cfg_.nodes || node == cfg_.self || !alive_[node])
        return;
    const std::vector<bool> before = alive_;
    alive_[node] = false;
    stats_.nodes_lost++;
    out_.disconnect(node);
    const std::uint64_t b = bit(node);

    // Entries this node was already home of.
    std::vector<std::uint64_t> touched;
    for (auto& [page, d] : dirs_) {
        if (d.rebuilding)
            continue;
        if (d.state == DirState::Exclusive && d.owner == node) {
            d.state = DirState::Lost;
        } else if (d.state == DirState::Shared) {
            d.copyset &= ~b;
            if (d.owner == node) {
                if (d.copyset) {
                    d.owner = static_cast<std::uint32_t>(std::countr_zero(d.copyset));
                } else {
                    d.state = DirState::Lost;
                }
            }
        }
        if (d.busy && (d.awaiting & b)) {
            d.awaiting &= ~b;
            if (d.fetch_from == node) {
                // A reader can still get the data from another copy.
                if (d.state == DirState::Shared && d.req_access == Access::Read &&
                    d.owner != kNoNode) {
                    send_fetch(page, d.owner, Access::Read);
                } else {
                    d.lost_fetch = true;
                }
            }
        }
        if (d.busy)
            touched.push_back(page);
    }
    for (std::uint64_t p : touched) {
        maybe_grant(p);
        serve_next(p);
    }

    // Pages whose home it was: the next live node rebuilds their entries.
    Rebuild r;
    r.lost = node;
    for (std::uint64_t p = 0; p < cfg_.pages; p++) {
        if (home_of(p, before) != node || home(p) != cfg_.self)
            continue;
        Dir& d = dir(p);
        d = Dir{};
        d.rebuilding = true;
        r.pages.push_back(p);
        const Access mine = local_[p].have;
        r.writer.push_back(mine == Access::Write ? cfg_.self : kNoNode);
        r.readers.push_back(mine == Access::Read ? bit(cfg_.self) : 0);
    }
    if (!r.pages.empty()) {
        for (std::uint32_t n = 0; n < cfg_.nodes; n++) {
            if (n == cfg_.self || !alive_[n])
                continue;
            r.awaiting |= bit(n);
            Msg q;
            q.type = Type::Query;
            q.arg = node;
            post(n, std::move(q));
        }
        rebuilds_.push_back(std::move(r));
    }
    for (auto& rb : rebuilds_) {
        // What it said it held went with it.
        rb.awaiting &= ~b;
        for (std::size_t i = 0; i < rb.pages.size(); i++) {
            if (rb.writer[i] == node)
                rb.writer[i] = kNoNode;
            rb.readers[i] &= ~b;
        }
    }
    finish_rebuilds();

    // Our requests to it go to the new home.
    for (std::uint64_t p = 0; p < cfg_.pages; p++) {
        Local& l = local_[p];
        if (l.want == Access::None || home_of(p, before) != node)
            continue;
        send_request(p, l.want);
    }
    // Requests that came to us early, and ops it asked of us.
    std::vector<Foreign> early;
    early.swap(foreign_);
    for (auto& f : early)
        if (alive_[f.from])
            on_request(f.from, f.page, f.access);
    drain_self();
}

// ---------------------------------------------------------------- plumbing

void Engine::receive(Msg&& m, Clock::time_point now) {
    now_ = now;
    if (m.from >= cfg_.nodes || !alive_[m.from])
        return; // late words of a node already lost
    dispatch(std::move(m));
    drain_self();
}

void Engine::dispatch(Msg&& m) {
    if (cfg_.trace)
        out_.note(std::string("<- ") + std::to_string(m.from) + " " + type_name(m.type) + " page " +
                  std::to_string(m.page) + " arg " + std::to_string(m.arg) + " flags " +
                  std::to_string(m.flags));
    switch (m.type) {
    case Type::Request:
        on_request(m.from, m.page, access_of(m.arg));
        break;
    case Type::Grant:
        // Only the page's home grants, and only what was asked (or, to
        // itself, a write whose requester died: the data lands here).
        if (m.from != home(m.page) ||
            (local_[m.page].want == Access::None && m.from != cfg_.self)) {
            out_.note("unasked Grant of page " + std::to_string(m.page) + " from node " +
                      std::to_string(m.from) + " ignored");
            break;
        }
        on_grant(std::move(m), now_);
        break;
    case Type::Invalidate:
    case Type::Fetch:
        on_remote_op(m, now_);
        break;
    case Type::InvalidateAck:
        on_invalidate_ack(m.from, m.page);
        break;
    case Type::FetchReply:
        on_fetch_reply(std::move(m));
        break;
    case Type::Query:
        on_query(m);
        break;
    case Type::QueryReply:
        on_query_reply(std::move(m));
        break;
    case Type::Hello:
    case Type::Ping:
        break; // the transport's own (netmem-server keeps them)
    }
}

void Engine::drain_self() {
    if (draining_)
        return;
    draining_ = true;
    while (!selfq_.empty()) {
        Msg m = std::move(selfq_.front());
        selfq_.pop_front();
        dispatch(std::move(m));
    }
    draining_ = false;
}

std::optional<Clock::time_point> Engine::next_timer() const {
    if (timers_.empty())
        return std::nullopt;
    return timers_.begin()->first;
}

void Engine::run_timers(Clock::time_point now) {
    now_ = now;
    while (!timers_.empty() && timers_.begin()->first <= now) {
        const std::uint64_t page = timers_.begin()->second;
        timers_.erase(timers_.begin());
        if (local_[page].deferred)
            start_op(page);
    }
    drain_self();
}

} // namespace machvm::netmem
