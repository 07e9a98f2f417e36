// SPDX-License-Identifier: GPL-2.0
// The io_uring loop's SQE handling (libmachvm/src/uring_sqe.hpp) on rings
// built small, with their submission queue full (issue 12.5): a ring
// that is never enabled (IORING_SETUP_R_DISABLED) refuses io_uring_enter,
// so nothing frees the queue.  No SQE must mean "false", never a null
// pointer used, and a committed reply must go out with write(2) instead
// of being dropped.  Skipped where io_uring is unavailable.
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <vector>

#include "../../libmachvm/src/uring_sqe.hpp"
#include "check.hpp"

using namespace machvm;

namespace {

// A ring of `entries` SQEs, every one taken by a NOP; disabled rings
// refuse to submit them.  false if io_uring cannot be set up here.
bool full_ring(io_uring* ring, unsigned entries, bool disabled) {
    io_uring_params p;
    std::memset(&p, 0, sizeof(p));
    if (disabled)
        p.flags = IORING_SETUP_R_DISABLED;
    if (io_uring_queue_init_params(entries, ring, &p) < 0)
        return false;
    unsigned n = 0;
    while (io_uring_sqe* sqe = io_uring_get_sqe(ring)) {
        io_uring_prep_nop(sqe);
        ++n;
    }
    CHECK_EQ(n, entries);
    return true;
}

machvm_cmd command(std::uint32_t op, std::uint64_t offset) {
    machvm_cmd c;
    std::memset(&c, 0, sizeof(c));
    c.type = op;
    c.offset = offset;
    return c;
}

void test_stuck_ring() {
    io_uring ring;
    if (!full_ring(&ring, 2, true)) {
        std::printf("uring_sqe_test: no disabled io_uring here; skipped\n");
        return;
    }
    // No SQE to be had: nullptr, not a hang.
    CHECK(uring::get_sqe(&ring) == nullptr);
    // The stop poll: refused, not armed through a null SQE.
    CHECK(!uring::arm_poll(&ring, 0, 7));
    machvm_msg msg;
    CHECK(!uring::arm_cmd(&ring, 0, 1, &msg, nullptr));

    // A committed reply finds no SQE: every command goes out, in order.
    const std::vector<machvm_cmd> reply = {command(MACHVM_CMD_DATA_SUPPLY, 4096),
                                           command(MACHVM_CMD_DATA_SUPPLY, 8192),
                                           command(MACHVM_CMD_DATA_ERROR, 12288)};
    std::vector<machvm_cmd> sent;
    int sends = 0;
    auto send = [&](std::span<const machvm_cmd> cmds) {
        ++sends;
        sent.insert(sent.end(), cmds.begin(), cmds.end());
        return true;
    };
    CHECK(uring::arm_reply(&ring, 0, 3, &msg, reply, send) == uring::Armed::Sent);
    CHECK_EQ(sends, 1);
    CHECK_EQ(sent.size(), reply.size());
    for (std::size_t i = 0; i < sent.size() && i < reply.size(); ++i)
        CHECK(std::memcmp(&sent[i], &reply[i], sizeof(machvm_cmd)) == 0);
    // ... and when that write fails too, the caller hears of it.
    auto refuse = [](std::span<const machvm_cmd>) { return false; };
    CHECK(uring::arm_reply(&ring, 0, 3, &msg, reply, refuse) == uring::Armed::Failed);
    io_uring_queue_exit(&ring);
}

void test_full_ring_submits() {
    io_uring ring;
    if (!full_ring(&ring, 2, false)) {
        std::printf("uring_sqe_test: no io_uring here; skipped\n");
        return;
    }
    // Full, but the kernel takes the NOPs: an SQE comes free.
    CHECK(uring::arm_poll(&ring, 0, 7));
    machvm_msg msg;
    const machvm_cmd reply = command(MACHVM_CMD_DATA_SUPPLY, 4096);
    int sends = 0;
    auto send = [&](std::span<const machvm_cmd>) {
        ++sends;
        return true;
    };
    CHECK(uring::arm_reply(&ring, 5, 9, &msg, std::span(&reply, 1), send) == uring::Armed::Ring);
    CHECK_EQ(sends, 0);
    // What the COMMIT_AND_FETCH carries.
    io_uring_sqe* sqe = &ring.sq.sqes[(ring.sq.sqe_tail - 1) & *ring.sq.kring_mask];
    CHECK_EQ(sqe->opcode, IORING_OP_URING_CMD);
    CHECK_EQ(sqe->fd, 5);
    CHECK_EQ(sqe->user_data, 9u);
    CHECK_EQ(sqe->cmd_op, static_cast<std::uint32_t>(MACHVM_URING_COMMIT_AND_FETCH));
    machvm_uring_cmd uc;
    std::memcpy(&uc, reinterpret_cast<unsigned char*>(sqe) + offsetof(io_uring_sqe, addr3),
                sizeof(uc));
    CHECK_EQ(uc.reply, reinterpret_cast<std::uintptr_t>(&reply));
    CHECK_EQ(uc.msg, reinterpret_cast<std::uintptr_t>(&msg));
    io_uring_queue_exit(&ring);
}

} // namespace

int main() {
    test_stuck_ring();
    test_full_ring_submits();
    return unit::finish("uring_sqe_test");
}
