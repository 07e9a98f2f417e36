// SPDX-License-Identifier: GPL-2.0
//
// RedisStore: pages in Redis or a Redis Cluster.  See redis_store.hpp.
//
// Threads.  Store calls, from the pager's serving threads, queue a Batch
// and wake the I/O thread (an eventfd); the I/O thread alone touches
// hiredis, the slot map, the connections and the table of pages held.
// hiredis 0.14 has no poll() adapter: its event hooks (addRead, delRead,
// addWrite, delWrite, cleanup) set the events each connection's pollfd
// asks for, and poll()'s answers go back through redisAsyncHandleRead /
// redisAsyncHandleWrite.  Completions run on the I/O thread.
//
// Commands.  A batch of N pages is N GETs or SETs, pipelined on the
// connection of each key's master (replies come in order, the batch is
// done when all are).  A reply of -MOVED updates the slot's master and
// the command goes there (a CLUSTER SLOTS refresh follows); -ASK sends
// ASKING then the command to the named node; -TRYAGAIN, -CLUSTERDOWN,
// -LOADING and a lost connection try again later.  Every command has the
// batch's deadline (op_timeout): past it the batch fails with the last
// error met, so a fault never waits longer than that for a dead server.
//
// Pages held.  The I/O thread keeps, per object, the offsets it has put
// (and whether the server acknowledged them): erase deletes exactly those
// keys (no KEYS, no SCAN), and a GET that finds nothing for a page the
// server acknowledged is an error, not zeros: a server restarted without
// its data, or one that evicted, must not hand back a page of zeros.
#include <machvm/cli.hpp>
#include <machvm/redis_store.hpp>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cinttypes>
#include <cstring>
#include <map>
#include <thread>
#include <unordered_map>

#include <machvm/fd.hpp>

