// SPDX-License-Identifier: GPL-2.0
// Result<T>, Result<void> and Fd.
#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include <machvm/fd.hpp>
#include <machvm/result.hpp>

#include "check.hpp"

using machvm::Fd;
using machvm::Result;

namespace {

Result<int> half(int v) {
    if (v % 2)
        return machvm::errno_code(EINVAL);
    return v / 2;
}

Result<void> positive(int v) {
    if (v <= 0)
        return machvm::errno_code(ERANGE);
    return machvm::ok();
}

bool fd_open(int fd) {
    return ::fcntl(fd, F_GETFD) >= 0;
}

void test_result() {
    Result<int> a = half(8);
    CHECK(a.ok());
    CHECK(static_cast<bool>(a));
    CHECK_EQ(*a, 4);
    CHECK_EQ(a.value(), 4);
    CHECK(!a.error());

    Result<int> b = half(3);
    CHECK(!b.ok());
    CHECK(b.error() == std::errc::invalid_argument);
    CHECK_EQ(b.value_or(-1), -1);
    CHECK_THROWS(b.value(), std::system_error);
    try {
        (void)std::move(b).value_or_throw("halving 3");
        CHECK(false);
    } catch (const std::system_error& e) {
        CHECK(e.code() == std::errc::invalid_argument);
        CHECK(std::string(e.what()).find("halving 3") != std::string::npos);
    }

    // An error_code of 0 cannot mean "error": it becomes EINVAL.
    Result<int> z = std::error_code();
    CHECK(!z.ok());
    CHECK(z.error() == std::errc::invalid_argument);

    CHECK(positive(1).ok());
    Result<void> n = positive(0);
    CHECK(!n.ok());
    CHECK(n.error() == std::errc::result_out_of_range);
    CHECK_THROWS(n.value(), std::system_error);
    CHECK_THROWS(n.value_or_throw("x"), std::system_error);

    Result<std::string> s = std::string("hello");
    CHECK(s->size() == 5);
    std::string moved = std::move(s).value();
    CHECK(moved == "hello");

    CHECK(machvm::neg_errno_code(-ENOENT) == std::errc::no_such_file_or_directory);
    errno = EBADF;
    CHECK(machvm::errno_code() == std::errc::bad_file_descriptor);
}

void test_fd() {
    int p[2];
    CHECK(::pipe2(p, O_CLOEXEC) == 0);
    int raw0 = p[0];
    {
        Fd a(p[0]);
        Fd w(p[1]);
        CHECK(a.valid());
        Fd b = std::move(a);
        CHECK(!a.valid());
        CHECK_EQ(b.get(), raw0);
        CHECK(fd_open(raw0));

        Result<Fd> d = b.dup();
        CHECK(d.ok());
        CHECK(d->get() != raw0);
        CHECK((::fcntl(d->get(), F_GETFD) & FD_CLOEXEC) != 0);
        Result<Fd> inh = b.dup(false);
        CHECK(inh.ok());
        CHECK((::fcntl(inh->get(), F_GETFD) & FD_CLOEXEC) == 0);

        CHECK(b.set_nonblocking(true).ok());
        CHECK((::fcntl(b.get(), F_GETFL) & O_NONBLOCK) != 0);
        char c;
        CHECK(::read(b.get(), &c, 1) < 0 && errno == EAGAIN);
        CHECK(b.set_nonblocking(false).ok());
        CHECK((::fcntl(b.get(), F_GETFL) & O_NONBLOCK) == 0);

        Fd r(b.release());
        CHECK(!b.valid());
        CHECK_EQ(r.get(), raw0);
    }
    CHECK(!fd_open(raw0));

    Result<Fd> missing = Fd::open("/nonexistent/machvm/file", O_RDONLY);
    CHECK(!missing.ok());
    CHECK(missing.error() == std::errc::no_such_file_or_directory);
    Result<Fd> devnull = Fd::open("/dev/null", O_RDONLY);
    CHECK(devnull.ok());
    CHECK((::fcntl(devnull->get(), F_GETFD) & FD_CLOEXEC) != 0);
}

} // namespace

int main() {
    test_result();
    test_fd();
    return unit::finish("result_test");
}
