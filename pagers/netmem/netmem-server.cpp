// SPDX-License-Identifier: GPL-2.0
//
// netmem-server: one memory object shared between machines, coherent, as
// Mach's NetMemServer did.  One server per machine serves its local copy of
// the object; the servers talk over TCP and keep every page single-writer,
// many-readers with the coherence engine of netmem.hpp.
//
// Threads: the pager loop (kernel messages), one reader and one writer per
// peer connection, and a timer thread (the hold window).  One mutex guards
// the engine; kernel commands are written under it (they never wait on
// this process), messages are queued to the writers (never blocking).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <machvm/cli.hpp>
#include <machvm/serve.hpp>

#include "netmem.hpp"

namespace {

namespace nm = machvm::netmem;
using Clock = nm::Clock;
using namespace std::chrono_literals;

constexpr const char* kProg = "netmem-server";

const char kHead[] =
    "NAME\n"
    "       netmem-server - one machvm memory object shared, coherent, between\n"
    "       machines\n"
    "\n"
    "SYNOPSIS\n"
    "       netmem-server --node INDEX --peers HOST:PORT,HOST:PORT[,...] [--size SIZE]\n"
    "                     [--hold-us US] [--peer-timeout MS] [--connect-timeout MS]\n"
    "                     [OPTIONS] --socket PATH [--exec CMD [ARG...]]\n"
    "\n"
    "DESCRIPTION\n"
    "       Run one netmem-server on each machine, all with the same --peers\n"
    "       list and --size.  Together they serve one memory object as\n"
    "       distributed shared memory: each machine maps its own server's object\n"
    "       (--socket, --exec) and sees the same bytes.  A page has one writer\n"
    "       or many readers at any time.  A read fault gets a read-only copy\n"
    "       (supplied write-locked); a write fault, or the first write to a\n"
    "       read-only copy (data_unlock), first invalidates every other copy,\n"
    "       through the page's home server, which serves the requests for each\n"
    "       page one at a time in arrival order, so waiting writers go in turn.\n"
    "       Every access is to the latest write of the page (sequential\n"
    "       consistency per page); atomic read-modify-write instructions are\n"
    "       atomic across machines.  Pages start as zeros.\n"
    "\n"
    "       A page's home is server (page mod N) of the N in --peers.  The home\n"
    "       takes the data from the page's owner (which write-locks or flushes\n"
    "       its copy with lock_request and sends what the kernel returns) and\n"
    "       grants the access.  A server keeps the data of the pages it holds in\n"
    "       its own memory, so its kernel may page them out and in freely.\n"
    "\n"
    "       Start-up: each server listens on its own entry's PORT (on every\n"
    "       address), connects to the servers before it in --peers and accepts\n"
    "       those after it, all within --connect-timeout.  Only then is the\n"
    "       object created and handed out (the --socket PATH appears).\n"
    "\n"
    "       Lost servers: a peer whose connection closes, breaks the protocol,\n"
    "       or stays silent for --peer-timeout is lost for good (it cannot\n"
    "       rejoin; restart every server).  The survivors keep serving every\n"
    "       page one of them holds; the homes of the lost server's pages move to\n"
    "       the next server in the list, which asks the survivors what they\n"
    "       hold.  Pages that no survivor holds are lost: every fault on them,\n"
    "       on every machine, gets SIGBUS (data_error EHOSTDOWN).  That includes\n"
    "       pages only the lost server held, pages on their way through it, and\n"
    "       pages the lost server was home of that nobody had touched (the\n"
    "       survivors cannot tell these from the others).  A fault never waits\n"
    "       longer than --timeout.  Stopping one server (SIGTERM) loses it the\n"
    "       same way; stop all at once to end a run.\n"
    "\n"
    "OPTIONS\n"
    "       --node INDEX\n"
    "              This server's place in --peers, from 0.\n"
    "       --peers HOST:PORT,HOST:PORT[,...]\n"
    "              Every server, in the same order on every machine (2 to 64).\n"
    "              HOST is a name or an IPv4 address.\n"
    "       --size SIZE\n"
    "              Object size (K, M, G suffixes), the same on every server;\n"
    "              default 64M, at most 16G.  A server needs about 100 bytes per\n"
    "              page of the object, plus a page for each page it holds.\n"
    "       --hold-us US\n"
    "              A page granted to this machine stays at least US microseconds\n"
    "              before another machine may take it, so that the faulting\n"
    "              thread gets to use it (0 to 1000000, default 1000).\n"
    "       --peer-timeout MS\n"
    "              A peer silent this long is lost (servers ping every 200 ms\n"
    "              when idle; 500 to 600000, default 3000).\n"
    "       --connect-timeout MS\n"
    "              How long start-up waits for every peer (default 30000).\n"
    "       --stats-file PATH\n"
    "              Keep PATH (replaced whole, within 20 ms of a change) holding\n"
    "              two lines, \"messages N\" and \"commands N\": the protocol\n"
    "              messages this server has sent to its peers (not the idle\n"
    "              pings) and the commands it has issued to its kernel.  For\n"
    "              benchmarks (machvm-bench-netmem counts them per operation).\n"
    "       --trace\n"
    "              Log every protocol message and kernel command on stderr.\n"
    "       The common --timeout defaults to 30000 ms here; --threads must be\n"
    "       1 and --cluster 1.  The engine needs the kernel's messages in the\n"
    "       order they were queued: the loop sorts each batch of completions\n"
    "       by seq, so any --depth keeps that order.\n";

const char kExitExtra[] =
    "       The server also exits 1 when a peer cannot be reached at start-up,\n"
    "       or disagrees on --peers, --size or the page size.\n";

const char kTail[] =
    "\n"
    "EXAMPLES\n"
    "       On machine A (10.0.0.1) and machine B (10.0.0.2):\n"
    "       A$ netmem-server --node 0 --peers 10.0.0.1:7000,10.0.0.2:7000 \\\n"
    "              --size 16M --socket /run/netmem.sock\n"
    "       B$ netmem-server --node 1 --peers 10.0.0.1:7000,10.0.0.2:7000 \\\n"
    "              --size 16M --socket /run/netmem.sock\n"
    "       A$ machvm-map --socket /run/netmem.sock --write byte:7\n"
    "       B$ machvm-map --socket /run/netmem.sock --verify byte:7\n"
    "\n"
    "       Two nodes on one machine (two objects standing in for two machines):\n"
    "       netmem-server --node 0 --peers 127.0.0.1:7000,127.0.0.1:7001 --socket /tmp/n0 &\n"
    "       netmem-server --node 1 --peers 127.0.0.1:7000,127.0.0.1:7001 --socket /tmp/n1 &\n";

struct PeerAddr {
    std::string host;
    std::uint16_t port = 0;
};

std::vector<PeerAddr> parse_peers(const std::string& list) {
    std::vector<PeerAddr> out;
    std::size_t pos = 0;
    while (pos <= list.size()) {
        std::size_t end = list.find(',', pos);
        if (end == std::string::npos)
            end = list.size();
        std::string item = list.substr(pos, end - pos);
        std::size_t colon = item.rfind(':');
        if (item.empty() || colon == std::string::npos || colon == 0)
            throw machvm::UsageError("--peers: '" + item + "' is not HOST:PORT");
        PeerAddr p;
        p.host = item.substr(0, colon);
        p.port = static_cast<std::uint16_t>(
            machvm::uint_arg("--peers port", item.substr(colon + 1), 1, 65535));
        out.push_back(std::move(p));
        pos = end + 1;
    }
    if (out.size() < 2 || out.size() > nm::kMaxNodes)
        throw machvm::UsageError("--peers: 2 to 64 servers, got " + std::to_string(out.size()));
    return out;
}

[[noreturn]] void fail(const std::string& what, int err = errno) {
    machvm::throw_error(machvm::errno_code(err), what);
}

bool write_all(int fd, const std::byte* p, std::size_t n) noexcept {
    while (n) {
        ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        n -= static_cast<std::size_t>(w);
    }
    return true;
}

// Reads n bytes, waiting at most until `deadline` for each chunk (poll).
// 0, ETIMEDOUT, ECONNRESET (closed) or the errno.
int read_all(int fd, std::byte* p, std::size_t n, Clock::time_point deadline,
             const std::atomic<bool>* stop = nullptr) noexcept {
    while (n) {
        if (stop && stop->load())
            return ECANCELED;
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        if (left.count() <= 0)
            return ETIMEDOUT;
        pollfd pfd{fd, POLLIN, 0};
        int r = ::poll(&pfd, 1, static_cast<int>(std::min<long>(left.count(), 200)));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return errno;
        if (r == 0)
            continue;
        ssize_t got = ::recv(fd, p, n, 0);
        if (got < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (got < 0)
            return errno;
        if (got == 0)
            return ECONNRESET;
        p += got;
        n -= static_cast<std::size_t>(got);
    }
    return 0;
}

std::vector<std::byte> frame(const nm::Msg& m) {
    std::vector<std::byte> out(sizeof(nm::WireHeader) + m.data.size());
    nm::encode_header(m, out.data());
    if (!m.data.empty())
        std::memcpy(out.data() + sizeof(nm::WireHeader), m.data.data(), m.data.size());
    return out;
}

class Node;

// One TCP connection to a peer: a writer thread drains the queue (and
// pings when idle), a reader thread feeds the engine.
class Conn {
  public:
    Conn(Node& node, std::uint32_t peer, machvm::Fd fd)
        : node_(node), peer_(peer), fd_(std::move(fd)) {}
    Conn(const Conn&) = delete;
    Conn& operator=(const Conn&) = delete;
    ~Conn() { stop(); }

    void start();
    void stop() noexcept;
    // Cut the connection: the peer (and our reader) see it closed.
    void hang_up() noexcept { ::shutdown(fd_.get(), SHUT_RDWR); }
    // Never blocks (the engine's lock may be held).
    void enqueue(std::vector<std::byte>&& bytes) noexcept {
        std::lock_guard<std::mutex> g(mu_);
        if (closed_)
            return;
        // Straight out when nothing waits before it: a thread wake-up less
        // per message.  What does not fit now goes to the writer thread;
        // a broken socket fails its next send there too.
        if (outq_.empty() && !writing_) {
            std::size_t done = 0;
            while (done < bytes.size()) {
                ssize_t w = ::send(fd_.get(), bytes.data() + done, bytes.size() - done,
                                   MSG_NOSIGNAL | MSG_DONTWAIT);
                if (w < 0 && errno == EINTR)
                    continue;
                if (w <= 0)
                    break;
                done += static_cast<std::size_t>(w);
            }
            if (done == bytes.size())
                return;
            bytes.erase(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(done));
        }
        queued_ += bytes.size();
        if (queued_ > kMaxQueued) {
            // A peer that stopped reading: lost (the reader notices the
            // shut-down socket).
            closed_ = true;
            ::shutdown(fd_.get(), SHUT_RDWR);
            cv_.notify_one();
            return;
        }
        outq_.push_back(std::move(bytes));
        cv_.notify_one();
    }

  private:
    void reader() noexcept;
    void writer() noexcept;

    Node& node_;
    std::uint32_t peer_;
    machvm::Fd fd_; // the connection; closed only by the destructor
    // Guards outq_, queued_, writing_, closed_, and a send from enqueue()
    // (the writer thread sends its batch outside it, writing_ set, so that
    // nobody sends in between).  Taken after Node::mu_, never before: no
    // call into Node (deliver, lost) with it held.
    std::mutex mu_;
    std::condition_variable cv_;
    static constexpr std::size_t kMaxQueued = 64u << 20;
    std::deque<std::vector<std::byte>> outq_;
    std::size_t queued_ = 0; // bytes in outq_
    bool writing_ = false;   // the writer thread is sending a batch
    bool closed_ = false;
    std::atomic<bool> stop_{false};
    std::thread reader_, writer_;
};

struct Settings {
    std::uint32_t self = 0;
    std::vector<PeerAddr> peers;
    std::string peers_text;
    std::uint64_t size = 64ull << 20;
    std::chrono::microseconds hold{1000};
    std::chrono::milliseconds peer_timeout{3000};
    std::chrono::milliseconds connect_timeout{30000};
    bool trace = false;
    std::string stats_file; // --stats-file, "" for none
};

class Node final : public machvm::Pager, public nm::Outputs {
  public:
    Node(const Settings& s, machvm::PagerSetup& setup, const machvm_attr& attr)
        : s_(s), setup_(setup), attr_(attr),
          page_size_(setup.version.page_size ? setup.version.page_size : 4096),
          pages_(s.size / page_size_), conns_(s.peers.size()) {}

    Node(const Node&) = delete;
    Node& operator=(const Node&) = delete;
    ~Node() { shutdown(); }

    const Settings& settings() const noexcept { return s_; }
    std::chrono::milliseconds peer_timeout() const noexcept { return s_.peer_timeout; }
    nm::Limits limits() const noexcept {
        return {static_cast<std::uint32_t>(s_.peers.size()), pages_, page_size_};
    }
    nm::Hello hello() const noexcept {
        nm::Hello h{};
        h.version = nm::kProtocolVersion;
        h.nodes = static_cast<std::uint32_t>(s_.peers.size());
        h.pages = pages_;
        h.page_size = page_size_;
        h.peers_hash = nm::hash_string(s_.peers_text);
        return h;
    }

    // Start-up: a connection to every peer, Hello checked both ways.
    void connect_mesh();
    // The object exists: the engine starts, then the peers' threads.
    void start(std::uint64_t object_id);
    void shutdown() noexcept;

    // From the connections.
    void deliver(nm::Msg&& m) {
        std::lock_guard<std::mutex> g(mu_);
        engine_->receive(std::move(m), Clock::now());
        timer_cv_.notify_one();
    }
    void lost(std::uint32_t peer, const std::string& why) noexcept {
        if (lost_[peer].exchange(true))
            return;
        std::fprintf(stderr, "%s: node %u: lost node %u (%s)\n", kProg, s_.self, peer, why.c_str());
        std::lock_guard<std::mutex> g(mu_);
        if (engine_)
            engine_->peer_lost(peer, Clock::now());
        timer_cv_.notify_one();
    }

    // nm::Outputs (engine lock held).
    void send(std::uint32_t to, nm::Msg&& m) noexcept override {
        if (to >= conns_.size() || !conns_[to])
            return;
        try {
            conns_[to]->enqueue(frame(m));
            sent_.fetch_add(1, std::memory_order_relaxed);
        } catch (const std::bad_alloc&) {
            // A message we cannot send: that peer is lost (the reader
            // sees the connection closed).
            conns_[to]->hang_up();
        }
    }
    void disconnect(std::uint32_t peer) noexcept override {
        if (peer >= conns_.size() || !conns_[peer] || lost_[peer].exchange(true))
            return;
        note("lost node " + std::to_string(peer) + " (another node lost it)");
        conns_[peer]->hang_up();
    }
    int kernel(const machvm_cmd& c) noexcept override {
        commands_.fetch_add(1, std::memory_order_relaxed);
        machvm::Result<void> r = setup_.endpoint.command(c);
        return r ? 0 : r.error().value();
    }
    void note(const std::string& line) noexcept override {
        const auto us =
            std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start_);
        std::fprintf(stderr, "%s: node %u: [%lld.%06lld] %s\n", kProg, s_.self,
                     static_cast<long long>(us.count() / 1000000),
                     static_cast<long long>(us.count() % 1000000), line.c_str());
    }

    // machvm::Pager (the loop's one thread).
    void on_init(const machvm_msg& msg, machvm::Reply& reply) noexcept override {
        // on_data_return takes any range: clusters welcome.
        reply.ready(msg.object, attr_, machvm::ready_flags(setup_.version));
        commands_.fetch_add(1, std::memory_order_relaxed);
    }
    void on_data_request(const machvm_msg& msg, machvm::Reply&) noexcept override {
        const nm::Access a = (msg.access & PROT_WRITE) ? nm::Access::Write : nm::Access::Read;
        each_page(
            msg, [&](std::uint64_t p, Clock::time_point now) { engine_->data_request(p, a, now); });
    }
    void on_data_unlock(const machvm_msg& msg, machvm::Reply&) noexcept override {
        each_page(msg,
                  [&](std::uint64_t p, Clock::time_point now) { engine_->data_unlock(p, now); });
    }
    // Refused (non-zero) returns stay with the kernel's default pager.
    void on_data_return(const machvm_msg& msg, machvm::Reply& reply) noexcept override {
        auto done = [&](int err) noexcept {
            commands_.fetch_add(1, std::memory_order_relaxed);
            reply.return_done(msg, err);
        };
        if (!in_range(msg)) {
            done(EINVAL);
            return;
        }
        std::span<std::byte> buf = reply.buffer(msg.length);
        if (buf.empty()) {
            done(ENOMEM);
            return;
        }
        // A stale copy (a newer DATA_RETURN superseded this one) is not
        // ours to store or answer.  RETURN_COPY: one per MACHVM_MAX_XFER.
        commands_.fetch_add((msg.length + MACHVM_MAX_XFER - 1) / MACHVM_MAX_XFER,
                            std::memory_order_relaxed);
        if (!reply.copy_returned(msg, buf))
            return;
        try {
            std::lock_guard<std::mutex> g(mu_);
            for (std::uint64_t i = 0; i < msg.length / page_size_; i++)
                engine_->data_returned(msg.offset / page_size_ + i,
                                       buf.subspan(i * page_size_, page_size_));
        } catch (const std::bad_alloc&) {
            done(ENOMEM);
            return;
        }
        done(0);
    }
    void on_lock_completed(const machvm_msg& msg, machvm::Reply&) noexcept override {
        each_page(msg, [&](std::uint64_t p, Clock::time_point now) {
            engine_->lock_completed(p, msg.count, now);
        });
    }
    void on_terminate(const machvm_msg&, machvm::Reply&) noexcept override {
        try {
            std::lock_guard<std::mutex> g(mu_);
            engine_->object_gone();
        } catch (const std::exception& e) {
            note(std::string("out of memory at the object's end: ") + e.what());
        }
    }

    void print_stats() {
        std::lock_guard<std::mutex> g(mu_);
        const nm::Stats& st = engine_->stats();
        std::fprintf(stderr,
                     "%s: node %u: requests %llu grants %llu local hits %llu fetches %llu "
                     "invalidations %llu returns %llu lost pages %llu nodes lost %llu\n",
                     kProg, s_.self, static_cast<unsigned long long>(st.requests_sent),
                     static_cast<unsigned long long>(st.grants),
                     static_cast<unsigned long long>(st.local_hits),
                     static_cast<unsigned long long>(st.fetches),
                     static_cast<unsigned long long>(st.invalidations),
                     static_cast<unsigned long long>(st.returns),
                     static_cast<unsigned long long>(st.lost_pages),
                     static_cast<unsigned long long>(st.nodes_lost));
    }

  private:
    bool in_range(const machvm_msg& msg) const noexcept {
        return msg.offset % page_size_ == 0 && msg.length % page_size_ == 0 &&
               msg.offset / page_size_ < pages_ &&
               msg.length / page_size_ <= pages_ - msg.offset / page_size_;
    }
    template <typename F> void each_page(const machvm_msg& msg, F&& f) noexcept {
        if (!in_range(msg)) {
            note("message out of the object's range ignored");
            return;
        }
        try {
            std::lock_guard<std::mutex> g(mu_);
            const Clock::time_point now = Clock::now();
            for (std::uint64_t i = 0; i < msg.length / page_size_; i++)
                f(msg.offset / page_size_ + i, now);
            timer_cv_.notify_one();
        } catch (const std::exception& e) {
            note(std::string("out of memory serving a fault: ") + e.what());
        }
    }
    void timer_loop() noexcept;
    machvm::Fd accept_one(int lfd, Clock::time_point deadline);
    machvm::Fd connect_one(std::uint32_t peer, Clock::time_point deadline);
    void send_hello(int fd, std::uint32_t peer);
    std::pair<std::uint32_t, nm::Hello> recv_hello(int fd, std::uint32_t peer,
                                                   Clock::time_point deadline);
    void check_hello(std::uint32_t peer, const nm::Hello& theirs);

    Settings s_;
    machvm::PagerSetup& setup_;
    machvm_attr attr_;
    std::uint32_t page_size_;
    std::uint64_t pages_;
    // Guards engine_ (every call) and the timer wait.  Taken before a
    // Conn's mutex (the engine sends under it).  The kernel commands and,
    // with --trace, the log lines are written under it: a slow stderr
    // slows the protocol (they never wait on this process, though).
    std::mutex mu_;
    std::condition_variable timer_cv_;
    std::unique_ptr<nm::Engine> engine_;
    std::vector<machvm::Fd> fds_; // connections until start()
    // Filled by start() before any thread runs, then only read (no lock);
    // a Conn lives until the Node does.
    std::vector<std::unique_ptr<Conn>> conns_;
    std::atomic<bool> lost_[nm::kMaxNodes] = {}; // said lost (once each)
    std::atomic<bool> stop_{false};
    std::thread timer_;
    const Clock::time_point start_ = Clock::now(); // for the log's times
    // What --stats-file reports, and the thread that writes it.
    std::atomic<std::uint64_t> sent_{0};
    std::atomic<std::uint64_t> commands_{0};
    std::thread stats_;
    void stats_loop() noexcept;
};

void Conn::start() {
    reader_ = std::thread([this] { reader(); });
    writer_ = std::thread([this] { writer(); });
}

void Conn::stop() noexcept {
    stop_.store(true);
    {
        std::lock_guard<std::mutex> g(mu_);
        closed_ = true;
        cv_.notify_all();
    }
    if (fd_)
        ::shutdown(fd_.get(), SHUT_RDWR);
    if (reader_.joinable())
        reader_.join();
    if (writer_.joinable())
        writer_.join();
}

void Conn::reader() noexcept {
    const nm::Limits lim = node_.limits();
    std::byte hdr[sizeof(nm::WireHeader)];
    std::string why;
    for (;;) {
        // A peer silent for the timeout (it pings when idle) is lost.
        int e = read_all(fd_.get(), hdr, sizeof(hdr), Clock::now() + node_.peer_timeout(), &stop_);
        if (e) {
            why = e == ETIMEDOUT    ? "silent for the peer timeout"
                  : e == ECONNRESET ? "connection closed"
                                    : std::strerror(e);
            break;
        }
        nm::WireHeader h = nm::decode_header(hdr);
        if (machvm::Result<void> ok = nm::check_header(h, lim, peer_); !ok) {
            why = "protocol error: " + ok.error().message() + " in a message of type " +
                  std::to_string(h.type);
            break;
        }
        nm::Msg m;
        m.type = static_cast<nm::Type>(h.type);
        m.flags = h.flags;
        m.from = h.from;
        m.page = h.page;
        m.arg = h.arg;
        try {
            m.data.resize(h.length);
        } catch (const std::bad_alloc&) {
            why = "out of memory";
            break;
        }
        if (h.length && (e = read_all(fd_.get(), m.data.data(), h.length,
                                      Clock::now() + node_.peer_timeout(), &stop_))) {
            why = std::strerror(e);
            break;
        }
        if (m.type == nm::Type::Ping || m.type == nm::Type::Hello)
            continue;
        try {
            node_.deliver(std::move(m));
        } catch (const std::exception& ex) {
            why = std::string("out of memory: ") + ex.what();
            break;
        }
    }
    if (!stop_.load())
        node_.lost(peer_, why);
    hang_up(); // the peer learns it too, now, not after its peer timeout
    std::lock_guard<std::mutex> g(mu_);
    closed_ = true;
    cv_.notify_all();
}

void Conn::writer() noexcept {
    nm::Msg ping;
    ping.type = nm::Type::Ping;
    ping.from = node_.settings().self;
    const std::vector<std::byte> ping_frame = frame(ping);
    std::unique_lock<std::mutex> lk(mu_);
    for (;;) {
        cv_.wait_for(lk, 200ms, [&] { return closed_ || !outq_.empty(); });
        if (closed_)
            break;
        std::deque<std::vector<std::byte>> batch;
        batch.swap(outq_);
        queued_ = 0;
        writing_ = true;
        lk.unlock();
        bool ok = true;
        if (batch.empty())
            ok = write_all(fd_.get(), ping_frame.data(), ping_frame.size());
        for (auto& b : batch)
            if (ok)
                ok = write_all(fd_.get(), b.data(), b.size());
        lk.lock();
        writing_ = false;
        if (!ok) {
            closed_ = true;
            lk.unlock();
            if (!stop_.load())
                node_.lost(peer_, "send failed");
            ::shutdown(fd_.get(), SHUT_RDWR); // the reader ends too
            return;
        }
    }
}

machvm::Fd Node::connect_one(std::uint32_t peer, Clock::time_point deadline) {
    const PeerAddr& a = s_.peers[peer];
    std::string last = "no answer";
    while (Clock::now() < deadline) {
        addrinfo hints{};
        hints.ai_family = AF_INET;
        hints.ai_socktype = SOCK_STREAM;
        addrinfo* res = nullptr;
        int g = ::getaddrinfo(a.host.c_str(), std::to_string(a.port).c_str(), &hints, &res);
        if (g) {
            last = gai_strerror(g);
        } else {
            machvm::Fd fd(::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
            int r = fd ? ::connect(fd.get(), res->ai_addr, res->ai_addrlen) : -1;
            ::freeaddrinfo(res);
            if (r == 0)
                return fd;
            last = std::strerror(errno);
        }
        std::this_thread::sleep_for(100ms);
    }
    throw std::runtime_error("node " + std::to_string(peer) + " at " + a.host + ":" +
                             std::to_string(a.port) + " unreachable within --connect-timeout (" +
                             last + ")");
}

machvm::Fd Node::accept_one(int lfd, Clock::time_point deadline) {
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        if (left.count() <= 0)
            return machvm::Fd();
        pollfd pfd{lfd, POLLIN, 0};
        int r = ::poll(&pfd, 1, static_cast<int>(std::min<long>(left.count(), 200)));
        if (r <= 0)
            continue;
        int fd = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd >= 0)
            return machvm::Fd(fd);
    }
}

