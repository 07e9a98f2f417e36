// SPDX-License-Identifier: GPL-2.0
//
// Pager: one handler per kernel message.  A handler answers through the
// Reply it is given; the loop that called it sends the commands when the
// handler returns (over io_uring: the first one as that slot's
// COMMIT_AND_FETCH, the rest with one write(2) right after).
//
// Handlers run on the loop's threads, several at once when the loop has
// more than one thread: a Pager must be thread-safe.  They are noexcept and
// must not block for long (every message of that thread waits).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <system_error>
#include <vector>

#include <linux/machvm.h>
#include <machvm/device.hpp>

namespace machvm {

// What every loop offers to the handlers and to its owner.
class Loop {
  public:
    virtual ~Loop() = default;
    // Asks every thread to finish.  Async-signal-safe, any thread.
    virtual void stop() noexcept = 0;
    // Joins the threads; the first error that ended one, if any.
    virtual Result<void> wait() noexcept = 0;
    // True once every thread has returned (wait() will not block).
    virtual bool finished() const noexcept = 0;
};

// The commands a handler sends in answer to one message, and the data
// buffers they point to.  Commands go out in the order they were queued,
// after the handler returns.
class Reply {
  public:
    // Loops make these; tests can too (endpoint may be null).
    explicit Reply(PagerEndpoint* endpoint = nullptr, unsigned thread_index = 0,
                   Loop* loop = nullptr);
    Reply(const Reply&) = delete;
    Reply& operator=(const Reply&) = delete;
    Reply(Reply&&) noexcept = default;
    Reply& operator=(Reply&&) noexcept = default;
    ~Reply();

    // Each returns false (and queues nothing) if memory ran out.  A range
    // of length 0 queues nothing (the kernel refuses it).
    // flags: MACHVM_READY_F_* (machvm::ready_flags(version) for a pager
    // whose on_data_return takes any range).
    bool ready(std::uint64_t object, const machvm_attr& attr, std::uint32_t flags = 0) noexcept;
    // `data` must stay valid until the reply is sent: use buffer() or
    // memory that lives as long as the pager.  Split at MACHVM_MAX_XFER.
    // lock: accesses prohibited on the pages (0 or PROT_WRITE).
    bool data_supply(std::uint64_t object, std::uint64_t offset, std::span<const std::byte> data,
                     std::uint32_t flags = 0, std::uint32_t lock = 0) noexcept;
    bool data_unavailable(std::uint64_t object, std::uint64_t offset,
                          std::uint64_t length) noexcept;
    bool data_error(std::uint64_t object, std::uint64_t offset, std::uint64_t length,
                    int error) noexcept;
    bool change_attributes(std::uint64_t object, const machvm_attr& attr) noexcept;
    bool destroy(std::uint64_t object) noexcept;
    // Ends the DATA_RETURN msg: error 0 takes the pages, a positive errno
    // refuses them (the kernel's default pager keeps them).
    bool return_done(const machvm_msg& msg, int error) noexcept;
    bool lock_request(std::uint64_t object, std::uint64_t offset, std::uint64_t length,
                      std::uint32_t flags, std::uint32_t lock = 0) noexcept;
    // Copies the pages of the DATA_RETURN msg into dst (msg.length bytes)
    // now (a write(2) on the endpoint, not queued): the data to store
    // before return_done().
    Result<void> copy_returned(const machvm_msg& msg, std::span<std::byte> dst) noexcept;
    bool command(const machvm_cmd& c) noexcept;

    // A page-aligned scratch buffer that lives until this reply has been
    // sent and completed (empty span if memory ran out).  Several calls
    // give distinct buffers.
    std::span<std::byte> buffer(std::size_t bytes) noexcept;

    // Which loop thread runs the handler: 0 .. threads-1.
    unsigned thread_index() const noexcept { return thread_index_; }
    // For commands that must go out at once (bypassing the reply order).
    PagerEndpoint* endpoint() const noexcept { return endpoint_; }
    // Ask the loop to stop after this message.
    void stop_loop() noexcept;

    std::span<const machvm_cmd> commands() const noexcept { return cmds_; }
    bool empty() const noexcept { return cmds_.empty(); }
    // Drops the commands; keeps (some of) the buffers for reuse.
    void reset() noexcept;

  private:
    struct FreeDeleter {
        void operator()(std::byte* p) const noexcept;
    };
    struct Buffer {
        std::unique_ptr<std::byte, FreeDeleter> data;
        std::size_t capacity = 0;
    };

    // The commands make(offset, n) for [offset, offset + length) in
    // pieces of at most MACHVM_MAX_XFER bytes: all of them, or none.
    template <typename Make>
    bool in_pieces(std::uint64_t offset, std::uint64_t length, Make make) noexcept;

    PagerEndpoint* endpoint_;
    unsigned thread_index_;
    Loop* loop_;
    std::vector<machvm_cmd> cmds_;
    std::vector<Buffer> buffers_;
    std::size_t buffers_used_ = 0;
};

class Pager {
  public:
    virtual ~Pager() = default;

    // MACHVM_MSG_INIT.  Default: ready with default_attr().
    virtual void on_init(const machvm_msg& msg, Reply& reply) noexcept;
    // MACHVM_MSG_DATA_REQUEST: [msg.offset, msg.offset + msg.length).
    virtual void on_data_request(const machvm_msg& msg, Reply& reply) noexcept = 0;
    // MACHVM_MSG_SUPPLY_COMPLETED.  Default: nothing.
    virtual void on_supply_completed(const machvm_msg& msg, Reply& reply) noexcept;
    // MACHVM_MSG_TERMINATE: msg.object is dead.  Default: nothing.
    virtual void on_terminate(const machvm_msg& msg, Reply& reply) noexcept;
    // MACHVM_MSG_DATA_RETURN: the kernel gives [msg.offset, +msg.length)
    // back (msg.flags: MACHVM_RETURN_F_*): one page, or several contiguous
    // pages when READY said MACHVM_READY_F_CLUSTER_RETURN.  Copy it with
    // reply.copy_returned(), store it, then reply.return_done(..., 0).
    // Default: refuse at once (the default pager keeps the pages in swap).
    virtual void on_data_return(const machvm_msg& msg, Reply& reply) noexcept;
    // MACHVM_MSG_LOCK_COMPLETED.  Default: nothing.
    virtual void on_lock_completed(const machvm_msg& msg, Reply& reply) noexcept;
    // MACHVM_MSG_DATA_UNLOCK: a write to a page supplied write-locked.
    // Default: unlock it (lock_request with MACHVM_LOCK_F_LOCK, lock 0).
    virtual void on_data_unlock(const machvm_msg& msg, Reply& reply) noexcept;
    // A message type this library does not know.  Default: one warning.
    virtual void on_unknown(const machvm_msg& msg, Reply& reply) noexcept;
    // A command the kernel refused (sent for an earlier message).  Default:
    // a line on stderr.
    virtual void on_command_error(const machvm_cmd& c, std::error_code ec) noexcept;
};

// Calls the handler for msg.type (nothing for MACHVM_MSG_NOP).
void dispatch(Pager& pager, const machvm_msg& msg, Reply& reply) noexcept;

// Writes cmds in order; each command the kernel refuses is passed to
// pager.on_command_error and skipped.  Returns false if the endpoint itself
// failed (EBADF, ENOTCONN, ...): the rest were not sent.
bool send_commands(PagerEndpoint& ep, Pager& pager, std::span<const machvm_cmd> cmds) noexcept;

} // namespace machvm
