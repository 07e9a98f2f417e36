// SPDX-License-Identifier: GPL-2.0
//
// machvm-bench-netmem: what network memory (pagers/netmem-server) costs
// against the network under it.  Two bench processes, node a and node b
// (two machines, or one with --local), each start their own netmem-server
// for one shared object, map it, and meet over a TCP control connection of
// their own.  Over that connection they measure the raw TCP round trip;
// over the object, a write-fault ping-pong on one page and cold read
// faults served from the other node.  Node a reports; latencies are read
// as multiples of the TCP round trip.
//
// Nothing waits forever: a watchdog thread ends the process (exit status
// 1, with the phase it was in) when a phase makes no progress for
// --timeout seconds, which also ends a fault stuck in the kernel (the
// servers' own fault timeout is longer), and when a netmem-server child
// dies early; a SIGBUS is reported and ends it too.  Children get SIGTERM
// if their parent dies (PR_SET_PDEATHSIG).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <machvm/cli.hpp>
#include <machvm/fd.hpp>
#include <machvm/fdpass.hpp>

#include "bench/bench.hpp"

namespace {

namespace bench = machvm::bench;
using bench::json_string;
using bench::now_ns;
using bench::page_size;
using bench::ratio;
using bench::throw_errno;

constexpr const char* kProg = "machvm-bench-netmem";
constexpr std::uint64_t kMagic = 0x6d76'6e65'746d'656dull; // "mvnetmem"
constexpr std::uint64_t kVersion = 1;

const char kHelp[] =
    "NAME\n"
    "       machvm-bench-netmem - network memory (netmem-server) latency against the\n"
    "       TCP round trip between two nodes\n"
    "\n"
    "SYNOPSIS\n"
    "       machvm-bench-netmem --role a|b --self IP --peer IP [--port PORT]\n"
    "                           [--rounds N] [--warmup N] [--size BYTES] [--hold-us US]\n"
    "                           [--server PATH] [--server-arg ARG]... [--timeout SEC]\n"
    "                           [--yield | --poll-us US] [--rtt-only] [--json PATH]\n"
    "                           [--json-name NAME]\n"
    "                           [--quiet]\n"
    "       machvm-bench-netmem --local [OPTIONS]\n"
    "\n"
    "DESCRIPTION\n"
    "       Run once on each of two machines, the same options on both except\n"
    "       --role, --self and --peer.  Each node starts its own netmem-server\n"
    "       (node index 0 for a, 1 for b, peers \"A:PORT,B:PORT\", --socket\n"
    "       /tmp/netmem-bench-ROLE.sock), takes the object's descriptor from its\n"
    "       socket and maps the whole object MAP_SHARED, read and write.  The two\n"
    "       bench processes meet over a TCP connection of their own on PORT+2 (a\n"
    "       listens, b connects, TCP_NODELAY), check that they were given the same\n"
    "       settings, and step through three measurements, each --warmup untimed\n"
    "       rounds then --rounds timed ones:\n"
    "\n"
    "       tcp_rtt     A 1-byte ping-pong over the control connection: a sends,\n"
    "                   b echoes.  One sample is a's send to a's receive.\n"
    "       pingpong    Page 0 holds a counter.  a writes the odd values, b waits\n"
    "                   for each (spinning reads) and writes the next even one; a\n"
    "                   waits for that and writes the next odd one.  One sample,\n"
    "                   a cycle, is from the start of a's write to the start of\n"
    "                   a's next write: two write faults that take the page away\n"
    "                   from the other node and two read faults that fetch it back\n"
    "                   (at least two ownership transfers).  A value other than\n"
    "                   the last written or the awaited one fails the run.\n"
    "       read_fault  For pages k = 1, 2, ... (each touched once, so every read\n"
    "                   is a cold fault): b writes page k, so that b holds it\n"
    "                   exclusively, waits out the servers' hold time (--hold-us)\n"
    "                   and tells a over the control connection; a times one\n"
    "                   8-byte read of page k, a read fault served by b across\n"
    "                   the network, then checks the value and acks.\n"
    "\n"
    "       Node a prints p50, p99, min, mean and max of each, in microseconds, and\n"
    "       the ratios pingpong / tcp_rtt and read_fault / tcp_rtt, of the p50s\n"
    "       and of the means: how many network round trips a coherent page costs.\n"
    "       Then, in units the network cannot blur, what both servers did per\n"
    "       operation (each server counts into its --stats-file; the counts cover\n"
    "       each whole phase, warmup included, over warmup + rounds operations):\n"
    "       protocol messages sent between them (messages_per_pingpong,\n"
    "       messages_per_read_fault; not their idle pings) and commands issued to\n"
    "       their kernels (commands_per_pingpong, commands_per_read_fault).  A\n"
    "       read_fault round includes b's write of the page as well as a's read.\n"
    "       Node b notes its progress on stderr.  At the end both nodes meet once\n"
    "       more, unmap the object, stop their server (SIGTERM) and reap it.\n"
    "\n"
    "       --local runs both nodes on this machine: a child process plays b, the\n"
    "       servers listen on 127.0.0.1:PORT (a) and 127.0.0.1:PORT+1 (b), and\n"
    "       --yield is on unless --poll-us is given (four busy processes may\n"
    "       share few CPUs).\n"
    "\n"
    "OUTPUT\n"
    "       Progress goes to stderr, with the netmem-server's own output.  Node a's\n"
    "       stdout gets the table, then a line \"@@JSON netmem.json\" (see\n"
    "       --json-name), the results as one JSON document, and a line \"@@END\"\n"
    "       (make bench keeps that block as build/bench/<kernel>/netmem.json).\n"
    "\n"
    "OPTIONS\n"
    "       --role a|b\n"
    "              This node's part.\n"
    "       --self IP, --peer IP\n"
    "              IPv4 addresses of this node and of the other one.\n"
    "       --local\n"
    "              Both nodes here (see above); no --role, --self or --peer.\n"
    "       --port PORT\n"
    "              The servers' port (default 7300); the control connection\n"
    "              uses PORT+2.\n"
    "       --rounds N\n"
    "              Timed rounds of each measurement (1-100000, default 200).\n"
    "       --warmup N\n"
    "              Untimed rounds before them (0-10000, default 20).\n"
    "       --size BYTES\n"
    "              The object's size, passed to the servers (K, M, G suffixes;\n"
    "              default 64M).  read_fault needs warmup + rounds + 1 pages.\n"
    "       --hold-us US\n"
    "              Passed to the servers as --hold-us (0-1000000, default 1000, as\n"
    "              theirs), and recorded.\n"
    "       --server PATH\n"
    "              The netmem-server to run (default: netmem-server next to this\n"
    "              program, else from PATH).\n"
    "       --server-arg ARG\n"
    "              One more argument for the servers (repeatable).\n"
    "       --timeout SEC\n"
    "              Give up when a phase makes no progress for SEC seconds\n"
    "              (1-3600, default 60); also the servers' --connect-timeout.\n"
    "              Their fault --timeout is 5 s longer, so that a stuck fault\n"
    "              is reported here, with its phase, rather than as a SIGBUS.\n"
    "       --yield\n"
    "              sched_yield() between the reads of a spinning wait.\n"
    "       --poll-us US\n"
    "              Sleep US microseconds (1-100000) between the reads of a\n"
    "              spinning wait instead, so that the waiting CPU goes idle: for\n"
    "              virtual machines sharing few host CPUs, where a spinning vCPU\n"
    "              takes a host CPU from the servers.  Adds up to US (and a\n"
    "              timer wake-up) to each pingpong wait.\n"
    "       --rtt-only\n"
    "              Only tcp_rtt: no server, no object.\n"
    "       --json PATH\n"
    "              Node a also writes the JSON document to PATH.\n"
    "       --json-name NAME\n"
    "              The name on the \"@@JSON\" line (default netmem.json).\n"
    "       --quiet, -q\n"
    "              No progress on stderr.\n"
    "       --help, -h\n"
    "              This text.\n"
    "\n"
    "EXIT STATUS\n"
    "       0 done, 1 failed (the peer or a server died or went silent, a value\n"
    "       read back wrong, the settings of the two nodes differ), 2 usage.\n"
    "\n"
    "EXAMPLES\n"
    "       machvm-bench-netmem --role a --self 10.0.2.1 --peer 10.0.2.2   # on a\n"
    "       machvm-bench-netmem --role b --self 10.0.2.2 --peer 10.0.2.1   # on b\n"
    "       machvm-bench-netmem --local --rounds 50\n";

struct Options {
    char role = 0; // 'a' or 'b'
    bool local = false;
    std::string self, peer;
    std::uint16_t port = 7300;
    unsigned rounds = 200;
    unsigned warmup = 20;
    std::uint64_t size = 64ull << 20;
    std::uint64_t hold_us = 1000; // netmem-server's default
    std::string server;
    std::vector<std::string> server_args;
    unsigned timeout_s = 60;
    bool yield = false;
    unsigned poll_us = 0;
    bool rtt_only = false;
    bench::Output out{"", "netmem.json"};
};

void check_ipv4(const char* option, const std::string& ip) {
    in_addr a;
    if (::inet_pton(AF_INET, ip.c_str(), &a) != 1)
        throw machvm::UsageError(std::string(option) + ": '" + ip + "' is not an IPv4 address");
}

// One option at the reader's position; false if it is none of ours.
bool option(machvm::ArgReader& args, Options& o) {
    if (auto v = args.value("--role")) {
        o.role = bench::choice_arg<char>("--role", *v, {{"a", 'a'}, {"b", 'b'}});
    } else if (auto v = args.value("--self")) {
        o.self = *v;
    } else if (auto v = args.value("--peer")) {
        o.peer = *v;
    } else if (args.flag("--local")) {
        o.local = true;
    } else if (auto v = args.value("--port")) {
        o.port = static_cast<std::uint16_t>(machvm::uint_arg("--port", *v, 1, 65533));
    } else if (auto v = args.value("--rounds")) {
        o.rounds = static_cast<unsigned>(machvm::uint_arg("--rounds", *v, 1, 100000));
    } else if (auto v = args.value("--warmup")) {
        o.warmup = static_cast<unsigned>(machvm::uint_arg("--warmup", *v, 0, 10000));
    } else if (auto v = args.value("--size")) {
        o.size = machvm::size_arg("--size", *v);
    } else if (auto v = args.value("--hold-us")) {
        o.hold_us = machvm::uint_arg("--hold-us", *v, 0, 1000000);
    } else if (auto v = args.value("--server")) {
        if (v->empty())
            throw machvm::UsageError("--server: empty path");
        o.server = *v;
    } else if (auto v = args.value("--server-arg")) {
        o.server_args.push_back(*v);
    } else if (auto v = args.value("--timeout")) {
        o.timeout_s = static_cast<unsigned>(machvm::uint_arg("--timeout", *v, 1, 3600));
    } else if (args.flag("--yield")) {
        o.yield = true;
    } else if (auto v = args.value("--poll-us")) {
        o.poll_us = static_cast<unsigned>(machvm::uint_arg("--poll-us", *v, 1, 100000));
    } else if (args.flag("--rtt-only")) {
        o.rtt_only = true;
    } else if (bench::output_option(args, o.out)) {
    } else {
        return false;
    }
    return true;
}

// The combination of options; UsageError.
void check(Options& o) {
    if (o.yield && o.poll_us)
        throw machvm::UsageError("--yield and --poll-us exclude each other");
    if (o.local) {
        if (o.role || !o.self.empty() || !o.peer.empty())
            throw machvm::UsageError("--local takes no --role, --self or --peer");
        o.self = o.peer = "127.0.0.1";
        o.yield = o.poll_us == 0;
    } else {
        if (!o.role)
            throw machvm::UsageError("--role a|b is required (or --local)");
        if (o.self.empty() || o.peer.empty())
            throw machvm::UsageError("--self and --peer are required (or --local)");
        check_ipv4("--self", o.self);
        check_ipv4("--peer", o.peer);
    }
    const std::uint64_t page = page_size();
    if (o.size == 0 || o.size % page)
        throw machvm::UsageError("--size must be a non-zero multiple of the page size");
    if (!o.rtt_only && o.size / page < std::uint64_t{o.warmup} + o.rounds + 1)
        throw machvm::UsageError("--size: read_fault needs warmup + rounds + 1 = " +
                                 std::to_string(std::uint64_t{o.warmup} + o.rounds + 1) +
                                 " pages; the object has " + std::to_string(o.size / page));
}

// ---- the watchdog: deadlines and children ----

// Ends the process (exit status 1) when the current phase makes no
// progress for its timeout, or when a child that must live exits.  Owns
// the reaping of every child it watches.
class Watchdog {
  public:
    Watchdog(char node, unsigned timeout_s)
        : node_(node), timeout_ns_(std::uint64_t{timeout_s} * 1000000000u) {
        thread_ = std::thread([this] { run(); });
    }
    Watchdog(const Watchdog&) = delete;
    Watchdog& operator=(const Watchdog&) = delete;
    ~Watchdog() {
        {
            std::lock_guard lk(mu_);
            stop_ = true;
        }
        cv_.notify_all();
        thread_.join();
    }

