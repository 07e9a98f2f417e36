// SPDX-License-Identifier: GPL-2.0
// What the benchmark tools share (tools/bench): the report make bench
// collects, the clock, SIGBUS reporting, percentiles, numbers and ratios,
// the output options and the machine description.  And machvm-bench-file's
// command line, run as a program (build/bin, beside build/tests/unit).
#include <dirent.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

#include "bench/bench.hpp"
#include "check.hpp"

using namespace machvm;
using namespace machvm::bench;

namespace {

// The @@JSON block make bench collects, and the file beside it.
void test_emit_bench_json() {
    char path[] = "/tmp/bench_test.XXXXXX";
    int fd = ::mkstemp(path);
    CHECK(fd >= 0);
    ::close(fd);
    emit_json({path, "x.json", false}, "{\"a\": 1}\n");
    std::FILE* f = std::fopen(path, "r");
    CHECK(f != nullptr);
    char buf[64] = {};
    std::size_t n = f ? std::fread(buf, 1, sizeof(buf) - 1, f) : 0;
    if (f)
        std::fclose(f);
    CHECK(std::string(buf, n) == "{\"a\": 1}\n");
    ::unlink(path);
    bool threw = false;
    try {
        emit_json({"/nonexistent/dir/x.json", "x.json", false}, "{}\n");
    } catch (const std::system_error&) {
        threw = true;
    }
    CHECK(threw);
}

// The benchmarks' clock and page size; a SIGBUS reported, status 1.
void test_bench_helpers() {
    const std::uint64_t t0 = now_ns();
    CHECK(now_ns() >= t0);
    CHECK_EQ(page_size(), static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE)));
    const pid_t pid = ::fork();
    if (pid == 0) {
        report_sigbus("bench_test", "expected");
        std::freopen("/dev/null", "w", stderr); // its line is no news
        ::raise(SIGBUS);
        ::_exit(0);
    }
    int st = 0;
    CHECK(::waitpid(pid, &st, 0) == pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == kExitFailure);
}

// Nearest-rank percentiles and the mean, in microseconds.
void test_statistics() {
    const std::vector<std::uint64_t> none;
    CHECK(percentile_us(none, 0.5) == 0);
    CHECK(mean_us(none) == 0);
    std::vector<std::uint64_t> v;
    for (std::uint64_t i = 1; i <= 100; ++i)
        v.push_back(i * 1000);
    CHECK(percentile_us(v, 0.50) == 50.0);
    CHECK(percentile_us(v, 0.99) == 99.0);
    CHECK(percentile_us(v, 0.0) == 1.0);
    CHECK(percentile_us(v, 1.0) == 100.0);
    CHECK(mean_us(v) == 50.5);
    const std::vector<std::uint64_t> one{7000};
    CHECK(percentile_us(one, 0.99) == 7.0);
}

void test_numbers() {
    CHECK(number(1.23456, "%.3f") == "1.235");
    CHECK(number(2, "%.2fx") == "2.00x");
    CHECK(!ratio(1, 0));
    CHECK(!ratio(0, 1));
    CHECK(ratio(3, 2).value() == 1.5);
    CHECK(json_ratio(std::nullopt) == "null");
    CHECK(json_ratio(1.5) == "1.5000");
    CHECK(ratio_cell(std::nullopt) == "-");
    CHECK(ratio_cell(1.5) == "1.50x");
    CHECK(json_string("a\"b") == "\"a\\\"b\"");
}

void test_text() {
    CHECK(trim(" \tx y\n") == "x y");
    CHECK(trim("\n").empty());
    CHECK(read_text("/nonexistent/file").empty());
    CHECK((split_commas("a,b,,c") == std::vector<std::string_view>{"a", "b", "", "c"}));
    CHECK((split_commas("") == std::vector<std::string_view>{""}));
}

void test_output_option() {
    ArgReader a(
        std::vector<std::string>{"--json", "/tmp/x.json", "--json-name=y.json", "-q", "--other"});
    Output out{"", "default.json"};
    CHECK(output_option(a, out));
    CHECK(out.json_path == "/tmp/x.json");
    CHECK(output_option(a, out));
    CHECK(out.json_name == "y.json");
    CHECK(!out.quiet);
    CHECK(output_option(a, out));
    CHECK(out.quiet);
    CHECK(!output_option(a, out));
    ArgReader empty(std::vector<std::string>{"--json", ""});
    CHECK_THROWS(output_option(empty, out), UsageError);
    ArgReader slash(std::vector<std::string>{"--json-name", "a/b"});
    CHECK_THROWS(output_option(slash, out), UsageError);
}

