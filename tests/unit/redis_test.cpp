// SPDX-License-Identifier: GPL-2.0
// The Redis store: CRC16 and key slots against Redis's own values, the
// CLUSTER SLOTS parser and redirections, redis:// URLs; then RedisStore
// against real servers this test starts (Debian's redis-server, on free
// ports, in a temporary directory): one server (round trips, erase,
// AUTH, the eviction policy, a server killed and restarted with and
// without its data) and a 3-master cluster (a batch over many slots, an
// ASK during a slot's migration, MOVED after redis-cli --cluster reshard
// runs beside the store, no page lost).  Every wait is bounded.
#include <machvm/cli.hpp>
#include <machvm/redis_slots.hpp>
#include <machvm/redis_store.hpp>

#include <hiredis/hiredis.h>
#include <hiredis/read.h>

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "check.hpp"

using machvm::RedisOptions;
using machvm::RedisStore;
using machvm::StoreGet;
using machvm::StorePut;
using namespace std::chrono_literals;
namespace redis = machvm::redis;

namespace {

constexpr std::size_t kPage = 4096;
using Clock = std::chrono::steady_clock;

// ---- pure parts ----

void test_crc16_and_slots() {
    // The Redis Cluster specification's check value, and slots redis-cli
    // CLUSTER KEYSLOT gives.
    CHECK_EQ(redis::crc16("123456789"), 0x31C3);
    CHECK_EQ(redis::key_slot("foo"), 12182u);
    CHECK_EQ(redis::key_slot("bar"), 5061u);
    CHECK_EQ(redis::key_slot("hello"), 866u);
    // Hash tags: only what is inside the first {...} counts.
    CHECK_EQ(redis::key_slot("{user1000}.following"), redis::key_slot("user1000"));
    CHECK_EQ(redis::key_slot("{user1000}.followers"), redis::key_slot("{user1000}.following"));
    CHECK_EQ(redis::key_slot("foo{}{bar}"), redis::key_slot("foo{}{bar}")); // {} : whole key
    CHECK(redis::key_slot("foo{}{bar}") != redis::key_slot("bar"));
    CHECK_EQ(redis::key_slot("foo{{bar}}zap"), redis::key_slot("{bar"));
    CHECK_EQ(redis::key_slot("foo{bar}{zap}"), redis::key_slot("bar"));
    CHECK_EQ(redis::key_slot(""), 0u);
}

redisReply* parse_resp(const std::string& resp) {
    redisReader* r = redisReaderCreate();
    redisReaderFeed(r, resp.data(), resp.size());
    void* out = nullptr;
    if (redisReaderGetReply(r, &out) != REDIS_OK)
        out = nullptr;
    redisReaderFree(r);
    return static_cast<redisReply*>(out);
}

void test_slot_map() {
    // Two masters (the second with a replica), as Redis 7 sends it.
    const std::string resp = "*2\r\n"
                             "*3\r\n:0\r\n:8191\r\n*3\r\n$9\r\n127.0.0.1\r\n:7000\r\n$2\r\nid\r\n"
                             "*4\r\n:8192\r\n:16383\r\n*3\r\n$0\r\n\r\n:7001\r\n$2\r\nid\r\n"
                             "*3\r\n$9\r\n127.0.0.1\r\n:7002\r\n$2\r\nid\r\n";
    redisReply* r = parse_resp(resp);
    CHECK(r != nullptr);
    if (!r)
        return;
    redis::SlotMap m;
    CHECK(m.node_of(0) == -1);
    CHECK(!m.covered());
    const redis::Node asked{"10.0.0.9", 7001};
    CHECK(m.load(*r, asked).empty());
    freeReplyObject(r);
    CHECK(m.covered());
    CHECK_EQ(m.nodes().size(), 2u);
    CHECK(m.nodes()[0] == (redis::Node{"127.0.0.1", 7000}));
    // An empty host is the node that answered.
    CHECK(m.nodes()[1] == (redis::Node{"10.0.0.9", 7001}));
    CHECK_EQ(m.node_of(8191), 0);
    CHECK_EQ(m.node_of(8192), 1);
    CHECK_EQ(m.masters().size(), 2u);
    // MOVED reassigns one slot; indices stay.
    const redis::Redirect mv = redis::parse_redirect("MOVED 3999 127.0.0.1:7003");
    CHECK(mv.kind == redis::Redirect::Kind::Moved);
    CHECK_EQ(mv.slot, 3999u);
    CHECK(mv.node == (redis::Node{"127.0.0.1", 7003}));
    m.assign(mv.slot, m.add_node(mv.node));
    CHECK_EQ(m.node_of(3999), 2);
    CHECK_EQ(m.add_node({"127.0.0.1", 7000}), 0);
    const redis::Redirect ask = redis::parse_redirect("ASK 12182 [::1]:7004");
    CHECK(ask.kind == redis::Redirect::Kind::Ask);
    CHECK(ask.node == (redis::Node{"::1", 7004}));
    CHECK(redis::parse_redirect("ERR wrong").kind == redis::Redirect::Kind::None);
    CHECK(redis::parse_redirect("MOVED 16384 a:1").kind == redis::Redirect::Kind::None);
    CHECK(redis::parse_redirect("MOVED 1 a:0").kind == redis::Redirect::Kind::None);
    CHECK(redis::parse_redirect("MOVED x a:1").kind == redis::Redirect::Kind::None);
    CHECK(redis::retry_later("TRYAGAIN Multiple keys request during rehashing of slot"));
    CHECK(redis::retry_later("CLUSTERDOWN The cluster is down"));
    CHECK(!redis::retry_later("ERR unknown command"));
    // A malformed reply leaves the map as it was.
    redisReply* bad = parse_resp("*1\r\n*3\r\n:0\r\n:99999\r\n*2\r\n$1\r\na\r\n:1\r\n");
    CHECK(bad && !m.load(*bad, asked).empty());
    freeReplyObject(bad);
    CHECK_EQ(m.node_of(0), 0);
}

void test_urls() {
    RedisOptions o = machvm::parse_redis_url("redis://127.0.0.1:7000");
    CHECK_EQ(o.seeds.size(), 1u);
    CHECK(o.seeds[0] == (redis::Node{"127.0.0.1", 7000}));
    CHECK(o.password.empty());
    o = machvm::parse_redis_url("redis://:s3cret@h1:1,h2,[::1]:3/?ns=a.b&timeout=500");
    CHECK_EQ(o.seeds.size(), 3u);
    CHECK(o.seeds[1] == (redis::Node{"h2", 6379}));
    CHECK(o.seeds[2] == (redis::Node{"::1", 3}));
    CHECK(o.password == "s3cret" && o.user.empty());
    CHECK(o.ns == "a.b");
    CHECK_EQ(o.op_timeout.count(), 500);
    o = machvm::parse_redis_url("redis://bob:pw@h:2");
    CHECK(o.user == "bob" && o.password == "pw");
    for (const char* bad :
         {"redis:/h:1", "redis://", "redis://h:0", "redis://h:99999", "redis://h:x",
          "redis://:@h:1", "redis://h:1?ns={x}", "redis://h:1?timeout=1", "redis://h:1?what=1",
          "redis://h:1,,h:2", "http://h:1"})
        CHECK_THROWS(machvm::parse_redis_url(bad), machvm::UsageError);
    CHECK_THROWS(machvm::check_store_spec("redis://h:x"), machvm::UsageError);
    machvm::check_store_spec("redis://127.0.0.1:1"); // no connection made
    ++unit::checks;
}

// ---- real servers ----

bool port_free(int port) {
    const int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    const bool ok = ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
    ::close(s);
    return ok;
}

// A port nothing listens on, with port + 10000 free too (a cluster node's
// bus): below 55536, as Redis wants for cluster nodes.
int free_port() {
    static std::uint32_t x = static_cast<std::uint32_t>(::getpid()) * 2654435761u;
    for (int i = 0; i < 1000; ++i) {
        x = x * 1664525u + 1013904223u;
        const int port = 20000 + static_cast<int>((x >> 8) % 30000);
        if (port_free(port) && port_free(port + 10000))
            return port;
    }
    return 0;
}

// A command on a fresh blocking connection; the reply's text, integer, or
// "(error) ..." / "(nil)"; "" if the server cannot be reached.
std::string cmd(int port, const std::vector<std::string>& args) {
    timeval tv{1, 0};
    redisContext* c = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (!c || c->err) {
        if (c)
            redisFree(c);
        return "";
    }
    redisSetTimeout(c, tv);
    std::vector<const char*> av;
    std::vector<std::size_t> lens;
    for (const auto& a : args) {
        av.push_back(a.data());
        lens.push_back(a.size());
    }
    auto* r = static_cast<redisReply*>(
        redisCommandArgv(c, static_cast<int>(av.size()), av.data(), lens.data()));
    std::string out;
    if (r) {
        if (r->type == REDIS_REPLY_ERROR)
            out = "(error) " + std::string(r->str, r->len);
        else if (r->type == REDIS_REPLY_NIL)
            out = "(nil)";
        else if (r->type == REDIS_REPLY_INTEGER)
            out = std::to_string(r->integer);
        else if (r->type == REDIS_REPLY_ARRAY) {
            for (std::size_t i = 0; i < r->elements; ++i)
                if (r->element[i]->str)
                    out += std::string(r->element[i]->str, r->element[i]->len) + "\n";
        } else if (r->str)
            out.assign(r->str, r->len);
        freeReplyObject(r);
    }
    redisFree(c);
    return out;
}

std::string temp_dir() {
    char tmpl[] = "/tmp/machvm-redis-XXXXXX";
    const char* d = ::mkdtemp(tmpl);
    return d ? d : "/tmp";
}

// One redis-server process in its own directory; killed (SIGKILL) when
// it goes out of scope.
class Server {
  public:
    Server(std::string dir, std::vector<std::string> extra)
        : dir_(std::move(dir)), extra_(std::move(extra)), port_(free_port()) {
        std::filesystem::create_directories(dir_);
        start();
    }
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;
    ~Server() { kill(); }