    // A new phase: its name for messages, the deadline restarted.  A
    // timeout of 0 means the default one.
    void phase(const char* name, std::uint64_t timeout_ns = 0) {
        std::lock_guard lk(mu_);
        phase_ = name;
        doing_.store(nullptr, std::memory_order_relaxed);
        reads_.store(0, std::memory_order_relaxed);
        phase_ticks_ = ticks_.load(std::memory_order_relaxed);
        phase_timeout_ns_ = timeout_ns ? timeout_ns : timeout_ns_;
        deadline_.store(now_ns() + phase_timeout_ns_, std::memory_order_relaxed);
    }
    // Progress in the current phase: the watchdog moves the deadline when
    // it sees the count change (no clock read in the measured loops).
    void tick() noexcept { ticks_.fetch_add(1, std::memory_order_relaxed); }
    // What the measured loop is doing (a static string, or nullptr), for
    // the no-progress message: stuck in a fault, or reading a stale value.
    void doing(const char* what) noexcept { doing_.store(what, std::memory_order_relaxed); }
    void seen(std::uint64_t want, std::uint64_t got) noexcept {
        want_.store(want, std::memory_order_relaxed);
        got_.store(got, std::memory_order_relaxed);
        reads_.fetch_add(1, std::memory_order_relaxed);
    }
    // No deadline until the next phase().
    void disarm() {
        std::lock_guard lk(mu_);
        deadline_.store(UINT64_MAX, std::memory_order_relaxed);
    }

