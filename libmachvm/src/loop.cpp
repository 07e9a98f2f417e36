// SPDX-License-Identifier: GPL-2.0
//
// LoopBase (threads, stop, errors) and BlockingLoop (read/write path).
#include <machvm/loop.hpp>

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>

namespace machvm {

// ---- LoopBase ----

LoopBase::LoopBase(PagerEndpoint& ep, Pager& pager, const LoopOptions& opts)
    : ep_(ep), pager_(pager), opts_(opts) {
    if (!ep.valid())
        throw std::system_error(errno_code(EBADF), "pager loop: no endpoint");
    if (opts.threads < 1 || opts.threads > 256)
        throw std::system_error(errno_code(EINVAL), "pager loop: threads must be 1..256");
    if (opts.depth < 1 || opts.depth > 4096)
        throw std::system_error(errno_code(EINVAL), "pager loop: depth must be 1..4096");
    int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0)
        throw std::system_error(errno_code(), "eventfd");
    stop_fd_.reset(fd);
}

LoopBase::~LoopBase() {
    stop();
    (void)wait();
}

void LoopBase::stop() noexcept {
    if (!stop_.exchange(true, std::memory_order_acq_rel)) {
        std::uint64_t one = 1;
        // Only async-signal-safe calls here.
        ssize_t n = ::write(stop_fd_.get(), &one, sizeof(one));
        (void)n;
    }
}

Result<void> LoopBase::wait() noexcept {
    std::lock_guard<std::mutex> lock(join_mu_);
    for (auto& t : threads_)
        if (t.joinable())
            t.join();
    std::lock_guard<std::mutex> lock2(mu_);
    return error_;
}

bool LoopBase::finished() const noexcept {
    return running_.load(std::memory_order_acquire) == 0;
}

void LoopBase::record_error(std::error_code ec) noexcept {
    std::lock_guard<std::mutex> lock(mu_);
    if (!error_)
        error_ = ec;
}

void LoopBase::spawn(std::function<void()> body) {
    running_.fetch_add(1, std::memory_order_acq_rel);
    try {
        threads_.emplace_back([this, body = std::move(body)] {
            body();
            running_.fetch_sub(1, std::memory_order_acq_rel);
        });
    } catch (...) {
        running_.fetch_sub(1, std::memory_order_acq_rel);
        throw;
    }
}

void LoopBase::start_failed() noexcept {
    stop();
    (void)wait();
}

// ---- BlockingLoop ----

struct BlockingLoop::Worker {
    std::vector<machvm_msg> msgs;
    std::vector<Reply> replies;
    std::vector<machvm_cmd> pending;
};

BlockingLoop::BlockingLoop(PagerEndpoint& ep, Pager& pager, const LoopOptions& opts)
    : LoopBase(ep, pager, opts) {
    ep.set_nonblocking(true).value_or_throw("pager endpoint: O_NONBLOCK");
    for (unsigned i = 0; i < opts_.threads; ++i) {
        auto w = std::make_unique<Worker>();
        w->msgs.resize(opts_.depth);
        w->replies.reserve(opts_.depth);
        for (unsigned j = 0; j < opts_.depth; ++j)
            w->replies.emplace_back(&ep_, i, this);
        w->pending.reserve(std::size_t{opts_.depth} * 8);
        workers_.push_back(std::move(w));
    }
    try {
        for (unsigned i = 0; i < opts_.threads; ++i)
            spawn([this, i] { run(i); });
    } catch (...) {
        start_failed();
        throw;
    }
}

BlockingLoop::~BlockingLoop() {
    stop();
    (void)wait();
}

void BlockingLoop::run(unsigned index) noexcept {
    Worker& w = *workers_[index];
    auto flush = [&]() noexcept {
        bool ok = send_commands(ep_, pager_, w.pending);
        w.pending.clear();
        return ok;
    };
    while (!stopping()) {
        struct pollfd fds[2] = {{ep_.fd(), POLLIN, 0}, {stop_fd(), POLLIN, 0}};
        int n = ::poll(fds, 2, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            record_error(errno_code());
            break;
        }
        if (fds[1].revents)
            break;
        if (fds[0].revents & POLLNVAL) {
            record_error(errno_code(EBADF));
            break;
        }
        if (!fds[0].revents)
            continue;
        auto r = ep_.read_messages(w.msgs);
        if (!r) {
            std::error_code ec = r.error();
            if (ec == std::errc::resource_unavailable_try_again || ec == std::errc::interrupted)
                continue; // another thread took it
            record_error(ec);
            break;
        }
        if (*r == 0) { // end of file: the endpoint is shut down
            record_error(errno_code(ENOTCONN));
            break;
        }
        bool ok = true;
        for (std::size_t i = 0; i < *r && ok; ++i) {
            Reply& reply = w.replies[i];
            reply.reset();
            dispatch(pager_, w.msgs[i], reply);
            auto cmds = reply.commands();
            if (w.pending.size() + cmds.size() > w.pending.capacity())
                ok = flush();
            if (!ok)
                break;
            if (cmds.size() > w.pending.capacity())
                ok = send_commands(ep_, pager_, cmds);
            else
                w.pending.insert(w.pending.end(), cmds.begin(), cmds.end());
        }
        if (ok)
            ok = flush();
        if (!ok) {
            record_error(errno_code(ENOTCONN));
            break;
        }
    }
}

} // namespace machvm