    int port() const { return port_; }
    bool up() const { return up_; }
    void start() {
        pid_ = ::fork();
        if (pid_ == 0) {
            const int fd = ::open((dir_ + "/log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
            ::dup2(fd, 1);
            ::dup2(fd, 2);
            std::vector<std::string> a = {"redis-server",
                                          "--port",
                                          std::to_string(port_),
                                          "--bind",
                                          "127.0.0.1",
                                          "--dir",
                                          dir_,
                                          "--save",
                                          "",
                                          "--daemonize",
                                          "no",
                                          "--protected-mode",
                                          "no"};
            a.insert(a.end(), extra_.begin(), extra_.end());
            std::vector<char*> av;
            for (auto& s : a)
                av.push_back(s.data());
            av.push_back(nullptr);
            ::execvp(av[0], av.data());
            std::_Exit(127);
        }
        // Up when it answers (a PING refused for want of AUTH is up too).
        up_ = false;
        for (auto until = Clock::now() + 5s; Clock::now() < until;
             std::this_thread::sleep_for(20ms)) {
            const std::string r = cmd(port_, {"PING"});
            if (r == "PONG" || r.starts_with("(error) NOAUTH")) {
                up_ = true;
                break;
            }
        }
    }
    void kill() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
            pid_ = -1;
        }
        up_ = false;
    }
    const std::string& dir() const { return dir_; }

