// SPDX-License-Identifier: GPL-2.0
//
// store-pager: serves a memory object whose pages, once the kernel pages
// them out, live in a store (libmachvm's StorePager).  Stores: compress
// (zstd in this process's memory), redis:// (Redis or a Redis Cluster).
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>

#include <machvm/admin.hpp>
#include <machvm/cli.hpp>
#include <machvm/serve.hpp>
#include <machvm/store.hpp>

namespace {

constexpr const char* kProg = "store-pager";

const char kHead[] =
    "NAME\n"
    "       store-pager - a machvm pager keeping paged-out memory in a store\n"
    "\n"
    "SYNOPSIS\n"
    "       store-pager [--store STORE] [--size SIZE] [--resident SIZE] [--precious]\n"
    "                   [--readahead SIZE] [--json] [OPTIONS] --socket PATH\n"
    "                   [--exec CMD [ARG...]]\n"
    "       store-pager [--store STORE] ... --exec CMD [ARG...]\n"
    "\n"
    "DESCRIPTION\n"
    "       Creates one machvm memory object of SIZE bytes that reads as zeros\n"
    "       until written.  When the kernel pages written pages out (the\n"
    "       object's resident limit, machvmctl pageout run, memory pressure) it\n"
    "       returns them to store-pager (data_return), which puts them in\n"
    "       STORE and lets the kernel free them only once the store holds\n"
    "       them; a later fault reads them back from the store.  A page the\n"
    "       store lacks reads as zeros.  Requests read their cluster (--cluster)\n"
    "       and, when faults walk through the object in order, pages after it\n"
    "       that the store has, up to --readahead.  Store calls never block the\n"
    "       serving loop.  The object's pages are erased from the store when it\n"
    "       terminates.\n"
    "\n"
    "       If store-pager dies, faults on pages only the store held end with\n"
    "       SIGBUS (after the object's --timeout at most), never a hang.\n"
    "\n"
    "       Statistics of the store (pages, bytes stored, compression ratio,\n"
    "       same-filled and incompressible pages, gets, puts) go to stderr at\n"
    "       exit and on SIGUSR1.\n"
    "\n"
    "OPTIONS\n"
    "       --store STORE\n"
    "              Where pages go.  compress[:LEVEL]: compressed with zstd at\n"
    "              LEVEL (default 3; 1 to 22, negative for faster) in this\n"
    "              process's memory; a page made of one repeated 64-bit word is\n"
    "              held as that word, a page zstd cannot shrink by an eighth is\n"
    "              held as it is.  Default compress.\n"
    "\n"
    "              redis://[[USER]:PASSWORD@]HOST[:PORT][,HOST[:PORT]...][?PARAMS]:\n"
    "              pages in Redis (port 6379 by default), or in a Redis Cluster\n"
    "              when several servers are given or the one given is a cluster\n"
    "              node: each page goes to its slot's master, MOVED and ASK are\n"
    "              followed.  Keys are mvm:{NS.OBJECT.GROUP}:PAGE, a hash tag per\n"
    "              16 pages; NS is random unless ns=NAME is given, so pagers can\n"
    "              share servers.  PARAMS: ns=NAME, timeout=MS (default 3000: a\n"
    "              call the server has not answered by then fails; keep it under\n"
    "              --timeout).  The servers must run with maxmemory-policy\n"
    "              noeviction (checked with CONFIG GET).  An unreachable server,\n"
    "              a refused AUTH or a server that may evict: one line, exit 1.\n"
    "              While a server is down, a fault on a page only it holds ends\n"
    "              with SIGBUS and a page-out is refused (the kernel's default\n"
    "              pager keeps the page, in swap); the connection comes back by\n"
    "              itself, with backoff.  A page the\n"
    "              server acknowledged and then lost (restarted without its\n"
    "              data) is an error, never zeros.\n"
    "       --size SIZE\n"
    "              Object size in bytes (K, M, G, T suffixes).  Rounded up to\n"
    "              the page size.  Default 64M.\n"
    "       --resident SIZE\n"
    "              The object's resident limit (at least 64K): pages beyond it\n"
    "              go to the store.  Default: none of its own (the global limit\n"
    "              and memory pressure still page it out).  Needs CAP_SYS_ADMIN.\n"
    "       --precious\n"
    "              Supply pages precious: the kernel returns even pages nobody\n"
    "              wrote, so the store sees every page that leaves memory.\n"
    "       --readahead SIZE\n"
    "              The largest window read ahead of a sequential fault stream (K,\n"
    "              M suffixes; 0 turns it off).  Default 256K, at most 64M.\n"
    "       --json\n"
    "              Statistics as one JSON object per line, on stdout.\n"
    "       The common --cluster option defaults to 8 pages here.\n";

const char kExitExtra[] = "";

const char kTail[] = "\n"
                     "EXAMPLES\n"
                     "       store-pager --store compress:3 --size 256M --resident 16M \\\n"
                     "                   --exec machvm-map --write pattern\n"
                     "\n"
                     "       store-pager --size 1G --socket /tmp/store --json > stats.json &\n"
                     "       kill -USR1 %1          # one more line of statistics\n"
                     "\n"
                     "       store-pager --store redis://10.0.0.1:7000,10.0.0.2:7000 \\\n"
                     "                   --size 4G --resident 256M --exec ./server\n";

const machvm::PagerHelp kHelp{kHead, kExitExtra, kTail};

// Prints the statistics on SIGUSR1, from a thread of its own (the serving
// threads never print).  SIGUSR1 is blocked in every thread; this one
// takes it with sigwait.
class StatsReporter {
  public:
    StatsReporter(const machvm::Store& store, bool json) : store_(store), json_(json) {
        thread_ = std::thread([this] { run(); });
    }
    StatsReporter(const StatsReporter&) = delete;
    StatsReporter& operator=(const StatsReporter&) = delete;
    ~StatsReporter() {
        stop_.store(true, std::memory_order_release);
        ::pthread_kill(thread_.native_handle(), SIGUSR1);
        thread_.join();
        print(); // the last word, at exit
    }

