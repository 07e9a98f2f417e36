// SPDX-License-Identifier: GPL-2.0
//
// PagerLoop: the io_uring transport.
//
// Each thread owns one ring and `depth` slots.  A slot is one
// IORING_OP_URING_CMD in flight on the pager endpoint: FETCH at first,
// then COMMIT_AND_FETCH carrying the first command of the handler's reply.
// The slot's message buffer, its reply (the command the SQE points to and
// the data buffers that command points to) stay put until the slot's CQE.
// Further commands of the batch go out with one write(2) right after the
// io_uring_enter that submitted the batch, so the order of one handler's
// commands is kept.
//
// stop(): a POLL_ADD on the loop's eventfd wakes every ring.  Slots are not
// re-armed after that; a message that still arrives is handled and its
// reply written with write(2).  The kernel completes an idle FETCH with
// MACHVM_MSG_NOP after MACHVM_FETCH_IDLE_MS, so the drain ends; if it does
// not, the slot memory is leaked rather than freed under the kernel.
#include <machvm/loop.hpp>

#include "uring_sqe.hpp"

#include <liburing.h>
#include <poll.h>
#include <sys/ioctl.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <span>
#include <utility>
#include <vector>

namespace machvm {

namespace {

// Not ~0: liburing uses that for its internal timeout SQEs.
constexpr std::uint64_t kStopTag = ~std::uint64_t{0} - 1;
// The 16-byte command area of a 64-byte SQE: addr3 and the pad after it.
constexpr std::size_t kCmdAreaOffset = offsetof(io_uring_sqe, addr3);
static_assert(kCmdAreaOffset + sizeof(machvm_uring_cmd) == sizeof(io_uring_sqe),
              "the uring_cmd area is the last 16 bytes of a 64-byte SQE");
static_assert(offsetof(io_uring_sqe, cmd_op) == offsetof(io_uring_sqe, off),
              "cmd_op shares the off union");

unsigned round_pow2(unsigned n) noexcept {
    unsigned p = 1;
    while (p < n)
        p <<= 1;
    return p;
}

} // namespace

struct PagerLoop::Ring {
    struct alignas(64) Slot {
        machvm_msg msg{};
        Reply reply;
        bool armed = false;
        bool committed = false;
        explicit Slot(Reply r) : reply(std::move(r)) {}
    };

    io_uring ring{};
    bool ring_ok = false;
    bool needs_enable = false;
    unsigned index = 0;
    // Heap-held so that a failed drain can leak it instead of freeing
    // memory the kernel may still write to.
    std::unique_ptr<std::vector<Slot>> slots;
    std::vector<machvm_cmd> extras;
    unsigned live = 0; // slots armed in the kernel