namespace machvm {

namespace {

using Clock = std::chrono::steady_clock;
using redis::Node;
using namespace std::chrono_literals;

[[noreturn]] void fail(const Node& n, int err, const std::string& what) {
    throw std::system_error(errno_code(err), "redis " + n.name() + ": " + what);
}

struct ReplyDeleter {
    void operator()(redisReply* r) const noexcept { freeReplyObject(r); }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;
struct ContextDeleter {
    void operator()(redisContext* c) const noexcept { redisFree(c); }
};
using ContextPtr = std::unique_ptr<redisContext, ContextDeleter>;

timeval to_timeval(std::chrono::milliseconds ms) {
    return {static_cast<time_t>(ms.count() / 1000),
            static_cast<suseconds_t>(ms.count() % 1000 * 1000)};
}

std::string reply_text(const redisReply& r) {
    return r.str ? std::string(r.str, r.len) : std::string();
}

// A blocking connection, for the checks before the store starts.
ContextPtr sync_connect(const Node& n, const RedisOptions& o) {
    const timeval tv = to_timeval(o.connect_timeout);
    errno = 0;
    ContextPtr c(redisConnectWithTimeout(n.host.c_str(), n.port, tv));
    const int e = errno;
    if (!c)
        fail(n, ENOMEM, "connecting");
    if (c->err) {
        // Not an I/O error: the name did not resolve, say.
        const int code = c->err == REDIS_ERR_IO && e ? e : EHOSTUNREACH;
        fail(n, code,
             std::strcmp(c->errstr, std::strerror(code)) == 0
                 ? std::string("cannot connect")
                 : std::string("cannot connect (") + c->errstr + ")");
    }
    redisSetTimeout(c.get(), to_timeval(o.op_timeout));
    return c;
}

ReplyPtr sync_command(redisContext* c, const Node& n,
                      std::initializer_list<std::string_view> args) {
    std::vector<const char*> argv;
    std::vector<std::size_t> lens;
    for (const auto& a : args) {
        argv.push_back(a.data());
        lens.push_back(a.size());
    }
    errno = 0;
    auto* r = static_cast<redisReply*>(
        redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data()));
    if (!r)
        fail(n, c->err == REDIS_ERR_IO && errno ? errno : EIO,
             std::string(*args.begin()) + ": " + c->errstr);
    return ReplyPtr(r);
}

// AUTH, then the eviction policy: a store of memory must not evict.
ContextPtr open_checked(const Node& n, const RedisOptions& o) {
    ContextPtr c = sync_connect(n, o);
    if (!o.password.empty()) {
        ReplyPtr r = o.user.empty() ? sync_command(c.get(), n, {"AUTH", o.password})
                                    : sync_command(c.get(), n, {"AUTH", o.user, o.password});
        if (r->type == REDIS_REPLY_ERROR)
            fail(n, EACCES, "AUTH refused (" + reply_text(*r) + ")");
    }
    ReplyPtr p = sync_command(c.get(), n, {"CONFIG", "GET", "maxmemory-policy"});
    if (p->type == REDIS_REPLY_ERROR) {
        const std::string e = reply_text(*p);
        if (e.starts_with("NOAUTH"))
            fail(n, EACCES, "the server wants a password (redis://:PASSWORD@HOST:PORT)");
        // CONFIG renamed or refused (a managed service): not checked.
    } else if (p->type == REDIS_REPLY_ARRAY && p->elements == 2 &&
               p->element[1]->type == REDIS_REPLY_STRING) {
        const std::string policy = reply_text(*p->element[1]);
        if (policy != "noeviction")
            fail(n, EINVAL,
                 "maxmemory-policy is " + policy +
                     ", which may evict pages; the store needs maxmemory-policy noeviction");
    }
    return c;
}

std::string random_ns() {
    std::uint64_t r = 0;
    if (::getrandom(&r, sizeof(r), 0) != sizeof(r))
        r = static_cast<std::uint64_t>(::getpid()) << 32 ^
            static_cast<std::uint64_t>(Clock::now().time_since_epoch().count());
    char buf[24];
    std::snprintf(buf, sizeof(buf), "%016" PRIx64, r);
    return buf;
}

} // namespace

RedisOptions parse_redis_url(const std::string& url) {
    auto bad = [](const std::string& why) -> UsageError {
        return UsageError("--store: bad redis URL: " + why +
                          " (redis://[:PASSWORD@]HOST:PORT[,HOST:PORT...])");
    };
    constexpr std::string_view kScheme = "redis://";
    if (!url.starts_with(kScheme))
        throw bad("it does not start with redis://");
    RedisOptions o;
    std::string_view rest(url);
    rest.remove_prefix(kScheme.size());
    std::string_view query;
    if (const auto q = rest.find('?'); q != std::string_view::npos) {
        query = rest.substr(q + 1);
        rest = rest.substr(0, q);
    }
    if (!rest.empty() && rest.back() == '/')
        rest.remove_suffix(1);
    if (const auto at = rest.rfind('@'); at != std::string_view::npos) {
        const std::string_view userinfo = rest.substr(0, at);
        rest.remove_prefix(at + 1);
        const auto colon = userinfo.find(':');
        if (colon == std::string_view::npos) {
            o.password.assign(userinfo);
        } else {
            o.user.assign(userinfo.substr(0, colon));
            o.password.assign(userinfo.substr(colon + 1));
        }
        if (o.password.empty())
            throw bad("an empty password");
    }
    if (rest.empty())
        throw bad("no server");
    while (!rest.empty()) {
        const auto comma = rest.find(',');
        const std::string_view hp = rest.substr(0, comma);
        rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
        Node n;
        const bool has_port = hp.rfind(':') != std::string_view::npos &&
                              (hp.front() != '[' || hp.rfind(':') > hp.rfind(']'));
        if (has_port) {
            if (!redis::parse_node(hp, n))
                throw bad("'" + std::string(hp) + "' is not HOST:PORT");
        } else {
            std::string_view h = hp;
            if (h.size() > 2 && h.front() == '[' && h.back() == ']')
                h = h.substr(1, h.size() - 2);
            n.host.assign(h);
            n.port = 6379;
        }
        if (n.host.empty())
            throw bad("'" + std::string(hp) + "' has no host");
        o.seeds.push_back(std::move(n));
    }
    while (!query.empty()) {
        const auto amp = query.find('&');
        const std::string_view kv = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
        if (kv.starts_with("ns=")) {
            o.ns.assign(kv.substr(3));
            const bool ok = !o.ns.empty() && o.ns.size() <= 64 &&
                            std::all_of(o.ns.begin(), o.ns.end(), [](char ch) {
                                return std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' ||
                                       ch == '_' || ch == '.';
                            });
            if (!ok)
                throw bad("ns= takes 1 to 64 of A-Z a-z 0-9 . _ -");
        } else if (kv.starts_with("timeout=")) {
            auto v = parse_uint(kv.substr(8));
            if (!v || v.value() < 10 || v.value() > 600000)
                throw bad("timeout= takes 10 to 600000 (ms)");
            o.op_timeout = std::chrono::milliseconds(v.value());
        } else {
            throw bad("unknown parameter '" + std::string(kv) + "' (ns=, timeout=)");
        }
    }
    return o;
}

struct RedisStore::Impl {
    enum class Op { Get, Put, Erase };
    bool fresh_ns = false; // the namespace is random: nothing is there yet
    struct Batch;
    struct Cmd {
        Batch* batch = nullptr;
        std::size_t index = 0;         // the page in the batch (Get, Put)
        std::vector<std::string> keys; // one, or an Erase's group
        unsigned slot = 0;
        int ask = -1; // the node an -ASK named, for the next try only
    };
    struct Batch {
        Op op = Op::Get;
        std::span<StoreGet> gets;
        std::span<const StorePut> puts;
        std::uint64_t object = 0;
        Done done;
        Clock::time_point deadline;
        std::vector<Cmd> cmds;
        std::size_t pending = 0;
        std::error_code error;
    };
    struct Conn {
        Impl* impl = nullptr;
        Node node;
        redisAsyncContext* ac = nullptr;
        bool rd = false, wr = false, connected = false;
        Clock::time_point connect_deadline, next_attempt, last_activity;
        std::chrono::milliseconds backoff{0};
        unsigned inflight = 0;
    };
    struct Retry {
        Clock::time_point when;
        Cmd* cmd;
    };