    // Watch child `pid`: while must_live, its exit ends the process.
    void watch(pid_t pid, std::string name, bool must_live) {
        std::lock_guard lk(mu_);
        children_.push_back(Child{pid, std::move(name), must_live, false, 0});
    }
    // From now on the child may exit.
    void release(pid_t pid) {
        std::lock_guard lk(mu_);
        for (Child& c : children_)
            if (c.pid == pid)
                c.must_live = false;
    }
    // Waits until the child has exited (reaped here): its wait status, or
    // nothing after timeout_ms.
    std::optional<int> wait_exit(pid_t pid, unsigned timeout_ms) {
        std::unique_lock lk(mu_);
        const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
        for (;;) {
            for (const Child& c : children_)
                if (c.pid == pid && c.exited)
                    return c.status;
            if (cv_.wait_until(lk, until) == std::cv_status::timeout)
                return std::nullopt;
        }
    }

  private:
    struct Child {
        pid_t pid;
        std::string name;
        bool must_live;
        bool exited;
        int status;
    };

    // Ends the process (mu_ held): message, SIGTERM to every child, exit 1.
    [[noreturn]] void die(const std::string& msg) {
        std::fprintf(stderr, "%s: node %c: %s\n", kProg, node_, msg.c_str());
        for (const Child& c : children_)
            if (!c.exited)
                ::kill(c.pid, SIGTERM);
        std::fflush(nullptr);
        ::_exit(machvm::kExitFailure);
    }

    std::string where() const {
        std::string w = " after " + std::to_string(ticks_.load() - phase_ticks_) + " steps";
        if (const char* d = doing_.load())
            w += std::string("; ") + d;
        if (reads_.load())
            w += "; last read " + std::to_string(got_.load()) + " (awaiting " +
                 std::to_string(want_.load()) + "), " + std::to_string(reads_.load()) +
                 " reads in all";
        return w;
    }

    static std::string describe(int st) {
        if (WIFEXITED(st))
            return "exit status " + std::to_string(WEXITSTATUS(st));
        if (WIFSIGNALED(st))
            return std::string("signal ") + ::strsignal(WTERMSIG(st));
        return "wait status " + std::to_string(st);
    }

    void run() {
        std::unique_lock lk(mu_);
        while (!stop_) {
            cv_.wait_for(lk, std::chrono::milliseconds(20));
            if (stop_)
                break;
            bool changed = false;
            for (Child& c : children_) {
                if (c.exited)
                    continue;
                int st;
                pid_t r = ::waitpid(c.pid, &st, WNOHANG);
                if (r == 0 || (r < 0 && errno == EINTR))
                    continue;
                c.exited = true;
                c.status = r < 0 ? -1 : st;
                changed = true;
                if (c.must_live)
                    die(c.name + " (pid " + std::to_string(c.pid) + ") ended (" +
                        describe(c.status) + ") during " + phase_);
            }
            if (changed)
                cv_.notify_all();
            const std::uint64_t t = ticks_.load(std::memory_order_relaxed);
            if (t != seen_ticks_) {
                seen_ticks_ = t;
                if (deadline_.load(std::memory_order_relaxed) != UINT64_MAX)
                    deadline_.store(now_ns() + phase_timeout_ns_, std::memory_order_relaxed);
            }
            if (now_ns() > deadline_.load(std::memory_order_relaxed))
                die("no progress for " + std::to_string(phase_timeout_ns_ / 1000000000u) +
                    " s during " + phase_ + " (peer dead or stuck?)" + where());
        }
    }

