// SPDX-License-Identifier: GPL-2.0
//
// The network memory engine (pagers/netmem/netmem.hpp) on the host: the wire
// format and its checks, and whole nodes run against simulated kernels
// and a simulated network, message by message, with the kernel's rules
// (a supply does not replace a resident page unless told to, a
// lock_request's DATA_RETURNs come before its LOCK_COMPLETED, a
// write-locked page asks before it is written).
#include <sys/mman.h>

#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "check.hpp"
#include "netmem/netmem.hpp"

namespace nm = machvm::netmem;
using nm::Access;

namespace {

constexpr std::uint32_t kPage = 4096;

// One machine's kernel: resident pages and the message queue to its pager.
struct Kernel {
    struct Page {
        std::vector<std::byte> data;
        bool wlock = false;
        bool dirty = false;
    };
    std::map<std::uint64_t, Page> pages;
    std::map<std::uint64_t, int> errors; // data_error per page
    struct Event {
        std::uint32_t type; // MACHVM_MSG_DATA_RETURN or _LOCK_COMPLETED
        std::uint64_t page;
        std::vector<std::byte> data;
        std::uint32_t failed = 0; // LOCK_COMPLETED: pages not returned
    };
    int refuse_returns = 0; // the next returns fail (queue full)
    int refuse_locks = 0;   // the next lock_requests fail (ENOMEM)
    std::deque<Event> queue;

    int command(const machvm_cmd& c) {
        const std::uint64_t page = c.offset / kPage;
        switch (c.type) {
        case MACHVM_CMD_DATA_SUPPLY: {
            auto it = pages.find(page);
            if (it != pages.end() && !(c.flags & MACHVM_SUPPLY_F_OVERWRITE))
                return 0; // not taken
            Page& p = pages[page];
            const auto* src = reinterpret_cast<const std::byte*>(c.addr);
            p.data.assign(src, src + kPage);
            p.wlock = c.lock & PROT_WRITE;
            p.dirty = false;
            return 0;
        }
        case MACHVM_CMD_DATA_ERROR:
            errors[page] = static_cast<int>(c.error);
            return 0;
        case MACHVM_CMD_LOCK_REQUEST: {
            if (refuse_locks > 0) {
                refuse_locks--;
                return ENOMEM;
            }
            auto it = pages.find(page);
            if (it != pages.end()) {
                const std::uint32_t ret = c.flags & MACHVM_LOCK_RETURN_MASK;
                std::uint32_t failed = 0;
                if (ret == MACHVM_LOCK_RETURN_ALL ||
                    (ret == MACHVM_LOCK_RETURN_DIRTY && it->second.dirty)) {
                    if (refuse_returns > 0) {
                        // Kept, with the lock value, and said so.
                        refuse_returns--;
                        failed = 1;
                        if (c.flags & MACHVM_LOCK_F_LOCK)
                            it->second.wlock = c.lock & PROT_WRITE;
                        queue.push_back({MACHVM_MSG_LOCK_COMPLETED, page, {}, failed});
                        return 0;
                    }
                    queue.push_back({MACHVM_MSG_DATA_RETURN, page, it->second.data});
                    it->second.dirty = false;
                }
                if (c.flags & MACHVM_LOCK_F_FLUSH)
                    pages.erase(it);
                else if (c.flags & MACHVM_LOCK_F_LOCK)
                    it->second.wlock = c.lock & PROT_WRITE;
            }
            queue.push_back({MACHVM_MSG_LOCK_COMPLETED, page, {}});
            return 0;
        }
        }
        return EINVAL;
    }
};

struct Cluster;

struct Node final : nm::Outputs {
    Cluster& cluster;
    std::uint32_t id;
    Kernel kernel_;
    std::unique_ptr<nm::Engine> engine;
    std::vector<std::string> notes;
    std::vector<std::uint32_t> disconnected;

    Node(Cluster& c, std::uint32_t i, std::uint32_t nodes, std::uint64_t pages);
    void send(std::uint32_t to, nm::Msg&& m) noexcept override;
    int kernel(const machvm_cmd& c) noexcept override { return kernel_.command(c); }
    void note(const std::string& line) noexcept override { notes.push_back(line); }
    void disconnect(std::uint32_t node) noexcept override { disconnected.push_back(node); }
};

struct Cluster {
    std::vector<std::unique_ptr<Node>> nodes;
    struct Wire {
        std::uint32_t to;
        nm::Msg m;
    };
    std::deque<Wire> wire;
    nm::Clock::time_point now{};

