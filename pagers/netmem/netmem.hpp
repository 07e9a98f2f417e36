// SPDX-License-Identifier: GPL-2.0
//
// The network memory server's coherence engine (netmem-server.cpp beside it): N
// nodes, one per machine, each the pager of a local memory object, keep
// the object coherent between them as Li and Hudak's fixed distributed
// manager does, over Mach's lock protocol:
//
//  - Every page has a home node (page mod N; the next live node when that
//    one is lost).  The home keeps the page's directory entry: unowned
//    (never handed out: zeros), shared (read-only copies at the nodes of a
//    copy set, one of them the owner that serves the data, or none when
//    the data is zeros) or exclusive (one writer, the owner), or lost (its
//    data went with a lost node).  It serves the page's requests one at a
//    time, in the order they came (FIFO), so waiting writers go in turn.
//  - A node whose kernel faults (DATA_REQUEST) or wants to write a
//    read-only page (DATA_UNLOCK) asks the home (Request).  The home
//    invalidates the other copies (Invalidate, answered InvalidateAck) or
//    takes the data from the owner (Fetch: the owner write-locks, or for a
//    writer flushes, its page with lock_request and answers FetchReply
//    with the data the kernel returned), and only then grants the access
//    (Grant, with the data unless the node has it).  A read copy is
//    supplied write-locked (lock PROT_WRITE), a write copy unlocked.
//  - Writes are therefore never concurrent with any other copy of the
//    page: sequential consistency per page.
//  - A node keeps in memory the data of every page it holds, so that the
//    kernel may drop clean pages and page dirty ones out (DATA_RETURN)
//    without asking anyone.
//  - A page granted to a node stays with it at least `hold` before the
//    home may take it away, so that the faulting thread gets to use it
//    (no ping-pong livelock).
//  - A lost node (its connection closed or silent): its pages' homes move
//    to the next live node, which rebuilds their entries by asking every
//    survivor what it holds (Query / QueryReply).  Pages no survivor holds
//    are lost: faults on them get SIGBUS (data_error EHOSTDOWN), on every
//    node, for good.  Survivors cannot tell a page the lost node held
//    alone from one nobody had touched: both are lost.
//
// The engine is pure logic: no threads, no sockets, no clock.  Its owner
// holds one lock around every call, and gives it the time; what it wants
// done goes through Outputs (messages to send, commands for the kernel).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include <linux/machvm.h>
#include <machvm/result.hpp>