    RedisOptions opts;
    bool cluster = false;
    std::string describe;

    // Shared with the callers' threads.
    mutable std::mutex mu;
    std::vector<std::unique_ptr<Batch>> incoming;
    bool stop = false, stopped = false;
    std::string last_error;
    Fd wake;
    std::atomic<std::uint64_t> pages{0}, gets{0}, puts{0}, redirections{0}, connects{0};

    // The I/O thread's own.
    redis::SlotMap map;
    std::vector<std::unique_ptr<Conn>> conns;
    std::unordered_map<Batch*, std::unique_ptr<Batch>> batches;
    std::vector<Retry> retries;
    // object -> page offset -> acknowledged by the server
    std::unordered_map<std::uint64_t, std::unordered_map<std::uint64_t, bool>> held;
    bool halting = false; // stopping: every command fails now
    bool refresh_wanted = false, refresh_in_flight = false;
    Clock::time_point next_refresh;
    std::error_code last_code;
    std::thread thread;

    std::string key(std::uint64_t object, std::uint64_t offset) const {
        const std::uint64_t page = offset / opts.page_size;
        char buf[128];
        std::snprintf(buf, sizeof(buf), "mvm:{%s.%" PRIx64 ".%" PRIx64 "}:%" PRIx64,
                      opts.ns.c_str(), object, page / kGroupPages, page);
        return buf;
    }

    void note(int err, const std::string& what) {
        last_code = errno_code(err);
        std::lock_guard<std::mutex> lock(mu);
        last_error = what;
    }

    Conn& conn(int n) {
        while (conns.size() < map.nodes().size()) {
            auto c = std::make_unique<Conn>();
            c->impl = this;
            c->node = map.nodes()[conns.size()];
            conns.push_back(std::move(c));
        }
        return *conns[static_cast<std::size_t>(n)];
    }

