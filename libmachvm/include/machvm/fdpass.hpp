// SPDX-License-Identifier: GPL-2.0
//
// Handing a memory object's descriptor (the right to map it) to another
// process: SCM_RIGHTS over a Unix stream socket.
#pragma once

#include <atomic>
#include <cstddef>
#include <span>
#include <string>
#include <thread>

#include <machvm/fd.hpp>
#include <machvm/result.hpp>

namespace machvm {

// Sends `fd` with `payload` (at least one byte is always sent).
Result<void> send_fd(int sock, int fd, std::span<const std::byte> payload = {}) noexcept;

// Receives one descriptor (O_CLOEXEC).  Payload bytes go to `payload` if
// given (their count in *payload_len).  ENODATA: the peer sent no
// descriptor; ECONNRESET: the peer closed first.
Result<Fd> recv_fd(int sock, std::span<std::byte> payload = {},
                   std::size_t* payload_len = nullptr) noexcept;

// A listening AF_UNIX stream socket at `path`.  A stale socket file there
// is replaced; any other file is EEXIST.  ENAMETOOLONG if `path` does not
// fit in sun_path.
Result<Fd> listen_unix(const std::string& path, int backlog = 64) noexcept;
Result<Fd> connect_unix(const std::string& path) noexcept;

// Sends a copy of one descriptor to every client that connects to `path`,
// from its own thread, until destroyed (which also removes `path`).
class FdServer {
  public:
    // Throws std::system_error if the socket cannot be set up.
    FdServer(std::string path, int fd);
    FdServer(const FdServer&) = delete;
    FdServer& operator=(const FdServer&) = delete;
    ~FdServer();

    void stop() noexcept;
    unsigned long served() const noexcept { return served_.load(); }
    const std::string& path() const noexcept { return path_; }

  private:
    void run() noexcept;

    std::string path_;
    Fd fd_;
    Fd listen_;
    Fd stop_fd_;
    std::atomic<unsigned long> served_{0};
    std::thread thread_;
};

} // namespace machvm