    void print() const {
        const std::string s = machvm::format_store_stats(store_, json_);
        if (json_) {
            std::printf("%s\n", s.c_str());
            std::fflush(stdout);
        } else {
            std::fprintf(stderr, "%s: %s\n", kProg, s.c_str());
        }
    }

  private:
    void run() {
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGUSR1);
        for (;;) {
            int sig = 0;
            if (::sigwait(&set, &sig) != 0)
                return;
            if (stop_.load(std::memory_order_acquire))
                return;
            print();
        }
    }

    const machvm::Store& store_;
    bool json_;
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

} // namespace

int main(int argc, char** argv) {
    try {
        machvm::PagerOptions opts;
        opts.attr.cluster_pages = 8;
        std::uint64_t size = 64ull << 20;
        std::uint64_t resident = 0;
        std::uint64_t readahead = 256ull << 10;
        std::string store_spec = "compress";
        bool precious = false;
        bool json = false;
        auto own = [&](machvm::ArgReader& args) {
            if (auto v = args.value("--store")) {
                store_spec = *v;
                return true;
            }
            if (auto v = args.value("--size")) {
                size = machvm::size_arg("--size", *v);
                return true;
            }
            if (auto v = args.value("--resident")) {
                resident = machvm::size_arg("--resident", *v);
                if (resident < (64u << 10))
                    throw machvm::UsageError("--resident: " + *v + " is less than 64K");
                return true;
            }
            if (machvm::parse_readahead_option(args, readahead))
                return true;
            if (args.flag("--precious")) {
                precious = true;
                return true;
            }
            if (args.flag("--json")) {
                json = true;
                return true;
            }
            return false;
        };
        if (!machvm::parse_pager_args(argc, argv, kHelp, opts, own))
            return machvm::kExitOk;
        const auto ps = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
        std::unique_ptr<machvm::Store> store = machvm::make_store(store_spec, ps);

        machvm::PagerSetup setup = machvm::open_pager_setup();
        machvm::MemoryObject object = machvm::create_pager_object(setup, size, "--size", opts);
        size = object.size;
        if (resident) {
            machvm::AdminClient admin =
                machvm::AdminClient::open().value_or_throw("machvm generic netlink");
            admin.set_object_limit(object.name, (resident + ps - 1) / ps)
                .value_or_throw("--resident: setting the object's resident limit");
        }

        machvm::StorePagerOptions so;
        so.attr = opts.attr;
        so.page_size = setup.version.page_size ? setup.version.page_size : ps;
        so.precious = precious;
        // StorePager puts a DATA_RETURN of any range in one batch.
        so.ready_flags = machvm::ready_flags(setup.version);
        // Pages never put are zeroes: the kernel fills them itself.
        if ((setup.version.features & MACHVM_F_EXISTENCE) && store->starts_empty())
            so.ready_flags |= MACHVM_READY_F_EXISTENCE;
        // StorePager erases an object's pages at TERMINATE: returning
        // them first would only put what is about to be erased.
        if (setup.version.features & MACHVM_F_TEMPORARY)
            so.ready_flags |= MACHVM_READY_F_TEMPORARY;
        so.readahead.page_size = so.page_size;
        so.readahead.min_window = std::min<std::uint64_t>(32 * 1024, readahead);
        so.readahead.max_window = readahead;
        machvm::StorePager pager(*store, so);
        if (opts.verbose)
            std::fprintf(stderr, "%s: object %llu (%llu bytes) in %s\n", kProg,
                         static_cast<unsigned long long>(object.name),
                         static_cast<unsigned long long>(size), store->describe().c_str());

        // Before any thread: every thread blocks the serve signals and
        // SIGUSR1 (taken by the reporter).
        machvm::block_serve_signals();
        sigset_t usr1;
        sigemptyset(&usr1);
        sigaddset(&usr1, SIGUSR1);
        ::pthread_sigmask(SIG_BLOCK, &usr1, nullptr);
        StatsReporter reporter(*store, json);
        return machvm::serve(kProg, setup, pager, std::move(object), opts);
    } catch (...) {
        return machvm::report_exception(kProg);
    }
}