namespace machvm::netmem {

using Clock = std::chrono::steady_clock;

inline constexpr std::uint32_t kNoNode = 0xffffffffu;
inline constexpr unsigned kMaxNodes = 64;
inline constexpr std::uint32_t kProtocolVersion = 1;

enum class Access : std::uint8_t { None = 0, Read = 1, Write = 2 };

// Wire messages.  Every message is a 32-byte header, little-endian, then
// `length` payload bytes.
enum class Type : std::uint16_t {
    Hello = 1,         // payload Hello: first message each way
    Ping = 2,          // liveness, every 200 ms of silence
    Request = 3,       // node -> home: page, arg = Access wanted
    Grant = 4,         // home -> node: page, arg = Access; flags kData
                       // (payload: the page), kZero or kLost; neither: the
                       // node's own copy is current
    Invalidate = 5,    // home -> reader: drop the read copy of page
    InvalidateAck = 6, // reader -> home
    Fetch = 7,         // home -> owner: page, arg = Access the requester
                       // wants (Read: keep a read copy, Write: drop it)
    FetchReply = 8,    // owner -> home: flags kData (payload) or kLost
    Query = 9,         // new home -> survivor: arg = the lost node
    QueryReply = 10,   // payload: one Access byte per page of the object
};

inline constexpr std::uint16_t kData = 1;
inline constexpr std::uint16_t kZero = 2;
inline constexpr std::uint16_t kLost = 4;

inline constexpr std::uint32_t kMagic = 0x4e4d5331; // "NMS1"

struct WireHeader {
    std::uint32_t magic;
    std::uint16_t type;
    std::uint16_t flags;
    std::uint32_t from;   // sender's node index
    std::uint32_t length; // payload bytes
    std::uint64_t page;   // page index
    std::uint64_t arg;
};
static_assert(sizeof(WireHeader) == 32);

// Hello's payload: both sides must agree on all of it.
struct Hello {
    std::uint32_t version; // kProtocolVersion
    std::uint32_t nodes;
    std::uint64_t pages;
    std::uint32_t page_size;
    std::uint32_t pad;
    std::uint64_t peers_hash; // of the --peers list
};
static_assert(sizeof(Hello) == 32);

struct Msg {
    Type type = Type::Ping;
    std::uint16_t flags = 0;
    std::uint32_t from = 0;
    std::uint64_t page = 0;
    std::uint64_t arg = 0;
    std::vector<std::byte> data;
};

// Header <-> bytes (little-endian).
void encode_header(const Msg& m, std::byte out[sizeof(WireHeader)]) noexcept;
WireHeader decode_header(const std::byte in[sizeof(WireHeader)]) noexcept;
void encode_hello(const Hello& h, std::byte out[sizeof(Hello)]) noexcept;
Hello decode_hello(std::span<const std::byte> in) noexcept;

struct Limits {
    std::uint32_t nodes;
    std::uint64_t pages;
    std::uint32_t page_size;
};
// Checks a received header against the protocol: EPROTO (bad magic, type,
// flags, access, length for its type), ERANGE (page or node out of range).
// A node whose peer breaks the protocol drops the connection.
Result<void> check_header(const WireHeader& h, const Limits& lim, std::uint32_t peer) noexcept;

const char* type_name(Type t) noexcept;

// FNV-1a of a string, for Hello.peers_hash.
std::uint64_t hash_string(std::string_view s) noexcept;

// What the engine wants done.  Called with the owner's lock held: they
// must not call back into the engine.
class Outputs {
  public:
    virtual ~Outputs() = default;
    // Queue m for node `to` (never this node; messages to a lost node are
    // dropped).  Must not block.
    virtual void send(std::uint32_t to, Msg&& m) noexcept = 0;
    // Execute one command on the local object now: 0 or a positive errno.
    virtual int kernel(const machvm_cmd& c) noexcept = 0;
    // A line for the log (protocol trouble, node loss).
    virtual void note(const std::string& line) noexcept = 0;
    // The engine counts `node` as lost: cut it off, so that it finds out
    // (a node declared lost on another's word may still be talking to us).
    virtual void disconnect(std::uint32_t node) noexcept { (void)node; }
};

struct Stats {
    std::uint64_t requests_sent = 0; // Request messages (to any home)
    std::uint64_t grants = 0;        // Grants received
    std::uint64_t invalidations = 0; // read copies dropped on a home's word
    std::uint64_t fetches = 0;       // Fetches served
    std::uint64_t local_hits = 0;    // faults served from our own copy
    std::uint64_t lost_pages = 0;    // pages found lost
    std::uint64_t returns = 0;       // DATA_RETURNs taken
    std::uint64_t nodes_lost = 0;
};

class Engine {
  public:
    struct Config {
        std::uint32_t self = 0;
        std::uint32_t nodes = 1;
        std::uint64_t pages = 0;
        std::uint32_t page_size = 4096;
        std::uint64_t object = 0; // control id of the local object
        std::chrono::microseconds hold{1000};
        bool trace = false; // note() every message and kernel command
    };

    Engine(const Config& cfg, Outputs& out);

    // Kernel events.
    void data_request(std::uint64_t page, Access need, Clock::time_point now);
    void data_unlock(std::uint64_t page, Clock::time_point now);
    // The pages of a DATA_RETURN, as RETURN_COPY gave them.
    void data_returned(std::uint64_t page, std::span<const std::byte> data);
    // failed: pages the kernel could not return (LOCK_COMPLETED's count).
    void lock_completed(std::uint64_t page, std::uint32_t failed, Clock::time_point now);
    // The local object terminated: no more kernel commands; the node
    // keeps serving the data it holds to the others.
    void object_gone();

    // Network events (messages already checked with check_header).
    void receive(Msg&& m, Clock::time_point now);
    void peer_lost(std::uint32_t node, Clock::time_point now);

    // Deferred work (the hold window): when to call run_timers next.
    std::optional<Clock::time_point> next_timer() const;
    void run_timers(Clock::time_point now);

    std::uint32_t home(std::uint64_t page) const noexcept;
    const Stats& stats() const noexcept { return stats_; }
    const Config& config() const noexcept { return cfg_; }

