// SPDX-License-Identifier: GPL-2.0
//
// test-pager: serves a known pattern, and misbehaves on request, so that
// tests can check what the kernel does with pagers good and bad.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>

#include <machvm/cli.hpp>
#include <machvm/serve.hpp>

#include "misbehave.hpp"
#include "pattern.hpp"

namespace {

constexpr const char* kProg = "test-pager";
constexpr int kExitDied = 3;
constexpr int kExitOrder = 5;

const char kHead[] = "NAME\n"
                     "       test-pager - a machvm pager serving a known pattern, well or badly\n"
                     "\n"
                     "SYNOPSIS\n"
                     "       test-pager [--size SIZE] [--misbehave LIST] [--report] [OPTIONS]\n"
                     "                  --socket PATH [--exec CMD [ARG...]]\n"
                     "       test-pager [--size SIZE] [--misbehave LIST] [--report] [OPTIONS]\n"
                     "                  --exec CMD [ARG...]\n"
                     "\n"
                     "DESCRIPTION\n"
                     "       Creates one machvm memory object of SIZE bytes whose contents are a\n"
                     "       pattern: the 8-byte little-endian word at object offset W is\n"
                     "       W ^ 0x9e3779b97f4a7c15.  `machvm-map --verify pattern` checks it.\n"
                     "       Every data request is answered with data_supply of exactly the pages\n"
                     "       asked for, unless --misbehave says otherwise.\n"
                     "\n"
                     "OPTIONS\n"
                     "       --size SIZE\n"
                     "              Object size in bytes (K, M, G, T suffixes), rounded up to\n"
                     "              the page size.  Default 64M.\n"
                     "       --misbehave LIST\n"
                     "              A comma-separated list of:\n"
                     "              delay:MS      sleep MS milliseconds before every answer\n"
                     "              error[:ERRNO] answer every data request with data_error\n"
                     "                            (default errno 5, EIO): the fault gets SIGBUS\n"
                     "              die[:N]       exit (status 3) on receiving the Nth data\n"
                     "                            request (default 1st), leaving it unanswered\n"
                     "              flood[:PAGES] with every answer, supply PAGES unasked pages\n"
                     "                            before and after the request (default 256)\n"
                     "              unasked       supply pages next to the request instead of\n"
                     "                            the ones asked for (the fault times out)\n"
                     "              silent        answer init, never a data request\n"
                     "              mute          answer nothing, not even init\n"
                     "              none          behave (the default)\n"
                     "       --report\n"
                     "              Ask for supply_completed (MACHVM_SUPPLY_F_REPORT) on every\n"
                     "              supply and log each one on stderr.\n"
                     "       --check-order\n"
                     "              Check that messages are handled in the order the kernel\n"
                     "              queued them (each seq above the last), as the loop promises\n"
                     "              with one thread at any --depth; on the first that is not,\n"
                     "              say so on stderr and exit with status 5.  Needs --threads 1.\n";

const char kExitExtra[] =
    "       3      --misbehave die: exited on purpose with a request pending.\n"
    "       5      --check-order: a message came out of order.\n";

const char kTail[] =
    "\n"
    "EXAMPLES\n"
    "       test-pager --size 8M --socket /tmp/t &\n"
    "       machvm-map --socket /tmp/t --verify pattern\n"
    "\n"
    "       test-pager --misbehave error:14 --exec machvm-map   # SIGBUS, status 4\n"
    "       test-pager --timeout 200 --misbehave silent --exec machvm-map\n"
    "       test-pager --misbehave delay:50,flood --threads 4 --socket /tmp/t\n";

class TestPager final : public machvm::Pager {
  public:
    TestPager(const machvm_attr& attr, const machvm::Misbehavior& mb, std::uint64_t size,
              std::uint64_t page_size, bool report, std::uint32_t ready_flags, bool check_order)
        : attr_(attr), ready_flags_(ready_flags), mb_(mb), size_(size), page_(page_size),
          flags_(report ? MACHVM_SUPPLY_F_REPORT : 0), report_(report), check_order_(check_order) {}

    void on_init(const machvm_msg& msg, machvm::Reply& reply) noexcept override {
        in_order(msg);
        if (mb_.mute)
            return;
        delay();
        // Returns (refused by the default handler) may be clusters.
        reply.ready(msg.object, attr_, ready_flags_);
    }

