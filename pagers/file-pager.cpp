// SPDX-License-Identifier: GPL-2.0
//
// file-pager: serves a memory object from a regular file.  Reads go through
// io_uring (one small ring per serving thread); sequential access is
// detected and the pages after it are supplied ahead, unasked, in a window
// that doubles up to --readahead.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <machvm/cli.hpp>
#include <machvm/file_reader.hpp>
#include <machvm/readahead.hpp>
#include <machvm/serve.hpp>

namespace {

constexpr const char* kProg = "file-pager";

const char kHead[] = "NAME\n"
                     "       file-pager - a machvm pager serving a memory object from a file\n"
                     "\n"
                     "SYNOPSIS\n"
                     "       file-pager [--readahead SIZE] [OPTIONS] FILE --socket PATH\n"
                     "                  [--exec CMD [ARG...]]\n"
                     "       file-pager [--readahead SIZE] [OPTIONS] FILE --exec CMD [ARG...]\n"
                     "\n"
                     "DESCRIPTION\n"
                     "       Creates one machvm memory object holding the contents of FILE, a\n"
                     "       regular file: the object's size is FILE's size rounded up to the\n"
                     "       page size, the tail after the end of FILE reads as zeros.  Pages are\n"
                     "       read with io_uring (pread(2) if io_uring is unavailable) when a\n"
                     "       fault asks for them.  When faults walk through the object in order,\n"
                     "       the pages after the request are supplied too, before anyone asks:\n"
                     "       first 64K ahead, doubling on every further sequential request up to\n"
                     "       --readahead.\n"
                     "\n"
                     "       Pages written through a shared mapping come back when the kernel\n"
                     "       pages them out (data_return): they are written to FILE before the\n"
                     "       kernel frees them, so the file holds what was written (the tail\n"
                     "       past the end of FILE is not; FILE never grows).  FILE is opened\n"
                     "       read-write unless --max-prot lacks w or FILE is not writable; then\n"
                     "       returned pages are refused and the kernel's default pager keeps\n"
                     "       them in swap.\n"
                     "\n"
                     "OPTIONS\n"
                     "       FILE   The file to serve.  Must be a non-empty regular file; it\n"
                     "              comes before --exec.\n"
                     "       --readahead SIZE\n"
                     "              The largest window supplied ahead of a sequential request\n"
                     "              (K, M suffixes; 0 turns read-ahead off).  Default 1M, at most\n"
                     "              64M.\n"
                     "       The common --cluster option defaults to 16 pages here.\n";

const char kExitExtra[] = "";

const char kTail[] =
    "\n"
    "EXAMPLES\n"
    "       file-pager /usr/bin/busybox --socket /tmp/bb &\n"
    "       machvm-map --socket /tmp/bb        # same fnv1a64 as:\n"
    "       machvm-map --file /usr/bin/busybox\n"
    "\n"
    "       file-pager --readahead 0 --cluster 1 data.bin --exec machvm-map --order random\n";

class FilePager final : public machvm::Pager {
  public:
    FilePager(machvm::Fd file, std::uint64_t object_size, const machvm_attr& attr,
              const machvm::SequentialDetector::Config& ra, unsigned threads,
              std::uint32_t ready_flags)
        : file_(std::move(file)), object_size_(object_size), attr_(attr), ready_flags_(ready_flags),
          detector_(ra), readahead_(ra.max_window != 0) {
        struct stat st;
        file_size_ = ::fstat(file_.get(), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
        writable_ = (::fcntl(file_.get(), F_GETFL) & O_ACCMODE) == O_RDWR;
        for (unsigned i = 0; i < threads; ++i)
            readers_.push_back(std::make_unique<machvm::UringFileReader>(4));
    }

    bool uses_uring() const noexcept { return readers_.front()->uses_uring(); }

    void on_init(const machvm_msg& msg, machvm::Reply& reply) noexcept override {
        reply.ready(msg.object, attr_, ready_flags_); // returns of any range
    }

    void on_data_request(const machvm_msg& msg, machvm::Reply& reply) noexcept override {
        const std::uint64_t off = msg.offset;
        const std::uint64_t len = msg.length;
        machvm::SequentialDetector::Range ahead;
        if (readahead_) {
            std::lock_guard<std::mutex> lock(mu_);
            ahead = detector_.on_request(off, len, object_size_);
        }
        std::span<std::byte> want = reply.buffer(len);
        if (want.empty()) {
            reply.data_error(msg.object, off, len, ENOMEM);
            return;
        }
        std::span<std::byte> more;
        if (!ahead.empty())
            more = reply.buffer(ahead.length);
        machvm::UringFileReader::Op ops[2] = {{off, want}, {ahead.offset, more}};
        const std::size_t nops = more.empty() ? 1 : 2;
        machvm::UringFileReader& reader = *readers_[reply.thread_index() % readers_.size()];
        machvm::Result<void> r = reader.read(file_.get(), std::span(ops, nops));
        if (!r) {
            reply.data_error(msg.object, off, len, r.error().value());
            return;
        }
        reply.data_supply(msg.object, off, want);
        if (!more.empty())
            reply.data_supply(msg.object, ahead.offset, more);
    }

    // Written pages: copy them, write them to the file, then let the
    // kernel free them (it serves faults from them until then).
    void on_data_return(const machvm_msg& msg, machvm::Reply& reply) noexcept override {
        const std::uint64_t off = msg.offset;
        const std::uint64_t len = msg.length;
        if (!writable_) {
            reply.return_done(msg, EROFS);
            return;
        }
        std::span<std::byte> buf = reply.buffer(len);
        if (buf.empty()) {
            reply.return_done(msg, ENOMEM);
            return;
        }
        if (machvm::Result<void> r = reply.copy_returned(msg, buf); !r) {
            reply.return_done(msg, r.error().value());
            return;
        }
        const std::uint64_t end = std::min(off + len, file_size_);
        std::uint64_t done = off;
        while (done < end) {
            ssize_t n = ::pwrite(file_.get(), buf.data() + (done - off), end - done,
                                 static_cast<off_t>(done));
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                reply.return_done(msg, n < 0 ? errno : EIO);
                return;
            }
            done += static_cast<std::uint64_t>(n);
        }
        reply.return_done(msg, 0);
    }