  private:
    std::string dir_;
    std::vector<std::string> extra_;
    int port_;
    pid_t pid_ = -1;
    bool up_ = false;
};

// Waits (bounded) for a store call's completion.
class Waiter {
  public:
    machvm::Store::Done done() {
        return [this](std::error_code ec) {
            std::lock_guard<std::mutex> lock(mu_);
            ec_ = ec;
            cv_.notify_all();
        };
    }
    // The call's error, or nullopt if it did not complete within `limit`.
    std::optional<std::error_code> wait(std::chrono::milliseconds limit = 10s) {
        std::unique_lock<std::mutex> lock(mu_);
        if (!cv_.wait_for(lock, limit, [&] { return ec_.has_value(); }))
            return std::nullopt;
        return ec_;
    }

  private:
    std::mutex mu_;
    std::condition_variable cv_;
    std::optional<std::error_code> ec_;
};

std::vector<std::byte> page_of(std::uint64_t object, std::uint64_t index, std::uint64_t gen) {
    std::vector<std::byte> p(kPage);
    std::uint64_t x = (object * 1000003 + index + 1) * 0x9e3779b97f4a7c15ull ^ gen;
    for (std::size_t i = 0; i < kPage; i += 8) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        std::memcpy(p.data() + i, &x, 8);
    }
    return p;
}

