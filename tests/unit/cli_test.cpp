// SPDX-License-Identifier: GPL-2.0
// Command-line parsing: numbers, sizes, the argument reader, the common
// pager options, --misbehave lists and fill specs.
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>

#include <cstdio>
#include <string>
#include <system_error>

#include <machvm/cli.hpp>

#include "fill.hpp"
#include "misbehave.hpp"

#include "check.hpp"

using namespace machvm;

namespace {

void test_parse_uint() {
    CHECK_EQ(parse_uint("0").value(), 0u);
    CHECK_EQ(parse_uint("42").value(), 42u);
    CHECK_EQ(parse_uint("0x1000").value(), 4096u);
    CHECK_EQ(parse_uint("0XfF").value(), 255u);
    CHECK_EQ(parse_uint("18446744073709551615").value(), ~std::uint64_t{0});
    CHECK(parse_uint("18446744073709551616").error() == std::errc::result_out_of_range);
    CHECK(parse_uint("").error() == std::errc::invalid_argument);
    CHECK(parse_uint("-1").error() == std::errc::invalid_argument);
    CHECK(parse_uint("+1").error() == std::errc::invalid_argument);
    CHECK(parse_uint("12a").error() == std::errc::invalid_argument);
    CHECK(parse_uint("0x").error() == std::errc::invalid_argument);
    CHECK(parse_uint(" 1").error() == std::errc::invalid_argument);
}

void test_parse_size() {
    CHECK_EQ(parse_size("4096").value(), 4096u);
    CHECK_EQ(parse_size("4k").value(), 4096u);
    CHECK_EQ(parse_size("4K").value(), 4096u);
    CHECK_EQ(parse_size("64M").value(), 64u << 20);
    CHECK_EQ(parse_size("64MB").value(), 64u << 20);
    CHECK_EQ(parse_size("64MiB").value(), 64u << 20);
    CHECK_EQ(parse_size("2g").value(), 2ull << 30);
    CHECK_EQ(parse_size("1T").value(), 1ull << 40);
    CHECK_EQ(parse_size("12B").value(), 12u);
    CHECK_EQ(parse_size("0x10M").value(), 16u << 20);
    CHECK_EQ(parse_size("0x1b").value(), 27u); // hex digit, not bytes
    CHECK(!parse_size("").ok());
    CHECK(!parse_size("M").ok());
    CHECK(!parse_size("4X").ok());
    CHECK(!parse_size("4KX").ok());
    CHECK(!parse_size("4Bi").ok());
    CHECK(!parse_size("1.5M").ok());
    CHECK(parse_size("20000000T").error() == std::errc::result_out_of_range);
}

void test_parse_prot_and_copy() {
    CHECK_EQ(parse_prot("r").value(), std::uint32_t{PROT_READ});
    CHECK_EQ(parse_prot("rw").value(), std::uint32_t{PROT_READ | PROT_WRITE});
    CHECK_EQ(parse_prot("xr").value(), std::uint32_t{PROT_READ | PROT_EXEC});
    CHECK_EQ(parse_prot("rwx").value(), std::uint32_t{PROT_READ | PROT_WRITE | PROT_EXEC});
    CHECK_EQ(parse_prot("none").value(), std::uint32_t{PROT_NONE});
    CHECK(!parse_prot("").ok());
    CHECK(!parse_prot("rr").ok());
    CHECK(!parse_prot("rwz").ok());
    CHECK_EQ(parse_copy_strategy("none").value(), MACHVM_COPY_NONE);
    CHECK_EQ(parse_copy_strategy("call").value(), MACHVM_COPY_CALL);
    CHECK_EQ(parse_copy_strategy("delay").value(), MACHVM_COPY_DELAY);
    CHECK(!parse_copy_strategy("lazy").ok());
}

void test_arg_reader() {
    ArgReader a({"--size=4M", "--threads", "3", "-v", "file", "--", "--not-an-option"});
    CHECK(a.at_option());
    auto v = a.value("--size");
    CHECK(v && *v == "4M");
    CHECK(!a.value("--size")); // the current one is --threads now
    v = a.value("--threads");
    CHECK(v && *v == "3");
    CHECK(!a.flag("--verbose"));
    CHECK(a.flag("--verbose", "-v"));
    CHECK(!a.at_option());
    CHECK(a.positional() == "file");
    CHECK(a.positional() == "--not-an-option"); // after "--"
    CHECK(a.done());

    ArgReader missing({"--size"});
    CHECK_THROWS(missing.value("--size"), UsageError);
    ArgReader flag_value({"--blocking=1"});
    CHECK_THROWS(flag_value.flag("--blocking"), UsageError);
    ArgReader unknown({"--frobnicate"});
    CHECK_THROWS(unknown.unknown(), UsageError);
    ArgReader prefix({"--sizes", "1"});
    CHECK(!prefix.value("--size"));

    const char* argv[] = {"prog", "--exec", "ls", "-l", "--size", "1"};
    ArgReader r(6, const_cast<char* const*>(argv));
    CHECK(r.flag("--exec"));
    auto rest = r.rest();
    CHECK_EQ(rest.size(), 4u);
    CHECK(rest[0] == "ls" && rest[3] == "1");
    CHECK(r.done());
}

void test_uint_and_size_arg() {
    CHECK_EQ(uint_arg("--n", "5", 1, 10), 5u);
    CHECK_THROWS(uint_arg("--n", "0", 1, 10), UsageError);
    CHECK_THROWS(uint_arg("--n", "11", 1, 10), UsageError);
    CHECK_THROWS(uint_arg("--n", "x", 1, 10), UsageError);
    CHECK_EQ(size_arg("--size", "1M"), 1u << 20);
    CHECK_THROWS(size_arg("--size", "1Q"), UsageError);
    try {
        uint_arg("--threads", "999", 1, 256);
    } catch (const UsageError& e) {
        CHECK(std::string(e.what()).find("--threads") != std::string::npos);
    }
}

PagerOptions parse_all(std::vector<std::string> v) {
    PagerOptions o;
    ArgReader a(std::move(v));
    while (!a.done())
        if (!parse_pager_option(a, o))
            a.unknown();
    return o;
}

void test_pager_options() {
    PagerOptions d;
    CHECK(d.transport == Transport::Auto);
    CHECK_EQ(d.threads, 1u);
    CHECK_EQ(d.depth, 16u);
    CHECK_EQ(d.max_prot, std::uint32_t{PROT_READ | PROT_WRITE});
    CHECK_EQ(d.attr.copy_strategy, MACHVM_COPY_DELAY);
    CHECK_EQ(d.attr.cluster_pages, 1);
    CHECK_THROWS(validate_pager_options(d), UsageError);

    PagerOptions o =
        parse_all({"--socket",    "/tmp/s",    "--blocking", "--threads=4", "--depth",
                   "64",          "--cluster", "16",         "--timeout",   "250",
                   "--may-cache", "--copy",    "call",       "--max-prot",  "r",
                   "-v",          "--exec",    "sh",         "-c",          "echo $MACHVM_FD"});
    CHECK(o.socket_path == "/tmp/s");
    CHECK(o.transport == Transport::Blocking);
    CHECK_EQ(o.threads, 4u);
    CHECK_EQ(o.depth, 64u);
    CHECK_EQ(o.attr.cluster_pages, 16);
    CHECK_EQ(o.attr.timeout_ms, 250u);
    CHECK_EQ(o.attr.may_cache, 1);
    CHECK_EQ(o.attr.copy_strategy, MACHVM_COPY_CALL);
    CHECK_EQ(o.max_prot, std::uint32_t{PROT_READ});
    CHECK(o.verbose);
    CHECK_EQ(o.exec_argv.size(), 3u);
    CHECK(o.exec_argv[2] == "echo $MACHVM_FD");
    validate_pager_options(o);

    CHECK(parse_all({"--uring"}).transport == Transport::Uring);
    CHECK_THROWS(parse_all({"--cluster", "3"}), UsageError);
    CHECK_THROWS(parse_all({"--cluster", "128"}), UsageError);
    CHECK_THROWS(parse_all({"--timeout", "5"}), UsageError);
    CHECK_THROWS(parse_all({"--threads", "0"}), UsageError);
    CHECK_THROWS(parse_all({"--depth", "5000"}), UsageError);
    CHECK_THROWS(parse_all({"--exec"}), UsageError);
    CHECK_THROWS(parse_all({"--socket="}), UsageError);
    CHECK_THROWS(parse_all({"--copy", "x"}), UsageError);
    CHECK_THROWS(parse_all({"--max-prot", "q"}), UsageError);
    CHECK_THROWS(parse_all({"--bogus"}), UsageError);
    validate_pager_options(parse_all({"--exec", "true"}));
}

void test_misbehavior() {
    Misbehavior m = parse_misbehavior("none");
    CHECK(!m.any());
    m = parse_misbehavior("delay:200");
    CHECK_EQ(m.delay_ms, 200u);
    m = parse_misbehavior("error");
    CHECK_EQ(m.error, 5);
    m = parse_misbehavior("error:14,die:3,flood,unasked");
    CHECK_EQ(m.error, 14);
    CHECK_EQ(m.die_at, 3u);
    CHECK_EQ(m.flood_pages, kDefaultFloodPages);
    CHECK(m.unasked);
    CHECK(to_string(m) == "error:14,die:3,flood:256,unasked");
    m = parse_misbehavior("die");
    CHECK_EQ(m.die_at, 1u);
    m = parse_misbehavior("flood:8,silent,mute");
    CHECK_EQ(m.flood_pages, 8u);
    CHECK(m.silent && m.mute);
    CHECK(parse_misbehavior(to_string(m)).flood_pages == 8);
    CHECK_THROWS(parse_misbehavior(""), UsageError);
    CHECK_THROWS(parse_misbehavior("delay"), UsageError);
    CHECK_THROWS(parse_misbehavior("delay:x"), UsageError);
    CHECK_THROWS(parse_misbehavior("error:0"), UsageError);
    CHECK_THROWS(parse_misbehavior("error:5000"), UsageError);
    CHECK_THROWS(parse_misbehavior("silent:1"), UsageError);
    CHECK_THROWS(parse_misbehavior("explode"), UsageError);
    CHECK_THROWS(parse_misbehavior("delay:1,"), UsageError);
}

void test_fill_spec() {
    CHECK(parse_fill_spec("--write", "zero").kind == FillSpec::Kind::Zero);
    CHECK(parse_fill_spec("--write", "pattern").kind == FillSpec::Kind::Pattern);
    FillSpec b = parse_fill_spec("--write", "byte:0xab");
    CHECK(b.kind == FillSpec::Kind::Byte);
    CHECK_EQ(b.byte, 0xab);
    FillSpec t = parse_fill_spec("--write", "text:hi:there");
    CHECK(t.kind == FillSpec::Kind::Text);
    CHECK(t.text == "hi:there");
    CHECK_THROWS(parse_fill_spec("--write", "byte:256"), UsageError);
    CHECK_THROWS(parse_fill_spec("--write", "text:"), UsageError);
    CHECK_THROWS(parse_fill_spec("--write", "hello"), UsageError);
}

} // namespace

int main() {
    test_parse_uint();
    test_parse_size();
    test_parse_prot_and_copy();
    test_arg_reader();
    test_uint_and_size_arg();
    test_pager_options();
    test_misbehavior();
    test_fill_spec();
    return unit::finish("cli_test");
}
