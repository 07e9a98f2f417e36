// SPDX-License-Identifier: GPL-2.0
#include <machvm/file_reader.hpp>

#include <liburing.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>

namespace machvm {

namespace {
constexpr unsigned kMaxEntries = 64;

// pread until full or end of file; zero the rest.
Result<void> pread_full(int fd, std::uint64_t offset, std::span<std::byte> buf) noexcept {
    std::size_t done = 0;
    while (done < buf.size()) {
        ssize_t n =
            ::pread(fd, buf.data() + done, buf.size() - done, static_cast<off_t>(offset + done));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno_code();
        }
        if (n == 0)
            break;
        done += static_cast<std::size_t>(n);
    }
    if (done < buf.size())
        std::memset(buf.data() + done, 0, buf.size() - done);
    return {};
}
} // namespace

struct UringFileReader::Ring {
    io_uring ring{};
    bool ok = false;
    ~Ring() {
        if (ok)
            io_uring_queue_exit(&ring);
    }
};

UringFileReader::UringFileReader(unsigned entries)
    : entries_(std::clamp(entries, 1u, kMaxEntries)) {
    auto r = std::make_unique<Ring>();
    r->ok = io_uring_queue_init(entries_, &r->ring, 0) == 0;
    if (r->ok)
        ring_ = std::move(r);
}

UringFileReader::~UringFileReader() = default;

Result<void> UringFileReader::read(int fd, std::span<const Op> ops) noexcept {
    if (!ring_) {
        for (const Op& op : ops)
            if (auto r = pread_full(fd, op.offset, op.buf); !r)
                return r;
        return {};
    }
    while (!ops.empty()) {
        std::size_t n = std::min<std::size_t>(ops.size(), entries_);
        if (auto r = read_uring(fd, ops.first(n)); !r)
            return r;
        ops = ops.subspan(n);
    }
    return {};
}

Result<void> UringFileReader::read_uring(int fd, std::span<const Op> ops) noexcept {
    io_uring* ring = &ring_->ring;
    std::array<int, kMaxEntries> res;
    res.fill(-EAGAIN);
    unsigned queued = 0;
    for (std::size_t i = 0; i < ops.size(); ++i) {
        io_uring_sqe* sqe = io_uring_get_sqe(ring);
        if (!sqe)
            break;
        io_uring_prep_read(sqe, fd, ops[i].buf.data(), static_cast<unsigned>(ops[i].buf.size()),
                           ops[i].offset);
        sqe->user_data = i;
        ++queued;
    }
    unsigned got = 0;
    int sub = io_uring_submit(ring);
    if (sub < 0)
        queued = 0; // nothing in flight; pread below does it all
    while (got < queued) {
        io_uring_cqe* cqe = nullptr;
        int r = io_uring_wait_cqe(ring, &cqe);
        if (r == -EINTR)
            continue;
        if (r < 0)
            return neg_errno_code(r); // cannot tell what is still in flight
        if (cqe->user_data < ops.size())
            res[cqe->user_data] = cqe->res;
        io_uring_cqe_seen(ring, cqe);
        ++got;
    }
    // Finish short reads (and retry EINTR/EAGAIN ones) with pread.
    for (std::size_t i = 0; i < ops.size(); ++i) {
        const Op& op = ops[i];
        int r = res[i];
        if (r < 0 && r != -EAGAIN && r != -EINTR)
            return neg_errno_code(r);
        std::size_t done = r > 0 ? static_cast<std::size_t>(r) : 0;
        if (r == 0) { // end of file
            std::memset(op.buf.data(), 0, op.buf.size());
            continue;
        }
        if (done < op.buf.size())
            if (auto pr = pread_full(fd, op.offset + done, op.buf.subspan(done)); !pr)
                return pr;
    }
    return {};
}

} // namespace machvm