// Puts the pages `idx` of `object`, generation gen; the error.
std::optional<std::error_code> put_pages(RedisStore& s, std::uint64_t object,
                                         const std::vector<std::uint64_t>& idx, std::uint64_t gen) {
    std::vector<std::vector<std::byte>> pages;
    std::vector<StorePut> batch;
    pages.reserve(idx.size());
    for (const std::uint64_t i : idx)
        pages.push_back(page_of(object, i, gen));
    for (std::size_t i = 0; i < idx.size(); ++i)
        batch.push_back({object, idx[i] * kPage, pages[i]});
    Waiter w;
    s.put(batch, w.done());
    auto r = w.wait();
    CHECK(r.has_value()); // never a hang
    return r;
}

std::vector<std::uint64_t> range(std::uint64_t first, std::uint64_t n) {
    std::vector<std::uint64_t> v(n);
    for (std::uint64_t i = 0; i < n; ++i)
        v[i] = first + i;
    return v;
}

std::optional<std::error_code> put_range(RedisStore& s, std::uint64_t object, std::uint64_t first,
                                         std::uint64_t n, std::uint64_t gen) {
    return put_pages(s, object, range(first, n), gen);
}

// Gets the pages `idx`: the error, and how many matched gen's bytes (not
// found: not matched).
struct GetResult {
    std::optional<std::error_code> ec;
    std::uint64_t matched = 0, found = 0;
};
GetResult get_pages(RedisStore& s, std::uint64_t object, const std::vector<std::uint64_t>& idx,
                    std::uint64_t gen) {
    const std::size_t n = idx.size();
    std::vector<std::byte> buf(n * kPage);
    std::vector<StoreGet> batch;
    for (std::size_t i = 0; i < n; ++i)
        batch.push_back({object, idx[i] * kPage, std::span(buf).subspan(i * kPage, kPage), false});
    Waiter w;
    s.get(batch, w.done());
    GetResult g;
    g.ec = w.wait();
    CHECK(g.ec.has_value());
    if (!g.ec)
        return g;
    for (std::size_t i = 0; i < n; ++i) {
        if (!batch[i].found)
            continue;
        ++g.found;
        const auto want = page_of(object, idx[i], gen);
        g.matched += std::memcmp(want.data(), batch[i].page.data(), kPage) == 0;
    }
    return g;
}

GetResult get_range(RedisStore& s, std::uint64_t object, std::uint64_t first, std::uint64_t n,
                    std::uint64_t gen) {
    return get_pages(s, object, range(first, n), gen);
}

bool erase_object(RedisStore& s, std::uint64_t object) {
    Waiter w;
    s.erase(object, w.done());
    auto r = w.wait();
    return r && !*r;
}

RedisOptions options(int port, std::chrono::milliseconds timeout = 1000ms) {
    RedisOptions o;
    o.seeds.push_back({"127.0.0.1", port});
    o.op_timeout = timeout;
    o.connect_timeout = 500ms;
    o.page_size = kPage;
    return o;
}

int errno_of_construct(const RedisOptions& o) {
    try {
        RedisStore s(o);
    } catch (const std::system_error& e) {
        std::printf("  refused as expected: %s\n", e.what());
        return e.code().value();
    } catch (const std::exception& e) {
        std::printf("  refused: %s\n", e.what());
        return -1;
    }
    return 0;
}