    // ---- hiredis's event hooks: what poll() waits for ----
    static void add_read(void* p) { static_cast<Conn*>(p)->rd = true; }
    static void del_read(void* p) { static_cast<Conn*>(p)->rd = false; }
    static void add_write(void* p) { static_cast<Conn*>(p)->wr = true; }
    static void del_write(void* p) { static_cast<Conn*>(p)->wr = false; }
    // The context is being freed (by hiredis or by us): the only place a
    // connection is forgotten.  Its commands' callbacks have run already.
    static void cleanup(void* p) {
        Conn& k = *static_cast<Conn*>(p);
        k.ac = nullptr;
        k.rd = k.wr = k.connected = false;
        k.inflight = 0;
        k.backoff =
            std::min<std::chrono::milliseconds>(k.backoff == 0ms ? 50ms : k.backoff * 2, 1000ms);
        k.next_attempt = Clock::now() + k.backoff;
    }
    static void on_connect(const redisAsyncContext* ac, int status) {
        Conn& k = *static_cast<Conn*>(ac->data);
        if (status == REDIS_OK) {
            k.connected = true;
            k.backoff = 0ms;
        } else {
            k.impl->note(ac->c.err == REDIS_ERR_IO && errno ? errno : ECONNREFUSED,
                         "redis " + k.node.name() + ": cannot connect (" +
                             (ac->errstr ? ac->errstr : "?") + ")");
        }
    }
    static void on_auth(redisAsyncContext* ac, void* r, void*) {
        auto* reply = static_cast<redisReply*>(r);
        if (reply && reply->type == REDIS_REPLY_ERROR) {
            Conn& k = *static_cast<Conn*>(ac->data);
            k.impl->note(EACCES,
                         "redis " + k.node.name() + ": AUTH refused (" + reply_text(*reply) + ")");
        }
    }
    static void on_reply(redisAsyncContext* ac, void* r, void* priv) {
        Conn& k = *static_cast<Conn*>(ac->data);
        if (k.inflight)
            --k.inflight;
        k.last_activity = Clock::now();
        k.impl->reply(k, *static_cast<Cmd*>(priv), static_cast<redisReply*>(r));
    }
    static void on_slots(redisAsyncContext* ac, void* r, void*) {
        Conn& k = *static_cast<Conn*>(ac->data);
        Impl& im = *k.impl;
        im.refresh_in_flight = false;
        auto* reply = static_cast<redisReply*>(r);
        if (!reply || reply->type != REDIS_REPLY_ARRAY)
            return;
        redis::SlotMap m = im.map;
        if (m.load(*reply, k.node).empty())
            im.map = std::move(m);
    }

    void connect(Conn& k) {
        const auto now = Clock::now();
        errno = 0;
        redisAsyncContext* ac = redisAsyncConnect(k.node.host.c_str(), k.node.port);
        if (!ac || ac->err) {
            note(ac && ac->c.err == REDIS_ERR_IO && errno ? errno : ECONNREFUSED,
                 "redis " + k.node.name() + ": cannot connect (" +
                     (ac ? ac->errstr : "out of memory") + ")");
            if (ac)
                redisAsyncFree(ac);
            k.backoff = std::min<std::chrono::milliseconds>(k.backoff == 0ms ? 50ms : k.backoff * 2,
                                                            1000ms);
            k.next_attempt = now + k.backoff;
            return;
        }
        ac->data = &k;
        ac->ev.data = &k;
        ac->ev.addRead = add_read;
        ac->ev.delRead = del_read;
        ac->ev.addWrite = add_write;
        ac->ev.delWrite = del_write;
        ac->ev.cleanup = cleanup;
        redisAsyncSetConnectCallback(ac, on_connect);
        k.ac = ac;
        k.connected = false;
        k.wr = true; // writable: the connect has completed (or failed)
        k.connect_deadline = now + opts.connect_timeout;
        k.last_activity = now;
        connects.fetch_add(1, std::memory_order_relaxed);
        if (!opts.password.empty()) {
            if (opts.user.empty())
                redisAsyncCommand(ac, on_auth, nullptr, "AUTH %b", opts.password.data(),
                                  opts.password.size());
            else
                redisAsyncCommand(ac, on_auth, nullptr, "AUTH %b %b", opts.user.data(),
                                  opts.user.size(), opts.password.data(), opts.password.size());
        }
    }

    // ---- batches and commands ----
    void complete(Cmd& c, std::error_code ec) {
        Batch& b = *c.batch;
        if (ec && !b.error)
            b.error = ec;
        if (--b.pending != 0)
            return;
        try {
            b.done(b.error);
        } catch (...) {
            // A completion must not throw; nothing more to do for it.
        }
        batches.erase(&b);
    }

    void retry(Cmd& c, Clock::time_point when) {
        if (halting || when >= c.batch->deadline) {
            complete(c, halting ? std::make_error_code(std::errc::operation_canceled)
                                : (last_code ? last_code : errno_code(ETIMEDOUT)));
            return;
        }
        retries.push_back({when, &c});
    }