enum class Kind { A, B, C };

void test_choices() {
    CHECK(choice_arg<bool>("--access", "write", {{"read", false}, {"write", true}}));
    CHECK_THROWS(choice_arg<bool>("--access", "x", {{"read", false}, {"write", true}}), UsageError);
    try {
        (void)choice_arg<int>("--n", "x", {{"one", 1}, {"two", 2}, {"three", 3}});
    } catch (const UsageError& e) {
        CHECK(std::string(e.what()) == "--n: 'x' is not one, two or three");
    }
    const Names<Kind> names{{"a", Kind::A}, {"b", Kind::B}, {"c", Kind::C}};
    CHECK((list_arg("--k", "b,a,b", names) == std::vector<Kind>{Kind::B, Kind::A}));
    CHECK((list_arg("--k", "c,all", names, true) == std::vector<Kind>{Kind::C, Kind::A, Kind::B}));
    CHECK_THROWS(list_arg("--k", "all", names), UsageError);
    CHECK_THROWS(list_arg("--k", "a,", names), UsageError);
    try {
        (void)list_arg("--k", "d", names, true);
    } catch (const UsageError& e) {
        CHECK(std::string(e.what()) == "--k: 'd' is not a, b, c or all");
    }
}

// --help ends the reading; an unknown option is a UsageError.
bool test_option(ArgReader& args, int& o) {
    if (auto v = args.value("--n"))
        o = static_cast<int>(uint_arg("--n", *v, 0, 9));
    else
        return false;
    return true;
}

void test_parse_options() {
    char prog[] = "x", n[] = "--n", three[] = "3", help[] = "-h", bad[] = "--bad";
    char* ok_argv[] = {prog, n, three, nullptr};
    bool want_help = false;
    CHECK_EQ(parse_options(3, ok_argv, want_help, 0, test_option), 3);
    CHECK(!want_help);
    char* help_argv[] = {prog, n, three, help, bad, nullptr};
    CHECK_EQ(parse_options(5, help_argv, want_help, 0, test_option), 3);
    CHECK(want_help);
    want_help = false;
    char* bad_argv[] = {prog, bad, help, nullptr};
    CHECK_THROWS(parse_options(3, bad_argv, want_help, 0, test_option), UsageError);
}

void test_machine() {
    const Machine m = describe_machine();
    CHECK(!m.kernel.empty());
    CHECK(m.nproc >= 1);
    CHECK_EQ(m.page, page_size());
    CHECK(clock_gettime_ns() > 0);
}