void test_single_server(const std::string& root) {
    Server srv(root + "/single", {"--appendonly", "yes", "--appendfsync", "always"});
    CHECK(srv.up());
    if (!srv.up())
        return;
    RedisStore s(options(srv.port()));
    CHECK(!s.cluster());
    // Round trip, bytes checked; a missing page is not found, no error.
    auto pe = put_range(s, 1, 0, 64, 1);
    CHECK(pe && !*pe);
    GetResult g = get_range(s, 1, 0, 64, 1);
    CHECK(g.ec && !*g.ec);
    CHECK_EQ(g.matched, 64u);
    g = get_range(s, 1, 64, 4, 1);
    CHECK(g.ec && !*g.ec);
    CHECK_EQ(g.found, 0u);
    CHECK_EQ(s.stats().pages, 64u);
    // Overwrite, and a second object in the same store.
    pe = put_range(s, 1, 10, 5, 2);
    CHECK(pe && !*pe);
    pe = put_range(s, 2, 0, 8, 1);
    CHECK(pe && !*pe);
    CHECK_EQ(get_range(s, 1, 10, 5, 2).matched, 5u);
    CHECK_EQ(s.stats().pages, 72u);
    // Keys are in this store's namespace, a 16-page group per hash tag.
    CHECK(cmd(srv.port(), {"EXISTS", s.key(1, 3 * kPage)}) == "1");
    CHECK(redis::key_slot(s.key(1, 0)) == redis::key_slot(s.key(1, 15 * kPage)));
    // A second store (another pager) on the same server sees none of it.
    {
        RedisStore other(options(srv.port()));
        CHECK_EQ(get_range(other, 1, 0, 8, 1).found, 0u);
    }
    // Erase removes every page of the object, and only its.
    CHECK(erase_object(s, 1));
    CHECK(cmd(srv.port(), {"EXISTS", s.key(1, 3 * kPage)}) == "0");
    CHECK_EQ(get_range(s, 1, 0, 64, 1).found, 0u);
    CHECK_EQ(get_range(s, 2, 0, 8, 1).matched, 8u);
    CHECK_EQ(s.stats().pages, 8u);
    CHECK(cmd(srv.port(), {"DBSIZE"}) == "8");
    CHECK(erase_object(s, 2));
    CHECK(erase_object(s, 99)); // nothing to erase
    CHECK(cmd(srv.port(), {"DBSIZE"}) == "0");

    // What a page costs on loopback (printed, not checked): one batch of
    // 1024 pages each way.
    {
        const auto t0 = Clock::now();
        pe = put_range(s, 4, 0, 1024, 1);
        const auto t1 = Clock::now();
        g = get_range(s, 4, 0, 1024, 1);
        const auto t2 = Clock::now();
        CHECK(pe && !*pe);
        CHECK_EQ(g.matched, 1024u);
        std::printf("  1024 pages: put %.1f us/page, get %.1f us/page (appendfsync always)\n",
                    std::chrono::duration<double, std::micro>(t1 - t0).count() / 1024,
                    std::chrono::duration<double, std::micro>(t2 - t1).count() / 1024);
        CHECK(erase_object(s, 4));
    }

    // Killed: gets and puts fail within the timeout, never hang.
    pe = put_range(s, 3, 0, 32, 7);
    CHECK(pe && !*pe);
    srv.kill();
    const auto t0 = Clock::now();
    g = get_range(s, 3, 0, 32, 7);
    CHECK(g.ec && *g.ec);
    pe = put_range(s, 3, 32, 4, 7);
    CHECK(pe && *pe);
    CHECK(Clock::now() - t0 < 4s);
    std::printf("  server down: get failed (%s), put failed; last error: %s\n",
                g.ec ? g.ec->message().c_str() : "-", s.last_error().c_str());
    // Restarted (same port, its append-only file): the store reconnects
    // and every acknowledged page is there.
    srv.start();
    CHECK(srv.up());
    bool back = false;
    for (auto until = Clock::now() + 5s; !back && Clock::now() < until;) {
        g = get_range(s, 3, 0, 32, 7);
        back = g.ec && !*g.ec;
    }
    CHECK(back);
    CHECK_EQ(g.matched, 32u);
    pe = put_range(s, 3, 32, 4, 7);
    CHECK(pe && !*pe);
    CHECK(s.connects() >= 2u);

    // Restarted without its data (appendonly no, its file gone): a page
    // the server had acknowledged is an error, never zeros.
    srv.kill();
    std::filesystem::remove_all(srv.dir() + "/appendonlydir");
    srv.start();
    CHECK(srv.up());
    std::error_code lost;
    for (auto until = Clock::now() + 5s; Clock::now() < until;) {
        g = get_range(s, 3, 0, 4, 7);
        if (g.ec && *g.ec) {
            lost = *g.ec;
            if (s.last_error().find("is gone") != std::string::npos)
                break;
        }
    }
    CHECK(lost.value() == EIO);
    CHECK(s.last_error().find("is gone") != std::string::npos);
    CHECK_EQ(g.matched, 0u);
}

