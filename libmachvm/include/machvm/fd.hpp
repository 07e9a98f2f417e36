// SPDX-License-Identifier: GPL-2.0
//
// Fd: a move-only file descriptor that closes itself (seastar's file_desc).
#pragma once

#include <sys/types.h>

#include <machvm/result.hpp>

namespace machvm {

class Fd {
  public:
    Fd() noexcept = default;
    explicit Fd(int fd) noexcept : fd_(fd) {}
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    Fd(Fd&& o) noexcept : fd_(o.release()) {}
    Fd& operator=(Fd&& o) noexcept {
        if (this != &o)
            reset(o.release());
        return *this;
    }
    ~Fd() { reset(); }

    int get() const noexcept { return fd_; }
    bool valid() const noexcept { return fd_ >= 0; }
    explicit operator bool() const noexcept { return valid(); }

    // Gives up ownership; the caller closes the descriptor.
    int release() noexcept {
        int fd = fd_;
        fd_ = -1;
        return fd;
    }
    // Closes the current descriptor (if any) and owns `fd`.
    void reset(int fd = -1) noexcept;

    // open(2) with O_CLOEXEC added.
    static Result<Fd> open(const char* path, int flags, mode_t mode = 0) noexcept;
    // A new descriptor for the same file; cloexec=false makes it inheritable.
    Result<Fd> dup(bool cloexec = true) const noexcept;
    // Sets or clears O_NONBLOCK.
    Result<void> set_nonblocking(bool on) const noexcept;

  private:
    int fd_ = -1;
};

} // namespace machvm