    Cluster(std::uint32_t n, std::uint64_t pages) {
        for (std::uint32_t i = 0; i < n; i++)
            nodes.push_back(std::make_unique<Node>(*this, i, n, pages));
    }

    // Everything in flight delivered, kernels' queues drained, timers run.
    void settle() {
        for (int rounds = 0; rounds < 10000; rounds++) {
            now += std::chrono::milliseconds(5); // past any hold window
            bool any = false;
            if (!wire.empty()) {
                Wire w = std::move(wire.front());
                wire.pop_front();
                // Every sent message was checked by the receiver first.
                std::byte hdr[sizeof(nm::WireHeader)];
                nm::encode_header(w.m, hdr);
                nm::WireHeader h = nm::decode_header(hdr);
                CHECK(nm::check_header(h, {static_cast<std::uint32_t>(nodes.size()), 64, kPage},
                                       w.m.from));
                if (nodes[w.to])
                    nodes[w.to]->engine->receive(std::move(w.m), now);
                any = true;
            }
            for (auto& n : nodes) {
                if (!n)
                    continue;
                if (!n->kernel_.queue.empty()) {
                    Kernel::Event e = std::move(n->kernel_.queue.front());
                    n->kernel_.queue.pop_front();
                    if (e.type == MACHVM_MSG_DATA_RETURN)
                        n->engine->data_returned(e.page, e.data);
                    else
                        n->engine->lock_completed(e.page, e.failed, now);
                    any = true;
                }
                n->engine->run_timers(now);
            }
            if (!any && wire.empty())
                return;
        }
        CHECK(!"the cluster never settled");
    }

    // A process on node reads the word of page: faults as the kernel would.
    std::optional<std::uint64_t> read(std::uint32_t node, std::uint64_t page) {
        Node& n = *nodes[node];
        for (int tries = 0; tries < 5; tries++) {
            auto it = n.kernel_.pages.find(page);
            if (it != n.kernel_.pages.end()) {
                std::uint64_t v;
                std::memcpy(&v, it->second.data.data(), sizeof(v));
                return v;
            }
            if (n.kernel_.errors.count(page))
                return std::nullopt; // SIGBUS
            n.engine->data_request(page, Access::Read, now);
            settle();
        }
        return std::nullopt;
    }

    // A process on node adds `add` to the word of page (a write).
    bool add(std::uint32_t node, std::uint64_t page, std::uint64_t add) {
        Node& n = *nodes[node];
        for (int tries = 0; tries < 5; tries++) {
            auto it = n.kernel_.pages.find(page);
            if (n.kernel_.errors.count(page))
                return false;
            if (it == n.kernel_.pages.end()) {
                n.engine->data_request(page, Access::Write, now);
            } else if (it->second.wlock) {
                n.engine->data_unlock(page, now);
            } else {
                std::uint64_t v;
                std::memcpy(&v, it->second.data.data(), sizeof(v));
                v += add;
                std::memcpy(it->second.data.data(), &v, sizeof(v));
                it->second.dirty = true;
                return true;
            }
            settle();
        }
        return false;
    }

    // Single writer or many readers, and every copy the same.
    bool coherent(std::uint64_t page) const {
        int writers = 0, copies = 0;
        std::optional<std::vector<std::byte>> seen;
        for (auto& n : nodes) {
            if (!n)
                continue;
            auto it = n->kernel_.pages.find(page);
            if (it == n->kernel_.pages.end())
                continue;
            copies++;
            writers += !it->second.wlock;
            if (seen && *seen != it->second.data)
                return false;
            seen = it->second.data;
        }
        return writers == 0 || (writers == 1 && copies == 1);
    }

    // One message delivered (none of the kernels' queues).
    bool step() {
        if (wire.empty())
            return false;
        Wire w = std::move(wire.front());
        wire.pop_front();
        if (nodes[w.to])
            nodes[w.to]->engine->receive(std::move(w.m), now);
        return true;
    }

    // node is gone; the others learn it now, with messages still in flight.
    void kill_nosettle(std::uint32_t node) {
        nodes[node].reset();
        for (auto& n : nodes)
            if (n)
                n->engine->peer_lost(node, now);
    }

