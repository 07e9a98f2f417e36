// SPDX-License-Identifier: GPL-2.0
#include <machvm/serve.hpp>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include <machvm/fdpass.hpp>
#include <machvm/version.hpp>

extern char** environ;

namespace machvm {

PagerSetup open_pager_setup() {
    PagerSetup s;
    s.device = Device::open().value_or_throw("open " MACHVM_DEVICE);
    s.version = s.device.version().value_or_throw("MACHVM_IOC_VERSION on " MACHVM_DEVICE);
    if (std::string m = abi_mismatch("this program", s.version.abi_version); !m.empty())
        throw std::runtime_error(m);
    if (!(s.version.features & MACHVM_F_OBJECTS))
        throw std::runtime_error("the machvm module does not implement memory objects yet");
    s.endpoint = s.device.create_pager().value_or_throw("MACHVM_IOC_PAGER_CREATE");
    return s;
}

std::uint64_t checked_object_size(const PagerSetup& setup, std::uint64_t size, const char* option) {
    const std::uint64_t page = setup.version.page_size ? setup.version.page_size : 4096;
    if (size == 0)
        throw UsageError(std::string(option) + ": the object size must not be 0");
    if (size > ~std::uint64_t{0} - page)
        throw UsageError(std::string(option) + ": size too large");
    std::uint64_t rounded = (size + page - 1) / page * page;
    if (setup.version.max_object_size && rounded > setup.version.max_object_size)
        throw UsageError(std::string(option) + ": " + std::to_string(rounded) +
                         " bytes is more than the module's limit of " +
                         std::to_string(setup.version.max_object_size));
    return rounded;
}

MemoryObject create_pager_object(PagerSetup& setup, std::uint64_t size, const char* option,
                                 const PagerOptions& opts) {
    size = checked_object_size(setup, size, option);
    return setup.endpoint.create_object(size, opts.max_prot, opts.attr)
        .value_or_throw("MACHVM_IOC_OBJECT_CREATE");
}

LoopOptions loop_options(const PagerOptions& opts) noexcept {
    LoopOptions lo;
    lo.threads = opts.threads;
    lo.depth = opts.depth;
    return lo;
}

std::unique_ptr<Loop> make_loop(const char* prog, PagerSetup& setup, Pager& pager,
                                const PagerOptions& opts) {
    const LoopOptions lo = loop_options(opts);
    if (opts.transport != Transport::Blocking) {
        std::string why;
        if (!(setup.version.features & MACHVM_F_URING_CMD)) {
            why = "the machvm module has no io_uring transport";
        } else if (!PagerLoop::uring_cmd_supported()) {
            why = "this kernel's io_uring has no IORING_OP_URING_CMD";
        } else {
            try {
                return std::make_unique<PagerLoop>(setup.endpoint, pager, lo);
            } catch (const std::system_error& e) {
                if (opts.transport == Transport::Uring)
                    throw;
                why = e.what();
            }
        }
        if (opts.transport == Transport::Uring)
            throw std::runtime_error("--uring: " + why);
        std::fprintf(stderr, "%s: %s; serving with read/write (--blocking)\n", prog, why.c_str());
    }
    return std::make_unique<BlockingLoop>(setup.endpoint, pager, lo);
}

void block_serve_signals() noexcept {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

namespace {

// Forwards to the real pager; logs; notices the object's termination.
class ServePager final : public Pager {
  public:
    // `waiter`: the thread waiting in serve() for the object to terminate;
    // it is sent SIGCHLD (which it waits for anyway) at the TERMINATE, so
    // that it does not notice only at its next 100 ms timeout.
    ServePager(Pager& inner, const char* prog, bool verbose, std::uint64_t object, pthread_t waiter)
        : inner_(inner), prog_(prog), verbose_(verbose), object_(object), waiter_(waiter) {}

    bool terminated() const noexcept { return terminated_.load(std::memory_order_acquire); }
    // INIT seen: the object was mapped, so a TERMINATE will come.
    bool mapped() const noexcept { return mapped_.load(std::memory_order_acquire); }

    void on_init(const machvm_msg& m, Reply& r) noexcept override {
        log(m);
        if (m.object == object_)
            mapped_.store(true, std::memory_order_release);
        inner_.on_init(m, r);
    }
    void on_terminate(const machvm_msg& m, Reply& r) noexcept override {
        log(m);
        inner_.on_terminate(m, r);
        if (m.object == object_) {
            terminated_.store(true, std::memory_order_release);
            ::pthread_kill(waiter_, SIGCHLD);
        }
    }
// The other handlers only log and forward.
#define MVM_FORWARD(handler)                                                                       \
    void handler(const machvm_msg& m, Reply& r) noexcept override {                                \
        log(m);                                                                                    \
        inner_.handler(m, r);                                                                      \
    }
    MVM_FORWARD(on_data_request)
    MVM_FORWARD(on_supply_completed)
    MVM_FORWARD(on_data_return)
    MVM_FORWARD(on_lock_completed)
    MVM_FORWARD(on_data_unlock)
    MVM_FORWARD(on_unknown)
#undef MVM_FORWARD
    void on_command_error(const machvm_cmd& c, std::error_code ec) noexcept override {
        inner_.on_command_error(c, ec);
    }

  private:
    void log(const machvm_msg& m) const noexcept {
        if (!verbose_)
            return;
        std::fprintf(stderr,
                     "%s: seq %llu %s object %llu offset %llu length %llu access %u name %llu "
                     "size %llu count %u\n",
                     prog_, static_cast<unsigned long long>(m.seq), msg_type_name(m.type),
                     static_cast<unsigned long long>(m.object),
                     static_cast<unsigned long long>(m.offset),
                     static_cast<unsigned long long>(m.length), m.access,
                     static_cast<unsigned long long>(m.name),
                     static_cast<unsigned long long>(m.size), m.count);
    }

    Pager& inner_;
    const char* prog_;
    bool verbose_;
    std::uint64_t object_;
    pthread_t waiter_;
    std::atomic<bool> terminated_{false};
    std::atomic<bool> mapped_{false};
};

// posix_spawnp CMD with an inheritable copy of `fd` named in MACHVM_FD.
pid_t spawn_child(const std::vector<std::string>& argv_s, int fd) {
    Fd inherit = Fd(::fcntl(fd, F_DUPFD, 3)); // no FD_CLOEXEC
    if (!inherit)
        throw std::system_error(errno_code(), "dup of the object descriptor");
    std::vector<std::string> env_s;
    for (char** e = environ; e && *e; ++e)
        if (std::strncmp(*e, "MACHVM_FD=", 10) != 0)
            env_s.emplace_back(*e);
    env_s.push_back("MACHVM_FD=" + std::to_string(inherit.get()));
    std::vector<char*> argv;
    for (const auto& a : argv_s)
        argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    std::vector<char*> envp;
    for (auto& e : env_s)
        envp.push_back(e.data());
    envp.push_back(nullptr);

    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
    pid_t pid = -1;
    int err = posix_spawnp(&pid, argv[0], nullptr, &attr, argv.data(), envp.data());
    posix_spawnattr_destroy(&attr);
    if (err)
        throw std::system_error(errno_code(err), "--exec " + argv_s[0]);
    return pid;
}

int decode_status(int st) noexcept {
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return kExitFailure;
}

} // namespace

int serve(const char* prog, PagerSetup& setup, Pager& pager, MemoryObject object,
          const PagerOptions& opts) {
    using Clock = std::chrono::steady_clock;
    block_serve_signals();
    ServePager sp(pager, prog, opts.verbose, object.id, ::pthread_self());
    std::unique_ptr<Loop> loop = make_loop(prog, setup, sp, opts);
    std::unique_ptr<FdServer> server;
    if (!opts.socket_path.empty())
        server = std::make_unique<FdServer>(opts.socket_path, object.fd.get());
    pid_t child = -1;
    if (!opts.exec_argv.empty())
        child = spawn_child(opts.exec_argv, object.fd.get());
    if (opts.verbose)
        std::fprintf(stderr, "%s: object id %llu name %llu size %llu%s%s%s\n", prog,
                     static_cast<unsigned long long>(object.id),
                     static_cast<unsigned long long>(object.name),
                     static_cast<unsigned long long>(object.size), server ? " socket " : "",
                     server ? opts.socket_path.c_str() : "", child > 0 ? " exec'd CMD" : "");
    // Without a socket nobody else needs our right: drop it so that the
    // object can terminate once CMD and its mappings are gone.
    if (!server)
        object.fd.reset();

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGCHLD);
    int status = kExitOk;
    bool child_done = child < 0;
    bool stop_asked = false;
    bool draining = false;
    Clock::time_point child_exit{};
    Clock::time_point drain_start{};
    for (;;) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        siginfo_t info;
        int sig = sigtimedwait(&set, &info, &ts);
        if (sig == SIGINT || sig == SIGTERM) {
            if (draining)
                break; // asked twice: go now
            stop_asked = true;
            if (!child_done)
                ::kill(child, sig);
        }
        if (!child_done) {
            int st;
            pid_t p = ::waitpid(child, &st, WNOHANG);
            if (p == child) {
                child_done = true;
                child_exit = Clock::now();
                if (!stop_asked)
                    status = decode_status(st);
            }
        }
        if (stop_asked && child_done) {
            // Let go of the object and serve until it terminates, so the
            // pages written through mappings that are gone come back
            // (data_return) before we exit; 5 s at most.
            if (!draining) {
                draining = true;
                server.reset();
                object.fd.reset();
                drain_start = Clock::now();
            }
            if (sp.terminated() || !sp.mapped() ||
                Clock::now() - drain_start > std::chrono::seconds(5))
                break;
        }
        if (child > 0 && child_done) {
            if (server) {
                // Nobody new can connect; let the object terminate so its
                // written pages come back (data_return) while we serve.
                server.reset();
                object.fd.reset();
                child_exit = Clock::now();
            }
            if (sp.terminated())
                break;
            // Never mapped (no INIT, even after a moment for one still
            // queued): the kernel sends no TERMINATE.
            if (!sp.mapped() && Clock::now() - child_exit > std::chrono::milliseconds(300))
                break;
            if (Clock::now() - child_exit > std::chrono::seconds(5)) {
                std::fprintf(stderr,
                             "%s: the object did not terminate within 5 s of CMD's exit "
                             "(a mapping or descriptor is still alive); exiting\n",
                             prog);
                break;
            }
        }
        if (loop->finished()) {
            Result<void> r = loop->wait();
            if (!r) {
                std::fprintf(stderr, "%s: serving failed: %s\n", prog, r.error().message().c_str());
                status = kExitFailure;
            }
            if (!child_done) {
                ::kill(child, SIGTERM);
                int st;
                while (::waitpid(child, &st, 0) < 0 && errno == EINTR) {
                }
                if (r)
                    status = decode_status(st);
            }
            break;
        }
    }
    server.reset();
    loop->stop();
    Result<void> r = loop->wait();
    if (!r && status == kExitOk && !stop_asked) {
        std::fprintf(stderr, "%s: serving failed: %s\n", prog, r.error().message().c_str());
        status = kExitFailure;
    }
    return status;
}

} // namespace machvm
