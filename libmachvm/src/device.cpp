// SPDX-License-Identifier: GPL-2.0
#include <machvm/device.hpp>

#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

namespace machvm {

namespace cmd {

namespace {
machvm_cmd make(std::uint32_t type, std::uint64_t object) noexcept {
    machvm_cmd c;
    std::memset(&c, 0, sizeof(c));
    c.type = type;
    c.object = object;
    return c;
}
} // namespace

machvm_cmd ready(std::uint64_t object, const machvm_attr& attr, std::uint32_t flags) noexcept {
    machvm_cmd c = make(MACHVM_CMD_READY, object);
    c.attr = attr;
    c.flags = flags;
    return c;
}

machvm_cmd data_supply(std::uint64_t object, std::uint64_t offset, const void* data,
                       std::uint64_t length, std::uint32_t flags, std::uint32_t lock) noexcept {
    machvm_cmd c = make(MACHVM_CMD_DATA_SUPPLY, object);
    c.flags = flags;
    c.lock = lock;
    c.offset = offset;
    c.length = length;
    c.addr = reinterpret_cast<std::uintptr_t>(data);
    return c;
}

machvm_cmd data_unavailable(std::uint64_t object, std::uint64_t offset,
                            std::uint64_t length) noexcept {
    machvm_cmd c = make(MACHVM_CMD_DATA_UNAVAILABLE, object);
    c.offset = offset;
    c.length = length;
    return c;
}

machvm_cmd data_error(std::uint64_t object, std::uint64_t offset, std::uint64_t length,
                      int error) noexcept {
    machvm_cmd c = make(MACHVM_CMD_DATA_ERROR, object);
    c.offset = offset;
    c.length = length;
    c.error = static_cast<std::uint32_t>(error);
    return c;
}

machvm_cmd change_attributes(std::uint64_t object, const machvm_attr& attr,
                             std::uint32_t flags) noexcept {
    machvm_cmd c = make(MACHVM_CMD_CHANGE_ATTRIBUTES, object);
    c.attr = attr;
    c.flags = flags;
    return c;
}

machvm_cmd destroy(std::uint64_t object) noexcept {
    return make(MACHVM_CMD_DESTROY, object);
}

machvm_cmd return_copy(std::uint64_t object, std::uint64_t offset, void* dst, std::uint64_t length,
                       std::uint64_t seq) noexcept {
    machvm_cmd c = make(MACHVM_CMD_RETURN_COPY, object);
    c.offset = offset;
    c.length = length;
    c.addr = reinterpret_cast<std::uintptr_t>(dst);
    c.seq = seq;
    return c;
}

machvm_cmd return_done(std::uint64_t object, std::uint64_t offset, std::uint64_t length,
                       std::uint64_t seq, int error) noexcept {
    machvm_cmd c = make(MACHVM_CMD_RETURN_DONE, object);
    c.offset = offset;
    c.length = length;
    c.seq = seq;
    c.error = static_cast<std::uint32_t>(error);
    return c;
}

machvm_cmd lock_request(std::uint64_t object, std::uint64_t offset, std::uint64_t length,
                        std::uint32_t flags, std::uint32_t lock) noexcept {
    machvm_cmd c = make(MACHVM_CMD_LOCK_REQUEST, object);
    c.offset = offset;
    c.length = length;
    c.flags = flags;
    c.lock = lock;
    return c;
}

} // namespace cmd

const char* msg_type_name(std::uint32_t type) noexcept {
    switch (type) {
    case MACHVM_MSG_NOP:
        return "NOP";
    case MACHVM_MSG_INIT:
        return "INIT";
    case MACHVM_MSG_DATA_REQUEST:
        return "DATA_REQUEST";
    case MACHVM_MSG_SUPPLY_COMPLETED:
        return "SUPPLY_COMPLETED";
    case MACHVM_MSG_TERMINATE:
        return "TERMINATE";
    case MACHVM_MSG_DATA_RETURN:
        return "DATA_RETURN";
    case MACHVM_MSG_LOCK_COMPLETED:
        return "LOCK_COMPLETED";
    case MACHVM_MSG_DATA_UNLOCK:
        return "DATA_UNLOCK";
    }
    return "?";
}

const char* cmd_type_name(std::uint32_t type) noexcept {
    switch (type) {
    case MACHVM_CMD_READY:
        return "READY";
    case MACHVM_CMD_DATA_SUPPLY:
        return "DATA_SUPPLY";
    case MACHVM_CMD_DATA_UNAVAILABLE:
        return "DATA_UNAVAILABLE";
    case MACHVM_CMD_DATA_ERROR:
        return "DATA_ERROR";
    case MACHVM_CMD_CHANGE_ATTRIBUTES:
        return "CHANGE_ATTRIBUTES";
    case MACHVM_CMD_DESTROY:
        return "DESTROY";
    case MACHVM_CMD_RETURN_COPY:
        return "RETURN_COPY";
    case MACHVM_CMD_RETURN_DONE:
        return "RETURN_DONE";
    case MACHVM_CMD_LOCK_REQUEST:
        return "LOCK_REQUEST";
    }
    return "?";
}

// ---- PagerEndpoint ----

Result<MemoryObject> PagerEndpoint::create_object(std::uint64_t size, std::uint32_t max_prot,
                                                  const machvm_attr& attr) noexcept {
    machvm_object_create oc;
    std::memset(&oc, 0, sizeof(oc));
    oc.size = size;
    oc.max_prot = max_prot;
    oc.attr = attr;

    if (::ioctl(fd_.get(), MACHVM_IOC_OBJECT_CREATE, &oc) < 0)
        return errno_code();
    MemoryObject obj;
    obj.id = oc.id;
    obj.name = oc.name;
    obj.size = size;
    obj.fd = Fd(oc.fd);
    return obj;
}

Result<std::size_t> PagerEndpoint::read_messages(std::span<machvm_msg> out) noexcept {
    if (out.empty())
        return errno_code(EINVAL);
    ssize_t n = ::read(fd_.get(), out.data(), out.size_bytes());
    if (n < 0)
        return errno_code();
    if (n % sizeof(machvm_msg) != 0)
        return errno_code(EPROTO);
    return static_cast<std::size_t>(n) / sizeof(machvm_msg);
}

Result<std::size_t> PagerEndpoint::write_commands(std::span<const machvm_cmd> cmds) noexcept {
    if (cmds.empty())
        return std::size_t{0};
    ssize_t n = ::write(fd_.get(), cmds.data(), cmds.size_bytes());
    if (n < 0)
        return errno_code();
    if (n % sizeof(machvm_cmd) != 0)
        return errno_code(EPROTO);
    return static_cast<std::size_t>(n) / sizeof(machvm_cmd);
}

Result<void> PagerEndpoint::command(const machvm_cmd& c) noexcept {
    for (;;) {
        auto r = write_commands(std::span<const machvm_cmd>(&c, 1));
        if (r.ok())
            return {};
        if (r.error() != std::errc::interrupted)
            return r.error();
    }
}

Result<void> PagerEndpoint::ready(std::uint64_t object, const machvm_attr& attr,
                                  std::uint32_t flags) noexcept {
    return command(cmd::ready(object, attr, flags));
}

Result<void> PagerEndpoint::data_supply(std::uint64_t object, std::uint64_t offset,
                                        std::span<const std::byte> data,
                                        std::uint32_t flags) noexcept {
    if (data.empty())
        return {};
    do {
        std::size_t n = std::min<std::size_t>(data.size(), MACHVM_MAX_XFER);
        auto r = command(cmd::data_supply(object, offset, data.data(), n, flags));
        if (!r)
            return r;
        offset += n;
        data = data.subspan(n);
    } while (!data.empty());
    return {};
}

namespace {
template <class Make>
Result<void> split(PagerEndpoint& ep, std::uint64_t offset, std::uint64_t length, Make make) {
    if (length == 0)
        return {};
    do {
        std::uint64_t n = std::min<std::uint64_t>(length, MACHVM_MAX_XFER);
        auto r = ep.command(make(offset, n));
        if (!r)
            return r;
        offset += n;
        length -= n;
    } while (length);
    return {};
}
} // namespace

Result<void> PagerEndpoint::data_unavailable(std::uint64_t object, std::uint64_t offset,
                                             std::uint64_t length) noexcept {
    return split(*this, offset, length, [object](std::uint64_t off, std::uint64_t len) {
        return cmd::data_unavailable(object, off, len);
    });
}

Result<void> PagerEndpoint::data_error(std::uint64_t object, std::uint64_t offset,
                                       std::uint64_t length, int error) noexcept {
    return split(*this, offset, length, [object, error](std::uint64_t off, std::uint64_t len) {
        return cmd::data_error(object, off, len, error);
    });
}

Result<void> PagerEndpoint::change_attributes(std::uint64_t object,
                                              const machvm_attr& attr) noexcept {
    return command(cmd::change_attributes(object, attr));
}

Result<void> PagerEndpoint::destroy(std::uint64_t object) noexcept {
    return command(cmd::destroy(object));
}

// ---- Device ----

Result<Device> Device::open(const char* path) noexcept {
    auto fd = Fd::open(path, O_RDWR);
    if (!fd)
        return fd.error();
    return Device(std::move(*fd));
}

Result<machvm_version> Device::version() const noexcept {
    machvm_version v;
    std::memset(&v, 0, sizeof(v));
    if (::ioctl(fd_.get(), MACHVM_IOC_VERSION, &v) < 0)
        return errno_code();
    return v;
}

Result<machvm_region> Device::region(const void* addr) const noexcept {
    machvm_region r;
    std::memset(&r, 0, sizeof(r));
    r.addr = reinterpret_cast<std::uintptr_t>(addr);
    if (::ioctl(fd_.get(), MACHVM_IOC_REGION, &r) < 0)
        return errno_code();
    return r;
}

Result<PagerEndpoint> Device::create_pager() const noexcept {
    machvm_pager_create pc;
    std::memset(&pc, 0, sizeof(pc));

    if (::ioctl(fd_.get(), MACHVM_IOC_PAGER_CREATE, &pc) < 0)
        return errno_code();
    return PagerEndpoint(Fd(pc.fd));
}

} // namespace machvm
