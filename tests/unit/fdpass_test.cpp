// SPDX-License-Identifier: GPL-2.0
// send_fd / recv_fd, listen_unix / connect_unix and FdServer.
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include <machvm/fdpass.hpp>

#include "check.hpp"

using namespace machvm;

namespace {

std::string g_dir;

// A pipe; returns the read end, writes `text` into it.
Fd pipe_with(const char* text) {
    int p[2];
    CHECK(::pipe2(p, O_CLOEXEC) == 0);
    Fd w(p[1]);
    CHECK(::write(w.get(), text, std::strlen(text)) == static_cast<ssize_t>(std::strlen(text)));
    return Fd(p[0]);
}

std::string read_all(int fd) {
    char buf[64];
    ssize_t n = ::read(fd, buf, sizeof(buf));
    return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
}

void test_socketpair() {
    int sv[2];
    CHECK(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    Fd a(sv[0]), b(sv[1]);
    Fd p = pipe_with("hello");
    const char payload[] = "name=7";
    CHECK(send_fd(a.get(), p.get(), std::as_bytes(std::span(payload, 6))).ok());
    std::byte got[16];
    std::size_t len = 0;
    Result<Fd> r = recv_fd(b.get(), got, &len);
    CHECK(r.ok());
    CHECK_EQ(len, 6u);
    CHECK(std::memcmp(got, "name=7", 6) == 0);
    if (r.ok()) {
        CHECK(r->get() != p.get());
        CHECK((::fcntl(r->get(), F_GETFD) & FD_CLOEXEC) != 0);
        CHECK(read_all(r->get()) == "hello");
    }

    // No descriptor: ENODATA.  Peer gone: ECONNRESET.
    CHECK(::write(a.get(), "x", 1) == 1);
    CHECK(recv_fd(b.get()).error() == std::errc::no_message_available);
    a.reset();
    CHECK(recv_fd(b.get()).error() == std::errc::connection_reset);
}

void test_listen_connect() {
    std::string path = g_dir + "/sock";
    Result<Fd> l = listen_unix(path);
    CHECK(l.ok());
    // Somebody listens: a second listener is refused.
    CHECK(listen_unix(path).error() == std::errc::address_in_use);
    l = Fd();
    // A stale socket file is replaced.
    Result<Fd> l2 = listen_unix(path);
    CHECK(l2.ok());
    Result<Fd> c = connect_unix(path);
    CHECK(c.ok());
    l2 = Fd();
    ::unlink(path.c_str());
    CHECK(connect_unix(path).error() == std::errc::no_such_file_or_directory);

    // A regular file is never replaced.
    std::string file = g_dir + "/file";
    Fd f(::open(file.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
    CHECK(f.valid());
    CHECK(listen_unix(file).error() == std::errc::file_exists);
    ::unlink(file.c_str());

    CHECK(listen_unix(std::string(200, 'x')).error() == std::errc::filename_too_long);
    CHECK(!listen_unix("").ok());
}

void test_server() {
    std::string path = g_dir + "/server";
    Fd p = pipe_with("0123456789");
    {
        FdServer server(path, p.get());
        struct stat st;
        CHECK(::stat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode));
        for (int i = 0; i < 3; ++i) {
            Result<Fd> c = connect_unix(path);
            CHECK(c.ok());
            if (!c)
                continue;
            Result<Fd> got = recv_fd(c->get());
            CHECK(got.ok());
            if (got) {
                char ch;
                CHECK(::read(got->get(), &ch, 1) == 1);
                CHECK(ch == '0' + i); // the same pipe every time
            }
        }
        // The server counts a descriptor once sendmsg() returns, which
        // may be after this side has it: wait for the count, 5 s at most.
        for (int ms = 0; server.served() < 3u && ms < 5000; ++ms)
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        CHECK_EQ(server.served(), 3u);
        CHECK_THROWS(FdServer(path, p.get()), std::system_error);
    }
    struct stat st;
    CHECK(::stat(path.c_str(), &st) < 0 && errno == ENOENT); // removed
}

} // namespace

int main() {
    char tmpl[] = "/tmp/machvm-fdpass-XXXXXX";
    if (!::mkdtemp(tmpl)) {
        std::perror("mkdtemp");
        return 1;
    }
    g_dir = tmpl;
    test_socketpair();
    test_listen_connect();
    test_server();
    ::rmdir(g_dir.c_str());
    return unit::finish("fdpass_test");
}
