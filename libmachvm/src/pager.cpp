// SPDX-License-Identifier: GPL-2.0
#include <machvm/pager.hpp>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <new>

namespace machvm {

namespace {
constexpr std::size_t kBufferAlign = 4096;
// What a Reply keeps for reuse after reset(), in bytes.
constexpr std::size_t kKeepBytes = 2u << 20;
constexpr std::size_t kInitialCommands = 8;
} // namespace

void Reply::FreeDeleter::operator()(std::byte* p) const noexcept {
    std::free(p);
}

Reply::Reply(PagerEndpoint* endpoint, unsigned thread_index, Loop* loop)
    : endpoint_(endpoint), thread_index_(thread_index), loop_(loop) {
    cmds_.reserve(kInitialCommands);
}

Reply::~Reply() = default;

bool Reply::command(const machvm_cmd& c) noexcept {
    try {
        cmds_.push_back(c);
    } catch (const std::bad_alloc&) {
        return false;
    }
    return true;
}

bool Reply::ready(std::uint64_t object, const machvm_attr& attr, std::uint32_t flags) noexcept {
    return command(cmd::ready(object, attr, flags));
}

template <typename Make>
bool Reply::in_pieces(std::uint64_t offset, std::uint64_t length, Make make) noexcept {
    const std::size_t before = cmds_.size();
    while (length) {
        const std::uint64_t n = std::min<std::uint64_t>(length, MACHVM_MAX_XFER);
        if (!command(make(offset, n))) {
            cmds_.resize(before);
            return false;
        }
        offset += n;
        length -= n;
    }
    return true;
}

bool Reply::data_supply(std::uint64_t object, std::uint64_t offset, std::span<const std::byte> data,
                        std::uint32_t flags, std::uint32_t lock) noexcept {
    // Nothing for empty data: the kernel would refuse length 0.
    return in_pieces(offset, data.size(), [&](std::uint64_t off, std::uint64_t n) {
        return cmd::data_supply(object, off, data.data() + (off - offset),
                                static_cast<std::size_t>(n), flags, lock);
    });
}

bool Reply::data_unavailable(std::uint64_t object, std::uint64_t offset,
                             std::uint64_t length) noexcept {
    return in_pieces(offset, length, [&](std::uint64_t off, std::uint64_t n) {
        return cmd::data_unavailable(object, off, n);
    });
}

bool Reply::data_error(std::uint64_t object, std::uint64_t offset, std::uint64_t length,
                       int error) noexcept {
    return in_pieces(offset, length, [&](std::uint64_t off, std::uint64_t n) {
        return cmd::data_error(object, off, n, error);
    });
}

bool Reply::change_attributes(std::uint64_t object, const machvm_attr& attr) noexcept {
    return command(cmd::change_attributes(object, attr));
}

bool Reply::destroy(std::uint64_t object) noexcept {
    return command(cmd::destroy(object));
}

bool Reply::return_done(const machvm_msg& msg, int error) noexcept {
    return command(cmd::return_done(msg.object, msg.offset, msg.length, msg.seq, error));
}

bool Reply::lock_request(std::uint64_t object, std::uint64_t offset, std::uint64_t length,
                         std::uint32_t flags, std::uint32_t lock) noexcept {
    return command(cmd::lock_request(object, offset, length, flags, lock));
}

Result<void> Reply::copy_returned(const machvm_msg& msg, std::span<std::byte> dst) noexcept {
    if (!endpoint_)
        return errno_code(EBADF);
    if (dst.size() < msg.length)
        return errno_code(EINVAL);
    dst = dst.first(msg.length);
    std::uint64_t offset = msg.offset;
    while (!dst.empty()) {
        std::size_t n = std::min<std::size_t>(dst.size(), MACHVM_MAX_XFER);
        Result<void> r =
            endpoint_->command(cmd::return_copy(msg.object, offset, dst.data(), n, msg.seq));
        if (!r)
            return r;
        offset += n;
        dst = dst.subspan(n);
    }
    return {};
}

std::span<std::byte> Reply::buffer(std::size_t bytes) noexcept {
    if (bytes == 0)
        return {};
    std::size_t want = (bytes + kBufferAlign - 1) & ~(kBufferAlign - 1);
    try {
        if (buffers_used_ == buffers_.size())
            buffers_.emplace_back();
    } catch (const std::bad_alloc&) {
        return {};
    }
    Buffer& b = buffers_[buffers_used_];
    if (b.capacity < want) {
        b.data.reset();
        b.capacity = 0;
        auto* p = static_cast<std::byte*>(std::aligned_alloc(kBufferAlign, want));
        if (!p)
            return {};
        b.data.reset(p);
        b.capacity = want;
    }
    ++buffers_used_;
    return {b.data.get(), bytes};
}

void Reply::stop_loop() noexcept {
    if (loop_)
        loop_->stop();
}

void Reply::reset() noexcept {
    cmds_.clear();
    buffers_used_ = 0;
    std::size_t kept = 0;
    for (Buffer& b : buffers_) {
        if (kept + b.capacity > kKeepBytes) {
            b.data.reset();
            b.capacity = 0;
        }
        kept += b.capacity;
    }
}

// ---- Pager defaults ----

void Pager::on_init(const machvm_msg& msg, Reply& reply) noexcept {
    reply.ready(msg.object, default_attr());
}

void Pager::on_supply_completed(const machvm_msg&, Reply&) noexcept {}

void Pager::on_terminate(const machvm_msg&, Reply&) noexcept {}

void Pager::on_data_return(const machvm_msg& msg, Reply& reply) noexcept {
    reply.return_done(msg, EOPNOTSUPP);
}

void Pager::on_lock_completed(const machvm_msg&, Reply&) noexcept {}

void Pager::on_data_unlock(const machvm_msg& msg, Reply& reply) noexcept {
    reply.lock_request(msg.object, msg.offset, msg.length, MACHVM_LOCK_F_LOCK, 0);
}

void Pager::on_unknown(const machvm_msg& msg, Reply&) noexcept {
    static std::atomic<bool> warned{false};
    if (!warned.exchange(true))
        std::fprintf(stderr, "machvm: ignoring message of unknown type %u (seq %llu)\n", msg.type,
                     static_cast<unsigned long long>(msg.seq));
}

void Pager::on_command_error(const machvm_cmd& c, std::error_code ec) noexcept {
    std::fprintf(stderr, "machvm: %s object %llu offset %llu length %llu: %s\n",
                 cmd_type_name(c.type), static_cast<unsigned long long>(c.object),
                 static_cast<unsigned long long>(c.offset),
                 static_cast<unsigned long long>(c.length), ec.message().c_str());
}

namespace {

// Which handler takes which message.
struct Route {
    std::uint32_t type;
    void (Pager::*handler)(const machvm_msg&, Reply&) noexcept;
};

constexpr Route kRoutes[] = {
    {MACHVM_MSG_INIT, &Pager::on_init},
    {MACHVM_MSG_DATA_REQUEST, &Pager::on_data_request},
    {MACHVM_MSG_SUPPLY_COMPLETED, &Pager::on_supply_completed},
    {MACHVM_MSG_TERMINATE, &Pager::on_terminate},
    {MACHVM_MSG_DATA_RETURN, &Pager::on_data_return},
    {MACHVM_MSG_LOCK_COMPLETED, &Pager::on_lock_completed},
    {MACHVM_MSG_DATA_UNLOCK, &Pager::on_data_unlock},
};

} // namespace

void dispatch(Pager& pager, const machvm_msg& msg, Reply& reply) noexcept {
    if (msg.type == MACHVM_MSG_NOP)
        return;
    for (const Route& r : kRoutes)
        if (r.type == msg.type)
            return (pager.*r.handler)(msg, reply);
    pager.on_unknown(msg, reply);
}

bool send_commands(PagerEndpoint& ep, Pager& pager, std::span<const machvm_cmd> cmds) noexcept {
    unsigned again = 0;
    while (!cmds.empty()) {
        auto r = ep.write_commands(cmds);
        if (r.ok() && *r > 0) {
            // A short count: cmds[0] now failed; the next write names it.
            cmds = cmds.subspan(*r);
            again = 0;
            continue;
        }
        std::error_code ec = r.ok() ? errno_code(EIO) : r.error();
        if (ec == std::errc::interrupted)
            continue;
        if (ec == std::errc::resource_unavailable_try_again && ++again < 1000) {
            // Non-blocking endpoint that cannot take more now: wait 1 ms.
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, nullptr);
            continue;
        }
        if (ec == std::errc::bad_file_descriptor || ec == std::errc::not_connected ||
            ec == std::errc::operation_canceled || ec == std::errc::broken_pipe)
            return false;
        pager.on_command_error(cmds[0], ec);
        cmds = cmds.subspan(1);
    }
    return true;
}

} // namespace machvm