    void kill(std::uint32_t node) {
        kill_nosettle(node);
        settle();
    }
};

Node::Node(Cluster& c, std::uint32_t i, std::uint32_t nodes, std::uint64_t pages)
    : cluster(c), id(i) {
    nm::Engine::Config cfg;
    cfg.self = i;
    cfg.nodes = nodes;
    cfg.pages = pages;
    cfg.page_size = kPage;
    cfg.object = 1;
    cfg.hold = std::chrono::microseconds(1000);
    cfg.trace = std::getenv("NM_TRACE") != nullptr; // notes: every message
    engine = std::make_unique<nm::Engine>(cfg, *this);
}

void Node::send(std::uint32_t to, nm::Msg&& m) noexcept {
    cluster.wire.push_back({to, std::move(m)});
}

void test_wire() {
    nm::Msg m;
    m.type = nm::Type::Grant;
    m.flags = nm::kData;
    m.from = 1;
    m.page = 63;
    m.arg = 2;
    m.data.assign(kPage, std::byte{7});
    std::byte hdr[sizeof(nm::WireHeader)];
    nm::encode_header(m, hdr);
    nm::WireHeader h = nm::decode_header(hdr);
    const nm::Limits lim{2, 64, kPage};
    CHECK_EQ(h.magic, nm::kMagic);
    CHECK_EQ(h.type, 4);
    CHECK_EQ(h.length, kPage);
    CHECK_EQ(h.page, 63u);
    CHECK(nm::check_header(h, lim, 1));
    CHECK(!nm::check_header(h, lim, 0)); // not from that peer
    auto bad = [&](auto&& edit) {
        nm::WireHeader x = h;
        edit(x);
        return !nm::check_header(x, lim, 1);
    };
    CHECK(bad([](nm::WireHeader& x) { x.magic ^= 1; }));
    CHECK(bad([](nm::WireHeader& x) { x.type = 99; }));
    CHECK(bad([](nm::WireHeader& x) { x.page = 64; }));
    CHECK(bad([](nm::WireHeader& x) { x.length = kPage - 1; }));
    CHECK(bad([](nm::WireHeader& x) { x.flags = nm::kData | nm::kLost; }));
    CHECK(bad([](nm::WireHeader& x) { x.flags = 8; }));
    CHECK(bad([](nm::WireHeader& x) { x.arg = 3; })); // no such access
    CHECK(bad([](nm::WireHeader& x) {
        x.type = static_cast<std::uint16_t>(nm::Type::Ping);
        x.flags = 0;
        x.length = 0;
    })); // a ping has no page
    CHECK(bad([](nm::WireHeader& x) {
        x.type = static_cast<std::uint16_t>(nm::Type::QueryReply);
        x.flags = 0;
        x.page = 0;
        x.arg = 2; // no node 2
        x.length = 64;
    }));
    CHECK(bad([](nm::WireHeader& x) {
        x.type = static_cast<std::uint16_t>(nm::Type::Query);
        x.flags = 0;
        x.page = 0;
        x.arg = 1; // "I am lost", says node 1
        x.length = 0;
    }));
    CHECK(bad([](nm::WireHeader& x) {
        x.type = static_cast<std::uint16_t>(nm::Type::Invalidate);
        x.flags = 0;
        x.length = 0;
        x.arg = 1; // an Invalidate has no access
    }));
    nm::Hello hello{nm::kProtocolVersion, 3, 1000, kPage, 0, nm::hash_string("a,b,c")};
    std::byte hb[sizeof(nm::Hello)];
    nm::encode_hello(hello, hb);
    nm::Hello back = nm::decode_hello(hb);
    CHECK_EQ(back.nodes, 3u);
    CHECK_EQ(back.pages, 1000u);
    CHECK_EQ(back.peers_hash, nm::hash_string("a,b,c"));
    CHECK(nm::hash_string("a,b") != nm::hash_string("b,a"));
}

void test_counter(std::uint32_t n) {
    Cluster c(n, 64);
    // Round-robin adds on two pages with different homes.
    for (int i = 0; i < 300; i++) {
        CHECK(c.add(static_cast<std::uint32_t>(i % n), 0, 1));
        CHECK(c.add(static_cast<std::uint32_t>((i + 1) % n), 1, 2));
        CHECK(c.coherent(0));
        CHECK(c.coherent(1));
    }
    for (std::uint32_t i = 0; i < n; i++) {
        CHECK_EQ(c.read(i, 0).value_or(0), 300u);
        CHECK_EQ(c.read(i, 1).value_or(0), 600u);
    }
    CHECK(c.coherent(0));                   // now read-shared everywhere
    CHECK_EQ(c.read(0, 5).value_or(1), 0u); // untouched: zeros
}

// A page returned by pageout (dirty, taken by the pager) is what the next
// reader elsewhere gets.
void test_pageout_then_read() {
    Cluster c(2, 64);
    CHECK(c.add(0, 3, 41));
    Node& a = *c.nodes[0];
    auto& pg = a.kernel_.pages.at(3);
    a.engine->data_returned(3, pg.data); // pageout's DATA_RETURN
    a.kernel_.pages.erase(3);
    CHECK_EQ(c.read(1, 3).value_or(0), 41u);
    CHECK_EQ(c.read(0, 3).value_or(0), 41u);
}

// A stale page the kernel kept (a flush that could not drop it) is
// replaced by the next grant that brings data.
void test_stale_page_overwritten() {
    Cluster c(2, 64);
    CHECK(c.add(0, 2, 5));
    CHECK_EQ(c.read(1, 2).value_or(0), 5u);
    CHECK(c.add(1, 2, 1)); // node 0's copy invalidated
    // Node 0's kernel "kept" an old copy anyway.
    Kernel::Page old;
    old.data.assign(kPage, std::byte{0});
    old.wlock = true;
    c.nodes[0]->kernel_.pages[2] = old;
    CHECK(c.add(0, 2, 1)); // write-locked: unlock, served with data
    CHECK_EQ(c.read(0, 2).value_or(0), 7u);
    CHECK_EQ(c.read(1, 2).value_or(0), 7u);
}

// Node loss: pages a survivor holds stay; pages only the lost node had, and
// untouched pages it was home of, are lost; untouched pages of live homes
// still read as zeros.
void test_node_lost() {
    Cluster c(2, 64);
    CHECK(c.add(1, 10, 10)); // only node 1 (home 0)
    CHECK(c.add(0, 11, 11)); // only node 0 (home 1)
    CHECK(c.add(0, 12, 12));
    CHECK_EQ(c.read(1, 12).value_or(0), 12u); // both
    c.kill(1);
    CHECK_EQ(c.read(0, 11).value_or(0), 11u);
    CHECK_EQ(c.read(0, 12).value_or(0), 12u);
    CHECK(c.add(0, 12, 1));
    CHECK_EQ(c.read(0, 12).value_or(0), 13u);
    CHECK_EQ(c.read(0, 20).value_or(1), 0u); // home 0, untouched
    CHECK(!c.read(0, 10));                   // lost with node 1
    CHECK(!c.read(0, 21));                   // node 1 was home: unknown
    CHECK(!c.add(0, 10, 1));
    CHECK_EQ(c.nodes[0]->kernel_.errors.at(10), EHOSTDOWN);
    CHECK_EQ(c.nodes[0]->engine->stats().nodes_lost, 1u);
}

// Three nodes, one lost: the survivors rebuild its pages from what they
// hold (QueryReply), and the counters held in common go on.
void test_three_nodes_lost() {
    Cluster c(3, 64);
    for (int i = 0; i < 30; i++)
        CHECK(c.add(static_cast<std::uint32_t>(i % 3), 2, 1)); // page 2: home 2
    for (std::uint32_t i = 0; i < 3; i++)
        CHECK_EQ(c.read(i, 2).value_or(0), 30u);
    c.kill(2);
    CHECK_EQ(c.read(0, 2).value_or(0), 30u);
    CHECK(c.add(1, 2, 5));
    CHECK_EQ(c.read(0, 2).value_or(0), 35u);
    CHECK(c.coherent(2));
    CHECK(!c.read(0, 5)); // home 2, untouched: lost
}

// The write requester dies after the home invalidated the other copies:
// its copy was the only one, so the page is lost (never zeros).
void test_dead_write_requester() {
    Cluster c(3, 64);
    CHECK(c.add(1, 3, 42));                  // page 3: home 0; node 1 writes
    CHECK_EQ(c.read(2, 3).value_or(0), 42u); // shared {1, 2}
    c.nodes[1]->engine->data_unlock(3, c.now);
    while (!c.wire.empty() && c.wire.front().m.type != nm::Type::Request)
        c.step();
    c.step(); // the home invalidates node 2
    c.kill_nosettle(1);
    c.settle();
    auto v0 = c.read(0, 3), v2 = c.read(2, 3);
    CHECK(!v0 || *v0 == 42);
    CHECK(!v2 || *v2 == 42);
}

// Four nodes: node 0 is lost, node 1 rebuilds; node 2 answers that it
// writes a page, then is lost too before node 3 answers.  The page must
// not be left to a dead owner (a fault would wait forever).
void test_cascade_rebuild() {
    Cluster c(4, 64);
    CHECK(c.add(2, 4, 7)); // page 4: home 0, node 2 writes
    c.kill_nosettle(0);
    std::deque<Cluster::Wire> held;
    for (int i = 0; i < 100 && !c.wire.empty(); i++) {
        auto& f = c.wire.front();
        if (f.to == 3 || f.m.from == 3) {
            held.push_back(std::move(f));
            c.wire.pop_front();
            continue;
        }
        c.step();
    }
    c.kill_nosettle(2);
    for (auto& w : held)
        c.wire.push_back(std::move(w));
    c.settle();
    auto v = c.read(3, 4);
    CHECK(!v);                                  // answered: lost
    CHECK(c.nodes[3]->kernel_.errors.count(4)); // with SIGBUS
}

// The kernel cannot return the page (its queue was full): the owner must
// not answer with its older copy; it asks the kernel again.
void test_return_refused() {
    Cluster c(2, 64);
    CHECK(c.add(0, 1, 5)); // page 1: home 1; node 0 writes
    CHECK(c.add(0, 1, 5)); // 10 in node 0's kernel, an older copy in its pager
    c.nodes[0]->kernel_.refuse_returns = 1;
    CHECK_EQ(c.read(1, 1).value_or(0), 10u);
    CHECK(c.coherent(1));
}

// A write requester dies while the home's own read waits behind it: the
// home takes the page (writer), and its read must leave it the writer; a
// later writer elsewhere gets the home's latest data.
void test_dead_requester_home_read() {
    Cluster c(3, 64);
    CHECK(c.add(2, 3, 1)); // page 3: home 0, node 2 writes
    c.nodes[1]->engine->data_request(3, Access::Write, c.now);
    c.step(); // the home fetches from node 2
    c.nodes[0]->engine->data_request(3, Access::Read, c.now);
    c.step();
    auto& k = c.nodes[2]->kernel_;
    while (!k.queue.empty()) {
        auto e = std::move(k.queue.front());
        k.queue.pop_front();
        if (e.type == MACHVM_MSG_DATA_RETURN)
            c.nodes[2]->engine->data_returned(e.page, e.data);
        else
            c.nodes[2]->engine->lock_completed(e.page, e.failed, c.now);
    }
    c.kill_nosettle(1);
    c.settle();
    CHECK(c.add(0, 3, 10));
    CHECK(c.add(2, 3, 100));
    CHECK_EQ(c.read(2, 3).value_or(0), 111u);
    CHECK(c.coherent(3));
}

// A Grant nobody asked for, or from a node that is not the page's home,
// changes nothing (it would overwrite a writer's page).
void test_unasked_grant() {
    Cluster c(2, 64);
    CHECK(c.add(0, 4, 9)); // page 4: home 0; node 0 writes 9
    nm::Msg g;
    g.type = nm::Type::Grant;
    g.flags = nm::kData;
    g.from = 1; // not the home
    g.page = 4;
    g.arg = 2;
    g.data.assign(kPage, std::byte{0});
    c.nodes[0]->engine->receive(nm::Msg(g), c.now);
    g.page = 5; // from its home, node 1, but node 0 never asked
    c.nodes[0]->engine->receive(nm::Msg(g), c.now);
    c.settle();
    CHECK_EQ(c.read(0, 4).value_or(0), 9u);
    CHECK(!c.nodes[0]->kernel_.pages.count(5));
    CHECK_EQ(c.nodes[0]->notes.size(), 2u);
}

// The kernel refuses the owner's lock_request (ENOMEM): no answer with an
// older copy; it asks again.  And a node lost is cut off.
void test_lock_refused_and_disconnect() {
    Cluster c(3, 64);
    CHECK(c.add(0, 1, 5));
    CHECK(c.add(0, 1, 5)); // 10 in node 0's kernel only
    c.nodes[0]->kernel_.refuse_locks = 1;
    CHECK_EQ(c.read(1, 1).value_or(0), 10u);
    CHECK(c.coherent(1));
    c.kill(2);
    CHECK(c.nodes[0]->disconnected == std::vector<std::uint32_t>{2});
    CHECK(c.nodes[1]->disconnected == std::vector<std::uint32_t>{2});
}

} // namespace

int main() {
    test_wire();
    test_counter(2);
    test_counter(3);
    test_pageout_then_read();
    test_stale_page_overwritten();
    test_node_lost();
    test_three_nodes_lost();
    test_dead_write_requester();
    test_cascade_rebuild();
    test_return_refused();
    test_dead_requester_home_read();
    test_unasked_grant();
    test_lock_refused_and_disconnect();
    return unit::finish("netmem_test");
}
