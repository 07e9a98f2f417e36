// SPDX-License-Identifier: GPL-2.0
#include <machvm/fd.hpp>

#include <fcntl.h>
#include <unistd.h>

namespace machvm {

void Fd::reset(int fd) noexcept {
    if (fd_ >= 0 && fd_ != fd)
        ::close(fd_); // the descriptor is gone even on EINTR (Linux)
    fd_ = fd;
}

Result<Fd> Fd::open(const char* path, int flags, mode_t mode) noexcept {
    int fd = ::open(path, flags | O_CLOEXEC, mode);
    if (fd < 0)
        return errno_code();
    return Fd(fd);
}

Result<Fd> Fd::dup(bool cloexec) const noexcept {
    int fd = ::fcntl(fd_, cloexec ? F_DUPFD_CLOEXEC : F_DUPFD, 0);
    if (fd < 0)
        return errno_code();
    return Fd(fd);
}

Result<void> Fd::set_nonblocking(bool on) const noexcept {
    int fl = ::fcntl(fd_, F_GETFL);
    if (fl < 0)
        return errno_code();
    int nfl = on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK);
    if (nfl != fl && ::fcntl(fd_, F_SETFL, nfl) < 0)
        return errno_code();
    return {};
}

} // namespace machvm
