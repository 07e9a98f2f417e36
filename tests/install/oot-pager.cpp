// SPDX-License-Identifier: GPL-2.0
//
// oot-pager: a pager as a user writes one outside machvm's tree.  The
// install test compiles it in a scratch directory with nothing but
//     c++ -std=c++20 oot-pager.cpp $(pkg-config --cflags --libs libmachvm)
// against the installed headers, libmachvm.so and libmachvm.pc, and runs
// it in the VM: it creates a 1 MiB object, serves every page as the byte
// (page index + 1), maps the object itself, checks every byte, and exits 0
// ("oot-pager: ok ..." on stdout), or 1 with the reason on stderr.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <exception>

#include <machvm/device.hpp>
#include <machvm/loop.hpp>
#include <machvm/pager.hpp>

namespace {

class PatternPager final : public machvm::Pager {
  public:
    explicit PatternPager(std::size_t page) : page_(page) {}

    void on_data_request(const machvm_msg& msg, machvm::Reply& reply) noexcept override {
        std::span<std::byte> buf = reply.buffer(msg.length);
        if (buf.empty()) {
            reply.data_error(msg.object, msg.offset, msg.length, ENOMEM);
            return;
        }
        for (std::size_t off = 0; off < msg.length; off += page_)
            std::memset(buf.data() + off, fill(msg.offset + off), page_);
        reply.data_supply(msg.object, msg.offset, buf);
    }

    unsigned char fill(std::uint64_t offset) const noexcept {
        return static_cast<unsigned char>(offset / page_ + 1);
    }

  private:
    std::size_t page_;
};

int run() {
    const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    const std::size_t size = 1 << 20;
    machvm::Device dev = machvm::Device::open().value_or_throw("open /dev/machvm");
    machvm_version v = dev.version().value_or_throw("MACHVM_IOC_VERSION");
    if (v.abi_version != MACHVM_ABI_VERSION) {
        std::fprintf(stderr, "oot-pager: module ABI %u, built for %u\n", v.abi_version,
                     MACHVM_ABI_VERSION);
        return 1;
    }
    machvm::PagerEndpoint ep = dev.create_pager().value_or_throw("MACHVM_IOC_PAGER_CREATE");
    machvm::MemoryObject obj =
        ep.create_object(size, PROT_READ | PROT_WRITE, machvm::default_attr())
            .value_or_throw("MACHVM_IOC_OBJECT_CREATE");
    PatternPager pager(page);
    machvm::PagerLoop loop(ep, pager);

    void* map = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, obj.fd.get(), 0);
    if (map == MAP_FAILED) {
        std::perror("oot-pager: mmap");
        return 1;
    }
    const auto* p = static_cast<const unsigned char*>(map);
    for (std::size_t off = 0; off < size; ++off) {
        if (p[off] != pager.fill(off)) {
            std::fprintf(stderr, "oot-pager: byte %zu is %u, not %u\n", off, p[off],
                         pager.fill(off));
            return 1;
        }
    }
    ::munmap(map, size);
    loop.stop();
    if (auto r = loop.wait(); !r) {
        std::fprintf(stderr, "oot-pager: loop: %s\n", r.error().message().c_str());
        return 1;
    }
    std::printf("oot-pager: ok, %zu pages served through libmachvm\n", size / page);
    return 0;
}

} // namespace

int main() {
    try {
        return run();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "oot-pager: %s\n", e.what());
        return 1;
    }
}