    void on_data_request(const machvm_msg& msg, machvm::Reply& reply) noexcept override {
        in_order(msg);
        if (mb_.mute || mb_.silent)
            return;
        unsigned n = requests_.fetch_add(1, std::memory_order_relaxed) + 1;
        if (mb_.die_at && n >= mb_.die_at) {
            std::fprintf(stderr,
                         "%s: --misbehave die: exiting at data request %u "
                         "(offset %llu length %llu) without answering\n",
                         kProg, n, static_cast<unsigned long long>(msg.offset),
                         static_cast<unsigned long long>(msg.length));
            ::_exit(kExitDied);
        }
        delay();
        const std::uint64_t off = msg.offset;
        const std::uint64_t len = msg.length;
        if (mb_.error) {
            reply.data_error(msg.object, off, len, mb_.error);
            return;
        }
        if (mb_.unasked) {
            if (off + 2 * len <= size_)
                supply(reply, msg.object, off + len, len);
            else if (off >= len)
                supply(reply, msg.object, off - len, len);
            return;
        }
        supply(reply, msg.object, off, len);
        if (mb_.flood_pages) {
            const std::uint64_t span = std::uint64_t{mb_.flood_pages} * page_;
            const std::uint64_t before = off >= span ? off - span : 0;
            if (before < off)
                supply(reply, msg.object, before, off - before);
            const std::uint64_t after_end = std::min(size_, off + len + span);
            if (off + len < after_end)
                supply(reply, msg.object, off + len, after_end - (off + len));
        }
    }

    void on_supply_completed(const machvm_msg& msg, machvm::Reply&) noexcept override {
        in_order(msg);
        if (report_)
            std::fprintf(stderr,
                         "%s: supply_completed object %llu offset %llu length %llu "
                         "not taken %u pages\n",
                         kProg, static_cast<unsigned long long>(msg.object),
                         static_cast<unsigned long long>(msg.offset),
                         static_cast<unsigned long long>(msg.length), msg.count);
    }

  private:
    // One serving thread calls this (--threads 1), so no lock.
    void in_order(const machvm_msg& msg) noexcept {
        if (!check_order_)
            return;
        if (msg.seq <= last_seq_) {
            std::fprintf(stderr, "%s: --check-order: message seq %llu (type %u) after seq %llu\n",
                         kProg, static_cast<unsigned long long>(msg.seq), msg.type,
                         static_cast<unsigned long long>(last_seq_));
            ::_exit(kExitOrder);
        }
        last_seq_ = msg.seq;
    }

    void delay() const noexcept {
        if (mb_.delay_ms)
            std::this_thread::sleep_for(std::chrono::milliseconds(mb_.delay_ms));
    }

    void supply(machvm::Reply& reply, std::uint64_t object, std::uint64_t off,
                std::uint64_t len) const noexcept {
        std::span<std::byte> buf = reply.buffer(len);
        if (buf.empty()) {
            reply.data_error(object, off, len, ENOMEM);
            return;
        }
        machvm::fill_pattern(off, buf);
        reply.data_supply(object, off, buf, flags_);
    }

    machvm_attr attr_;
    std::uint32_t ready_flags_;
    machvm::Misbehavior mb_;
    std::uint64_t size_;
    std::uint64_t page_;
    std::uint32_t flags_;
    bool report_;
    bool check_order_;
    std::uint64_t last_seq_ = 0;
    std::atomic<unsigned> requests_{0};
};

const machvm::PagerHelp kHelp{kHead, kExitExtra, kTail};

} // namespace

int main(int argc, char** argv) {
    try {
        machvm::PagerOptions opts;
        std::uint64_t size = 64ull << 20;
        machvm::Misbehavior mb;
        bool report = false;
        bool check_order = false;
        auto own = [&](machvm::ArgReader& args) {
            if (auto v = args.value("--size")) {
                size = machvm::size_arg("--size", *v);
                return true;
            }
            if (auto v = args.value("--misbehave")) {
                mb = machvm::parse_misbehavior(*v);
                return true;
            }
            if (args.flag("--report")) {
                report = true;
                return true;
            }
            if (args.flag("--check-order")) {
                check_order = true;
                return true;
            }
            return false;
        };
        if (!machvm::parse_pager_args(argc, argv, kHelp, opts, own))
            return machvm::kExitOk;
        if (check_order && opts.threads != 1)
            throw machvm::UsageError("--check-order: one serving thread (--threads 1)");

        machvm::PagerSetup setup = machvm::open_pager_setup();
        machvm::MemoryObject object = machvm::create_pager_object(setup, size, "--size", opts);
        if (mb.any())
            std::fprintf(stderr, "%s: misbehaving: %s\n", kProg, machvm::to_string(mb).c_str());
        TestPager pager(opts.attr, mb, object.size, setup.version.page_size, report,
                        machvm::ready_flags(setup.version), check_order);
        return machvm::serve(kProg, setup, pager, std::move(object), opts);
    } catch (...) {
        return machvm::report_exception(kProg);
    }
}