    void dispatch(Cmd& c) {
        const auto now = Clock::now();
        if (halting || now >= c.batch->deadline) {
            retry(c, now);
            return;
        }
        const int n = c.ask >= 0 ? c.ask : map.node_of(c.slot);
        if (n < 0) { // a slot no master serves: the map is being changed
            refresh_wanted = true;
            retry(c, now + 50ms);
            return;
        }
        Conn& k = conn(n);
        if (!k.ac && now >= k.next_attempt)
            connect(k);
        if (!k.ac) {
            retry(c, std::max(k.next_attempt, now + 10ms));
            return;
        }
        const Batch& b = *c.batch;
        std::vector<const char*> argv;
        std::vector<std::size_t> lens;
        argv.reserve(c.keys.size() + 2);
        lens.reserve(c.keys.size() + 2);
        auto arg = [&](const void* p, std::size_t len) {
            argv.push_back(static_cast<const char*>(p));
            lens.push_back(len);
        };
        switch (b.op) {
        case Op::Get:
            arg("GET", 3);
            break;
        case Op::Put:
            arg("SET", 3);
            break;
        case Op::Erase:
            arg("DEL", 3);
            break;
        }
        for (const auto& key : c.keys)
            arg(key.data(), key.size());
        if (b.op == Op::Put)
            arg(b.puts[c.index].page.data(), b.puts[c.index].page.size());
        if (c.ask >= 0)
            redisAsyncCommand(k.ac, nullptr, nullptr, "ASKING");
        if (redisAsyncCommandArgv(k.ac, on_reply, &c, static_cast<int>(argv.size()), argv.data(),
                                  lens.data()) != REDIS_OK) {
            retry(c, now + 10ms); // the context is going away
            return;
        }
        if (k.inflight++ == 0)
            k.last_activity = now;
    }

    void reply(Conn& k, Cmd& c, redisReply* r) {
        const auto now = Clock::now();
        Batch& b = *c.batch;
        if (!r) { // the connection is gone; its context is being freed
            if (!last_code || last_code.value() != ETIMEDOUT)
                note(ECONNRESET, "redis " + k.node.name() + ": connection lost" +
                                     (k.ac && k.ac->errstr ? std::string(" (") + k.ac->errstr + ")"
                                                           : std::string()));
            c.ask = -1;
            retry(c, now + 20ms);
            return;
        }
        if (r->type == REDIS_REPLY_ERROR) {
            const std::string e = reply_text(*r);
            const redis::Redirect rd = redis::parse_redirect(e);
            if (rd.kind != redis::Redirect::Kind::None) {
                redirections.fetch_add(1, std::memory_order_relaxed);
                const int n = map.add_node(rd.node);
                conn(n);
                if (rd.kind == redis::Redirect::Kind::Moved) {
                    map.assign(rd.slot, n);
                    refresh_wanted = true;
                    c.ask = -1;
                } else {
                    c.ask = n;
                }
                retry(c, now);
                return;
            }
            c.ask = -1;
            if (redis::retry_later(e)) {
                note(EAGAIN, "redis " + k.node.name() + ": " + e);
                retry(c, now + 50ms);
                return;
            }
            note(EIO, "redis " + k.node.name() + ": " + e);
            complete(c, errno_code(e.starts_with("NOAUTH") ? EACCES : EIO));
            return;
        }
        c.ask = -1;
        std::error_code ec;
        switch (b.op) {
        case Op::Get: {
            StoreGet& g = b.gets[c.index];
            if (r->type == REDIS_REPLY_STRING && r->len == g.page.size()) {
                std::memcpy(g.page.data(), r->str, g.page.size());
                g.found = true;
                gets.fetch_add(1, std::memory_order_relaxed);
            } else if (r->type == REDIS_REPLY_NIL) {
                g.found = false;
                auto o = held.find(g.object);
                if (o != held.end()) {
                    auto p = o->second.find(g.offset);
                    if (p != o->second.end() && p->second) {
                        note(EIO, "redis " + k.node.name() + ": " + c.keys[0] +
                                      ", which the server acknowledged, is gone");
                        ec = errno_code(EIO);
                    }
                }
            } else {
                note(EIO, "redis " + k.node.name() + ": GET " + c.keys[0] + ": unexpected reply");
                ec = errno_code(EIO);
            }
            break;
        }
        case Op::Put:
            if (r->type == REDIS_REPLY_STATUS) {
                // Held from the put's start; gone only if the object was
                // erased meanwhile (then it stays gone).
                const StorePut& p = b.puts[c.index];
                if (auto o = held.find(p.object); o != held.end())
                    if (auto e = o->second.find(p.offset); e != o->second.end() && !e->second) {
                        e->second = true;
                        pages.fetch_add(1, std::memory_order_relaxed);
                    }
                puts.fetch_add(1, std::memory_order_relaxed);
            } else {
                note(EIO, "redis " + k.node.name() + ": SET " + c.keys[0] + ": unexpected reply");
                ec = errno_code(EIO);
            }
            break;
        case Op::Erase:
            break;
        }
        complete(c, ec);
    }