    const char node_;
    const std::uint64_t timeout_ns_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::vector<Child> children_;
    std::string phase_ = "start";
    std::uint64_t phase_timeout_ns_ = 0;
    std::atomic<std::uint64_t> deadline_{UINT64_MAX};
    std::atomic<std::uint64_t> ticks_{0};
    std::uint64_t phase_ticks_ = 0; // ticks_ when the phase began
    std::atomic<const char*> doing_{nullptr};
    std::atomic<std::uint64_t> want_{0}, got_{0}, reads_{0};
    std::uint64_t seen_ticks_ = 0;
    bool stop_ = false;
    std::thread thread_;
};

// ---- the control connection ----

sockaddr_in inet_address(const std::string& ip, std::uint16_t port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    if (::inet_pton(AF_INET, ip.c_str(), &a.sin_addr) != 1)
        throw std::runtime_error("bad IPv4 address '" + ip + "'");
    return a;
}

// TCP_NODELAY, and send/receive timeouts a little past the watchdog's
// (timeout_s): the watchdog, which knows the phase, is the one to report.
void set_stream_options(int fd, unsigned timeout_s) {
    int one = 1;
    if (::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
        throw_errno("TCP_NODELAY");
    timeval tv{static_cast<time_t>(timeout_s) + 5, 0};
    if (::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
        ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0)
        throw_errno("SO_RCVTIMEO");
}

// a: accept one connection on port (every address) within timeout_s.
machvm::Fd ctl_accept(std::uint16_t port, unsigned timeout_s) {
    machvm::Fd l(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!l)
        throw_errno("socket");
    int one = 1;
    ::setsockopt(l.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    if (::bind(l.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) < 0)
        throw_errno("bind control port " + std::to_string(port));
    if (::listen(l.get(), 1) < 0)
        throw_errno("listen");
    pollfd p{l.get(), POLLIN, 0};
    int r;
    do
        r = ::poll(&p, 1, static_cast<int>(timeout_s * 1000));
    while (r < 0 && errno == EINTR);
    if (r < 0)
        throw_errno("poll");
    if (r == 0)
        throw std::runtime_error("node b did not connect to control port " + std::to_string(port) +
                                 " within " + std::to_string(timeout_s) + " s");
    machvm::Fd s(::accept4(l.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!s)
        throw_errno("accept");
    set_stream_options(s.get(), timeout_s);
    return s;
}

// b: connect to a, retrying (a may not listen yet) for timeout_s.
machvm::Fd ctl_connect(const std::string& ip, std::uint16_t port, unsigned timeout_s) {
    const sockaddr_in a = inet_address(ip, port);
    const std::uint64_t end = now_ns() + std::uint64_t{timeout_s} * 1000000000u;
    int last = 0;
    while (now_ns() < end) {
        machvm::Fd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
        if (!s)
            throw_errno("socket");
        int r = ::connect(s.get(), reinterpret_cast<const sockaddr*>(&a), sizeof(a));
        if (r < 0 && errno == EINPROGRESS) {
            pollfd p{s.get(), POLLOUT, 0};
            r = ::poll(&p, 1, 1000);
            int err = 0;
            socklen_t len = sizeof(err);
            if (r == 1 && ::getsockopt(s.get(), SOL_SOCKET, SO_ERROR, &err, &len) == 0 && !err) {
                r = 0;
            } else {
                errno = r == 0 ? ETIMEDOUT : (err ? err : errno);
                r = -1;
            }
        }
        if (r == 0) {
            if (s.set_nonblocking(false).error())
                throw_errno("fcntl");
            set_stream_options(s.get(), timeout_s);
            return s;
        }
        last = errno;
        ::usleep(50000);
    }
    throw_errno("connect to node a at " + ip + ":" + std::to_string(port) + " (tried for " +
                    std::to_string(timeout_s) + " s)",
                last);
}

void send_all(int fd, const void* buf, std::size_t len, const char* what) {
    const char* p = static_cast<const char*>(buf);
    while (len) {
        ssize_t n = ::send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            throw_errno(std::string("control connection: send (") + what + ")");
        p += n;
        len -= static_cast<std::size_t>(n);
    }
}

void recv_all(int fd, void* buf, std::size_t len, const char* what) {
    char* p = static_cast<char*>(buf);
    while (len) {
        ssize_t n = ::recv(fd, p, len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            throw std::runtime_error(std::string("control connection: the peer went silent (") +
                                     what + ")");
        if (n < 0)
            throw_errno(std::string("control connection: recv (") + what + ")");
        if (n == 0)
            throw std::runtime_error(std::string("control connection: the peer closed it (") +
                                     what + ")");
        p += n;
        len -= static_cast<std::size_t>(n);
    }
}

// Both send one byte and wait for the other's.
void barrier(int fd, const char* what) {
    char c = 'B';
    send_all(fd, &c, 1, what);
    recv_all(fd, &c, 1, what);
    if (c != 'B')
        throw std::runtime_error(std::string("control connection: out of step (") + what + ")");
}

// The settings both nodes must share, checked when they meet.
struct Hello {
    std::uint64_t magic, version, role, rounds, warmup, size, page, hold_us, rtt_only, poll_us,
        yield;
};

Hello hello_of(const Options& o, char role) {
    return Hello{kMagic,      kVersion,         static_cast<std::uint64_t>(role),
                 o.rounds,    o.warmup,         o.size,
                 page_size(), o.hold_us,        o.rtt_only ? 1u : 0u,
                 o.poll_us,   o.yield ? 1u : 0u};
}

void exchange_hello(int fd, const Options& o, char role) {
    const Hello mine = hello_of(o, role);
    Hello theirs{};
    send_all(fd, &mine, sizeof(mine), "hello");
    recv_all(fd, &theirs, sizeof(theirs), "hello");
    if (theirs.magic != kMagic || theirs.version != kVersion)
        throw std::runtime_error("the control peer is not machvm-bench-netmem version " +
                                 std::to_string(kVersion));
    if (theirs.role == mine.role)
        throw std::runtime_error(std::string("both nodes have --role ") + role);
    auto differs = [](const char* what, std::uint64_t a, std::uint64_t b) {
        if (a != b)
            throw std::runtime_error(std::string("the nodes differ in ") + what + ": " +
                                     std::to_string(a) + " here, " + std::to_string(b) +
                                     " on the peer");
    };
    differs("--rounds", mine.rounds, theirs.rounds);
    differs("--warmup", mine.warmup, theirs.warmup);
    differs("--size", mine.size, theirs.size);
    differs("page size", mine.page, theirs.page);
    differs("--hold-us", mine.hold_us, theirs.hold_us);
    differs("--rtt-only", mine.rtt_only, theirs.rtt_only);
    differs("--poll-us", mine.poll_us, theirs.poll_us);
    differs("--yield", mine.yield, theirs.yield);
}

// ---- the netmem-server child ----

std::string find_server(const Options& o) {
    if (!o.server.empty())
        return o.server;
    char self[4096];
    ssize_t n = ::readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n > 0) {
        std::string p(self, static_cast<std::size_t>(n));
        p = p.substr(0, p.rfind('/') + 1) + "netmem-server";
        if (::access(p.c_str(), X_OK) == 0)
            return p;
    }
    return "netmem-server"; // from PATH
}

// A netmem-server's counts: protocol messages sent to its peers, and
// commands issued to its kernel.
struct Counts {
    std::uint64_t messages = 0;
    std::uint64_t commands = 0;
    Counts operator-(const Counts& o) const noexcept {
        return {messages - o.messages, commands - o.commands};
    }
    Counts operator+(const Counts& o) const noexcept {
        return {messages + o.messages, commands + o.commands};
    }
};

// Both nodes' counts over a phase: each takes its own server's after the
// phase (both done: a barrier first); b sends its to a, which adds them.
Counts both_nodes(int ctl, char role, const Counts& mine, const char* what) {
    std::uint64_t wire[2] = {mine.messages, mine.commands};
    if (role == 'b') {
        send_all(ctl, wire, sizeof(wire), what);
        return mine;
    }
    recv_all(ctl, wire, sizeof(wire), what);
    return mine + Counts{wire[0], wire[1]};
}

class Server {
  public:
    Server(const Options& o, char role, Watchdog& wd) : wd_(wd) {
        const bool a = role == 'a';
        socket_ = std::string("/tmp/netmem-bench-") + role + ".sock";
        stats_ = std::string("/tmp/netmem-bench-") + role + ".stats";
        const std::string peer_a = a ? o.self : o.peer;
        const std::string peer_b = a ? o.peer : o.self;
        const std::uint16_t port_b = o.local ? static_cast<std::uint16_t>(o.port + 1) : o.port;
        std::vector<std::string> argv{find_server(o),
                                      "--node",
                                      a ? "0" : "1",
                                      "--peers",
                                      peer_a + ":" + std::to_string(o.port) + "," + peer_b + ":" +
                                          std::to_string(port_b),
                                      "--size",
                                      std::to_string(o.size),
                                      "--connect-timeout",
                                      std::to_string(std::uint64_t{o.timeout_s} * 1000),
                                      "--timeout",
                                      std::to_string((std::uint64_t{o.timeout_s} + 5) * 1000),
                                      "--hold-us",
                                      std::to_string(o.hold_us)};
        for (const std::string& s : o.server_args)
            argv.push_back(s);
        argv.push_back("--stats-file");
        argv.push_back(stats_);
        argv.push_back("--socket");
        argv.push_back(socket_);
        if (::unlink(socket_.c_str()) < 0 && errno != ENOENT)
            throw_errno("remove stale " + socket_);
        if (::unlink(stats_.c_str()) < 0 && errno != ENOENT)
            throw_errno("remove stale " + stats_);
        cmd_.clear();
        for (const std::string& s : argv)
            cmd_ += (cmd_.empty() ? "" : " ") + s;
        std::vector<char*> args;
        for (const std::string& s : argv)
            args.push_back(const_cast<char*>(s.c_str()));
        args.push_back(nullptr);
        const pid_t parent = ::getpid();
        std::fflush(nullptr);
        pid_ = ::fork();
        if (pid_ < 0)
            throw_errno("fork");
        if (pid_ == 0) {
            // Its chatter must not land in our stdout (the JSON block).
            ::dup2(2, 1);
            ::prctl(PR_SET_PDEATHSIG, SIGTERM);
            if (::getppid() != parent)
                ::_exit(127);
            ::execvp(args[0], args.data());
            std::fprintf(stderr, "%s: exec %s: %s\n", kProg, args[0], std::strerror(errno));
            ::_exit(127);
        }
        wd_.watch(pid_, "netmem-server", true);
    }
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;
    // Not stopped (an error on the way): killed and reaped, socket removed.
    ~Server() {
        if (!stopped_) {
            wd_.release(pid_);
            ::kill(pid_, SIGKILL);
            wd_.wait_exit(pid_, 5000);
        }
        ::unlink(socket_.c_str());
        ::unlink(stats_.c_str());
    }

    const std::string& command() const noexcept { return cmd_; }

    // The server's counts (--stats-file) once it is quiet: read after
    // 100 ms, which covers its 20 ms refresh and what was in flight.
    Counts counts() const {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        Counts c;
        std::ifstream in(stats_);
        std::string key;
        std::uint64_t v = 0;
        while (in >> key >> v) {
            if (key == "messages")
                c.messages = v;
            else if (key == "commands")
                c.commands = v;
        }
        return c;
    }

    // The object's descriptor, once the server's socket appears.
    machvm::Fd object() {
        for (;;) {
            auto s = machvm::connect_unix(socket_);
            if (s) {
                auto fd = machvm::recv_fd(s.value().get());
                if (!fd)
                    throw std::system_error(fd.error(), "receive the object from " + socket_);
                return std::move(fd).value();
            }
            const int e = s.error().value();
            if (e != ENOENT && e != ECONNREFUSED)
                throw std::system_error(s.error(), "connect to " + socket_);
            ::usleep(20000); // the watchdog bounds this wait
        }
    }

    // SIGTERM, then reap; throws unless it stopped cleanly in time.  One
    // that ended by itself (its peer went first) is only noted.
    template <class Note> void stop(const Note& note) {
        stopped_ = true;
        wd_.release(pid_);
        if (auto st = wd_.wait_exit(pid_, 0)) {
            note.note("netmem-server had ended by itself (wait status %d)", *st);
            return;
        }
        ::kill(pid_, SIGTERM);
        auto st = wd_.wait_exit(pid_, 15000);
        if (!st) {
            ::kill(pid_, SIGKILL);
            wd_.wait_exit(pid_, 5000);
            throw std::runtime_error("netmem-server did not stop within 15 s of SIGTERM");
        }
        const int s = *st;
        const bool ok =
            (WIFEXITED(s) && (WEXITSTATUS(s) == 0 || WEXITSTATUS(s) == 128 + SIGTERM)) ||
            (WIFSIGNALED(s) && WTERMSIG(s) == SIGTERM);
        if (!ok)
            throw std::runtime_error("netmem-server ended badly on SIGTERM (wait status " +
                                     std::to_string(s) + ")");
    }

  private:
    Watchdog& wd_;
    std::string socket_;
    std::string stats_;
    std::string cmd_;
    pid_t pid_ = -1;
    bool stopped_ = false; // stop() ran: reaped, or killed and reaped
};

struct Mapping {
    void* base = MAP_FAILED;
    std::size_t len = 0;
    Mapping(int fd, std::size_t size) : len(size) {
        base = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (base == MAP_FAILED)
            throw_errno("mmap the object");
    }
    Mapping(const Mapping&) = delete;
    Mapping& operator=(const Mapping&) = delete;
    ~Mapping() { unmap(); }
    void unmap() noexcept {
        if (base != MAP_FAILED)
            ::munmap(base, len);
        base = MAP_FAILED;
    }
    std::uint64_t* word(std::uint64_t page, std::size_t index = 0) const noexcept {
        return reinterpret_cast<std::uint64_t*>(static_cast<char*>(base) + page * page_size()) +
               index;
    }
};

// ---- statistics ----

struct Stats {
    std::size_t samples = 0;
    double p50_us = 0, p99_us = 0, min_us = 0, mean_us = 0, max_us = 0;
};

Stats stats_of(std::vector<std::uint64_t> ns) {
    Stats s;
    if (ns.empty())
        return s;
    std::sort(ns.begin(), ns.end());
    s.samples = ns.size();
    s.p50_us = bench::percentile_us(ns, 0.50);
    s.p99_us = bench::percentile_us(ns, 0.99);
    s.min_us = static_cast<double>(ns.front()) / 1000.0;
    s.max_us = static_cast<double>(ns.back()) / 1000.0;
    s.mean_us = bench::mean_us(ns);
    return s;
}

// ---- the measurements ----

struct Node {
    const Options& o;
    char role;
    Watchdog& wd;
    int ctl;

    void note(const char* fmt, ...) const __attribute__((format(printf, 2, 3))) {
        if (o.out.quiet)
            return;
        char buf[1024];
        va_list ap;
        va_start(ap, fmt);
        std::vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        std::fprintf(stderr, "%s: node %c: %s\n", kProg, role, buf); // one write
    }

    // a: 1-byte ping, b: echo.
    std::vector<std::uint64_t> tcp_rtt() {
        wd.phase("tcp_rtt");
        std::vector<std::uint64_t> ns;
        ns.reserve(o.rounds);
        const unsigned total = o.warmup + o.rounds;
        for (unsigned i = 0; i < total; ++i) {
            char c = static_cast<char>(i);
            if (role == 'a') {
                const std::uint64_t t0 = now_ns();
                send_all(ctl, &c, 1, "tcp_rtt ping");
                recv_all(ctl, &c, 1, "tcp_rtt pong");
                const std::uint64_t t1 = now_ns();
                if (c != static_cast<char>(i))
                    throw std::runtime_error("tcp_rtt: out of step");
                if (i >= o.warmup)
                    ns.push_back(t1 - t0);
                wd.tick();
            } else {
                recv_all(ctl, &c, 1, "tcp_rtt ping");
                send_all(ctl, &c, 1, "tcp_rtt pong");
                wd.tick();
            }
        }
        return ns;
    }

    // Spins on *p until it holds want; it may hold only `mine` before.
    void await(const std::uint64_t* p, std::uint64_t want, std::uint64_t mine) const {
        std::atomic_ref<std::uint64_t> c(*const_cast<std::uint64_t*>(p));
        wd.doing("reading page 0 (in a read fault?)");
        for (;;) {
            const std::uint64_t v = c.load(std::memory_order_acquire);
            wd.seen(want, v);
            if (v == want)
                return;
            if (v != mine)
                throw std::runtime_error("pingpong: page 0 reads " + std::to_string(v) +
                                         ", expected " + std::to_string(mine) + " or " +
                                         std::to_string(want) + ": not coherent");
            if (o.poll_us) {
                timespec ts{0, static_cast<long>(o.poll_us) * 1000};
                ::nanosleep(&ts, nullptr);
            } else if (o.yield) {
                ::sched_yield();
            }
        }
    }

    // a writes the odd values, b the even ones; samples: a's write to a's
    // next write.
    std::vector<std::uint64_t> pingpong(const Mapping& m) {
        wd.phase("pingpong");
        std::uint64_t* ctr = m.word(0);
        std::atomic_ref<std::uint64_t> c(*ctr);
        const unsigned total = o.warmup + o.rounds;
        std::vector<std::uint64_t> ns;
        if (role == 'a') {
            ns.reserve(o.rounds);
            std::uint64_t prev = 0;
            for (unsigned i = 0; i <= total; ++i) {
                const std::uint64_t t = now_ns();
                wd.doing("writing page 0 (in a write fault?)");
                c.store(2 * std::uint64_t{i} + 1, std::memory_order_release);
                if (i > o.warmup)
                    ns.push_back(t - prev);
                prev = t;
                wd.tick();
                if (i < total)
                    await(ctr, 2 * std::uint64_t{i} + 2, 2 * std::uint64_t{i} + 1);
            }
        } else {
            for (unsigned i = 0; i < total; ++i) {
                await(ctr, 2 * std::uint64_t{i} + 1, 2 * std::uint64_t{i});
                wd.doing("writing page 0 (in a write fault?)");
                c.store(2 * std::uint64_t{i} + 2, std::memory_order_release);
                wd.tick();
            }
        }
        return ns;
    }

    static std::uint64_t stamp(std::uint64_t page, bool last) noexcept {
        return (page * 0x9e3779b97f4a7c15ull) ^ (last ? 0x1a57ull : 0xf125ull);
    }

    // b writes page k and says so; a times one read of it.
    std::vector<std::uint64_t> read_fault(const Mapping& m) {
        wd.phase("read_fault");
        const unsigned total = o.warmup + o.rounds;
        const std::size_t last = page_size() / sizeof(std::uint64_t) - 1;
        std::vector<std::uint64_t> ns;
        ns.reserve(o.rounds);
        for (std::uint64_t k = 1; k <= total; ++k) {
            std::uint64_t msg = k;
            if (role == 'b') {
                wd.doing("writing a page (in a write fault?)");
                std::atomic_ref<std::uint64_t>(*m.word(k, last))
                    .store(stamp(k, true), std::memory_order_relaxed);
                std::atomic_ref<std::uint64_t>(*m.word(k))
                    .store(stamp(k, false), std::memory_order_release);
                // Past b's hold on the page, a's fault is served at once:
                // the timed read is the fault, not the hold.
                std::this_thread::sleep_for(std::chrono::microseconds(o.hold_us));
                send_all(ctl, &msg, sizeof(msg), "read_fault: page written");
                char ack;
                recv_all(ctl, &ack, 1, "read_fault: ack");
                wd.tick();
                continue;
            }
            recv_all(ctl, &msg, sizeof(msg), "read_fault: page written");
            if (msg != k)
                throw std::runtime_error("read_fault: out of step");
            std::atomic_ref<std::uint64_t> w(*m.word(k));
            wd.doing("reading a page b wrote (in a read fault?)");
            const std::uint64_t t0 = now_ns();
            const std::uint64_t v = w.load(std::memory_order_acquire);
            const std::uint64_t t1 = now_ns();
            const std::uint64_t tail =
                std::atomic_ref<std::uint64_t>(*m.word(k, last)).load(std::memory_order_relaxed);
            if (v != stamp(k, false) || tail != stamp(k, true))
                throw std::runtime_error("read_fault: page " + std::to_string(k) +
                                         " reads wrong (not what node b wrote)");
            if (k > o.warmup)
                ns.push_back(t1 - t0);
            char ack = 'A';
            send_all(ctl, &ack, 1, "read_fault: ack");
            wd.tick();
        }
        return ns;
    }
};

// ---- report ----

struct Report {
    Stats rtt, pingpong, read;
    Counts pingpong_counts, read_counts; // both nodes, the whole phase
    unsigned cycles = 0;                 // per phase: warmup + rounds
    bool netmem = false;
};

// Per operation (a pingpong cycle, a read_fault round), 3 decimals.
std::string per_op(std::uint64_t n, unsigned ops) {
    return ops ? bench::number(static_cast<double>(n) / ops, "%.3f") : "null";
}

std::string json_stats(const Stats& s) {
    return "{\"samples\": " + std::to_string(s.samples) +
           ", \"p50_us\": " + bench::number(s.p50_us, "%.3f") +
           ", \"p99_us\": " + bench::number(s.p99_us, "%.3f") +
           ", \"min_us\": " + bench::number(s.min_us, "%.3f") +
           ", \"mean_us\": " + bench::number(s.mean_us, "%.3f") +
           ", \"max_us\": " + bench::number(s.max_us, "%.3f") + "}";
}

std::string json_document(const bench::Machine& m, const Options& o, const std::string& server,
                          const Report& r) {
    std::string j = "{\n \"benchmark\": \"netmem\",\n";
    j += " \"machine\": {\"kernel\": " + json_string(m.kernel) +
         ", \"nproc\": " + std::to_string(m.nproc) +
         ", \"clocksource\": " + json_string(m.clocksource) +
         ", \"page_size\": " + std::to_string(page_size()) + "},\n";
    j += " \"config\": {\"mode\": " + json_string(o.local ? "local" : "pair") +
         ", \"node_a\": " + json_string(o.self) + ", \"node_b\": " + json_string(o.peer) +
         ", \"port\": " + std::to_string(o.port) + ", \"rounds\": " + std::to_string(o.rounds) +
         ", \"warmup\": " + std::to_string(o.warmup) +
         ", \"size_bytes\": " + std::to_string(o.size) +
         ", \"hold_us\": " + std::to_string(o.hold_us) +
         ", \"yield\": " + (o.yield ? "true" : "false") +
         ", \"poll_us\": " + std::to_string(o.poll_us) +
         ", \"server\": " + (r.netmem ? json_string(server) : "null") + "},\n";
    j += " \"tcp_rtt\": " + json_stats(r.rtt) + ",\n";
    if (r.netmem) {
        j += " \"pingpong\": " + json_stats(r.pingpong) + ",\n";
        j += " \"read_fault\": " + json_stats(r.read) + ",\n";
        j += " \"ratios\": {\"pingpong_p50_vs_rtt_p50\": " +
             bench::json_ratio(ratio(r.pingpong.p50_us, r.rtt.p50_us)) +
             ", \"pingpong_mean_vs_rtt_mean\": " +
             bench::json_ratio(ratio(r.pingpong.mean_us, r.rtt.mean_us)) +
             ", \"read_p50_vs_rtt_p50\": " + bench::json_ratio(ratio(r.read.p50_us, r.rtt.p50_us)) +
             ", \"read_mean_vs_rtt_mean\": " +
             bench::json_ratio(ratio(r.read.mean_us, r.rtt.mean_us)) + "},\n";
        auto counts = [](const Counts& c) {
            return "{\"messages\": " + std::to_string(c.messages) +
                   ", \"commands\": " + std::to_string(c.commands) + "}";
        };
        j += " \"counts\": {\"cycles\": " + std::to_string(r.cycles) +
             ", \"pingpong\": " + counts(r.pingpong_counts) +
             ", \"read_fault\": " + counts(r.read_counts) +
             ", \"messages_per_pingpong\": " + per_op(r.pingpong_counts.messages, r.cycles) +
             ", \"messages_per_read_fault\": " + per_op(r.read_counts.messages, r.cycles) +
             ", \"commands_per_pingpong\": " + per_op(r.pingpong_counts.commands, r.cycles) +
             ", \"commands_per_read_fault\": " + per_op(r.read_counts.commands, r.cycles) + "}\n";
    } else {
        j += " \"pingpong\": null,\n \"read_fault\": null,\n \"ratios\": null,\n"
             " \"counts\": null\n";
    }
    j += "}\n";
    return j;
}

void print_table(const bench::Machine& m, const Options& o, const Report& r) {
    std::printf("network memory: %s, %ld CPUs, clocksource %s; %s, node a %s, node b %s\n",
                m.kernel.c_str(), m.nproc, m.clocksource.empty() ? "?" : m.clocksource.c_str(),
                o.local ? "one machine (--local)" : "two machines", o.self.c_str(), o.peer.c_str());
    std::printf("%u rounds after %u warm-up, hold-us %llu%s\n", o.rounds, o.warmup,
                static_cast<unsigned long long>(o.hold_us),
                o.poll_us ? (", polling every " + std::to_string(o.poll_us) + " us").c_str()
                : o.yield ? ", yielding spins"
                          : "");
    std::printf("%-11s %8s %10s %10s %10s %10s %10s %9s %9s\n", "case", "samples", "p50 us",
                "p99 us", "min us", "mean us", "max us", "p50:rtt", "mean:rtt");
    auto row = [&](const char* name, const Stats& s) {
        std::printf("%-11s %8zu %10.1f %10.1f %10.1f %10.1f %10.1f %9s %9s\n", name, s.samples,
                    s.p50_us, s.p99_us, s.min_us, s.mean_us, s.max_us,
                    bench::ratio_cell(ratio(s.p50_us, r.rtt.p50_us)).c_str(),
                    bench::ratio_cell(ratio(s.mean_us, r.rtt.mean_us)).c_str());
    };
    row("tcp_rtt", r.rtt);
    if (r.netmem) {
        row("pingpong", r.pingpong);
        row("read_fault", r.read);
        std::printf("both servers, per operation (%u of each): messages %s per pingpong cycle, "
                    "%s per read_fault round; kernel commands %s and %s\n",
                    r.cycles, per_op(r.pingpong_counts.messages, r.cycles).c_str(),
                    per_op(r.read_counts.messages, r.cycles).c_str(),
                    per_op(r.pingpong_counts.commands, r.cycles).c_str(),
                    per_op(r.read_counts.commands, r.cycles).c_str());
    }
}

// One node's whole run.  Returns the exit status.
int run_node_(const Options& o, char role, std::optional<pid_t> local_b) {
    // With a local node b, a gives up 2 s later, so that a stuck b says
    // where it is stuck before a's exit ends it.
    Watchdog wd(role, o.timeout_s + (local_b ? 2 : 0));
    if (local_b)
        wd.watch(*local_b, "node b (local child)", true);
    const std::uint16_t ctl_port = static_cast<std::uint16_t>(o.port + 2);

    wd.phase("meeting the peer", (std::uint64_t{o.timeout_s} + 5) * 1000000000u);
    machvm::Fd ctl = role == 'a' ? ctl_accept(ctl_port, o.timeout_s)
                                 : ctl_connect(o.peer, ctl_port, o.timeout_s);
    exchange_hello(ctl.get(), o, role);
    Node node{o, role, wd, ctl.get()};
    node.note("met the peer on port %u", ctl_port);

    Report r;
    r.netmem = !o.rtt_only;
    std::optional<Server> server;
    std::optional<Mapping> map;
    machvm::Fd obj;
    std::string server_cmd;
    if (r.netmem) {
        // Servers wait for each other (up to --connect-timeout) before
        // their socket appears; allow that and a little more.
        wd.phase("waiting for netmem-server", (std::uint64_t{o.timeout_s} + 10) * 1000000000u);
        server.emplace(o, role, wd);
        server_cmd = server->command();
        node.note("started %s", server_cmd.c_str());
        obj = server->object();
        map.emplace(obj.get(), o.size);
        node.note("mapped the object (%llu bytes)", static_cast<unsigned long long>(o.size));
    }
    wd.phase("ready barrier");
    barrier(ctl.get(), "ready");

    r.rtt = stats_of(node.tcp_rtt());
    if (r.netmem) {
        r.cycles = o.warmup + o.rounds;
        wd.phase("before pingpong");
        Counts c0 = server->counts();
        barrier(ctl.get(), "pingpong");
        r.pingpong = stats_of(node.pingpong(*map));
        wd.phase("after pingpong");
        barrier(ctl.get(), "pingpong done");
        Counts c1 = server->counts();
        r.pingpong_counts = both_nodes(ctl.get(), role, c1 - c0, "pingpong counts");
        wd.phase("before read_fault");
        barrier(ctl.get(), "read_fault");
        r.read = stats_of(node.read_fault(*map));
        wd.phase("after read_fault");
        barrier(ctl.get(), "read_fault done");
        c0 = server->counts();
        r.read_counts = both_nodes(ctl.get(), role, c0 - c1, "read_fault counts");
    }
    // Neither lets go of the object, nor then stops its server, while the
    // other may still need it.
    // From here a local node b may finish first (its failures still show
    // on the control connection and in its exit status).
    if (local_b)
        wd.release(*local_b);
    wd.phase("done barrier");
    barrier(ctl.get(), "done");
    if (server) {
        map.reset();
        obj.reset();
        barrier(ctl.get(), "unmapped");
    }
    wd.disarm();
    if (server)
        server->stop(node);
    if (local_b) {
        auto st = wd.wait_exit(*local_b, std::uint64_t{o.timeout_s} * 1000);
        if (!st || !WIFEXITED(*st) || WEXITSTATUS(*st) != 0)
            throw std::runtime_error("node b (local child) failed");
    }
    if (role == 'b') {
        node.note("done");
        return machvm::kExitOk;
    }
    const bench::Machine machine = bench::describe_machine();
    print_table(machine, o, r);
    bench::emit_json(o.out, json_document(machine, o, server_cmd, r));
    return machvm::kExitOk;
}

// The same, errors naming the node (two may share a terminal).
int run_node(const Options& o, char role, std::optional<pid_t> local_b) {
    try {
        return run_node_(o, role, local_b);
    } catch (const machvm::UsageError&) {
        throw;
    } catch (const std::exception& e) {
        throw std::runtime_error(std::string("node ") + role + ": " + e.what());
    }
}

int run(const Options& o) {
    ::signal(SIGPIPE, SIG_IGN);
    bench::report_sigbus(kProg, "a netmem-server failed?");
    if (o.poll_us)
        ::prctl(PR_SET_TIMERSLACK, 1ul); // sleep US, not US + 50 us
    if (!o.local)
        return run_node(o, o.role, std::nullopt);
    const pid_t parent = ::getpid();
    std::fflush(nullptr);
    const pid_t b = ::fork();
    if (b < 0)
        throw_errno("fork");
    if (b == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (::getppid() != parent)
            ::_exit(machvm::kExitFailure);
        // Node b reports through its exit status; a prints.
        int rc;
        try {
            rc = run_node(o, 'b', std::nullopt);
        } catch (...) {
            rc = machvm::report_exception(kProg);
        }
        std::fflush(nullptr);
        ::_exit(rc);
    }
    return run_node(o, 'a', b);
}

} // namespace

int main(int argc, char** argv) {
    return bench::main(argc, argv, kProg, kHelp, Options{}, option, check, run);
}
