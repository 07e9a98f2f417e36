// SPDX-License-Identifier: GPL-2.0
#include <machvm/fdpass.hpp>

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <ctime>

namespace machvm {

namespace {

// A message of the one buffer `data` (or, if empty, `fallback`) and the
// control buffer `control` (a union of cmsghdr and char buf[]).
template <typename Control>
msghdr message(iovec& iov, std::span<std::byte> data, std::span<std::byte> fallback,
               Control& control) noexcept {
    const std::span<std::byte> b = data.empty() ? fallback : data;
    iov.iov_base = b.data();
    iov.iov_len = b.size();
    msghdr msg;
    std::memset(&msg, 0, sizeof(msg));
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof(control.buf);
    return msg;
}

} // namespace

Result<void> send_fd(int sock, int fd, std::span<const std::byte> payload) noexcept {
    std::byte one{'M'};
    iovec iov;
    union {
        cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int))];
    } control;
    std::memset(&control, 0, sizeof(control));
    // sendmsg does not write the data; iovec has no const.
    const std::span<std::byte> data(const_cast<std::byte*>(payload.data()), payload.size());
    msghdr msg = message(iov, data, std::span(&one, 1), control);
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
    for (;;) {
        ssize_t n = ::sendmsg(sock, &msg, MSG_NOSIGNAL);
        if (n >= 0)
            return {};
        if (errno != EINTR)
            return errno_code();
    }
}

Result<Fd> recv_fd(int sock, std::span<std::byte> payload, std::size_t* payload_len) noexcept {
    std::byte scratch[64];
    iovec iov;
    constexpr std::size_t kMaxFds = 8; // room to see (and close) extras
    union {
        cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int) * kMaxFds)];
    } control;
    msghdr msg = message(iov, payload, scratch, control);
    ssize_t n;
    do
        n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return errno_code();
    Fd result;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (std::size_t i = 0; i < count; ++i) {
            int fd;
            std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            if (!result)
                result.reset(fd);
            else
                ::close(fd);
        }
    }
    if (payload_len)
        *payload_len = payload.empty() ? 0 : static_cast<std::size_t>(n);
    if (!result)
        return errno_code(n == 0 ? ECONNRESET : ENODATA);
    return result;
}

namespace {
Result<sockaddr_un> unix_address(const std::string& path) noexcept {
    sockaddr_un addr;
    std::memset(&addr, 0, sizeof(addr));
    addr.sun_family = AF_UNIX;
    if (path.empty())
        return errno_code(EINVAL);
    if (path.size() >= sizeof(addr.sun_path))
        return errno_code(ENAMETOOLONG);
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    return addr;
}
} // namespace

Result<Fd> connect_unix(const std::string& path) noexcept {
    auto addr = unix_address(path);
    if (!addr)
        return addr.error();
    Fd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!s)
        return errno_code();
    int r;
    do
        r = ::connect(s.get(), reinterpret_cast<const sockaddr*>(&*addr), sizeof(*addr));
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return errno_code();
    return s;
}

Result<Fd> listen_unix(const std::string& path, int backlog) noexcept {
    auto addr = unix_address(path);
    if (!addr)
        return addr.error();
    Fd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!s)
        return errno_code();
    const sockaddr* sa = reinterpret_cast<const sockaddr*>(&*addr);
    if (::bind(s.get(), sa, sizeof(*addr)) < 0) {
        if (errno != EADDRINUSE)
            return errno_code();
        struct stat st;
        if (::lstat(path.c_str(), &st) < 0)
            return errno_code();
        if (!S_ISSOCK(st.st_mode))
            return errno_code(EEXIST);
        // Somebody's socket: replace it only if nobody listens there.
        if (connect_unix(path).ok())
            return errno_code(EADDRINUSE);
        if (::unlink(path.c_str()) < 0 && errno != ENOENT)
            return errno_code();
        if (::bind(s.get(), sa, sizeof(*addr)) < 0)
            return errno_code();
    }
    if (::listen(s.get(), backlog) < 0) {
        int e = errno;
        ::unlink(path.c_str());
        return errno_code(e);
    }
    return s;
}

FdServer::FdServer(std::string path, int fd) : path_(std::move(path)) {
    fd_ = Fd(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
    if (!fd_)
        throw std::system_error(errno_code(), "dup");
    int e = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (e < 0)
        throw std::system_error(errno_code(), "eventfd");
    stop_fd_.reset(e);
    listen_ = listen_unix(path_).value_or_throw("listen on " + path_);
    try {
        thread_ = std::thread([this] { run(); });
    } catch (...) {
        ::unlink(path_.c_str());
        throw;
    }
}

FdServer::~FdServer() {
    stop();
    if (thread_.joinable())
        thread_.join();
    if (listen_)
        ::unlink(path_.c_str());
}

void FdServer::stop() noexcept {
    std::uint64_t one = 1;
    ssize_t n = ::write(stop_fd_.get(), &one, sizeof(one));
    (void)n;
}

void FdServer::run() noexcept {
    for (;;) {
        struct pollfd fds[2] = {{listen_.get(), POLLIN, 0}, {stop_fd_.get(), POLLIN, 0}};
        if (::poll(fds, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        if (fds[1].revents)
            return;
        if (!fds[0].revents)
            continue;
        Fd conn(::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC));
        if (!conn) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                struct timespec ts = {0, 50000000};
                nanosleep(&ts, nullptr); // out of descriptors: back off
            }
            continue; // EAGAIN, ECONNABORTED, EINTR, ...
        }
        if (send_fd(conn.get(), fd_.get()).ok())
            served_.fetch_add(1, std::memory_order_relaxed);
    }
}

} // namespace machvm