    // Turns a queued batch into commands.
    void start(std::unique_ptr<Batch> bp) {
        Batch& b = *bp;
        b.deadline = Clock::now() + opts.op_timeout;
        switch (b.op) {
        case Op::Get:
            b.cmds.resize(b.gets.size());
            for (std::size_t i = 0; i < b.gets.size(); ++i) {
                b.gets[i].found = false;
                b.cmds[i].keys.push_back(key(b.gets[i].object, b.gets[i].offset));
                b.cmds[i].index = i;
            }
            break;
        case Op::Put:
            b.cmds.resize(b.puts.size());
            for (std::size_t i = 0; i < b.puts.size(); ++i) {
                held[b.puts[i].object].try_emplace(b.puts[i].offset, false);
                b.cmds[i].keys.push_back(key(b.puts[i].object, b.puts[i].offset));
                b.cmds[i].index = i;
            }
            break;
        case Op::Erase: {
            // One DEL per hash tag (a DEL's keys must share a slot).
            auto o = held.find(b.object);
            if (o != held.end()) {
                std::map<std::uint64_t, std::vector<std::string>> groups;
                std::uint64_t acked = 0;
                for (const auto& [off, ack] : o->second) {
                    groups[off / opts.page_size / kGroupPages].push_back(key(b.object, off));
                    acked += ack;
                }
                pages.fetch_sub(acked, std::memory_order_relaxed);
                held.erase(o);
                for (auto& [g, keys] : groups)
                    b.cmds.push_back({&b, 0, std::move(keys), 0, -1});
            }
            break;
        }
        }
        for (Cmd& c : b.cmds) {
            c.batch = &b;
            c.slot = redis::key_slot(c.keys[0]);
        }
        b.pending = b.cmds.size();
        Batch* raw = bp.get();
        if (b.pending == 0) {
            b.done({});
            return;
        }
        batches.emplace(raw, std::move(bp));
        // dispatch may complete (and free) the batch: index, not iterators.
        const std::size_t n = raw->cmds.size();
        std::vector<Cmd*> cmds;
        cmds.reserve(n);
        for (Cmd& c : raw->cmds)
            cmds.push_back(&c);
        for (Cmd* c : cmds)
            dispatch(*c);
    }

    // A new batch of @op, filled by @fill, to the I/O thread.  Only making
    // it can fail (submit() cannot): then @done gets ENOMEM at once.
    template <class Fill> void start(Op op, Done done, Fill&& fill) noexcept {
        std::unique_ptr<Batch> b;
        try {
            b = std::make_unique<Batch>();
        } catch (...) {
            done(std::make_error_code(std::errc::not_enough_memory));
            return;
        }
        b->op = op;
        fill(*b);
        b->done = std::move(done);
        submit(std::move(b));
    }

    void submit(std::unique_ptr<Batch> b) noexcept {
        {
            std::lock_guard<std::mutex> lock(mu);
            if (!stopped) {
                incoming.push_back(std::move(b));
                const std::uint64_t one = 1;
                [[maybe_unused]] ssize_t w = ::write(wake.get(), &one, sizeof(one));
                return;
            }
        }
        b->done(std::make_error_code(std::errc::operation_canceled));
    }

    void refresh_map() {
        if (!cluster || !refresh_wanted || refresh_in_flight || Clock::now() < next_refresh)
            return;
        for (const auto& k : conns) {
            if (k->ac && k->connected) {
                if (redisAsyncCommand(k->ac, on_slots, nullptr, "CLUSTER SLOTS") == REDIS_OK) {
                    refresh_in_flight = true;
                    refresh_wanted = false;
                    next_refresh = Clock::now() + 200ms;
                }
                return;
            }
        }
    }

