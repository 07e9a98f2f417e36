// SPDX-License-Identifier: GPL-2.0
// UringFileReader: several ranges at once, zeros past the end of the file.
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <vector>

#include <machvm/fd.hpp>
#include <machvm/file_reader.hpp>

#include "check.hpp"

using namespace machvm;

namespace {

constexpr std::size_t kFileSize = 3 * 4096 + 100;

std::byte file_byte(std::uint64_t off) {
    return static_cast<std::byte>((off * 7 + 3) & 0xff);
}

void test_reads(UringFileReader& reader, int fd) {
    std::vector<std::byte> a(4096), b(8192), c(4096, std::byte{0x55}), d(10);
    UringFileReader::Op ops[] = {
        {0, a},        // whole page
        {8192, b},     // crosses the end of the file: tail zero
        {4 * 4096, c}, // entirely past the end: all zero
        {4095, d},     // unaligned, small
    };
    CHECK(reader.read(fd, ops).ok());
    bool ok = true;
    for (std::size_t i = 0; i < a.size(); ++i)
        ok = ok && a[i] == file_byte(i);
    CHECK(ok);
    ok = true;
    for (std::size_t i = 0; i < b.size(); ++i) {
        std::uint64_t off = 8192 + i;
        ok = ok && b[i] == (off < kFileSize ? file_byte(off) : std::byte{0});
    }
    CHECK(ok);
    ok = true;
    for (std::byte x : c)
        ok = ok && x == std::byte{0};
    CHECK(ok);
    ok = true;
    for (std::size_t i = 0; i < d.size(); ++i)
        ok = ok && d[i] == file_byte(4095 + i);
    CHECK(ok);
}

void test_many_ops(UringFileReader& reader, int fd) {
    // More ops than ring entries: done in rounds.
    std::vector<std::vector<std::byte>> bufs(40, std::vector<std::byte>(64));
    std::vector<UringFileReader::Op> ops;
    for (std::size_t i = 0; i < bufs.size(); ++i)
        ops.push_back({i * 64, bufs[i]});
    CHECK(reader.read(fd, ops).ok());
    bool ok = true;
    for (std::size_t i = 0; i < bufs.size(); ++i)
        for (std::size_t j = 0; j < 64; ++j)
            ok = ok && bufs[i][j] == file_byte(i * 64 + j);
    CHECK(ok);
}

void test_bad_fd(UringFileReader& reader) {
    std::vector<std::byte> a(16);
    UringFileReader::Op op{0, a};
    CHECK(reader.read(-1, std::span(&op, 1)).error() == std::errc::bad_file_descriptor);
}

} // namespace

int main() {
    char path[] = "/tmp/machvm-reader-XXXXXX";
    int raw = ::mkstemp(path);
    if (raw < 0) {
        std::perror("mkstemp");
        return 1;
    }
    Fd fd(raw);
    ::unlink(path);
    std::vector<std::byte> data(kFileSize);
    for (std::size_t i = 0; i < data.size(); ++i)
        data[i] = file_byte(i);
    CHECK(::write(fd.get(), data.data(), data.size()) == static_cast<ssize_t>(data.size()));

    UringFileReader reader(8);
    std::printf("file_reader_test: reading with %s\n", reader.uses_uring() ? "io_uring" : "pread");
    test_reads(reader, fd.get());
    test_many_ops(reader, fd.get());
    test_bad_fd(reader);
    return unit::finish("file_reader_test");
}