    ~Ring() {
        if (ring_ok)
            io_uring_queue_exit(&ring);
    }
};

bool PagerLoop::uring_cmd_supported() noexcept {
    io_uring_probe* p = io_uring_get_probe();
    if (!p)
        return false;
    bool ok = io_uring_opcode_supported(p, IORING_OP_URING_CMD);
    io_uring_free_probe(p);
    return ok;
}

PagerLoop::PagerLoop(PagerEndpoint& ep, Pager& pager, const LoopOptions& opts)
    : LoopBase(ep, pager, opts) {
    if (!uring_cmd_supported())
        throw std::system_error(errno_code(EOPNOTSUPP),
                                "io_uring: no IORING_OP_URING_CMD in this kernel");
    unsigned entries = round_pow2(opts_.depth + 2);
    for (unsigned i = 0; i < opts_.threads; ++i) {
        auto r = std::make_unique<Ring>();
        r->index = i;
        // Newest first: one issuer, task work only when we wait (6.1+);
        // then cooperative task work (5.19+); then plain.
        unsigned tries[3];
        unsigned ntries = 0;
        if (opts_.defer_taskrun)
            tries[ntries++] =
                IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_R_DISABLED;
        tries[ntries++] = IORING_SETUP_COOP_TASKRUN;
        tries[ntries++] = 0;
        int res = -EINVAL;
        for (unsigned t = 0; t < ntries; ++t) {
            io_uring_params p;
            std::memset(&p, 0, sizeof(p));
            p.flags = tries[t];
            res = io_uring_queue_init_params(entries, &r->ring, &p);
            if (res == 0) {
                r->needs_enable = (tries[t] & IORING_SETUP_R_DISABLED) != 0;
                break;
            }
            if (res != -EINVAL)
                break;
        }
        if (res < 0)
            throw std::system_error(neg_errno_code(res), "io_uring_queue_init");
        r->ring_ok = true;
        r->slots = std::make_unique<std::vector<Ring::Slot>>();
        r->slots->reserve(opts_.depth);
        for (unsigned j = 0; j < opts_.depth; ++j)
            r->slots->emplace_back(Reply(&ep_, i, this));
        r->extras.reserve(std::size_t{opts_.depth} * 8);
        rings_.push_back(std::move(r));
    }
    try {
        for (auto& r : rings_) {
            Ring* ring = r.get();
            spawn([this, ring] { run(*ring); });
        }
    } catch (...) {
        start_failed();
        throw;
    }
}

PagerLoop::~PagerLoop() {
    stop();
    (void)wait();
}

namespace uring {

io_uring_sqe* get_sqe(io_uring* ring) noexcept {
    io_uring_sqe* sqe = io_uring_get_sqe(ring);
    for (int tries = 0; !sqe && tries < 4; ++tries) {
        int res = io_uring_submit(ring);
        if (res < 0 && res != -EINTR && res != -EAGAIN && res != -EBUSY)
            break; // the kernel takes nothing: no SQE will come free
        sqe = io_uring_get_sqe(ring);
    }
    return sqe;
}

bool arm_poll(io_uring* ring, int fd, std::uint64_t tag) noexcept {
    io_uring_sqe* sqe = get_sqe(ring);
    if (!sqe)
        return false;
    io_uring_prep_poll_add(sqe, fd, POLLIN);
    sqe->user_data = tag;
    return true;
}

bool arm_cmd(io_uring* ring, int ep_fd, std::uint64_t tag, machvm_msg* msg,
             const machvm_cmd* reply) noexcept {
    io_uring_sqe* sqe = get_sqe(ring);
    if (!sqe)
        return false;
    std::memset(sqe, 0, sizeof(*sqe));
    sqe->opcode = IORING_OP_URING_CMD;
    sqe->fd = ep_fd;
    sqe->cmd_op = reply ? MACHVM_URING_COMMIT_AND_FETCH : MACHVM_URING_FETCH;
    machvm_uring_cmd uc;
    uc.reply = reinterpret_cast<std::uintptr_t>(reply);
    uc.msg = reinterpret_cast<std::uintptr_t>(msg);
    std::memcpy(reinterpret_cast<unsigned char*>(sqe) + kCmdAreaOffset, &uc, sizeof(uc));
    sqe->user_data = tag;
    return true;
}

Armed arm_reply(io_uring* ring, int ep_fd, std::uint64_t tag, machvm_msg* msg,
                std::span<const machvm_cmd> cmds,
                const std::function<bool(std::span<const machvm_cmd>)>& send) noexcept {
    if (arm_cmd(ring, ep_fd, tag, msg, &cmds[0]))
        return Armed::Ring;
    return send(cmds) ? Armed::Sent : Armed::Failed;
}

} // namespace uring

void PagerLoop::run(Ring& r) noexcept {
    io_uring* ring = &r.ring;
    std::vector<Ring::Slot>& slots = *r.slots;
    bool stopping_local = false;
    bool failed = false;

    if (r.needs_enable) {
        // liburing 2.3 declares io_uring_enable_rings() but does not
        // export it; this is what it would do.
        int res = io_uring_register(ring->ring_fd, IORING_REGISTER_ENABLE_RINGS, nullptr, 0);
        if (res < 0) {
            record_error(neg_errno_code(res));
            return;
        }
    }

    // Slots that found no SQE to re-arm on: armed again at the top of the
    // loop (their replies went out with write(2) already).
    std::vector<std::size_t> unarmed;
    unarmed.reserve(slots.size());
    auto arm = [&](std::size_t idx, const machvm_cmd* reply) noexcept {
        Ring::Slot& s = slots[idx];
        if (!uring::arm_cmd(ring, ep_.fd(), idx, &s.msg, reply)) {
            unarmed.push_back(idx);
            return false;
        }
        s.armed = true;
        s.committed = reply != nullptr;
        ++r.live;
        return true;
    };
    const std::function<bool(std::span<const machvm_cmd>)> send_now =
        [this](std::span<const machvm_cmd> cmds) { return send_commands(ep_, pager_, cmds); };

    // Commands after the first of each reply: written after the submit.
    auto flush_extras = [&]() noexcept {
        if (r.extras.empty())
            return true;
        bool ok = send_commands(ep_, pager_, r.extras);
        r.extras.clear();
        return ok;
    };
    auto add_extras = [&](std::span<const machvm_cmd> cmds) noexcept {
        if (r.extras.size() + cmds.size() > r.extras.capacity()) {
            io_uring_submit(ring); // the first commands go first
            if (!flush_extras())
                return false;
            if (cmds.size() > r.extras.capacity())
                return send_commands(ep_, pager_, cmds);
        }
        r.extras.insert(r.extras.end(), cmds.begin(), cmds.end());
        return true;
    };

    for (std::size_t i = 0; i < slots.size(); ++i)
        arm(i, nullptr);
    // Without its poll the ring is not woken by stop(): until it is armed,
    // the loop waits with a timeout and looks at stopping() itself.
    bool stop_armed = uring::arm_poll(ring, stop_fd(), kStopTag);

    auto handle = [&](const io_uring_cqe* cqe) noexcept {
        if (cqe->user_data == kStopTag) {
            stop_armed = false;
            stopping_local = true;
            return;
        }
        std::size_t idx = cqe->user_data;
        if (idx >= slots.size())
            return;
        Ring::Slot& s = slots[idx];
        s.armed = false;
        --r.live;
        bool committed = s.committed;
        s.committed = false;
        int res = cqe->res;
        if (res == -ECANCELED || res == -ENOTCONN) {
            // The endpoint (or this task) is going away: this slot is done.
            if (!stopping_local && !stopping())
                record_error(neg_errno_code(res));
            failed = true;
            return;
        }
        if (res < 0) {
            if (committed) {
                // The command failed; nothing waits.  Fetch again.
                pager_.on_command_error(s.reply.commands()[0], neg_errno_code(res));
            } else if (res != -EINTR && res != -EAGAIN) {
                // The FETCH itself was refused: the kernel will refuse
                // the next one too.
                record_error(neg_errno_code(res));
                failed = true;
                return;
            }
            if (!stopping_local)
                arm(idx, nullptr);
            return;
        }
        s.reply.reset();
        dispatch(pager_, s.msg, s.reply);
        auto cmds = s.reply.commands();
        if (stopping_local) {
            if (!cmds.empty() && !send_commands(ep_, pager_, cmds))
                failed = true;
            return;
        }
        if (cmds.empty()) {
            arm(idx, nullptr);
            return;
        }
        // The reply is committed: never dropped, on its SQE or written.
        switch (uring::arm_reply(ring, ep_.fd(), idx, &s.msg, cmds, send_now)) {
        case uring::Armed::Ring:
            s.armed = true;
            s.committed = true;
            ++r.live;
            if (cmds.size() > 1 && !add_extras(cmds.subspan(1)))
                failed = true;
            break;
        case uring::Armed::Sent:
            unarmed.push_back(idx);
            break;
        case uring::Armed::Failed:
            unarmed.push_back(idx);
            failed = true;
            break;
        }
    };

    // One wait's completions, in the order they are handled: by the seq
    // of their message (0 for none), then by their place in the CQ ring.
    // At most one per slot and the stop poll's are in flight, so the
    // vector never grows past its first size, and sorting it allocates
    // nothing (std::sort, not std::stable_sort).
    struct Reaped {
        std::uint64_t seq;
        std::size_t pos;
        io_uring_cqe cqe;
    };
    std::vector<Reaped> batch;
    batch.reserve(slots.size() + 1);

    using Clock = std::chrono::steady_clock;
    Clock::time_point drain_deadline{};
    bool drain_started = false;
    for (;;) {
        if (!stopping_local && stopping())
            stopping_local = true;
        if (stopping_local && !drain_started) {
            drain_started = true;
            drain_deadline = Clock::now() + std::chrono::milliseconds(MACHVM_FETCH_IDLE_MS + 3000);
            // This ring arms no more FETCHes: have the idle ones (every
            // ring's) complete now rather than after MACHVM_FETCH_IDLE_MS.
            // An older module (ENOTTY) lets them idle out.
            (void)::ioctl(ep_.fd(), MACHVM_IOC_FETCH_RELEASE, 0);
        }
        if (stopping_local && r.live == 0)
            break;
        if (failed && r.live == 0)
            break;

        if (!stopping_local && !failed) {
            if (!stop_armed)
                stop_armed = uring::arm_poll(ring, stop_fd(), kStopTag);
            std::vector<std::size_t> again;
            again.swap(unarmed);
            for (std::size_t idx : again)
                arm(idx, nullptr);
        }

        int res;
        if (!r.extras.empty()) {
            io_uring_submit(ring);
            if (!flush_extras())
                failed = true;
        }
        if (drain_started) {
            auto left = drain_deadline - Clock::now();
            if (left <= Clock::duration::zero())
                break;
            auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
            __kernel_timespec ts;
            ts.tv_sec = ns / 1000000000;
            ts.tv_nsec = ns % 1000000000;
            io_uring_cqe* cqe = nullptr;
            res = io_uring_submit_and_wait_timeout(ring, &cqe, 1, &ts, nullptr);
            if (res == -ETIME)
                continue;
        } else if (!stop_armed || !unarmed.empty()) {
            // Not woken by stop(), or slots to re-arm: look again soon.
            __kernel_timespec ts{0, 50 * 1000 * 1000};
            io_uring_cqe* cqe = nullptr;
            res = io_uring_submit_and_wait_timeout(ring, &cqe, 1, &ts, nullptr);
        } else {
            res = io_uring_submit_and_wait(ring, 1);
        }
        if (res < 0 && res != -EINTR && res != -EAGAIN && res != -EBUSY && res != -ETIME) {
            record_error(neg_errno_code(res));
            break;
        }
        // The kernel's messages in seq order: one ring never reaps a
        // message before one given to it earlier, except within the same
        // batch of completions (see the ABI header), so the batch is
        // sorted.  Completions without a message (errors, the stop poll)
        // go first, in ring order.
        batch.clear();
        unsigned head;
        io_uring_cqe* cqe;
        io_uring_for_each_cqe(ring, head, cqe) {
            const bool msg = cqe->res >= 0 && cqe->user_data < slots.size();
            batch.push_back({msg ? slots[cqe->user_data].msg.seq : 0, batch.size(), *cqe});
        }
        io_uring_cq_advance(ring, static_cast<unsigned>(batch.size()));
        std::ranges::sort(batch, {}, [](const Reaped& c) { return std::pair(c.seq, c.pos); });
        for (const Reaped& c : batch)
            handle(&c.cqe);
        if (failed && !stopping_local) {
            // A dead endpoint: stop re-arming, let the others complete.
            stopping_local = true;
        }
    }
    if (!r.extras.empty()) {
        io_uring_submit(ring);
        flush_extras();
    }
    if (r.live > 0) {
        std::fprintf(stderr,
                     "machvm: %u io_uring commands still in the kernel at exit; "
                     "keeping their buffers\n",
                     r.live);
        (void)r.slots.release(); // deliberately leaked: the kernel may write there
    } else {
        io_uring_queue_exit(ring);
        r.ring_ok = false;
    }
}

} // namespace machvm