    // Connections that did not connect in time, or stopped answering.
    void sweep() {
        const auto now = Clock::now();
        for (const auto& k : conns) {
            if (!k->ac)
                continue;
            if (!k->connected && now >= k->connect_deadline) {
                note(ETIMEDOUT, "redis " + k->node.name() + ": connecting timed out");
                redisAsyncFree(k->ac);
            } else if (k->inflight && now - k->last_activity >= opts.op_timeout) {
                note(ETIMEDOUT, "redis " + k->node.name() + ": no answer for " +
                                    std::to_string(opts.op_timeout.count()) + " ms");
                redisAsyncFree(k->ac);
            }
        }
    }

    void run() {
        sigset_t all;
        sigfillset(&all);
        // No signal for this thread: the serving threads' signal handling
        // stays theirs, and a write to a closed socket gives EPIPE here,
        // not a SIGPIPE that kills the process.
        ::pthread_sigmask(SIG_BLOCK, &all, nullptr);
        std::vector<pollfd> pfds;
        std::vector<Conn*> pconns;
        for (;;) {
            std::vector<std::unique_ptr<Batch>> in;
            bool stopping;
            {
                std::lock_guard<std::mutex> lock(mu);
                in.swap(incoming);
                stopping = stop;
                if (stopping)
                    stopped = true;
            }
            if (stopping && !stop_all(in))
                return;
            for (auto& b : in)
                start(std::move(b));
            // Commands whose time has come, in the order they were put
            // off (two SETs of one page keep theirs).
            const auto now = Clock::now();
            std::vector<Retry> due;
            auto split = std::stable_partition(retries.begin(), retries.end(),
                                               [&](const Retry& r) { return r.when > now; });
            due.assign(split, retries.end());
            retries.erase(split, retries.end());
            for (const Retry& r : due)
                dispatch(*r.cmd);
            refresh_map();
            sweep();

            pfds.assign(1, {wake.get(), POLLIN, 0});
            pconns.assign(1, nullptr);
            bool busy = false;
            for (const auto& k : conns) {
                if (!k->ac)
                    continue;
                busy = busy || k->inflight || !k->connected;
                if (!k->rd && !k->wr)
                    continue;
                pfds.push_back({k->ac->c.fd,
                                static_cast<short>((k->rd ? POLLIN : 0) | (k->wr ? POLLOUT : 0)),
                                0});
                pconns.push_back(k.get());
            }
            int timeout = busy ? 50 : -1;
            for (const Retry& r : retries) {
                const auto ms = std::chrono::ceil<std::chrono::milliseconds>(r.when - Clock::now());
                const int t = static_cast<int>(std::clamp<long long>(ms.count(), 0, 1000));
                timeout = timeout < 0 ? t : std::min(timeout, t);
            }
            if (refresh_wanted && cluster)
                timeout = timeout < 0 ? 200 : std::min(timeout, 200);
            if (::poll(pfds.data(), pfds.size(), timeout) < 0 && errno != EINTR)
                ::usleep(1000);
            if (pfds[0].revents & POLLIN) {
                std::uint64_t v;
                [[maybe_unused]] ssize_t rd = ::read(wake.get(), &v, sizeof(v));
            }
            for (std::size_t i = 1; i < pfds.size(); ++i) {
                Conn& k = *pconns[i];
                redisAsyncContext* ac = k.ac;
                const short ev = pfds[i].revents;
                if (!ac || !ev)
                    continue;
                if (k.rd && (ev & (POLLIN | POLLERR | POLLHUP)))
                    redisAsyncHandleRead(ac);
                if (k.ac == ac && k.wr && (ev & (POLLOUT | POLLERR | POLLHUP)))
                    redisAsyncHandleWrite(ac);
            }
        }
    }

