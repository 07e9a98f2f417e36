// SPDX-License-Identifier: GPL-2.0
// Reply (command building, splitting, buffers) and dispatch.
#include <cstring>
#include <vector>

#include <machvm/pager.hpp>

#include "check.hpp"

using namespace machvm;

namespace {

bool zero_tail(const machvm_cmd& c) {
    return c.lock == 0 && c.seq == 0;
}

void test_commands() {
    Reply r;
    CHECK(r.empty());
    machvm_attr a = default_attr();
    a.cluster_pages = 8;
    a.timeout_ms = 300;
    CHECK(r.ready(7, a));
    CHECK(r.data_unavailable(7, 4096, 8192));
    CHECK(r.data_error(7, 0, 4096, 14));
    CHECK(r.change_attributes(7, a));
    CHECK(r.destroy(7));
    auto c = r.commands();
    CHECK_EQ(c.size(), 5u);
    CHECK_EQ(c[0].type, std::uint32_t{MACHVM_CMD_READY});
    CHECK_EQ(c[0].object, 7u);
    CHECK_EQ(c[0].attr.cluster_pages, 8);
    CHECK_EQ(c[0].attr.timeout_ms, 300u);
    CHECK_EQ(c[0].length, 0u);
    CHECK_EQ(c[1].type, std::uint32_t{MACHVM_CMD_DATA_UNAVAILABLE});
    CHECK_EQ(c[1].offset, 4096u);
    CHECK_EQ(c[1].length, 8192u);
    CHECK_EQ(c[1].flags, 0u);
    CHECK_EQ(c[2].type, std::uint32_t{MACHVM_CMD_DATA_ERROR});
    CHECK_EQ(c[2].error, 14u);
    CHECK_EQ(c[3].type, std::uint32_t{MACHVM_CMD_CHANGE_ATTRIBUTES});
    CHECK_EQ(c[4].type, std::uint32_t{MACHVM_CMD_DESTROY});
    CHECK_EQ(c[4].offset + c[4].length + c[4].addr, 0u);
    bool tails = true;
    for (const auto& cmd : c)
        tails = tails && zero_tail(cmd);
    CHECK(tails);
    r.reset();
    CHECK(r.empty());
}

void test_supply_split() {
    Reply r;
    const std::size_t n = MACHVM_MAX_XFER * 2 + 8192;
    std::span<std::byte> buf = r.buffer(n);
    CHECK_EQ(buf.size(), n);
    CHECK(r.data_supply(3, 1 << 20, buf, MACHVM_SUPPLY_F_REPORT));
    auto c = r.commands();
    CHECK_EQ(c.size(), 3u);
    std::uint64_t off = 1 << 20;
    std::uintptr_t addr = reinterpret_cast<std::uintptr_t>(buf.data());
    for (const auto& cmd : c) {
        CHECK_EQ(cmd.type, std::uint32_t{MACHVM_CMD_DATA_SUPPLY});
        CHECK_EQ(cmd.flags, std::uint32_t{MACHVM_SUPPLY_F_REPORT});
        CHECK_EQ(cmd.offset, off);
        CHECK_EQ(cmd.addr, addr);
        off += cmd.length;
        addr += cmd.length;
    }
    CHECK_EQ(c[0].length, std::uint64_t{MACHVM_MAX_XFER});
    CHECK_EQ(c[2].length, 8192u);
    CHECK_EQ(off, (1u << 20) + n);

    r.reset();
    CHECK(r.data_unavailable(1, 0, std::uint64_t{MACHVM_MAX_XFER} * 3));
    CHECK_EQ(r.commands().size(), 3u);
    CHECK(r.data_error(1, 0, MACHVM_MAX_XFER + 4096, 5));
    CHECK_EQ(r.commands().size(), 5u);
    // Length 0 says nothing.
    CHECK(r.data_supply(1, 0, {}));
    CHECK(r.data_unavailable(1, 0, 0));
    CHECK(r.data_error(1, 0, 0, 5));
    CHECK_EQ(r.commands().size(), 5u);
}

void test_buffers() {
    Reply r;
    auto a = r.buffer(100);
    auto b = r.buffer(5000);
    CHECK_EQ(a.size(), 100u);
    CHECK_EQ(b.size(), 5000u);
    CHECK(a.data() != b.data());
    CHECK_EQ(reinterpret_cast<std::uintptr_t>(a.data()) % 4096, 0u);
    CHECK_EQ(reinterpret_cast<std::uintptr_t>(b.data()) % 4096, 0u);
    std::memset(a.data(), 1, a.size());
    std::memset(b.data(), 2, b.size());
    CHECK(r.buffer(0).empty());
    std::byte* first = a.data();
    r.reset();
    auto again = r.buffer(64); // reused
    CHECK(again.data() == first);
}

struct Recorder final : Pager {
    std::vector<std::uint32_t> seen;
    void on_init(const machvm_msg& m, Reply& r) noexcept override {
        seen.push_back(m.type);
        Pager::on_init(m, r);
    }
    void on_data_request(const machvm_msg& m, Reply& r) noexcept override {
        seen.push_back(m.type);
        r.data_unavailable(m.object, m.offset, m.length);
    }
    void on_supply_completed(const machvm_msg& m, Reply&) noexcept override {
        seen.push_back(m.type);
    }
    void on_terminate(const machvm_msg& m, Reply&) noexcept override { seen.push_back(m.type); }
    void on_unknown(const machvm_msg& m, Reply&) noexcept override {
        seen.push_back(1000 + m.type);
    }
};

void test_dispatch() {
    Recorder p;
    Reply r;
    machvm_msg m{};
    for (std::uint32_t t : std::initializer_list<std::uint32_t>{
             MACHVM_MSG_NOP, MACHVM_MSG_INIT, MACHVM_MSG_DATA_REQUEST, MACHVM_MSG_SUPPLY_COMPLETED,
             MACHVM_MSG_TERMINATE, 99u}) {
        m.type = t;
        m.object = 9;
        m.offset = 4096;
        m.length = 4096;
        dispatch(p, m, r);
    }
    CHECK_EQ(p.seen.size(), 5u); // NOP calls nothing
    CHECK_EQ(p.seen[0], std::uint32_t{MACHVM_MSG_INIT});
    CHECK_EQ(p.seen[1], std::uint32_t{MACHVM_MSG_DATA_REQUEST});
    CHECK_EQ(p.seen[4], 1099u);
    auto c = r.commands();
    CHECK_EQ(c.size(), 2u);
    CHECK_EQ(c[0].type, std::uint32_t{MACHVM_CMD_READY}); // the default on_init
    CHECK_EQ(c[0].attr.copy_strategy, default_attr().copy_strategy);
    CHECK_EQ(c[1].type, std::uint32_t{MACHVM_CMD_DATA_UNAVAILABLE});
}

} // namespace

int main() {
    test_commands();
    test_supply_split();
    test_buffers();
    test_dispatch();
    return unit::finish("reply_test");
}
