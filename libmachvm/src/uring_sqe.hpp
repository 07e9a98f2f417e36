// SPDX-License-Identifier: GPL-2.0
//
// The SQE handling of PagerLoop's io_uring transport (uring_loop.cpp),
// apart so that the host unit tests (uring_sqe_test) can drive it on a
// ring whose submission queue is full and cannot be emptied.
#pragma once

#include <liburing.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>

#include <linux/machvm.h>

namespace machvm::uring {

// A free SQE of `ring`.  When the submission queue is full, submits what
// it holds and tries again (a few times, as io_uring_enter may take only
// part of it or be interrupted); nullptr only when the kernel takes
// nothing (io_uring_enter failing).
io_uring_sqe* get_sqe(io_uring* ring) noexcept;

// Queues a POLL_ADD of `fd` (POLLIN) tagged `tag`.  false when no SQE was
// to be had: the caller must not count on the poll and try again later.
bool arm_poll(io_uring* ring, int fd, std::uint64_t tag) noexcept;

// Queues one IORING_OP_URING_CMD on the pager endpoint `ep_fd` tagged
// `tag`: COMMIT_AND_FETCH of `*reply` when given (it and what it points to
// must stay put until the CQE), else FETCH; the next message goes to
// `msg`.  false when no SQE was to be had.
bool arm_cmd(io_uring* ring, int ep_fd, std::uint64_t tag, machvm_msg* msg,
             const machvm_cmd* reply) noexcept;

// What became of a slot's reply (see arm_reply).
enum class Armed {
    Ring,   // on its SQE (the first command; the rest is the caller's)
    Sent,   // no SQE: every command went out with `send` instead
    Failed, // no SQE and `send` failed: the caller reports it
};

// Arms a slot with its handler's reply `cmds` (non-empty): the first
// command rides the slot's COMMIT_AND_FETCH.  When there is no SQE, the
// reply is never dropped: all of `cmds`, in order, go to `send` (write(2)
// on the endpoint), and the slot is left unarmed for a FETCH later.
Armed arm_reply(io_uring* ring, int ep_fd, std::uint64_t tag, machvm_msg* msg,
                std::span<const machvm_cmd> cmds,
                const std::function<bool(std::span<const machvm_cmd>)>& send) noexcept;

} // namespace machvm::uring