    // Stopping: everything queued or in flight fails (ECANCELED).  False
    // once nothing is left.
    bool stop_all(std::vector<std::unique_ptr<Batch>>& in) {
        halting = true;
        for (auto& b : in)
            b->done(std::make_error_code(std::errc::operation_canceled));
        in.clear();
        for (const auto& k : conns)
            if (k->ac)
                redisAsyncFree(k->ac);
        std::vector<Retry> rs;
        rs.swap(retries);
        for (const Retry& r : rs)
            retry(*r.cmd, Clock::now());
        return false;
    }
};

RedisStore::RedisStore(const RedisOptions& opts) : impl_(std::make_unique<Impl>()) {
    Impl& im = *impl_;
    im.opts = opts;
    if (im.opts.seeds.empty())
        throw UsageError("--store: a redis URL names no server");
    if (im.opts.ns.empty()) {
        im.opts.ns = random_ns();
        im.fresh_ns = true;
    }
    // The first seed that answers tells whether this is a cluster.
    std::string why;
    std::exception_ptr first;
    bool found = false;
    for (const Node& seed : im.opts.seeds) {
        try {
            ContextPtr c = open_checked(seed, im.opts);
            ReplyPtr r = sync_command(c.get(), seed, {"CLUSTER", "SLOTS"});
            if (r->type == REDIS_REPLY_ERROR) {
                if (im.opts.seeds.size() > 1)
                    fail(seed, EINVAL,
                         "several servers given, but this one is no cluster (" + reply_text(*r) +
                             ")");
                im.map.assign(0, im.map.add_node(seed));
                for (unsigned s = 0; s < redis::kSlots; ++s)
                    im.map.assign(s, 0);
                im.cluster = false;
            } else {
                const std::string e = im.map.load(*r, seed);
                if (!e.empty())
                    fail(seed, EPROTO, e);
                if (!im.map.covered())
                    fail(seed, EINVAL, "the cluster does not serve every slot (CLUSTER SLOTS)");
                im.cluster = true;
            }
            found = true;
            break;
        } catch (...) {
            if (!first)
                first = std::current_exception();
        }
    }
    if (!found)
        std::rethrow_exception(first);
    // Each master: reachable, the same password, no eviction.
    if (im.cluster)
        for (const int n : im.map.masters())
            open_checked(im.map.nodes()[static_cast<std::size_t>(n)], im.opts);
    im.describe = "redis://";
    for (std::size_t i = 0; i < im.opts.seeds.size(); ++i)
        im.describe += (i ? "," : "") + im.opts.seeds[i].name();
    if (im.cluster)
        im.describe += " (cluster, " + std::to_string(im.map.masters().size()) + " masters)";
    const int efd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (efd < 0)
        throw std::system_error(errno_code(), "redis store: eventfd");
    im.wake = Fd(efd);
    im.thread = std::thread([&im] { im.run(); });
}

RedisStore::~RedisStore() {
    {
        std::lock_guard<std::mutex> lock(impl_->mu);
        impl_->stop = true;
        const std::uint64_t one = 1;
        [[maybe_unused]] ssize_t w = ::write(impl_->wake.get(), &one, sizeof(one));
    }
    impl_->thread.join();
}

void RedisStore::get(std::span<StoreGet> batch, Done done) noexcept {
    impl_->start(Impl::Op::Get, std::move(done), [&](Impl::Batch& b) { b.gets = batch; });
}

void RedisStore::put(std::span<const StorePut> batch, Done done) noexcept {
    impl_->start(Impl::Op::Put, std::move(done), [&](Impl::Batch& b) { b.puts = batch; });
}

void RedisStore::erase(std::uint64_t object, Done done) noexcept {
    impl_->start(Impl::Op::Erase, std::move(done), [&](Impl::Batch& b) { b.object = object; });
}

StoreStats RedisStore::stats() const noexcept {
    StoreStats st;
    st.page_size = impl_->opts.page_size;
    st.pages = impl_->pages.load(std::memory_order_relaxed);
    st.bytes_stored = st.pages * st.page_size;
    st.gets = impl_->gets.load(std::memory_order_relaxed);
    st.puts = impl_->puts.load(std::memory_order_relaxed);
    return st;
}

bool RedisStore::starts_empty() const noexcept {
    return impl_->fresh_ns;
}

std::string RedisStore::describe() const {
    return impl_->describe;
}

bool RedisStore::cluster() const noexcept {
    return impl_->cluster;
}

std::string RedisStore::key(std::uint64_t object, std::uint64_t offset) const {
    return impl_->key(object, offset);
}

std::string RedisStore::last_error() const {
    std::lock_guard<std::mutex> lock(impl_->mu);
    return impl_->last_error;
}

std::uint64_t RedisStore::redirections() const noexcept {
    return impl_->redirections.load(std::memory_order_relaxed);
}

std::uint64_t RedisStore::connects() const noexcept {
    return impl_->connects.load(std::memory_order_relaxed);
}

} // namespace machvm
