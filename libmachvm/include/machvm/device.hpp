// SPDX-License-Identifier: GPL-2.0
//
// The machvm device, pager endpoints and memory objects: thin RAII wrappers
// over the ioctls, read(2) and write(2) of kmod/uapi/linux/machvm.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include <linux/machvm.h>
#include <machvm/fd.hpp>
#include <machvm/result.hpp>

namespace machvm {

static_assert(sizeof(machvm_msg) == 64, "struct machvm_msg is 64 bytes");
static_assert(sizeof(machvm_cmd) == 64, "struct machvm_cmd is 64 bytes");
static_assert(sizeof(machvm_uring_cmd) == 16, "the uring_cmd area is 16 bytes");
static_assert(sizeof(machvm_attr) == 8, "struct machvm_attr is 8 bytes");

// Object attributes with the module's defaults spelled out.
constexpr machvm_attr default_attr() noexcept {
    machvm_attr a{};
    a.may_cache = 0;
    a.copy_strategy = MACHVM_COPY_DELAY;
    a.cluster_pages = 1;
    a.timeout_ms = 0; // module default (MACHVM_DEFAULT_TIMEOUT_MS)
    return a;
}

// The MACHVM_READY_F_* a pager whose DATA_RETURN handler takes any
// page-aligned range may send to the module `v` describes: cluster
// returns where the module has them.
inline std::uint32_t ready_flags(const machvm_version& v) noexcept {
    return (v.features & MACHVM_F_CLUSTER_RETURN) ? MACHVM_READY_F_CLUSTER_RETURN : 0;
}

// Builders for struct machvm_cmd: every other field zero, as the ABI wants.
namespace cmd {
// flags: MACHVM_READY_F_* (see ready_flags()).
machvm_cmd ready(std::uint64_t object, const machvm_attr& attr, std::uint32_t flags = 0) noexcept;
// lock: accesses prohibited on the pages (0 or PROT_WRITE).
machvm_cmd data_supply(std::uint64_t object, std::uint64_t offset, const void* data,
                       std::uint64_t length, std::uint32_t flags = 0,
                       std::uint32_t lock = 0) noexcept;
machvm_cmd data_unavailable(std::uint64_t object, std::uint64_t offset,
                            std::uint64_t length) noexcept;
machvm_cmd data_error(std::uint64_t object, std::uint64_t offset, std::uint64_t length,
                      int error) noexcept;
machvm_cmd change_attributes(std::uint64_t object, const machvm_attr& attr,
                             std::uint32_t flags = 0) noexcept;
machvm_cmd destroy(std::uint64_t object) noexcept;
// Copy pages under the DATA_RETURN with this seq to dst (length bytes).
machvm_cmd return_copy(std::uint64_t object, std::uint64_t offset, void* dst, std::uint64_t length,
                       std::uint64_t seq) noexcept;
// End the DATA_RETURN with this seq: error 0 takes the pages, a positive
// errno refuses them.
machvm_cmd return_done(std::uint64_t object, std::uint64_t offset, std::uint64_t length,
                       std::uint64_t seq, int error) noexcept;
// flags: MACHVM_LOCK_RETURN_* | MACHVM_LOCK_F_FLUSH | MACHVM_LOCK_F_LOCK
// (then lock, 0 or PROT_WRITE, is the pages' new lock value).
machvm_cmd lock_request(std::uint64_t object, std::uint64_t offset, std::uint64_t length,
                        std::uint32_t flags, std::uint32_t lock = 0) noexcept;
} // namespace cmd

// Names for tracing: "DATA_REQUEST", "DATA_SUPPLY", ...; "?" if unknown.
const char* msg_type_name(std::uint32_t type) noexcept;
const char* cmd_type_name(std::uint32_t type) noexcept;

// A memory object as MACHVM_IOC_OBJECT_CREATE returns it.
struct MemoryObject {
    std::uint64_t id = 0;   // control id on the creating endpoint
    std::uint64_t name = 0; // global object name
    std::uint64_t size = 0; // bytes
    Fd fd;                  // the right to mmap it (O_CLOEXEC)
};

// A pager endpoint (MACHVM_IOC_PAGER_CREATE): the pager's side of all the
// objects it creates.  Reads and writes are thread-safe in the kernel.
class PagerEndpoint {
  public:
    PagerEndpoint() noexcept = default;
    explicit PagerEndpoint(Fd fd) noexcept : fd_(std::move(fd)) {}

    int fd() const noexcept { return fd_.get(); }
    bool valid() const noexcept { return fd_.valid(); }

    // MACHVM_IOC_OBJECT_CREATE.  size: a non-zero page multiple; max_prot:
    // PROT_* mask.
    Result<MemoryObject> create_object(std::uint64_t size, std::uint32_t max_prot,
                                       const machvm_attr& attr = default_attr()) noexcept;

    // read(2): fills the front of `out` with whole messages and returns how
    // many (0: end of file).  Blocks unless the endpoint is non-blocking
    // (then EAGAIN).  `out` must hold at least one message.
    Result<std::size_t> read_messages(std::span<machvm_msg> out) noexcept;

    // write(2): executes the commands in order and returns how many were
    // done.  A count short of cmds.size() means cmds[count] failed (write
    // it alone to learn its errno); an error means cmds[0] failed.
    Result<std::size_t> write_commands(std::span<const machvm_cmd> cmds) noexcept;

    // One command, written at once.
    Result<void> command(const machvm_cmd& c) noexcept;
    Result<void> ready(std::uint64_t object, const machvm_attr& attr,
                       std::uint32_t flags = 0) noexcept;
    // `data` is copied by the kernel before this returns; longer than
    // MACHVM_MAX_XFER is split into several commands.
    Result<void> data_supply(std::uint64_t object, std::uint64_t offset,
                             std::span<const std::byte> data, std::uint32_t flags = 0) noexcept;
    Result<void> data_unavailable(std::uint64_t object, std::uint64_t offset,
                                  std::uint64_t length) noexcept;
    Result<void> data_error(std::uint64_t object, std::uint64_t offset, std::uint64_t length,
                            int error) noexcept;
    Result<void> change_attributes(std::uint64_t object, const machvm_attr& attr) noexcept;
    Result<void> destroy(std::uint64_t object) noexcept;

    Result<void> set_nonblocking(bool on) const noexcept { return fd_.set_nonblocking(on); }

  private:
    Fd fd_;
};

// /dev/machvm.
class Device {
  public:
    Device() noexcept = default;
    explicit Device(Fd fd) noexcept : fd_(std::move(fd)) {}

    static Result<Device> open(const char* path = MACHVM_DEVICE) noexcept;

    int fd() const noexcept { return fd_.get(); }
    Result<machvm_version> version() const noexcept;
    // MACHVM_IOC_REGION: ENOMEM no mapping at addr, ENXIO not a machvm one.
    Result<machvm_region> region(const void* addr) const noexcept;
    Result<PagerEndpoint> create_pager() const noexcept;

  private:
    Fd fd_;
};

} // namespace machvm