void Node::send_hello(int fd, std::uint32_t peer) {
    nm::Msg m;
    m.type = nm::Type::Hello;
    m.from = s_.self;
    m.data.resize(sizeof(nm::Hello));
    nm::encode_hello(hello(), m.data.data());
    const std::vector<std::byte> bytes = frame(m);
    if (!write_all(fd, bytes.data(), bytes.size()))
        fail("sending Hello to node " + std::to_string(peer));
}

// Reads a Hello: from `peer`, or (kNoNode) from any node after this one
// not connected yet.  Returns the sender and its Hello; throws if it is
// not a node of ours.
std::pair<std::uint32_t, nm::Hello> Node::recv_hello(int fd, std::uint32_t peer,
                                                     Clock::time_point deadline) {
    std::byte hdr[sizeof(nm::WireHeader)];
    std::byte body[sizeof(nm::Hello)];
    const std::string who =
        peer == nm::kNoNode ? "a connecting node" : "node " + std::to_string(peer);
    if (int e = read_all(fd, hdr, sizeof(hdr), deadline))
        fail("waiting for Hello from " + who, e);
    nm::WireHeader h = nm::decode_header(hdr);
    if (peer == nm::kNoNode) {
        if (h.from <= s_.self || h.from >= s_.peers.size() || fds_[h.from])
            throw std::runtime_error(who + " claims to be node " + std::to_string(h.from));
        peer = h.from;
    }
    if (h.type != static_cast<std::uint16_t>(nm::Type::Hello) ||
        !nm::check_header(h, limits(), peer))
        throw std::runtime_error(who + " does not speak this protocol");
    if (int e = read_all(fd, body, sizeof(body), deadline))
        fail("waiting for Hello from " + who, e);
    return {peer, nm::decode_hello(body)};
}

