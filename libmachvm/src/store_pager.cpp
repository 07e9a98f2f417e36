// SPDX-License-Identifier: GPL-2.0
//
// StorePager: data requests and returns served from a Store.  See store.hpp.
//
// Every store call carries a Job: the message, the pages of the batch and
// the buffers they point into.  A store that completes inside the call
// (Store::synchronous) gets buffers from the handler's own Reply, and the
// answer goes out with it (on io_uring: as the slot's COMMIT_AND_FETCH).
// Any other store gets a Job with a Reply of its own, sent with one
// write(2) when the store completes; the Job lives until then.
#include <machvm/store.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <unordered_map>

namespace machvm {

double StoreStats::ratio() const noexcept {
    if (bytes_stored == 0)
        return 1.0;
    return static_cast<double>(pages * page_size) / static_cast<double>(bytes_stored);
}

struct StorePager::Job {
    StorePager* pager = nullptr;
    machvm_msg msg{};
    std::unique_ptr<Reply> own; // asynchronous stores only
    Reply* out = nullptr;       // where the answer goes
    std::vector<StoreGet> gets;
    std::vector<StorePut> puts;
    std::uint64_t requested = 0; // gets[0, requested) are msg's range
    std::error_code error;
    bool is_return = false;
};

// Objects by control id: read-ahead needs each one's size and streams.
struct StorePager::Objects {
    struct State {
        std::uint64_t size = 0;
        std::unique_ptr<SequentialDetector> detector;
    };
    std::mutex mu;
    std::unordered_map<std::uint64_t, State> map;
};

StorePager::StorePager(Store& store, const StorePagerOptions& opts)
    : store_(store), opts_(opts), objects_(std::make_unique<Objects>()) {}

StorePager::~StorePager() = default;

void StorePager::on_init(const machvm_msg& msg, Reply& reply) noexcept {
    try {
        std::lock_guard<std::mutex> lock(objects_->mu);
        Objects::State& st = objects_->map[msg.object];
        st.size = msg.size;
        if (opts_.readahead.max_window != 0)
            st.detector = std::make_unique<SequentialDetector>(opts_.readahead);
    } catch (...) {
        // Without the entry the object just gets no read-ahead.
    }
    reply.ready(msg.object, opts_.attr, opts_.ready_flags);
}

void StorePager::on_terminate(const machvm_msg& msg, Reply&) noexcept {
    {
        std::lock_guard<std::mutex> lock(objects_->mu);
        objects_->map.erase(msg.object);
    }
    try {
        store_.erase(msg.object, [](std::error_code) {});
    } catch (...) {
        // A store that could not even take the call keeps the pages; the
        // next erase of a reused id does not exist (ids are not reused).
    }
}

void StorePager::on_data_request(const machvm_msg& msg, Reply& reply) noexcept {
    const std::uint64_t ps = opts_.page_size;
    SequentialDetector::Range ahead;
    {
        std::lock_guard<std::mutex> lock(objects_->mu);
        auto o = objects_->map.find(msg.object);
        if (o != objects_->map.end() && o->second.detector)
            ahead = o->second.detector->on_request(msg.offset, msg.length, o->second.size);
    }
    std::shared_ptr<Job> job;
    try {
        job = std::make_shared<Job>();
        job->pager = this;
        job->msg = msg;
        if (store_.synchronous()) {
            job->out = &reply;
        } else {
            job->own = std::make_unique<Reply>(reply.endpoint(), reply.thread_index());
            job->out = job->own.get();
        }
        const std::uint64_t n = msg.length / ps;
        const std::uint64_t na = ahead.length / ps;
        std::span<std::byte> buf = job->out->buffer((n + na) * ps);
        if (buf.empty())
            throw std::bad_alloc();
        job->gets.reserve(n + na);
        for (std::uint64_t i = 0; i < n; ++i)
            job->gets.push_back({msg.object, msg.offset + i * ps, buf.subspan(i * ps, ps), false});
        for (std::uint64_t i = 0; i < na; ++i)
            job->gets.push_back(
                {msg.object, ahead.offset + i * ps, buf.subspan((n + i) * ps, ps), false});
        job->requested = n;
    } catch (...) {
        reply.data_error(msg.object, msg.offset, msg.length, ENOMEM);
        return;
    }
    in_flight_.fetch_add(1, std::memory_order_acq_rel);
    Job& j = *job;
    store_.get(j.gets, [job](std::error_code ec) {
        job->error = ec;
        job->pager->finish(*job);
    });
}

void StorePager::on_data_return(const machvm_msg& msg, Reply& reply) noexcept {
    const std::uint64_t ps = opts_.page_size;
    std::shared_ptr<Job> job;
    try {
        job = std::make_shared<Job>();
        job->pager = this;
        job->msg = msg;
        job->is_return = true;
        if (store_.synchronous()) {
            job->out = &reply;
        } else {
            job->own = std::make_unique<Reply>(reply.endpoint(), reply.thread_index());
            job->out = job->own.get();
        }
        std::span<std::byte> buf = job->out->buffer(msg.length);
        if (buf.empty())
            throw std::bad_alloc();
        if (Result<void> r = reply.copy_returned(msg, buf); !r) {
            // ESTALE: a newer return covers these pages; either way the
            // kernel still has them.
            returns_refused_.fetch_add(1, std::memory_order_relaxed);
            reply.return_done(msg, r.error().value());
            return;
        }
        const std::uint64_t n = msg.length / ps;
        job->puts.reserve(n);
        for (std::uint64_t i = 0; i < n; ++i)
            job->puts.push_back({msg.object, msg.offset + i * ps, buf.subspan(i * ps, ps)});
    } catch (...) {
        returns_refused_.fetch_add(1, std::memory_order_relaxed);
        reply.return_done(msg, ENOMEM);
        return;
    }
    in_flight_.fetch_add(1, std::memory_order_acq_rel);
    Job& j = *job;
    store_.put(j.puts, [job](std::error_code ec) {
        job->error = ec;
        job->pager->finish(*job);
    });
}

// The store has completed the job's call: answer the kernel.
void StorePager::finish(Job& job) noexcept {
    Reply& out = *job.out;
    const machvm_msg& msg = job.msg;
    const std::uint64_t ps = opts_.page_size;
    const int err =
        job.error ? (job.error.value() > 0 && job.error.value() < 4096 ? job.error.value() : EIO)
                  : 0;
    if (job.is_return) {
        // Only now does the store hold the pages: the kernel may free them.
        out.return_done(msg, err);
        (err ? returns_refused_ : returns_taken_).fetch_add(1, std::memory_order_relaxed);
    } else if (err) {
        out.data_error(msg.object, msg.offset, msg.length, err);
    } else {
        const std::uint32_t flags = opts_.precious ? MACHVM_SUPPLY_F_PRECIOUS : 0;
        // Runs of found pages are supplied; runs the store lacks are
        // zero-filled by the kernel in the requested range and skipped ahead.
        const std::size_t total = job.gets.size();
        std::size_t i = 0;
        while (i < total) {
            const bool req = i < job.requested;
            const bool found = job.gets[i].found;
            std::size_t e = i + 1;
            while (e < total && (e < job.requested) == req && job.gets[e].found == found &&
                   job.gets[e].offset == job.gets[e - 1].offset + ps)
                ++e;
            const std::uint64_t off = job.gets[i].offset;
            const std::uint64_t len = (e - i) * ps;
            if (found)
                out.data_supply(msg.object, off,
                                std::span<const std::byte>(job.gets[i].page.data(), len), flags);
            else if (req)
                out.data_unavailable(msg.object, off, len);
            i = e;
        }
    }
    if (job.own && job.own->endpoint() && !job.own->empty())
        send_commands(*job.own->endpoint(), *this, job.own->commands());
    in_flight_.fetch_sub(1, std::memory_order_acq_rel);
}

} // namespace machvm