  private:
    // This node's side of a page.
    struct Local {
        Access have = Access::None;  // what we hold
        Access need = Access::None;  // what local faults wait for
        Access want = Access::None;  // asked of the home, not granted yet
        bool lost = false;           // gone with a lost node
        std::vector<std::byte> data; // our copy, when have != None
        Clock::time_point granted{};
        // A Fetch or Invalidate from the home, waiting for the hold
        // window (deferred) or for the kernel (fetching).
        Type op = Type::Ping; // Ping: none
        Access op_access = Access::None;
        std::uint32_t op_home = kNoNode;
        bool deferred = false;
        bool fetching = false;
        std::uint32_t lr_issued = 0, lr_done = 0, lr_target = 0;
    };

    enum class DirState : std::uint8_t { Unowned, Shared, Exclusive, Lost };

    // The home's side of a page.
    struct Dir {
        DirState state = DirState::Unowned;
        std::uint32_t owner = kNoNode; // Shared: kNoNode means zeros
        std::uint64_t copyset = 0;     // Shared: readers (owner included)
        bool rebuilding = false;       // waiting for QueryReplies
        bool busy = false;             // a request is being served
        std::uint32_t req = kNoNode;   // the request served
        Access req_access = Access::None;
        std::uint64_t awaiting = 0; // InvalidateAcks / FetchReply due
        std::uint32_t fetch_from = kNoNode;
        bool have_data = false, zero = false, lost_fetch = false;
        std::vector<std::byte> data;
        std::vector<std::pair<std::uint32_t, Access>> queue; // FIFO, short
    };

    struct Foreign {
        std::uint32_t from = kNoNode;
        std::uint64_t page = 0;
        Access access = Access::None;
    };

    struct Rebuild {
        std::uint32_t lost = kNoNode;
        std::uint64_t awaiting = 0; // nodes whose QueryReply is due
        std::vector<std::uint64_t> pages;
        // Per page (same order): writer (or kNoNode), readers.
        std::vector<std::uint32_t> writer;
        std::vector<std::uint64_t> readers;
    };

    // Node side.
    void want(std::uint64_t page, Access need);
    void satisfy(std::uint64_t page, Access need, bool overwrite);
    void supply(std::uint64_t page, Local& l, bool overwrite);
    void fail(std::uint64_t page);
    void on_grant(Msg&& m, Clock::time_point now);
    void dispatch(Msg&& m);
    void on_remote_op(const Msg& m, Clock::time_point now);
    void start_op(std::uint64_t page);
    void finish_op(std::uint64_t page);
    void next_op(std::uint64_t page);
    void retry_op(std::uint64_t page, const std::string& why);
    int lock_request(std::uint64_t page, std::uint32_t flags, std::uint32_t lock);
    int kernel(const machvm_cmd& c);
    void send_request(std::uint64_t page, Access a);
    void send_fetch(std::uint64_t page, std::uint32_t from, Access a);

    // Home side.
    Dir& dir(std::uint64_t page);
    void on_request(std::uint32_t from, std::uint64_t page, Access a);
    void serve_next(std::uint64_t page);
    void serve(std::uint64_t page);
    void on_invalidate_ack(std::uint32_t from, std::uint64_t page);
    void on_fetch_reply(Msg&& m);
    void maybe_grant(std::uint64_t page);
    void on_query(const Msg& m);
    void on_query_reply(Msg&& m);
    void finish_rebuilds();

    void post(std::uint32_t to, Msg&& m);
    void drain_self();
    std::uint32_t home_of(std::uint64_t page, const std::vector<bool>& alive) const noexcept;

    Config cfg_;
    Outputs& out_;
    bool object_live_ = true;
    std::vector<bool> alive_;
    std::vector<Local> local_;
    std::unordered_map<std::uint64_t, Dir> dirs_;
    std::vector<Rebuild> rebuilds_;
    static constexpr std::size_t kMaxForeign = 65536;
    std::vector<Foreign> foreign_;             // requests before we knew
    std::map<std::uint64_t, Msg> waiting_ops_; // an op behind another
    std::multimap<Clock::time_point, std::uint64_t> timers_;
    std::deque<Msg> selfq_; // messages to ourselves, run after each event
    bool draining_ = false;
    Clock::time_point now_{};
    Stats stats_;
};

} // namespace machvm::netmem