void test_refusals(const std::string& root) {
    // Unreachable.
    CHECK_EQ(errno_of_construct(options(free_port())), ECONNREFUSED);
    // AUTH.
    {
        Server srv(root + "/auth", {"--requirepass", "s3cret"});
        CHECK(srv.up());
        RedisOptions o = options(srv.port());
        CHECK_EQ(errno_of_construct(o), EACCES); // no password given
        o.password = "wrong";
        CHECK_EQ(errno_of_construct(o), EACCES);
        o.password = "s3cret";
        CHECK_EQ(errno_of_construct(o), 0);
        RedisStore s(o);
        auto pe = put_range(s, 1, 0, 4, 1);
        CHECK(pe && !*pe);
        CHECK_EQ(get_range(s, 1, 0, 4, 1).matched, 4u);
    }
    // A server that may evict.
    {
        Server srv(root + "/evict", {"--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru"});
        CHECK(srv.up());
        CHECK_EQ(errno_of_construct(options(srv.port())), EINVAL);
    }
}

// ---- the cluster ----

struct Cluster {
    std::vector<std::unique_ptr<Server>> nodes;
    bool ok = false;

    explicit Cluster(const std::string& root) {
        for (int i = 0; i < 3; ++i)
            nodes.push_back(std::make_unique<Server>(
                root + "/c" + std::to_string(i),
                std::vector<std::string>{"--cluster-enabled", "yes", "--cluster-config-file",
                                         "nodes.conf", "--cluster-node-timeout", "2000",
                                         "--appendonly", "no"}));
        std::string c = "timeout 20 redis-cli --cluster create";
        for (auto& n : nodes)
            c += " 127.0.0.1:" + std::to_string(n->port());
        c += " --cluster-yes > " + root + "/create.log 2>&1";
        if (std::system(c.c_str()) != 0)
            return;
        for (auto until = Clock::now() + 10s; !ok && Clock::now() < until;
             std::this_thread::sleep_for(50ms)) {
            ok = true;
            for (auto& n : nodes)
                ok = ok && cmd(n->port(), {"CLUSTER", "INFO"}).find("cluster_state:ok") !=
                               std::string::npos;
        }
    }
    int port(int i) const { return nodes[static_cast<std::size_t>(i)]->port(); }
    std::string id(int i) const { return cmd(port(i), {"CLUSTER", "MYID"}); }
};

std::string seeds_url(const Cluster& c) {
    return "redis://127.0.0.1:" + std::to_string(c.port(0)) +
           ",127.0.0.1:" + std::to_string(c.port(1)) + ",127.0.0.1:" + std::to_string(c.port(2));
}

// Which node (index) owns slot s, from CLUSTER SLOTS as node 0 sees it.
int owner_of(const Cluster& c, unsigned slot) {
    timeval tv{1, 0};
    redisContext* ctx = redisConnectWithTimeout("127.0.0.1", c.port(0), tv);
    if (!ctx || ctx->err) {
        if (ctx)
            redisFree(ctx);
        return -1;
    }
    auto* r = static_cast<redisReply*>(redisCommand(ctx, "CLUSTER SLOTS"));
    int owner = -1;
    if (r) {
        redis::SlotMap m;
        if (m.load(*r, {"127.0.0.1", c.port(0)}).empty() && m.node_of(slot) >= 0) {
            const int port = m.nodes()[static_cast<std::size_t>(m.node_of(slot))].port;
            for (int i = 0; i < 3; ++i)
                if (c.port(i) == port)
                    owner = i;
        }
        freeReplyObject(r);
    }
    redisFree(ctx);
    return owner;
}