// A node of ours that disagrees: fatal, on both sides.
void Node::check_hello(std::uint32_t peer, const nm::Hello& theirs) {
    nm::Hello ours = hello();
    const std::string name = "node " + std::to_string(peer);
    if (theirs.pad != 0)
        throw std::runtime_error(name + " sent a Hello with padding set");
    if (theirs.version != ours.version)
        throw std::runtime_error(name + " speaks protocol version " +
                                 std::to_string(theirs.version));
    if (theirs.nodes != ours.nodes || theirs.peers_hash != ours.peers_hash)
        throw std::runtime_error(name + " has another --peers list");
    if (theirs.pages != ours.pages || theirs.page_size != ours.page_size)
        throw std::runtime_error(name + " serves " + std::to_string(theirs.pages) + " pages of " +
                                 std::to_string(theirs.page_size) + " bytes, this one " +
                                 std::to_string(ours.pages) + " of " +
                                 std::to_string(ours.page_size) + " (--size)");
}

void Node::connect_mesh() {
    const auto deadline = Clock::now() + s_.connect_timeout;
    const std::uint32_t n = static_cast<std::uint32_t>(s_.peers.size());
    fds_.resize(n);
    machvm::Fd lfd;
    if (s_.self + 1 < n) {
        lfd = machvm::Fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        if (!lfd)
            fail("socket");
        int one = 1;
        ::setsockopt(lfd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        sa.sin_port = htons(s_.peers[s_.self].port);
        sa.sin_addr.s_addr = htonl(INADDR_ANY);
        if (::bind(lfd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) < 0)
            fail("bind to port " + std::to_string(s_.peers[s_.self].port));
        if (::listen(lfd.get(), 64) < 0)
            fail("listen");
    }
    for (std::uint32_t p = 0; p < s_.self; p++) {
        machvm::Fd fd = connect_one(p, deadline);
        send_hello(fd.get(), p);
        check_hello(p, recv_hello(fd.get(), p, deadline).second);
        fds_[p] = std::move(fd);
    }
    std::uint32_t want = n - 1 - s_.self;
    while (want) {
        machvm::Fd fd = accept_one(lfd.get(), deadline);
        if (!fd)
            throw std::runtime_error(std::to_string(want) +
                                     " of the nodes after this one did not connect within "
                                     "--connect-timeout");
        // Its Hello names it; anything else is dropped.
        std::pair<std::uint32_t, nm::Hello> got;
        try {
            got = recv_hello(fd.get(), nm::kNoNode, deadline);
            send_hello(fd.get(), got.first);
        } catch (const std::exception& e) {
            note(std::string("dropped a connection: ") + e.what());
            continue;
        }
        check_hello(got.first, got.second);
        fds_[got.first] = std::move(fd);
        want--;
    }
    for (auto& fd : fds_) {
        if (!fd)
            continue;
        int one = 1;
        ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
}

void Node::start(std::uint64_t object_id) {
    nm::Engine::Config c;
    c.self = s_.self;
    c.nodes = static_cast<std::uint32_t>(s_.peers.size());
    c.pages = pages_;
    c.page_size = page_size_;
    c.object = object_id;
    c.hold = s_.hold;
    c.trace = s_.trace;
    {
        std::lock_guard<std::mutex> g(mu_);
        engine_ = std::make_unique<nm::Engine>(c, *this);
    }
    for (std::uint32_t p = 0; p < fds_.size(); p++)
        if (fds_[p])
            conns_[p] = std::make_unique<Conn>(*this, p, std::move(fds_[p]));
    for (auto& c2 : conns_)
        if (c2)
            c2->start();
    timer_ = std::thread([this] { timer_loop(); });
    if (!s_.stats_file.empty())
        stats_ = std::thread([this] { stats_loop(); });
}

// --stats-file: rewritten (a new file renamed over it) when a count moved.
void Node::stats_loop() noexcept {
    const std::string tmp = s_.stats_file + ".tmp";
    std::uint64_t last_sent = ~0ull, last_cmds = ~0ull;
    while (!stop_.load()) {
        const std::uint64_t sent = sent_.load(std::memory_order_relaxed);
        const std::uint64_t cmds = commands_.load(std::memory_order_relaxed);
        if (sent != last_sent || cmds != last_cmds) {
            FILE* f = std::fopen(tmp.c_str(), "w");
            bool ok = f && std::fprintf(f, "messages %llu\ncommands %llu\n",
                                        static_cast<unsigned long long>(sent),
                                        static_cast<unsigned long long>(cmds)) > 0;
            if (f && std::fclose(f) != 0)
                ok = false;
            if (ok && std::rename(tmp.c_str(), s_.stats_file.c_str()) == 0) {
                last_sent = sent;
                last_cmds = cmds;
            }
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
}

void Node::timer_loop() noexcept {
    std::unique_lock<std::mutex> lk(mu_);
    while (!stop_.load()) {
        std::optional<Clock::time_point> next = engine_->next_timer();
        if (next)
            timer_cv_.wait_until(lk, *next);
        else
            timer_cv_.wait_for(lk, 100ms);
        if (stop_.load())
            break;
        try {
            engine_->run_timers(Clock::now());
        } catch (const std::exception& e) {
            note(std::string("out of memory in a deferred operation: ") + e.what());
        }
    }
}

void Node::shutdown() noexcept {
    stop_.store(true);
    for (auto& c : conns_)
        if (c)
            c->stop();
    {
        std::lock_guard<std::mutex> g(mu_);
        timer_cv_.notify_all();
    }
    if (timer_.joinable())
        timer_.join();
    if (stats_.joinable())
        stats_.join();
}

const machvm::PagerHelp kHelp{kHead, kExitExtra, kTail};

} // namespace

int main(int argc, char** argv) {
    try {
        machvm::PagerOptions opts;
        Settings s;
        bool have_node = false;
        auto own = [&](machvm::ArgReader& args) {
            if (auto v = args.value("--node")) {
                s.self = static_cast<std::uint32_t>(
                    machvm::uint_arg("--node", *v, 0, nm::kMaxNodes - 1));
                have_node = true;
                return true;
            }
            if (auto v = args.value("--peers")) {
                s.peers_text = *v;
                s.peers = parse_peers(*v);
                return true;
            }
            if (auto v = args.value("--size")) {
                s.size = machvm::size_arg("--size", *v);
                return true;
            }
            if (auto v = args.value("--hold-us")) {
                s.hold = std::chrono::microseconds(machvm::uint_arg("--hold-us", *v, 0, 1000000));
                return true;
            }
            if (auto v = args.value("--peer-timeout")) {
                s.peer_timeout =
                    std::chrono::milliseconds(machvm::uint_arg("--peer-timeout", *v, 500, 600000));
                return true;
            }
            if (auto v = args.value("--connect-timeout")) {
                s.connect_timeout = std::chrono::milliseconds(
                    machvm::uint_arg("--connect-timeout", *v, 100, 3600000));
                return true;
            }
            if (args.flag("--trace")) {
                s.trace = true;
                return true;
            }
            if (auto v = args.value("--stats-file")) {
                if (v->empty())
                    throw machvm::UsageError("--stats-file: an empty path");
                s.stats_file = *v;
                return true;
            }
            return false;
        };
        if (!machvm::parse_pager_args(argc, argv, kHelp, opts, own))
            return machvm::kExitOk;
        if (!have_node || s.peers.empty())
            throw machvm::UsageError("--node and --peers are required");
        if (s.self >= s.peers.size())
            throw machvm::UsageError("--node " + std::to_string(s.self) + ": --peers lists " +
                                     std::to_string(s.peers.size()) + " servers");
        if (s.size > (16ull << 30))
            throw machvm::UsageError("--size: at most 16G");
        if (opts.threads != 1)
            throw machvm::UsageError("--threads: netmem-server serves with one thread");
        if (opts.attr.cluster_pages != 1)
            throw machvm::UsageError("--cluster: netmem-server serves one page per request");
        if (opts.attr.timeout_ms == 0)
            opts.attr.timeout_ms = 30000;
        // The engine needs the kernel's messages in queue order (the
        // DATA_RETURNs of a lock_request before its LOCK_COMPLETED): with
        // one thread, PagerLoop hands them over in that order at any depth.
        opts.max_prot = PROT_READ | PROT_WRITE | (opts.max_prot & PROT_EXEC);

        machvm::block_serve_signals(); // before any thread
        machvm::PagerSetup setup = machvm::open_pager_setup();
        if (!(setup.version.features & MACHVM_F_LOCKS))
            throw std::runtime_error("the machvm module has no write locks (MACHVM_F_LOCKS)");
        s.size = machvm::checked_object_size(setup, s.size, "--size");
        Node node(s, setup, opts.attr);
        node.connect_mesh();
        machvm::MemoryObject object = machvm::create_pager_object(setup, s.size, "--size", opts);
        node.start(object.id);
        std::fprintf(stderr, "%s: node %u of %zu: serving %llu bytes\n", kProg, s.self,
                     s.peers.size(), static_cast<unsigned long long>(s.size));
        int status = machvm::serve(kProg, setup, node, std::move(object), opts);
        node.print_stats();
        node.shutdown();
        return status;
    } catch (...) {
        return machvm::report_exception(kProg);
    }
}