  private:
    machvm::Fd file_;
    std::uint64_t file_size_ = 0;
    bool writable_ = false;
    std::uint64_t object_size_;
    machvm_attr attr_;
    std::uint32_t ready_flags_;
    std::mutex mu_;
    machvm::SequentialDetector detector_;
    bool readahead_;
    std::vector<std::unique_ptr<machvm::UringFileReader>> readers_;
};

const machvm::PagerHelp kHelp{kHead, kExitExtra, kTail};

} // namespace

int main(int argc, char** argv) {
    try {
        machvm::PagerOptions opts;
        opts.attr.cluster_pages = 16;
        std::uint64_t readahead = 1ull << 20;
        std::string path;
        auto own = [&](machvm::ArgReader& args) {
            if (machvm::parse_readahead_option(args, readahead))
                return true;
            if (!args.at_option() && path.empty()) {
                path = args.positional();
                return true;
            }
            return false;
        };
        auto check = [&] {
            if (path.empty())
                throw machvm::UsageError("missing FILE");
        };
        if (!machvm::parse_pager_args(argc, argv, kHelp, opts, own, check))
            return machvm::kExitOk;

        // Read-write when writable mappings are allowed and the file lets us.
        machvm::Fd file;
        if (opts.max_prot & PROT_WRITE) {
            if (auto rw = machvm::Fd::open(path.c_str(), O_RDWR))
                file = std::move(*rw);
        }
        if (!file.valid())
            file = machvm::Fd::open(path.c_str(), O_RDONLY).value_or_throw(path);
        struct stat st;
        if (::fstat(file.get(), &st) < 0)
            throw std::system_error(machvm::errno_code(), path);
        if (!S_ISREG(st.st_mode))
            throw machvm::UsageError(path + ": not a regular file");
        if (st.st_size == 0)
            throw machvm::UsageError(path + ": empty file (an object cannot have size 0)");

        machvm::PagerSetup setup = machvm::open_pager_setup();
        machvm::MemoryObject object = machvm::create_pager_object(
            setup, static_cast<std::uint64_t>(st.st_size), path.c_str(), opts);
        const std::uint64_t size = object.size;
        machvm::SequentialDetector::Config ra;
        ra.page_size = setup.version.page_size;
        ra.min_window = std::min<std::uint64_t>(64 * 1024, readahead);
        ra.max_window = readahead;
        FilePager pager(std::move(file), size, opts.attr, ra, opts.threads,
                        machvm::ready_flags(setup.version));
        if (opts.verbose)
            std::fprintf(stderr, "%s: %s: %llu bytes, object %llu bytes, reads via %s\n", kProg,
                         path.c_str(), static_cast<unsigned long long>(st.st_size),
                         static_cast<unsigned long long>(size),
                         pager.uses_uring() ? "io_uring" : "pread");
        return machvm::serve(kProg, setup, pager, std::move(object), opts);
    } catch (...) {
        return machvm::report_exception(kProg);
    }
}