void test_cluster(const std::string& root) {
    Cluster cl(root);
    CHECK(cl.ok);
    if (!cl.ok) {
        std::printf("  cluster did not form; see %s/create.log\n", root.c_str());
        return;
    }
    RedisOptions o = machvm::parse_redis_url(seeds_url(cl));
    o.op_timeout = 3000ms;
    o.page_size = kPage;
    RedisStore s(o);
    CHECK(s.cluster());
    CHECK(s.describe().find("3 masters") != std::string::npos);
    // One seed finds the cluster too.
    {
        RedisStore one(options(cl.port(1)));
        CHECK(one.cluster());
    }

    // A batch over many slots: 1024 pages = 64 hash tags.
    auto pe = put_range(s, 5, 0, 1024, 1);
    CHECK(pe && !*pe);
    GetResult g = get_range(s, 5, 0, 1024, 1);
    CHECK(g.ec && !*g.ec);
    CHECK_EQ(g.matched, 1024u);
    std::vector<int> per_node(3);
    for (int i = 0; i < 3; ++i)
        per_node[static_cast<std::size_t>(i)] = std::atoi(cmd(cl.port(i), {"DBSIZE"}).c_str());
    std::printf("  keys per master: %d %d %d\n", per_node[0], per_node[1], per_node[2]);
    CHECK(per_node[0] > 0 && per_node[1] > 0 && per_node[2] > 0);

    // ASK: slot of page 0's group moves from its owner to another node;
    // while it migrates, a new key of the slot goes to the target
    // (ASKING), old ones are still read from the source.
    const std::string k0 = s.key(5, 0);
    const unsigned slot = redis::key_slot(k0);
    const int from = owner_of(cl, slot);
    CHECK(from >= 0);
    if (from < 0)
        return;
    const int to = (from + 1) % 3;
    const std::string sl = std::to_string(slot);
    CHECK(cmd(cl.port(to), {"CLUSTER", "SETSLOT", sl, "IMPORTING", cl.id(from)}) == "OK");
    CHECK(cmd(cl.port(from), {"CLUSTER", "SETSLOT", sl, "MIGRATING", cl.id(to)}) == "OK");
    // Move pages 0..7 of the group; 8..15 stay on the source for now.
    std::vector<std::string> mig = {"MIGRATE", "127.0.0.1", std::to_string(cl.port(to)), "", "0",
                                    "5000",    "KEYS"};
    for (std::uint64_t i = 0; i < 8; ++i)
        mig.push_back(s.key(5, i * kPage));
    CHECK(cmd(cl.port(from), mig) == "OK");
    const std::uint64_t asks0 = s.redirections();
    g = get_range(s, 5, 0, 16, 1); // 0..7 by ASK, 8..15 from the source
    CHECK(g.ec && !*g.ec);
    CHECK_EQ(g.matched, 16u);
    CHECK(s.redirections() >= asks0 + 8);
    // Finish the migration; the next commands get MOVED.
    std::vector<std::string> rest = {"MIGRATE", "127.0.0.1", std::to_string(cl.port(to)), "", "0",
                                     "5000",    "KEYS"};
    for (std::uint64_t i = 8; i < 16; ++i)
        rest.push_back(s.key(5, i * kPage));
    CHECK(cmd(cl.port(from), rest) == "OK");
    for (int i = 0; i < 3; ++i)
        CHECK(cmd(cl.port(i), {"CLUSTER", "SETSLOT", sl, "NODE", cl.id(to)}) == "OK");
    const std::uint64_t moved0 = s.redirections();
    g = get_range(s, 5, 0, 16, 1);
    CHECK(g.ec && !*g.ec);
    CHECK_EQ(g.matched, 16u);
    CHECK(s.redirections() > moved0);

    // redis-cli --cluster reshard moves 300 slots (and their keys) from
    // node 0 to node 2 while the store keeps writing and reading: the
    // first 300 of node 0's, so the pages written are 16 groups of object
    // 6 whose slots are among those.
    std::vector<std::uint64_t> moving;
    for (std::uint64_t grp = 0; moving.size() < 256 && grp < 100000; ++grp) {
        const unsigned sl6 = redis::key_slot(s.key(6, grp * RedisStore::kGroupPages * kPage));
        if (sl6 < 300 && owner_of(cl, sl6) == 0)
            for (std::uint64_t i = 0; i < RedisStore::kGroupPages; ++i)
                moving.push_back(grp * RedisStore::kGroupPages + i);
    }
    CHECK_EQ(moving.size(), 256u);
    pe = put_pages(s, 6, moving, 1);
    CHECK(pe && !*pe);
    const std::string from_id = cl.id(0), to_id = cl.id(2);
    std::atomic<bool> resharded{false};
    std::atomic<bool> finished{false};
    std::thread reshard([&] {
        const std::string c =
            "timeout 30 redis-cli --cluster reshard 127.0.0.1:" + std::to_string(cl.port(0)) +
            " --cluster-from " + from_id + " --cluster-to " + to_id +
            " --cluster-slots 300 --cluster-yes > " + root + "/reshard.log 2>&1";
        resharded = std::system(c.c_str()) == 0;
        finished = true;
    });
    std::uint64_t rounds = 0, bad = 0, gen = 1;
    const std::uint64_t redirected0 = s.redirections();
    const auto t0 = Clock::now();
    while (Clock::now() - t0 < 20s) {
        // Read what was written last, then write the next generation.
        const bool done_before = finished;
        GetResult gr = get_pages(s, 6, moving, gen);
        if (!gr.ec || *gr.ec || gr.matched != moving.size())
            ++bad;
        pe = put_pages(s, 6, moving, ++gen);
        if (!pe || *pe)
            ++bad;
        ++rounds;
        if (done_before)
            break;
    }
    reshard.join();
    CHECK(resharded);
    std::printf("  reshard: %llu read+write rounds of 256 pages, %llu failed, %llu redirections\n",
                static_cast<unsigned long long>(rounds), static_cast<unsigned long long>(bad),
                static_cast<unsigned long long>(s.redirections() - redirected0));
    CHECK_EQ(bad, 0u);
    CHECK(s.redirections() > redirected0);
    g = get_pages(s, 6, moving, gen);
    CHECK(g.ec && !*g.ec);
    CHECK_EQ(g.matched, 256u);
    CHECK_EQ(owner_of(cl, redis::key_slot(s.key(6, moving[0] * kPage))), 2);
    // No page lost: everything of object 5 reads back after the moves.
    g = get_range(s, 5, 0, 1024, 1);
    CHECK(g.ec && !*g.ec);
    CHECK_EQ(g.matched, 1024u);
    CHECK(erase_object(s, 5));
    CHECK(erase_object(s, 6));
    int left = 0;
    for (int i = 0; i < 3; ++i)
        left += std::atoi(cmd(cl.port(i), {"DBSIZE"}).c_str());
    CHECK_EQ(left, 0);
}

} // namespace

int main() {
    test_crc16_and_slots();
    test_slot_map();
    test_urls();
    if (std::system("command -v redis-server >/dev/null && command -v redis-cli >/dev/null") != 0) {
        unit::fail(__FILE__, __LINE__, "redis-server and redis-cli are needed (make deps)");
        return unit::finish("redis_test");
    }
    const std::string root = temp_dir();
    const auto t0 = Clock::now();
    test_single_server(root);
    test_refusals(root);
    test_cluster(root);
    std::printf("  servers' part took %.1f s\n",
                std::chrono::duration<double>(Clock::now() - t0).count());
    if (!unit::failures)
        std::filesystem::remove_all(root);
    else
        std::printf("  logs kept in %s\n", root.c_str());
    return unit::finish("redis_test");
}
