// SPDX-License-Identifier: GPL-2.0
// BlockingLoop end to end against a fake kernel: a SOCK_SEQPACKET pair
// stands in for the pager endpoint (read(2) gives whole 64-byte messages,
// write(2) takes arrays of 64-byte commands).
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <set>
#include <vector>

#include <machvm/loop.hpp>

#include "check.hpp"
#include "socket_endpoint.hpp"

using namespace machvm;

namespace {

class FakeKernel {
  public:
    explicit FakeKernel(Fd fd) : fd_(std::move(fd)) {}

    void send(std::uint32_t type, std::uint64_t offset = 0, std::uint64_t length = 0) {
        machvm_msg m;
        std::memset(&m, 0, sizeof(m));
        m.type = type;
        m.object = 42;
        m.offset = offset;
        m.length = length;
        m.seq = ++seq_;
        CHECK_EQ(::write(fd_.get(), &m, sizeof(m)), static_cast<ssize_t>(sizeof(m)));
    }

    // One write(2) worth of commands (empty after 5 s).
    std::vector<machvm_cmd> receive() {
        std::vector<machvm_cmd> out;
        struct pollfd p = {fd_.get(), POLLIN, 0};
        if (::poll(&p, 1, 5000) != 1) {
            unit::fail(__FILE__, __LINE__, "no commands from the loop within 5 s");
            return out;
        }
        machvm_cmd buf[64];
        ssize_t n = ::read(fd_.get(), buf, sizeof(buf));
        CHECK(n > 0 && n % 64 == 0);
        if (n > 0)
            out.assign(buf, buf + n / 64);
        return out;
    }

    void close() { fd_.reset(); }

  private:
    Fd fd_;
    std::uint64_t seq_ = 0;
};

class PatternPager final : public Pager {
  public:
    std::atomic<unsigned> max_thread{0};
    void on_init(const machvm_msg& m, Reply& r) noexcept override {
        machvm_attr a = default_attr();
        a.cluster_pages = 4;
        r.ready(m.object, a);
    }
    void on_data_request(const machvm_msg& m, Reply& r) noexcept override {
        unsigned t = r.thread_index();
        unsigned cur = max_thread.load();
        while (t > cur && !max_thread.compare_exchange_weak(cur, t)) {
        }
        auto buf = r.buffer(m.length);
        std::memset(buf.data(), static_cast<int>(m.offset / 4096), buf.size());
        r.data_supply(m.object, m.offset, buf);
        if (m.offset == 8192) { // and one unasked page after it
            auto more = r.buffer(4096);
            std::memset(more.data(), 0xee, more.size());
            r.data_supply(m.object, m.offset + m.length, more);
        }
    }
};

void test_single_thread() {
    auto [ep, kernel] = unit::socket_endpoint();
    FakeKernel k(std::move(kernel));
    PatternPager pager;
    LoopOptions o;
    o.depth = 4;
    BlockingLoop loop(ep, pager, o);
    CHECK(!loop.finished());

    k.send(MACHVM_MSG_INIT);
    auto c = k.receive();
    CHECK_EQ(c.size(), 1u);
    if (c.size() == 1) {
        CHECK_EQ(c[0].type, std::uint32_t{MACHVM_CMD_READY});
        CHECK_EQ(c[0].object, 42u);
        CHECK_EQ(c[0].attr.cluster_pages, 4);
    }

    // Both commands of one handler arrive in one write(2), in order, and
    // their data is readable while the loop waits for the next message.
    k.send(MACHVM_MSG_DATA_REQUEST, 8192, 4096);
    c = k.receive();
    CHECK_EQ(c.size(), 2u);
    if (c.size() == 2) {
        CHECK_EQ(c[0].type, std::uint32_t{MACHVM_CMD_DATA_SUPPLY});
        CHECK_EQ(c[0].offset, 8192u);
        CHECK_EQ(c[0].length, 4096u);
        const auto* d0 = reinterpret_cast<const unsigned char*>(c[0].addr);
        CHECK(d0[0] == 2 && d0[4095] == 2);
        CHECK_EQ(c[1].offset, 12288u);
        const auto* d1 = reinterpret_cast<const unsigned char*>(c[1].addr);
        CHECK(d1[0] == 0xee);
    }

    k.send(MACHVM_MSG_NOP); // idle: nothing to answer
    k.send(MACHVM_MSG_DATA_REQUEST, 0, 16384);
    c = k.receive();
    CHECK_EQ(c.size(), 1u);
    if (!c.empty())
        CHECK_EQ(c[0].length, 16384u);

    loop.stop();
    CHECK(loop.wait().ok());
    CHECK(loop.finished());
}

void test_endpoint_gone() {
    auto [ep, kernel] = unit::socket_endpoint();
    FakeKernel k(std::move(kernel));
    PatternPager pager;
    BlockingLoop loop(ep, pager);
    k.close(); // read(2) returns 0: the loop ends with ENOTCONN
    for (int i = 0; i < 500 && !loop.finished(); ++i)
        ::usleep(10000);
    CHECK(loop.finished());
    Result<void> r = loop.wait();
    CHECK(r.error() == std::errc::not_connected);
}

void test_threads() {
    auto [ep, kernel] = unit::socket_endpoint();
    FakeKernel k(std::move(kernel));
    PatternPager pager;
    LoopOptions o;
    o.threads = 3;
    o.depth = 2;
    BlockingLoop loop(ep, pager, o);
    const unsigned n = 60;
    for (unsigned i = 0; i < n; ++i)
        k.send(MACHVM_MSG_DATA_REQUEST, (100 + i) * 4096, 4096);
    std::set<std::uint64_t> answered;
    while (answered.size() < n) {
        auto c = k.receive();
        if (c.empty())
            break;
        for (const auto& cmd : c)
            answered.insert(cmd.offset);
    }
    CHECK_EQ(answered.size(), std::size_t{n});
    CHECK(pager.max_thread.load() < 3);
    loop.stop();
    CHECK(loop.wait().ok());
}

void test_bad_options() {
    auto [ep, other] = unit::socket_endpoint();
    PatternPager pager;
    LoopOptions o;
    o.threads = 0;
    CHECK_THROWS(BlockingLoop(ep, pager, o), std::system_error);
    o.threads = 1;
    o.depth = 0;
    CHECK_THROWS(BlockingLoop(ep, pager, o), std::system_error);
    PagerEndpoint none;
    CHECK_THROWS(BlockingLoop(none, pager), std::system_error);
}

} // namespace

int main() {
    test_single_thread();
    test_endpoint_gone();
    test_threads();
    test_bad_options();
    return unit::finish("loop_test");
}