// /proc/stat's CPU time: a busy loop of 300 ms of this thread's CPU time
// shows up as busy ticks, never more than all ticks.
void test_cpu_times() {
    CHECK(clock_ticks() >= 1);
    const CpuTimes a = cpu_times();
    CHECK(a.total > 0);
    CHECK(a.busy <= a.total);
    timespec t0{}, t{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
    volatile std::uint64_t spin = 0;
    do {
        for (int i = 0; i < 100000; ++i)
            spin = spin + 1;
        ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    } while ((t.tv_sec - t0.tv_sec) * 1000000000L + (t.tv_nsec - t0.tv_nsec) < 300000000L);
    const CpuTimes b = cpu_times();
    CHECK(b.total > a.total);
    CHECK(b.busy >= a.busy + static_cast<std::uint64_t>(clock_ticks()) / 10);
    CHECK(b.busy - a.busy <= b.total - a.total);
}

// build/bin/NAME, found from this test's own path.
std::string tool(const char* name) {
    char buf[4096];
    const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
    std::string p(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
    return p.substr(0, p.rfind('/')) + "/../../bin/" + name;
}

// Runs machvm-bench-file with `args` (MVM_DISK_DIR set to `disk_dir`
// unless it is empty); its exit status, its stdout and stderr in *out.
int bench_file(std::vector<std::string> args, const std::string& disk_dir, std::string* out) {
    const std::string prog = tool("machvm-bench-file");
    int p[2];
    if (::pipe(p) != 0)
        return -1;
    const pid_t pid = ::fork();
    if (pid == 0) {
        ::close(p[0]);
        ::dup2(p[1], STDOUT_FILENO);
        ::dup2(p[1], STDERR_FILENO);
        if (disk_dir.empty())
            ::unsetenv("MVM_DISK_DIR");
        else
            ::setenv("MVM_DISK_DIR", disk_dir.c_str(), 1);
        std::vector<char*> argv{const_cast<char*>(prog.c_str())};
        for (std::string& a : args)
            argv.push_back(a.data());
        argv.push_back(nullptr);
        ::execv(argv[0], argv.data());
        ::_exit(127);
    }
    ::close(p[1]);
    out->clear();
    char buf[4096];
    for (ssize_t n; (n = ::read(p[0], buf, sizeof(buf))) > 0;)
        out->append(buf, static_cast<std::size_t>(n));
    ::close(p[0]);
    int st = 0;
    if (::waitpid(pid, &st, 0) != pid)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

// machvm-bench-file: --help, every bad command line (status 2, no file
// written), and its mmap case with the caches left alone, which needs no
// module and no root: one JSON block, the file gone afterwards.
void test_bench_file() {
    char dir[] = "/tmp/bench_file_test.XXXXXX";
    CHECK(::mkdtemp(dir) != nullptr);
    std::string out;
    CHECK_EQ(bench_file({"--help"}, dir, &out), kExitOk);
    CHECK(out.find("NAME\n       machvm-bench-file") != std::string::npos);
    CHECK(out.find("EXIT STATUS") != std::string::npos);

    const std::vector<std::vector<std::string>> bad{
        {"--bogus"},
        {"--size", "0"},
        {"--size", "17G"},
        {"--size", "x"},
        {"--size", "4K", "--threads", "2"},
        {"--dir", ""},
        {"--threads", "0"},
        {"--threads", "65"},
        {"--threads", "1,"},
        {"--cluster", "3"},
        {"--cluster", "128"},
        {"--cluster", "0"},
        {"--cases", "machvm,disk"},
        {"--cases", ""},
        {"--server-threads", "0"},
        {"--readahead", "65M"},
        {"--runs", "0"},
        {"--timeout", "0"},
        {"--pager", ""},
        {"--json-name", "a/b"},
        {"stray"},
    };
    for (const auto& args : bad) {
        const int rc = bench_file(args, dir, &out);
        CHECK_EQ(rc, kExitUsage);
        if (rc != kExitUsage)
            std::fprintf(stderr, "bench_test: %s: %s\n", args[0].c_str(), out.c_str());
    }
    CHECK_EQ(bench_file({}, "", &out), kExitUsage); // no --dir, no MVM_DISK_DIR
    CHECK(out.find("MVM_DISK_DIR") != std::string::npos);

    const std::string json = std::string(dir) + "/out.json";
    CHECK_EQ(bench_file({"--cases", "mmap", "--no-drop-caches", "--size", "1M", "--threads", "1,2",
                         "--cluster", "16", "-q", "--json", json},
                        dir, &out),
             kExitOk);
    CHECK(out.find("@@JSON file.json\n") != std::string::npos);
    CHECK(out.find("@@END") != std::string::npos);
    std::ifstream f(json);
    std::stringstream doc;
    doc << f.rdbuf();
    CHECK(doc.str().find("\"case\": \"mmap\", \"cluster_pages\": 16, \"threads\": 2") !=
          std::string::npos);
    // Nothing left in DIR but the JSON.
    unsigned entries = 0;
    if (DIR* d = ::opendir(dir)) {
        while (const dirent* e = ::readdir(d))
            entries += e->d_name[0] != '.';
        ::closedir(d);
    }
    CHECK_EQ(entries, 1u);
    ::unlink(json.c_str());
    ::rmdir(dir);
}

} // namespace

int main() {
    test_emit_bench_json();
    test_bench_helpers();
    test_statistics();
    test_numbers();
    test_text();
    test_output_option();
    test_choices();
    test_parse_options();
    test_machine();
    test_cpu_times();
    test_bench_file();
    return unit::finish("bench_test");
}
