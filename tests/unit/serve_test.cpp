// SPDX-License-Identifier: GPL-2.0
// serve(), the life of a pager process, against a fake kernel (a
// SOCK_SEQPACKET pair as the endpoint, --blocking): --exec hands the
// descriptor to CMD and returns its status once the object terminated;
// --socket serves clients until SIGTERM; a dead endpoint fails the run.
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <machvm/fdpass.hpp>
#include <machvm/serve.hpp>
#include <machvm/version.hpp>

#include "check.hpp"
#include "socket_endpoint.hpp"

using namespace machvm;

namespace {

class NullPager final : public Pager {
  public:
    void on_data_request(const machvm_msg& m, Reply& r) noexcept override {
        r.data_unavailable(m.object, m.offset, m.length);
    }
};

struct Fake {
    PagerSetup setup;
    Fd kernel;
    MemoryObject object;

    Fake() {
        unit::SocketEndpoint s = unit::socket_endpoint();
        setup.endpoint = std::move(s.endpoint);
        setup.version.abi_version = MACHVM_ABI_VERSION;
        setup.version.page_size = 4096;
        kernel = std::move(s.kernel);
        object.id = 5;
        object.name = 77;
        object.size = 4096;
        object.fd = Fd(::memfd_create("machvm-serve-test", MFD_CLOEXEC));
        CHECK(object.fd.valid());
    }

    void send(std::uint32_t type) {
        machvm_msg m;
        std::memset(&m, 0, sizeof(m));
        m.type = type;
        m.object = object.id;
        CHECK(::write(kernel.get(), &m, sizeof(m)) == sizeof(m));
    }

    // serve() of the object by a NullPager.
    int serve(const PagerOptions& o) {
        NullPager pager;
        return machvm::serve("serve_test", setup, pager, std::move(object), o);
    }
};

PagerOptions blocking_opts() {
    PagerOptions o;
    o.transport = Transport::Blocking;
    return o;
}

PagerOptions exec_opts(std::vector<std::string> argv) {
    PagerOptions o = blocking_opts();
    o.exec_argv = std::move(argv);
    return o;
}

void test_exec_status() {
    Fake f;
    f.send(MACHVM_MSG_TERMINATE); // the object is gone as soon as CMD is
    auto t0 = std::chrono::steady_clock::now();
    // CMD sees its descriptor, then exits 7.
    int status = f.serve(exec_opts({"/bin/sh", "-c",
                                    "[ -n \"$MACHVM_FD\" ] && [ -e /proc/self/fd/$MACHVM_FD ] "
                                    "&& exit 7; exit 99"}));
    CHECK_EQ(status, 7);
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(4));
}

void test_exec_signal_status() {
    Fake f;
    f.send(MACHVM_MSG_TERMINATE);
    CHECK_EQ(f.serve(exec_opts({"/bin/sh", "-c", "kill -9 $$"})), 128 + 9);
}

// Never mapped (no INIT): no TERMINATE will come, so no 5 s wait.
void test_exec_never_mapped() {
    Fake f;
    auto t0 = std::chrono::steady_clock::now();
    CHECK_EQ(f.serve(exec_opts({"/bin/sh", "-c", "exit 0"})), 0);
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(3));
}

// Mapped (INIT) and the object outlives CMD: give up after 5 s.
void test_exec_no_terminate() {
    Fake f;
    f.send(MACHVM_MSG_INIT);
    auto t0 = std::chrono::steady_clock::now();
    CHECK_EQ(f.serve(exec_opts({"/bin/sh", "-c", "exit 3"})), 3);
    auto took = std::chrono::steady_clock::now() - t0;
    CHECK(took >= std::chrono::seconds(5) && took < std::chrono::seconds(8));
}

void test_exec_missing_command() {
    Fake f;
    CHECK_THROWS(f.serve(exec_opts({"/nonexistent/machvm-cmd"})), std::system_error);
}

void test_socket_until_sigterm(const std::string& dir) {
    Fake f;
    PagerOptions o = blocking_opts();
    o.socket_path = dir + "/pager.sock";
    struct stat want;
    CHECK(::fstat(f.object.fd.get(), &want) == 0);
    bool got_same = false;
    std::thread client([&] {
        for (int i = 0; i < 200; ++i) {
            auto s = connect_unix(o.socket_path);
            if (s) {
                auto fd = recv_fd(s->get());
                struct stat st;
                got_same = fd && ::fstat(fd->get(), &st) == 0 && st.st_ino == want.st_ino;
                break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        ::kill(::getpid(), SIGTERM);
    });
    int status = f.serve(o);
    client.join();
    CHECK_EQ(status, 0);
    CHECK(got_same);
    struct stat st;
    CHECK(::stat(o.socket_path.c_str(), &st) < 0); // removed at exit
}

void test_endpoint_dies(const std::string& dir) {
    Fake f;
    PagerOptions o = blocking_opts();
    o.socket_path = dir + "/dead.sock";
    f.kernel.reset(); // read(2) returns 0: the endpoint is gone
    CHECK_EQ(f.serve(o), 1);
}

// A module of another ABI version is refused, with both versions named.
void test_abi_mismatch() {
    CHECK(abi_mismatch("serve_test", MACHVM_ABI_VERSION).empty());
    const std::string why = abi_mismatch("serve_test", MACHVM_ABI_VERSION - 1);
    CHECK(why.find("ABI " + std::to_string(MACHVM_ABI_VERSION - 1) + ")") != std::string::npos);
    CHECK(why.find("ABI " + std::to_string(MACHVM_ABI_VERSION) + ")") != std::string::npos);
}

} // namespace

int main() {
    block_serve_signals(); // before any thread: SIGTERM must reach serve()
    char tmpl[] = "/tmp/machvm-serve-XXXXXX";
    if (!::mkdtemp(tmpl)) {
        std::perror("mkdtemp");
        return 1;
    }
    test_abi_mismatch();
    test_exec_status();
    test_exec_signal_status();
    test_exec_never_mapped();
    test_exec_no_terminate();
    test_exec_missing_command();
    test_socket_until_sigterm(tmpl);
    test_endpoint_dies(tmpl);
    ::rmdir(tmpl);
    return unit::finish("serve_test");
}
