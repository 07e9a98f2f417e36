// SPDX-License-Identifier: GPL-2.0
//
// machvm-run: run an unmodified program with its anonymous memory (malloc
// heap, anonymous mmap) in an anonymous machvm object under a resident
// limit, by preloading libmachvm-preload.so.  See machvm-run --help.
#include <fcntl.h>
#include <netlink/genl/ctrl.h>
#include <netlink/genl/genl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include <machvm/cli.hpp>
#include <machvm/device.hpp>
#include <machvm/store.hpp>
#include <machvm/version.hpp>

#include <linux/machvm.h>

namespace {

constexpr const char* kProg = "machvm-run";
constexpr int kExitOwn = 125;       // machvm-run itself failed
constexpr int kExitCannotRun = 126; // found but not executable
constexpr int kExitNotFound = 127;
constexpr std::uint64_t kDefaultResident = std::uint64_t{64} << 20;
constexpr std::uint64_t kDefaultSize = std::uint64_t{64} << 30;
constexpr std::uint64_t kMinResident = std::uint64_t{16} * 4096;
constexpr std::uint64_t kMinSize = std::uint64_t{16} << 20;

const char kHelp[] =
    "NAME\n"
    "       machvm-run - run a program with its heap paged by machvm's default pager\n"
    "\n"
    "SYNOPSIS\n"
    "       machvm-run [--resident SIZE] [--size SIZE] [--pager STORE] [--verbose]\n"
    "                  [--no-inherit] [--] COMMAND [ARGS...]\n"
    "\n"
    "DESCRIPTION\n"
    "       Runs COMMAND, unmodified, with its anonymous memory in one anonymous\n"
    "       machvm object (MACHVM_IOC_ANON_CREATE: zero-filled on first touch,\n"
    "       paged to the module's swap stores by the in-kernel default pager)\n"
    "       whose resident limit is --resident.  Touching more than that makes\n"
    "       machvm's pageout daemon write the program's pages to swap and read\n"
    "       them back on the next touch, whatever the program does.\n"
    "\n"
    "       It preloads libmachvm-preload.so (LD_PRELOAD), which creates the\n"
    "       object when the program starts, maps it once (MAP_SHARED, sparse:\n"
    "       untouched pages cost nothing) and serves from it malloc, free,\n"
    "       calloc, realloc, memalign, posix_memalign, aligned_alloc, valloc,\n"
    "       pvalloc and malloc_usable_size (its own allocator: size classes for\n"
    "       small blocks, page runs for large ones) and every anonymous private\n"
    "       read-write mmap without an address (munmap and mremap of those\n"
    "       too).  Whatever it cannot serve goes to glibc as usual: stacks,\n"
    "       file mappings, MAP_FIXED, other protections, and everything once\n"
    "       the object is full.\n"
    "\n"
    "       A swap store must exist for pages to leave memory (machvmctl swap\n"
    "       add); without one the object cannot page out and faults wait for\n"
    "       room under the limit.\n"
    "\n"
    "       With --pager the object is served by store-pager instead: pages\n"
    "       beyond the limit go to its store (see store-pager --help) and come\n"
    "       back from it; no swap store is needed.  machvm-run runs\n"
    "       store-pager --store STORE --exec, which runs COMMAND with the\n"
    "       library and exits with it.  Programs COMMAND executes, and forked\n"
    "       children, get anonymous objects of their own as without --pager.\n"
    "\n"
    "OPTIONS\n"
    "       --pager STORE\n"
    "              Keep the heap's paged-out pages in STORE, served by\n"
    "              store-pager (looked for next to machvm-run, then in PATH):\n"
    "              compress or compress:LEVEL, pages compressed with zstd at\n"
    "              LEVEL (default 3) in the pager's memory, or\n"
    "              redis://HOST:PORT[,HOST:PORT...], pages in Redis or a Redis\n"
    "              Cluster (maxmemory-policy noeviction; options and what a\n"
    "              server's loss does: store-pager --help).  Setting the\n"
    "              object's resident limit needs CAP_SYS_ADMIN.\n"
    "       --resident SIZE\n"
    "              Most bytes of the object kept in memory (default 64M; at\n"
    "              least 64K).  SIZE takes K, M, G, T (binary) suffixes.\n"
    "       --size SIZE\n"
    "              Virtual size of the object, the most the heap can hold\n"
    "              (default 64G); beyond it allocations fall back to glibc.\n"
    "       --verbose, -v\n"
    "              Report the object (its name, as machvmctl objects shows)\n"
    "              when the program starts, and at its exit the heap's use and\n"
    "              the machvm counters of the run (pageouts, pageins, swap\n"
    "              writes, faults that waited for room).\n"
    "       --no-inherit\n"
    "              Programs that COMMAND executes run without the library (by\n"
    "              default each gets an object of its own, same limit).\n"
    "       --help, -h\n"
    "              This text.\n"
    "\n"
    "ENVIRONMENT\n"
    "       MACHVM_PRELOAD\n"
    "              Path of libmachvm-preload.so.  Otherwise it is looked for\n"
    "              next to the binary (../lib/machvm/, then ../lib/), then in\n"
    "              /usr/local/lib/machvm, /usr/lib/machvm, /lib,\n"
    "              /usr/local/lib and /usr/lib.\n"
    "       The library reads MACHVM_RUN_RESIDENT, MACHVM_RUN_SIZE (bytes),\n"
    "       MACHVM_RUN_VERBOSE and MACHVM_RUN_NOINHERIT, which machvm-run sets.\n"
    "\n"
    "LIMITS\n"
    "       The heap is a shared mapping.  At fork() the child copies the pages\n"
    "       in use to an object of its own (the parent waits for the copy), so\n"
    "       fork keeps its copy semantics at a cost proportional to the heap;\n"
    "       in a multi-threaded program, writes other threads make during that\n"
    "       copy may show in the child.  mlock on the heap succeeds without\n"
    "       locking (locking would defeat the limit), and mlockall does nothing\n"
    "       at all (it would populate the whole object); pages mprotect()ed in\n"
    "       the heap are read-write again in a forked child.\n"
    "       Freed memory stays in the object (reused, not returned to the\n"
    "       system).  Statically linked programs and programs that make system\n"
    "       calls directly (Go) are not affected.\n"
    "\n"
    "EXIT STATUS\n"
    "       COMMAND's exit status.  Without --verbose machvm-run becomes\n"
    "       COMMAND (exec); with it, it waits and exits 128+N if a signal N\n"
    "       killed COMMAND.\n"
    "       125    machvm-run failed (bad option, module not loaded, no library)\n"
    "       With --pager, store-pager's own failures (a Redis server that\n"
    "       cannot be reached, say) exit 1 with its message.\n"
    "       126    COMMAND could not be executed\n"
    "       127    COMMAND was not found\n"
    "\n"
    "EXAMPLES\n"
    "       sudo machvmctl swap add /var/tmp/machvm.swap --size 1G\n"
    "       machvm-run --resident 16M --verbose -- memtester 64M 1\n"
    "       machvm-run --pager compress --resident 16M -- memtester 64M 1\n"
    "       machvm-run --pager redis://127.0.0.1:6379 --resident 16M -- memtester 64M 1\n"
    "       machvm-run --resident 256M -- python3 big_script.py\n";

struct Options {
    std::uint64_t resident = kDefaultResident;
    std::uint64_t size = kDefaultSize;
    bool verbose = false;
    bool no_inherit = false;
    std::string pager;     // --pager STORE
    bool pager_fd = false; // --pager-fd (internal): the object is MACHVM_FD
    std::vector<std::string> argv;
};

[[noreturn]] void die(const std::string& msg) {
    std::fprintf(stderr, "%s: %s\n", kProg, msg.c_str());
    std::exit(kExitOwn);
}

std::uint64_t size_value(const char* opt, const std::string& v) {
    auto r = machvm::parse_size(v);
    if (!r)
        throw machvm::UsageError(std::string(opt) + ": bad size '" + v +
                                 "' (a number with an optional K, M, G or T suffix)");
    return r.value();
}

Options parse(int argc, char** argv) {
    Options o;
    machvm::ArgReader args(argc, argv);
    while (!args.done()) {
        if (args.peek() == "--") {
            o.argv.push_back(args.positional()); // consumes "--", then the command
            break;
        }
        if (!args.at_option())
            break;
        if (args.flag("--help", "-h")) {
            std::fputs(kHelp, stdout);
            std::exit(0);
        } else if (args.flag("--verbose", "-v")) {
            o.verbose = true;
        } else if (args.flag("--no-inherit")) {
            o.no_inherit = true;
        } else if (auto v = args.value("--resident")) {
            o.resident = size_value("--resident", *v);
        } else if (auto s = args.value("--size")) {
            o.size = size_value("--size", *s);
        } else if (auto p = args.value("--pager")) {
            o.pager = *p;
        } else if (args.flag("--pager-fd")) {
            o.pager_fd = true;
        } else {
            args.unknown();
        }
    }
    for (auto& a : args.rest())
        o.argv.push_back(std::move(a));
    return o;
}

std::string dir_of_self() {
    char buf[4096];
    const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
    if (n <= 0)
        return {};
    std::string p(buf, static_cast<std::size_t>(n));
    const auto slash = p.rfind('/');
    return slash == std::string::npos ? std::string() : p.substr(0, slash);
}

std::string find_library() {
    if (const char* e = std::getenv("MACHVM_PRELOAD"); e && *e) {
        if (::access(e, R_OK) != 0)
            die(std::string("MACHVM_PRELOAD=") + e + ": " + std::strerror(errno));
        if (e[0] != '/')
            die(std::string("MACHVM_PRELOAD=") + e + ": must be an absolute path");
        return e;
    }
    std::vector<std::string> cands;
    // Installed: PREFIX/lib/machvm/ (make install, the package); the
    // build tree: build/lib/; the VM's initramfs: /lib.
    if (const std::string d = dir_of_self(); !d.empty()) {
        cands.push_back(d + "/../lib/machvm/libmachvm-preload.so");
        cands.push_back(d + "/../lib/libmachvm-preload.so");
    }
    for (const char* p : {"/usr/local/lib/machvm/libmachvm-preload.so",
                          "/usr/lib/machvm/libmachvm-preload.so", "/lib/libmachvm-preload.so",
                          "/usr/local/lib/libmachvm-preload.so", "/usr/lib/libmachvm-preload.so"})
        cands.emplace_back(p);
    for (const auto& c : cands) {
        if (::access(c.c_str(), R_OK) == 0) {
            char real[4096];
            return ::realpath(c.c_str(), real) ? std::string(real) : c;
        }
    }
    std::string msg = "cannot find libmachvm-preload.so (looked in";
    for (const auto& c : cands)
        msg += " " + c;
    die(msg + "; set MACHVM_PRELOAD)");
}

// The module must be there and create anonymous objects.
void check_module(std::uint64_t size) {
    const int fd = ::open(MACHVM_DEVICE, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        const int e = errno;
        if (e == ENOENT || e == ENODEV || e == ENXIO)
            die(std::string("the machvm module is not loaded: no ") + MACHVM_DEVICE +
                " (load it with insmod machvm.ko)");
        die(std::string(MACHVM_DEVICE) + ": " + std::strerror(e) +
            (e == EACCES || e == EPERM ? " (no permission to open it)" : ""));
    }
    machvm_version v{};
    const int r = ::ioctl(fd, MACHVM_IOC_VERSION, &v);
    const int e = errno;
    ::close(fd);
    if (r != 0)
        die(std::string("MACHVM_IOC_VERSION: ") + std::strerror(e));
    if (std::string why = machvm::abi_mismatch("machvm-run", v.abi_version); !why.empty())
        die(why);
    if (!(v.features & MACHVM_F_ANON))
        die("this machvm module has no anonymous objects (MACHVM_F_ANON)");
    if (v.max_object_size && size > v.max_object_size)
        die("--size " + std::to_string(size) + " is above the module's largest object (" +
            std::to_string(v.max_object_size) + " bytes)");
}

// Global machvm counters over generic netlink (GET_STATS), by
// MACHVM_A_STAT_*; nullopt when they cannot be read.
using Counters = std::array<std::uint64_t, MACHVM_A_STAT_MAX + 1>;

int stats_cb(nl_msg* msg, void* arg) {
    auto* out = static_cast<Counters*>(arg);
    nlattr* tb[MACHVM_A_MAX + 1] = {};
    if (genlmsg_parse(nlmsg_hdr(msg), 0, tb, MACHVM_A_MAX, nullptr) < 0 || !tb[MACHVM_A_STATS])
        return NL_SKIP;
    nlattr* a;
    int rem;
    nla_for_each_nested(a, tb[MACHVM_A_STATS], rem) {
        const int t = nla_type(a);
        if (t > 0 && t <= MACHVM_A_STAT_MAX && nla_len(a) == 8)
            (*out)[static_cast<std::size_t>(t)] = nla_get_u64(a);
    }
    return NL_OK;
}

std::optional<Counters> read_counters() {
    nl_sock* sk = nl_socket_alloc();
    if (!sk)
        return std::nullopt;
    std::optional<Counters> res;
    Counters c{};
    int family;
    if (genl_connect(sk) == 0 && (family = genl_ctrl_resolve(sk, MACHVM_GENL_NAME)) >= 0) {
        nl_socket_modify_cb(sk, NL_CB_VALID, NL_CB_CUSTOM, stats_cb, &c);
        nl_msg* m = nlmsg_alloc();
        if (m &&
            genlmsg_put(m, NL_AUTO_PORT, NL_AUTO_SEQ, family, 0, 0, MACHVM_GENL_CMD_GET_STATS,
                        MACHVM_GENL_VERSION) &&
            nl_send_auto(sk, m) >= 0 && nl_recvmsgs_default(sk) >= 0)
            res = c;
        nlmsg_free(m);
    }
    nl_socket_free(sk);
    return res;
}

void print_delta(const Counters& a, const Counters& b) {
    struct Item {
        int stat;
        const char* name;
    };
    static constexpr Item kItems[] = {
        {MACHVM_A_STAT_FAULTS, "faults"},       {MACHVM_A_STAT_PAGEOUTS, "pageouts"},
        {MACHVM_A_STAT_PAGEINS, "pageins"},     {MACHVM_A_STAT_SWAP_WRITES, "swap_writes"},
        {MACHVM_A_STAT_SWAP_FULL, "swap_full"}, {MACHVM_A_STAT_LIMIT_WAITS, "limit_waits"},
        {MACHVM_A_STAT_SIGBUS, "sigbus"},
    };
    std::string s;
    for (const auto& it : kItems) {
        const auto i = static_cast<std::size_t>(it.stat);
        s += std::string(s.empty() ? "" : ", ") + it.name + " " + std::to_string(b[i] - a[i]);
    }
    std::fprintf(stderr, "%s: machvm counters during the run (all objects): %s\n", kProg,
                 s.c_str());
}

[[noreturn]] void exec_command(const std::vector<std::string>& cmd) {
    std::vector<char*> av;
    for (const auto& a : cmd)
        av.push_back(const_cast<char*>(a.c_str()));
    av.push_back(nullptr);
    ::execvp(av[0], av.data());
    const int e = errno;
    std::fprintf(stderr, "%s: %s: %s\n", kProg, cmd[0].c_str(), std::strerror(e));
    std::_Exit(e == ENOENT || e == ENOTDIR ? kExitNotFound : kExitCannotRun);
}

// --pager: store-pager creates and serves the object and runs machvm-run
// again (--pager-fd) with its descriptor, which runs COMMAND with the
// library mapping that object.  store-pager itself runs without it.
[[noreturn]] void exec_pager(const Options& o) {
    std::string self = dir_of_self();
    std::string pager = self.empty() ? std::string() : self + "/store-pager";
    if (pager.empty() || ::access(pager.c_str(), X_OK) != 0)
        pager = "store-pager";
    const std::string size = std::to_string(o.size);
    const std::string resident = std::to_string(o.resident);
    std::vector<std::string> av = {
        pager,        "--store",    o.pager,
        "--size",     size,         "--resident",
        resident,     "--exec",     self.empty() ? std::string(kProg) : self + "/" + kProg,
        "--pager-fd", "--resident", resident,
        "--size",     size};
    if (o.verbose)
        av.emplace_back("--verbose");
    if (o.no_inherit)
        av.emplace_back("--no-inherit");
    av.emplace_back("--");
    av.insert(av.end(), o.argv.begin(), o.argv.end());
    std::vector<char*> cav;
    for (const auto& a : av)
        cav.push_back(const_cast<char*>(a.c_str()));
    cav.push_back(nullptr);
    ::execvp(cav[0], cav.data());
    die(pager + ": " + std::strerror(errno) + " (--pager needs store-pager)");
}

int run(int argc, char** argv) {
    Options o = parse(argc, argv);
    if (o.argv.empty())
        throw machvm::UsageError("no command given");
    if (o.resident < kMinResident)
        throw machvm::UsageError("--resident: at least 64K");
    o.size = (o.size + 4095) & ~std::uint64_t{4095};
    if (o.size < kMinSize)
        throw machvm::UsageError("--size: at least 16M");
    const std::string lib = find_library();
    check_module(o.size);
    if (!o.pager.empty()) {
        // Checked here so a bad STORE is machvm-run's own error (125); a
        // server that cannot be reached is store-pager's (exit 1).
        try {
            machvm::check_store_spec(o.pager);
        } catch (const machvm::UsageError& e) {
            throw machvm::UsageError(std::string("--pager: ") + e.what());
        }
        exec_pager(o);
    }
    if (o.pager_fd) {
        const char* fd = std::getenv("MACHVM_FD");
        if (!fd || !*fd)
            die("--pager-fd: no MACHVM_FD in the environment (it is for store-pager --exec)");
        ::setenv("MACHVM_RUN_FD", fd, 1);
    } else {
        ::unsetenv("MACHVM_RUN_FD");
    }

    std::string preload = lib;
    if (const char* old = std::getenv("LD_PRELOAD"); old && *old)
        preload += std::string(":") + old;
    ::setenv("LD_PRELOAD", preload.c_str(), 1);
    ::setenv("MACHVM_RUN_LIB", lib.c_str(), 1);
    ::setenv("MACHVM_RUN_RESIDENT", std::to_string(o.resident).c_str(), 1);
    ::setenv("MACHVM_RUN_SIZE", std::to_string(o.size).c_str(), 1);
    ::unsetenv("MACHVM_RUN_BACKING");
    if (o.verbose)
        ::setenv("MACHVM_RUN_VERBOSE", "1", 1);
    else
        ::unsetenv("MACHVM_RUN_VERBOSE");
    if (o.no_inherit)
        ::setenv("MACHVM_RUN_NOINHERIT", "1", 1);
    else
        ::unsetenv("MACHVM_RUN_NOINHERIT");

    if (!o.verbose)
        exec_command(o.argv); // the program takes our place

    const auto before = read_counters();
    std::fprintf(stderr, "%s: %s with %s, resident limit %llu KiB, object %llu MiB\n", kProg,
                 o.argv[0].c_str(), lib.c_str(), static_cast<unsigned long long>(o.resident >> 10),
                 static_cast<unsigned long long>(o.size >> 20));
    // Signals that would reach the whole process group reach the child too;
    // we wait for it either way.
    ::signal(SIGINT, SIG_IGN);
    ::signal(SIGQUIT, SIG_IGN);
    const pid_t pid = ::fork();
    if (pid < 0)
        die(std::string("fork: ") + std::strerror(errno));
    if (pid == 0) {
        ::signal(SIGINT, SIG_DFL);
        ::signal(SIGQUIT, SIG_DFL);
        exec_command(o.argv);
    }
    int st = 0;
    while (::waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR)
            die(std::string("waitpid: ") + std::strerror(errno));
    }
    const auto after = read_counters();
    if (before && after)
        print_delta(*before, *after);
    if (WIFEXITED(st)) {
        std::fprintf(stderr, "%s: %s exited with status %d\n", kProg, o.argv[0].c_str(),
                     WEXITSTATUS(st));
        return WEXITSTATUS(st);
    }
    std::fprintf(stderr, "%s: %s killed by signal %d (%s)\n", kProg, o.argv[0].c_str(),
                 WTERMSIG(st), strsignal(WTERMSIG(st)));
    return 128 + WTERMSIG(st);
}

} // namespace

int main(int argc, char** argv) {
    try {
        return run(argc, argv);
    } catch (const machvm::UsageError& e) {
        std::fprintf(stderr, "%s: %s\nTry '%s --help' for more information.\n", kProg, e.what(),
                     kProg);
        return kExitOwn;
    } catch (...) {
        machvm::report_exception(kProg);
        return kExitOwn;
    }
}
