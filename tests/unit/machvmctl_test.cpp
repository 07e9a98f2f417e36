// SPDX-License-Identifier: GPL-2.0
// machvmctl's pure logic: the command line, the help texts, exit statuses,
// JSON (escaping, the structs, validity), names and the tables.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <string>
#include <vector>

#include <machvm/admin.hpp>
#include <machvmctl/command.hpp>

#include <nlohmann/json.hpp>

#include "check.hpp"

using namespace machvm;
using namespace std::chrono_literals;

namespace {

// What we print must parse as JSON (RFC 8259, strings valid UTF-8):
// nlohmann-json's parser, which refuses any byte that is not UTF-8.
bool valid_json(std::string_view s) {
    return nlohmann::json::accept(s);
}

nlohmann::json parsed(std::string_view s) {
    return nlohmann::json::parse(s);
}

bool contains(std::string_view hay, std::string_view needle) {
    return hay.find(needle) != std::string_view::npos;
}

std::vector<std::string> lines(const std::string& s) {
    std::vector<std::string> v;
    std::size_t start = 0;
    while (start < s.size()) {
        std::size_t nl = s.find('\n', start);
        if (nl == std::string::npos)
            nl = s.size();
        v.push_back(s.substr(start, nl - start));
        start = nl + 1;
    }
    return v;
}

ctl::Command parse(std::vector<std::string> args) {
    ctl::Command c;
    ctl::parse_command(args, c);
    return c;
}

// The topic parse_command reached before throwing, "" if it did not throw.
std::string failed_topic(std::vector<std::string> args) {
    ctl::Command c;
    try {
        ctl::parse_command(args, c);
    } catch (const UsageError&) {
        return c.topic.empty() ? "(tool)" : c.topic;
    }
    return "";
}

ObjectInfo sample_object() {
    ObjectInfo o;
    o.name = 12;
    o.id = 3;
    o.size = 256 * 1024;
    o.max_prot = 3;
    o.state = MACHVM_OBJ_STATE_READY;
    o.resident = 8;
    o.mappings = 1;
    o.pager_pid = 4242;
    o.pager_state = MACHVM_PAGER_STATE_LIVE;
    o.pending = 2;
    o.may_cache = 1;
    o.copy_strategy = MACHVM_COPY_DELAY;
    o.cluster_pages = 4;
    o.timeout_ms = 5000;
    o.faults = 10;
    o.requests = 9;
    o.supplied = 8;
    o.errors = 1;
    o.timeouts = 0;
    o.kind = MACHVM_OBJ_KIND_PAGER;
    o.dirty = 3;
    o.swapped = 5;
    o.limit = 64;
    o.pageouts = 20;
    o.pageins = 6;
    o.returned = 7;
    o.default_taken = 2;
    o.scans = 40;
    o.ref_hits = 11;
    return o;
}

// ---- the command line ----

void test_parse_subcommands() {
    ctl::Command c = parse({"status"});
    CHECK(c.sub == ctl::Sub::Status);
    CHECK(!c.json && !c.help);
    CHECK(c.topic == "status");

    c = parse({"--json", "status"});
    CHECK(c.sub == ctl::Sub::Status && c.json);
    c = parse({"status", "--json"});
    CHECK(c.sub == ctl::Sub::Status && c.json);

    c = parse({"objects", "--json"});
    CHECK(c.sub == ctl::Sub::Objects && c.json);

    c = parse({"object", "show", "12"});
    CHECK(c.sub == ctl::Sub::ObjectShow);
    CHECK_EQ(c.name, 12u);
    CHECK(c.topic == "object show");
    c = parse({"object", "show", "0x10", "--json"});
    CHECK_EQ(c.name, 16u);
    CHECK(c.json);
    c = parse({"--json", "object", "destroy", "--", "18446744073709551615"});
    CHECK(c.sub == ctl::Sub::ObjectDestroy);
    CHECK_EQ(c.name, ~std::uint64_t{0});
    CHECK(c.json);
    c = parse({"object", "--json", "destroy", "7"});
    CHECK(c.sub == ctl::Sub::ObjectDestroy && c.json);
    CHECK_EQ(c.name, 7u);

    c = parse({"stats"});
    CHECK(c.sub == ctl::Sub::Stats);
    CHECK(!c.watch && !c.count);
    c = parse({"stats", "--watch", "2"});
    CHECK(c.watch && *c.watch == 2000ms);
    CHECK(!c.count);
    c = parse({"stats", "--watch=0.25", "--count", "3"});
    CHECK(c.watch && *c.watch == 250ms);
    CHECK(c.count && *c.count == 3);
    c = parse({"stats", "--count", "5"}); // --count alone samples every second
    CHECK(c.watch && *c.watch == 1000ms);
    CHECK(c.count && *c.count == 5);

    c = parse({"events"});
    CHECK(c.sub == ctl::Sub::Events);
    CHECK(!c.count && !c.timeout);
    c = parse({"events", "--count", "4", "--timeout", "1.5", "--json"});
    CHECK(c.count && *c.count == 4);
    CHECK(c.timeout && *c.timeout == 1500ms);
    CHECK(c.json);
}

void test_parse_help() {
    ctl::Command c = parse({"--help"});
    CHECK(c.help);
    CHECK(c.topic.empty());
    c = parse({"-h"});
    CHECK(c.help && c.topic.empty());
    c = parse({"status", "--help"});
    CHECK(c.help && c.topic == "status");
    c = parse({"object", "--help"});
    CHECK(c.help && c.topic == "object");
    c = parse({"object", "show", "--help"});
    CHECK(c.help && c.topic == "object show");
    // --help wins over what is missing or wrong around it.
    c = parse({"object", "destroy", "abc", "--help"});
    CHECK(c.help && c.topic == "object destroy");
    c = parse({"object", "show", "--help", "abc", "--bogus"});
    CHECK(c.help && c.topic == "object show");
    c = parse({"object", "list", "-h"});
    CHECK(c.help && c.topic == "object");
    c = parse({"frobnicate", "--help"});
    CHECK(c.help && c.topic.empty());
    c = parse({"stats", "--watch", "0", "--help"});
    CHECK(c.help && c.topic == "stats");
    c = parse({"help"});
    CHECK(c.help && c.topic.empty());
    c = parse({"help", "object", "show"});
    CHECK(c.help && c.topic == "object show");
    c = parse({"help", "events"});
    CHECK(c.help && c.topic == "events");
    // After "--" it is an argument.
    CHECK_THROWS(parse({"object", "show", "--", "--help"}), UsageError);
}

void test_parse_errors() {
    CHECK_THROWS(parse({}), UsageError);
    CHECK_THROWS(parse({"frobnicate"}), UsageError);
    CHECK_THROWS(parse({"--bogus", "status"}), UsageError);
    CHECK_THROWS(parse({"status", "extra"}), UsageError);
    CHECK_THROWS(parse({"status", "--watch", "1"}), UsageError);
    CHECK_THROWS(parse({"objects", "-x"}), UsageError);
    CHECK_THROWS(parse({"object"}), UsageError);
    CHECK_THROWS(parse({"object", "list"}), UsageError);
    CHECK_THROWS(parse({"object", "show"}), UsageError);
    CHECK_THROWS(parse({"object", "show", "abc"}), UsageError);
    CHECK_THROWS(parse({"object", "show", "-1"}), UsageError);
    CHECK_THROWS(parse({"object", "show", "12x"}), UsageError);
    CHECK_THROWS(parse({"object", "show", "18446744073709551616"}), UsageError);
    CHECK_THROWS(parse({"object", "show", "1", "2"}), UsageError);
    CHECK_THROWS(parse({"object", "destroy"}), UsageError);
    CHECK_THROWS(parse({"stats", "--watch"}), UsageError);
    CHECK_THROWS(parse({"stats", "--watch", "0"}), UsageError);
    CHECK_THROWS(parse({"stats", "--watch", "0.05"}), UsageError);
    CHECK_THROWS(parse({"stats", "--watch", "x"}), UsageError);
    CHECK_THROWS(parse({"stats", "--count", "0"}), UsageError);
    CHECK_THROWS(parse({"stats", "--json=1"}), UsageError);
    CHECK_THROWS(parse({"events", "--count", "-3"}), UsageError);
    CHECK_THROWS(parse({"events", "--timeout", "0"}), UsageError);
    CHECK_THROWS(parse({"events", "--timeout", "1.2345"}), UsageError);
    CHECK_THROWS(parse({"events", "now"}), UsageError);
    CHECK_THROWS(parse({"help", "bogus"}), UsageError);

    // The hint names the subcommand reached.
    CHECK(failed_topic({"object", "show", "abc"}) == "object show");
    CHECK(failed_topic({"stats", "--watch", "0"}) == "stats");
    CHECK(failed_topic({"events", "--bogus"}) == "events");
    CHECK(failed_topic({"object"}) == "object");
    CHECK(failed_topic({"bogus"}) == "(tool)");
    CHECK(failed_topic({"status"}).empty());

    // The message says what is wrong with what.
    try {
        parse({"object", "show", "abc"});
        CHECK(false);
    } catch (const UsageError& e) {
        CHECK(contains(e.what(), "'abc'"));
        CHECK(contains(e.what(), "not an object name"));
    }
    try {
        parse({"frobnicate"});
        CHECK(false);
    } catch (const UsageError& e) {
        CHECK(contains(e.what(), "unknown subcommand 'frobnicate'"));
    }
}

void test_seconds_arg() {
    CHECK(ctl::seconds_arg("--t", "1", 1ms, 10s) == 1000ms);
    CHECK(ctl::seconds_arg("--t", "0.5", 1ms, 10s) == 500ms);
    CHECK(ctl::seconds_arg("--t", "0.05", 1ms, 10s) == 50ms);
    CHECK(ctl::seconds_arg("--t", "2.125", 1ms, 10s) == 2125ms);
    CHECK(ctl::seconds_arg("--t", "10", 1ms, 10s) == 10000ms);
    CHECK_THROWS(ctl::seconds_arg("--t", "10.001", 1ms, 10s), UsageError);
    CHECK_THROWS(ctl::seconds_arg("--t", "0", 1ms, 10s), UsageError);
    CHECK_THROWS(ctl::seconds_arg("--t", "", 1ms, 10s), UsageError);
    CHECK_THROWS(ctl::seconds_arg("--t", ".5", 1ms, 10s), UsageError);
    CHECK_THROWS(ctl::seconds_arg("--t", "1.", 1ms, 10s), UsageError);
    CHECK_THROWS(ctl::seconds_arg("--t", "1e3", 1ms, 10s), UsageError);
    CHECK_THROWS(ctl::seconds_arg("--t", "-1", 1ms, 10s), UsageError);
    CHECK_THROWS(ctl::seconds_arg("--t", "99999999999999", 1ms, 10s), UsageError);
    try {
        (void)ctl::seconds_arg("--watch", "abc", 100ms, 10s);
        CHECK(false);
    } catch (const UsageError& e) {
        CHECK(contains(e.what(), "--watch"));
        CHECK(contains(e.what(), "'abc'"));
        CHECK(contains(e.what(), "0.1 to 10"));
    }
}

void test_help_texts() {
    const char* tool = ctl::help_text("");
    CHECK(tool != nullptr);
    for (const char* section : {"NAME\n", "SYNOPSIS\n", "DESCRIPTION\n", "SUBCOMMANDS\n",
                                "OPTIONS\n", "EXIT STATUS\n", "EXAMPLES\n"})
        CHECK(contains(tool, section));
    for (const char* sub :
         {"status", "objects", "object show NAME", "object destroy NAME",
          "stats [--watch SECONDS] [--count N]", "events [--count N] [--timeout SECONDS]", "--json",
          "pageout show", "pageout set [--limit PAGES] [--high PCT] [--low PCT]",
          "[--object-limit PAGES] [--batch N] [--interval-ms MS]",
          "pageout set --object NAME --limit PAGES",
          "pageout run [--target PAGES] [--object NAME] [--force]",
          "swap add PATH [--size SIZE] [--prio N]", "swap remove ID", "swap list", "swap stores"})
        CHECK(contains(tool, sub));
    // Every documented exit status.
    for (const char* code :
         {"\n       0 ", "\n       1 ", "\n       2 ", "\n       3 ", "\n       4 ", "\n       5 "})
        CHECK(contains(tool, code));

    for (const char* topic :
         {"status", "objects", "object", "object show", "object destroy", "stats", "events",
          "pageout", "pageout show", "pageout set", "pageout run", "swap", "swap add",
          "swap remove", "swap list", "swap show"}) {
        const char* h = ctl::help_text(topic);
        CHECK(h != nullptr);
        if (!h)
            continue;
        CHECK(contains(h, "NAME\n"));
        CHECK(contains(h, "SYNOPSIS\n"));
        CHECK(contains(h, "DESCRIPTION\n"));
        CHECK(contains(h, "EXIT STATUS\n"));
        CHECK(contains(h, "EXAMPLES\n"));
        CHECK(contains(h, std::string("machvmctl ") + topic));
        CHECK(h != tool);
    }
    CHECK(ctl::help_text("bogus") == nullptr);
    CHECK(ctl::help_text("object list") == nullptr);
    // Lines fit a terminal.
    for (const char* topic :
         {"", "status", "objects", "object", "stats", "events", "pageout", "swap"})
        for (const auto& l : lines(ctl::help_text(topic)))
            CHECK(l.size() <= 80);
    CHECK(ctl::help_text("pageout list") == nullptr);
    CHECK(ctl::help_text("swap show") != nullptr);
    CHECK(ctl::help_text("swap get") == nullptr);
    // The new subcommands' manuals document their options, JSON and errors.
    const std::string po = ctl::help_text("pageout");
    for (const char* w : {"--limit PAGES", "--high PCT", "--low PCT", "--object-limit PAGES",
                          "--batch N", "--interval-ms MS", "--object NAME", "--target PAGES",
                          "--force", "\"scanned\"", "obj_limit", "CAP_SYS_ADMIN", "EINVAL"})
        CHECK(contains(po, w));
    const std::string sw = ctl::help_text("swap");
    for (const char* w : {"--size SIZE", "--prio N", "\"removed\":true", "EBUSY", "ENOSPC",
                          "ENOMEM", "CAP_SYS_ADMIN", "slots", "direct"})
        CHECK(contains(sw, w));
    for (const char* w : {"SWAP_ADDED", "SWAP_REMOVED", "SWAP_FULL", "swap_path"})
        CHECK(contains(ctl::help_text("events"), w));
    for (const char* w : {"pageouts", "swap_writes", "lock_requests", "gauge"})
        CHECK(contains(ctl::help_text("stats"), w));
    for (const char* w : {"DIRTY", "SWAPPED", "LIMIT", "KIND", "default_taken", "ref_hits"})
        CHECK(contains(ctl::help_text("objects"), w));
}

void test_exit_status() {
    CHECK_EQ(ctl::exit_status({}), 0);
    CHECK_EQ(ctl::exit_status(make_error_code(AdminErrc::family_not_found)), ctl::kExitNoModule);
    CHECK_EQ(ctl::exit_status(make_error_code(AdminErrc::group_not_found)), kExitFailure);
    CHECK_EQ(ctl::exit_status(errno_code(EPERM)), ctl::kExitPermission);
    CHECK_EQ(ctl::exit_status(errno_code(EACCES)), ctl::kExitPermission);
    CHECK_EQ(ctl::exit_status(errno_code(ENOENT)), ctl::kExitNotFound);
    CHECK_EQ(ctl::exit_status(errno_code(EINVAL)), kExitFailure);
    CHECK_EQ(ctl::exit_status(errno_code(EBADMSG)), kExitFailure);
    CHECK_EQ(ctl::exit_status(std::make_error_code(std::errc::not_enough_memory)), kExitFailure);
    CHECK_EQ(ctl::kExitNoModule, 3);
    CHECK_EQ(ctl::kExitPermission, 4);
    CHECK_EQ(ctl::kExitNotFound, 5);
    // swap add: ENOENT is the path's directory, not an object.
    CHECK_EQ(ctl::exit_status(errno_code(ENOENT), ctl::Sub::SwapAdd), kExitFailure);
    CHECK_EQ(ctl::exit_status(errno_code(ENOENT), ctl::Sub::SwapRemove), ctl::kExitNotFound);
    CHECK_EQ(ctl::exit_status(errno_code(EPERM), ctl::Sub::SwapAdd), ctl::kExitPermission);
    CHECK_EQ(ctl::exit_status(errno_code(EBUSY), ctl::Sub::SwapAdd), kExitFailure);
    CHECK_EQ(ctl::exit_status(errno_code(EINVAL), ctl::Sub::PageoutSet), kExitFailure);
    CHECK_EQ(ctl::exit_status(make_error_code(AdminErrc::family_not_found), ctl::Sub::SwapAdd),
             ctl::kExitNoModule);

    // The admin errors read as ENOENT to generic code, with their own text.
    const std::error_code fam = make_error_code(AdminErrc::family_not_found);
    CHECK(fam == std::errc::no_such_file_or_directory);
    CHECK(fam != errno_code(ENOENT)); // but are not the errno itself
    CHECK(contains(fam.message(), "\"machvm\""));
    CHECK(contains(fam.message(), "module"));
    const std::error_code grp = AdminErrc::group_not_found; // implicit: is_error_code_enum
    CHECK(contains(grp.message(), "\"events\""));
}

// ---- JSON ----

void test_json_string() {
    CHECK(json_string("") == "\"\"");
    CHECK(json_string("plain") == "\"plain\"");
    CHECK(json_string("a\"b") == "\"a\\\"b\"");
    CHECK(json_string("back\\slash") == "\"back\\\\slash\"");
    CHECK(json_string("l1\nl2\tx\r") == "\"l1\\nl2\\tx\\r\"");
    CHECK(json_string("\b\f") == "\"\\b\\f\"");
    CHECK(json_string(std::string_view("\0\x01\x1f", 3)) == "\"\\u0000\\u0001\\u001f\"");
    CHECK(json_string("/") == "\"/\"");
    CHECK(json_string("h\xc3\xa9") == "\"h\xc3\xa9\""); // UTF-8 passes through
    // A byte that is not UTF-8 is U+FFFD, never itself (issue 12.6).
    CHECK(json_string("/tmp/a\xff.swap") == "\"/tmp/a\xef\xbf\xbd.swap\"");
    CHECK(json_string("\xc3") == "\"\xef\xbf\xbd\""); // a truncated sequence
    // Every byte escapes to something a strict parser takes, and what is
    // UTF-8 reads back as itself.
    std::string all;
    for (int c = 0; c < 256; ++c)
        all += static_cast<char>(c);
    const std::string j = json_string(all);
    CHECK(valid_json(j));
    for (char ch : j)
        CHECK(static_cast<unsigned char>(ch) >= 0x20);
    const std::string ascii = all.substr(0, 128);
    CHECK(parsed(json_string(ascii)) == ascii);
    CHECK(parsed(json_string("h\xc3\xa9 \xe2\x82\xac")) == "h\xc3\xa9 \xe2\x82\xac");
}

void test_json_values() {
    CHECK(to_json(Json::object()) == "{}");
    CHECK(to_json(Json{{"a", 1}}) == "{\"a\":1}");
    const std::string s = to_json(Json{{"n", ~std::uint64_t{0}},
                                       {"s", "x\"y"},
                                       {"t", true},
                                       {"f", false},
                                       {"i", -1},
                                       {"v", std::vector<std::string>{"a", "b\n"}},
                                       {"e", Json::array()}});
    CHECK(s == "{\"n\":18446744073709551615,\"s\":\"x\\\"y\",\"t\":true,\"f\":false,"
               "\"i\":-1,\"v\":[\"a\",\"b\\n\"],\"e\":[]}");
    CHECK(valid_json(s));
    CHECK(!valid_json("{\"a\":1,}")); // the parser is strict
    CHECK(!valid_json("{\"a\":01}"));
    CHECK(!valid_json("[1 2]"));
    CHECK(!valid_json("\"\xff\"")); // and takes only UTF-8
}

void test_json_structs() {
    Status st;
    st.abi_version = 1;
    st.page_size = 4096;
    st.features = MACHVM_F_OBJECTS | MACHVM_F_URING_CMD | MACHVM_F_REGION | (1ull << 12);
    st.nr_objects = 3;
    st.nr_pagers = 2;
    st.module_version = "0.1.0";
    st.tools_version = "0.2.0";
    const std::string sj = to_json(st);
    CHECK(sj == "{\"module_version\":\"0.1.0\",\"tools_version\":\"0.2.0\","
                "\"abi_version\":1,\"page_size\":4096,\"features\":4103,"
                "\"feature_names\":[\"objects\",\"uring_cmd\",\"region\",\"bit12\"],"
                "\"nr_objects\":3,\"nr_pagers\":2}");
    CHECK(valid_json(sj));

    const ObjectInfo o = sample_object();
    const std::string oj = to_json(o);
    CHECK(oj == "{\"name\":12,\"id\":3,\"size\":262144,\"max_prot\":\"rw-\",\"state\":\"ready\","
                "\"resident\":8,\"mappings\":1,\"pager_pid\":4242,\"pager_state\":\"live\","
                "\"pending\":2,\"may_cache\":true,\"copy\":\"delay\",\"cluster\":4,"
                "\"timeout_ms\":5000,\"faults\":10,\"requests\":9,\"supplied\":8,"
                "\"errors\":1,\"timeouts\":0,\"kind\":\"pager\",\"dirty\":3,\"swapped\":5,"
                "\"limit\":64,\"pageouts\":20,\"pageins\":6,\"returned\":7,"
                "\"default_taken\":2,\"scans\":40,\"ref_hits\":11}");
    CHECK(valid_json(oj));
    ObjectInfo odd = o;
    odd.state = 77;
    odd.pager_state = MACHVM_PAGER_STATE_DEAD;
    odd.copy_strategy = 9;
    odd.may_cache = 0;
    const std::string odj = to_json(odd);
    CHECK(contains(odj, "\"state\":\"unknown(77)\""));
    CHECK(contains(odj, "\"pager_state\":\"dead\""));
    CHECK(contains(odj, "\"copy\":\"unknown(9)\""));
    CHECK(contains(odj, "\"may_cache\":false"));
    CHECK(valid_json(odj));

    Stats s;
    s.faults = 100;
    s.requests = 90;
    s.supplied = 80;
    s.not_taken = 7;
    s.errors = 6;
    s.timeouts = 5;
    s.sigbus = 4;
    s.objects_created = 3;
    s.objects_terminated = 2;
    s.pagers_died = 1;
    s.pageouts = 11;
    s.pageins = 12;
    s.returned = 13;
    s.default_taken = 14;
    s.scans = 15;
    s.ref_hits = 16;
    s.swap_writes = 17;
    s.swap_full = 18;
    s.resident = 19;
    s.swapped = 20;
    s.limit_waits = 21;
    s.lock_requests = 22;
    const std::string stj = to_json(s);
    CHECK(stj == "{\"faults\":100,\"requests\":90,\"supplied\":80,\"not_taken\":7,\"errors\":6,"
                 "\"timeouts\":5,\"sigbus\":4,\"objects_created\":3,\"objects_terminated\":2,"
                 "\"pagers_died\":1,\"pageouts\":11,\"pageins\":12,\"returned\":13,"
                 "\"default_taken\":14,\"scans\":15,\"ref_hits\":16,\"swap_writes\":17,"
                 "\"swap_full\":18,\"resident\":19,\"swapped\":20,\"limit_waits\":21,"
                 "\"lock_requests\":22}");
    CHECK(valid_json(stj));
    const std::string stt = to_json(s, 10.5);
    CHECK(stt.rfind("{\"time\":10.5,\"faults\":100,", 0) == 0);
    CHECK(valid_json(stt));
    // The time to the millisecond.
    CHECK(parsed(to_json(s, 1712345678.1234))["time"] == 1712345678.123);

    Event e;
    e.type = MACHVM_EVENT_OBJECT_CREATED;
    e.name = 12;
    CHECK(to_json(e) == "{\"event\":\"OBJECT_CREATED\",\"type\":1,\"name\":12}");
    CHECK(to_json(e, 1.0) == "{\"time\":1.0,\"event\":\"OBJECT_CREATED\",\"type\":1,\"name\":12}");
    Event t;
    t.type = MACHVM_EVENT_PAGER_TIMEOUT;
    t.name = 5;
    t.pager_pid = 77;
    t.offset = 8192;
    const std::string tj = to_json(t, 2.25);
    CHECK(tj == "{\"time\":2.25,\"event\":\"PAGER_TIMEOUT\",\"type\":6,\"name\":5,"
                "\"pager_pid\":77,\"offset\":8192}");
    CHECK(valid_json(tj));
    Event u;
    u.type = 99;
    CHECK(to_json(u) == "{\"event\":\"UNKNOWN(99)\",\"type\":99}");
}

void test_json_object_list() {
    CHECK(to_json(std::vector<ObjectInfo>{}) == "[]\n");
    CHECK(valid_json(to_json(std::vector<ObjectInfo>{})));
    std::vector<ObjectInfo> v(3, sample_object());
    v[1].name = 13;
    v[2].name = 14;
    const std::string j = to_json(v);
    CHECK(valid_json(j));
    const auto ls = lines(j);
    CHECK_EQ(ls.size(), 5u); // "[", three objects, "]"
    CHECK(ls.front() == "[");
    CHECK(ls.back() == "]");
    CHECK(ls[1] == to_json(v[0]) + ",");
    CHECK(ls[2] == to_json(v[1]) + ",");
    CHECK(ls[3] == to_json(v[2])); // no trailing comma
    // Thousands stay one per line and valid.
    std::vector<ObjectInfo> many(3000, sample_object());
    for (std::size_t i = 0; i < many.size(); ++i)
        many[i].name = i + 1;
    const std::string mj = to_json(many);
    CHECK(valid_json(mj));
    CHECK_EQ(lines(mj).size(), 3002u);
}

// ---- names ----

void test_names() {
    CHECK(object_state_string(MACHVM_OBJ_STATE_NEW) == "new");
    CHECK(object_state_string(MACHVM_OBJ_STATE_INIT) == "init");
    CHECK(object_state_string(MACHVM_OBJ_STATE_READY) == "ready");
    CHECK(object_state_string(MACHVM_OBJ_STATE_DESTROYED) == "destroyed");
    CHECK(object_state_string(4) == "unknown(4)");
    CHECK(pager_state_string(MACHVM_PAGER_STATE_LIVE) == "live");
    CHECK(pager_state_string(MACHVM_PAGER_STATE_DEAD) == "dead");
    CHECK(copy_strategy_string(MACHVM_COPY_NONE) == "none");
    CHECK(copy_strategy_string(MACHVM_COPY_CALL) == "call");
    CHECK(copy_strategy_string(MACHVM_COPY_DELAY) == "delay");
    CHECK(event_type_string(MACHVM_EVENT_OBJECT_CREATED) == "OBJECT_CREATED");
    CHECK(event_type_string(MACHVM_EVENT_OBJECT_TERMINATED) == "OBJECT_TERMINATED");
    CHECK(event_type_string(MACHVM_EVENT_OBJECT_DESTROYED) == "OBJECT_DESTROYED");
    CHECK(event_type_string(MACHVM_EVENT_PAGER_ATTACHED) == "PAGER_ATTACHED");
    CHECK(event_type_string(MACHVM_EVENT_PAGER_DIED) == "PAGER_DIED");
    CHECK(event_type_string(MACHVM_EVENT_PAGER_TIMEOUT) == "PAGER_TIMEOUT");
    CHECK(event_type_string(MACHVM_EVENT_SWAP_ADDED) == "SWAP_ADDED");
    CHECK(event_type_string(MACHVM_EVENT_SWAP_REMOVED) == "SWAP_REMOVED");
    CHECK(event_type_string(MACHVM_EVENT_SWAP_FULL) == "SWAP_FULL");
    CHECK(event_type_string(10) == "UNKNOWN(10)");
    CHECK(pager_state_string(MACHVM_PAGER_STATE_NONE) == "none");
    CHECK(pager_state_string(3) == "unknown(3)");
    CHECK(object_kind_string(MACHVM_OBJ_KIND_PAGER) == "pager");
    CHECK(object_kind_string(MACHVM_OBJ_KIND_ANON) == "anon");
    CHECK(object_kind_string(2) == "unknown(2)");
    CHECK(swap_kind_string(MACHVM_SWAP_KIND_FILE) == "file");
    CHECK(swap_kind_string(MACHVM_SWAP_KIND_BDEV) == "bdev");
    CHECK(swap_kind_string(5) == "unknown(5)");
    CHECK(event_type_string(0) == "UNKNOWN(0)");
    CHECK(prot_string(0) == "---");
    CHECK(prot_string(1) == "r--");
    CHECK(prot_string(3) == "rw-");
    CHECK(prot_string(5) == "r-x");
    CHECK(prot_string(7) == "rwx");
    CHECK(feature_names(0).empty());
    const auto f = feature_names(MACHVM_F_REGION | MACHVM_F_OBJECTS | (1ull << 63));
    CHECK(f.size() == 3 && f[0] == "objects" && f[1] == "region" && f[2] == "bit63");
    // Every feature bit of the header has its name (issue 12.4).
    const std::vector<std::string> all = {
        "objects", "uring_cmd",      "region",        "pageout",   "anon",
        "locks",   "cluster_return", "fetch_release", "existence", "temporary"};
    CHECK(feature_names(MACHVM_F_OBJECTS | MACHVM_F_URING_CMD | MACHVM_F_REGION | MACHVM_F_PAGEOUT |
                        MACHVM_F_ANON | MACHVM_F_LOCKS | MACHVM_F_CLUSTER_RETURN |
                        MACHVM_F_FETCH_RELEASE | MACHVM_F_EXISTENCE | MACHVM_F_TEMPORARY) == all);
    CHECK(feature_names(0x7ff).back() == "bit10");
    CHECK(format_size(0) == "0");
    CHECK(format_size(1) == "1");
    CHECK(format_size(4096) == "4K");
    CHECK(format_size(12288) == "12K");
    CHECK(format_size(5000) == "5000");
    CHECK(format_size(64ull << 20) == "64M");
    CHECK(format_size(1ull << 40) == "1T");
    CHECK(format_size((1ull << 20) + 4096) == "1028K");
    CHECK(format_size(1ull << 63) == "8E");
}

// ---- tables ----

void test_format_table() {
    const std::vector<Column> cols = {{"NAME", true}, {"STATE", false}, {"PAGER", false}};
    const std::string t = format_table(cols, {{"1", "ready", "42"}, {"1000", "destroyed", "7"}});
    CHECK(t == "NAME  STATE      PAGER\n"
               "   1  ready      42\n"
               "1000  destroyed  7\n");
    // Only the header when empty; short rows get empty cells; no trailing
    // blanks.
    CHECK(format_table(cols, {}) == "NAME  STATE  PAGER\n");
    CHECK(format_table(cols, {{"5"}}) == "NAME  STATE  PAGER\n   5\n");
    const std::string r = format_table({{"A", false}, {"B", true}}, {{"xx", "1"}, {"y", "100"}});
    CHECK(r == "A     B\nxx    1\ny   100\n");
}

void test_format_objects_and_object() {
    std::vector<ObjectInfo> v(2, sample_object());
    v[1].name = 1234567;
    v[1].state = MACHVM_OBJ_STATE_NEW;
    v[1].size = 5000;
    v[1].pager_state = MACHVM_PAGER_STATE_DEAD;
    const std::string t = format_objects(v);
    const auto ls = lines(t);
    CHECK_EQ(ls.size(), 3u);
    CHECK(ls[0].rfind("   NAME  ID", 0) == 0); // right-aligned under the widest name
    CHECK(contains(ls[0], "RESIDENT"));
    CHECK(contains(ls[0], "PAGER"));
    CHECK(ls[1].rfind("     12   3  256K  rw-   ready", 0) == 0);
    CHECK(contains(ls[2], "5000"));
    CHECK(contains(ls[2], " new "));
    CHECK(contains(ls[2], "4242 (dead)"));
    // Columns line up: every row is as long as the header up to PAGER.
    const std::size_t pager_col = ls[0].find("PAGER");
    CHECK(ls[1].substr(pager_col, 4) == "4242");
    CHECK(ls[2].substr(pager_col, 4) == "4242");
    CHECK(lines(format_objects({})).size() == 1);

    const std::string d = format_object(sample_object());
    CHECK(contains(d, "name           12\n"));
    CHECK(contains(d, "size           262144 (256K)\n"));
    CHECK(contains(d, "state          ready\n"));
    CHECK(contains(d, "resident       8 pages\n"));
    CHECK(contains(d, "kind           pager\n"));
    CHECK(contains(d, "pager          pid 4242, live\n"));
    CHECK(contains(d, "may cache      yes\n"));
    CHECK(contains(d, "timeout        5000 ms\n"));
    CHECK(contains(d, "dirty          3 pages\n"));
    CHECK(contains(d, "swapped        5 pages\n"));
    CHECK(contains(d, "limit          64 pages\n"));
    CHECK(contains(d, "pageouts       20\n"));
    CHECK(contains(d, "pageins        6\n"));
    CHECK(contains(d, "returned       7\n"));
    CHECK(contains(d, "default taken  2\n"));
    CHECK(contains(d, "scans          40\n"));
    CHECK(contains(d, "ref hits       11\n"));
    CHECK_EQ(lines(d).size(), 28u);

    // An anonymous object: no pager, no limit.
    ObjectInfo anon = sample_object();
    anon.kind = MACHVM_OBJ_KIND_ANON;
    anon.pager_pid = 0;
    anon.pager_state = MACHVM_PAGER_STATE_NONE;
    anon.limit = 0;
    const std::string ad = format_object(anon);
    CHECK(contains(ad, "kind           anon\n"));
    CHECK(contains(ad, "pager          none (default pager only)\n"));
    CHECK(contains(ad, "limit          none\n"));
    const auto at = lines(format_objects({anon, sample_object()}));
    CHECK_EQ(at.size(), 3u);
    const std::size_t kind_col = at[0].find("KIND");
    const std::size_t limit_end = at[0].find("LIMIT") + 5;
    CHECK(at[1].substr(kind_col) == "anon   none");
    CHECK(at[2].substr(kind_col) == "pager  4242");
    CHECK(at[1].substr(limit_end - 1, 1) == "-");
    CHECK(at[2].substr(limit_end - 2, 2) == "64");
    const std::string aj = to_json(anon);
    CHECK(contains(aj, "\"pager_pid\":0,\"pager_state\":\"none\""));
    CHECK(contains(aj, "\"kind\":\"anon\""));
    CHECK(contains(aj, "\"limit\":0,"));
    CHECK(valid_json(aj));
}

void test_format_status_stats_events() {
    Status st;
    st.abi_version = 1;
    st.page_size = 4096;
    st.features = 7;
    st.nr_objects = 3;
    st.nr_pagers = 1;
    st.tools_version = "0.2.0";
    const std::string s = format_status(st);
    CHECK(s == "module version  unknown\n"
               "tools version   0.2.0\n"
               "abi version     1\n"
               "page size       4096\n"
               "features        objects uring_cmd region (0x7)\n"
               "objects         3\n"
               "pagers          1\n");
    st.features = 0x3f;
    CHECK(contains(format_status(st),
                   "features        objects uring_cmd region pageout anon locks (0x3f)\n"));
    CHECK(parsed(to_json(st))["feature_names"] ==
          nlohmann::json({"objects", "uring_cmd", "region", "pageout", "anon", "locks"}));
    st.features = 0;
    st.module_version = "0.1.0";
    CHECK(contains(format_status(st), "features        none (0x0)\n"));
    CHECK(contains(format_status(st), "module version  0.1.0\n"));

    Stats a;
    a.faults = 10;
    a.supplied = 4;
    a.pagers_died = 2;
    const std::string f = format_stats(a);
    CHECK(contains(f, "faults              10\n"));
    CHECK(contains(f, "pagers_died         2\n"));
    CHECK(contains(f, "pageouts            0\n"));
    CHECK(contains(f, "swap_writes         0\n"));
    CHECK(contains(f, "lock_requests       0\n"));
    CHECK_EQ(lines(f).size(), 22u);

    ::setenv("TZ", "UTC", 1);
    ::tzset();
    const std::string hdr = format_stats_header();
    Stats b = a;
    b.faults = 25;
    b.supplied = 4;
    const std::string first = format_stats_row(a, nullptr, 3600.5);
    const std::string delta = format_stats_row(b, &a, 3601.5);
    CHECK(first.rfind("01:00:00.500 ", 0) == 0);
    CHECK(delta.rfind("01:00:01.500 ", 0) == 0);
    CHECK_EQ(first.size(), hdr.size()); // rows line up with the header
    CHECK_EQ(delta.size(), hdr.size());
    // FAULTS column: totals first, then the change.
    const std::size_t end = hdr.find("FAULTS") + 6;
    CHECK(first.substr(end - 2, 2) == "10");
    CHECK(delta.substr(end - 2, 2) == "15");
    CHECK(delta.substr(hdr.find("PAGERS_DIED") + 10, 1) == "0");
    // The gauges show their value, the counters the change.
    Stats g1 = a, g2 = a;
    g1.resident = 500;
    g2.resident = 400;
    g1.pageouts = 7;
    g2.pageouts = 10;
    const std::string grow = format_stats_row(g2, &g1, 0.0);
    CHECK_EQ(grow.size(), hdr.size());
    const std::size_t res_end = hdr.find("RESIDENT") + 8;
    CHECK(grow.substr(res_end - 4, 4) == " 400");
    const std::size_t po_end = hdr.find("PAGEOUTS") + 8;
    CHECK(grow.substr(po_end - 2, 2) == " 3");
    for (const char* col : {"PAGEOUTS", "PAGEINS", "RETURNED", "SWAP_WRITES", "SWAPPED"})
        CHECK(contains(hdr, col));

    Event e;
    e.type = MACHVM_EVENT_PAGER_DIED;
    e.pager_pid = 99;
    CHECK(format_event(e, 0.25) == "00:00:00.250 PAGER_DIED pager_pid=99");
    Event t;
    t.type = MACHVM_EVENT_PAGER_TIMEOUT;
    t.name = 3;
    t.pager_pid = 4;
    t.offset = 4096;
    CHECK(format_event(t, 59.999) == "00:00:59.999 PAGER_TIMEOUT name=3 pager_pid=4 offset=4096");
}

void test_parse_pageout() {
    ctl::Command c = parse({"pageout", "show"});
    CHECK(c.sub == ctl::Sub::PageoutShow);
    CHECK(c.topic == "pageout show");
    c = parse({"--json", "pageout", "show"});
    CHECK(c.sub == ctl::Sub::PageoutShow && c.json);
    c = parse({"pageout", "--json", "show"});
    CHECK(c.sub == ctl::Sub::PageoutShow && c.json);

    c = parse({"pageout", "set", "--limit", "65536", "--high", "90", "--low=80", "--object-limit",
               "1024", "--batch", "64", "--interval-ms", "250", "--json"});
    CHECK(c.sub == ctl::Sub::PageoutSet && c.json);
    CHECK(!c.object);
    CHECK(c.pageout.limit && *c.pageout.limit == 65536);
    CHECK(c.pageout.high && *c.pageout.high == 90);
    CHECK(c.pageout.low && *c.pageout.low == 80);
    CHECK(c.pageout.obj_limit && *c.pageout.obj_limit == 1024);
    CHECK(c.pageout.batch && *c.pageout.batch == 64);
    CHECK(c.pageout.interval_ms && *c.pageout.interval_ms == 250);
    c = parse({"pageout", "set", "--low", "5"}); // the module checks it against high
    CHECK(c.pageout.low && *c.pageout.low == 5);
    CHECK(!c.pageout.high && !c.pageout.limit && !c.pageout.batch);
    c = parse({"pageout", "set", "--object-limit", "none"});
    CHECK(c.pageout.obj_limit && *c.pageout.obj_limit == 0);
    c = parse({"pageout", "set", "--limit", "16", "--batch", "65536", "--interval-ms", "60000"});
    CHECK(*c.pageout.limit == 16 && *c.pageout.batch == 65536 && *c.pageout.interval_ms == 60000);
    c = parse(
        {"pageout", "set", "--high", "100", "--low", "1", "--batch", "1", "--interval-ms", "10"});
    CHECK(*c.pageout.high == 100 && *c.pageout.low == 1);
    CHECK(*c.pageout.batch == 1 && *c.pageout.interval_ms == 10);

    c = parse({"pageout", "set", "--object", "0x10", "--limit", "32"});
    CHECK(c.sub == ctl::Sub::PageoutSet);
    CHECK(c.object && *c.object == 16);
    CHECK_EQ(c.object_limit, 32u);
    CHECK(c.pageout.empty());
    c = parse({"pageout", "set", "--limit", "none", "--object", "7"});
    CHECK(c.object && *c.object == 7);
    CHECK_EQ(c.object_limit, 0u);
    c = parse({"pageout", "set", "--object", "7", "--limit", "3"}); // the module decides
    CHECK_EQ(c.object_limit, 3u);

    c = parse({"pageout", "run"});
    CHECK(c.sub == ctl::Sub::PageoutRun);
    CHECK(!c.run.target && !c.run.object && !c.run.force);
    c = parse({"pageout", "run", "--target", "100", "--object", "12", "--force", "--json"});
    CHECK(c.run.target && *c.run.target == 100);
    CHECK(c.run.object && *c.run.object == 12);
    CHECK(c.run.force && c.json);

    c = parse({"pageout", "set", "--help"});
    CHECK(c.help && c.topic == "pageout set");
    c = parse({"pageout", "--help"});
    CHECK(c.help && c.topic == "pageout");
    c = parse({"pageout", "set", "--high", "500", "--help"});
    CHECK(c.help && c.topic == "pageout set");
    c = parse({"help", "pageout", "run"});
    CHECK(c.help && c.topic == "pageout run");
}

void test_parse_pageout_errors() {
    CHECK_THROWS(parse({"pageout"}), UsageError);
    CHECK_THROWS(parse({"pageout", "list"}), UsageError);
    CHECK_THROWS(parse({"pageout", "show", "--limit", "20"}), UsageError);
    CHECK_THROWS(parse({"pageout", "show", "extra"}), UsageError);
    CHECK_THROWS(parse({"pageout", "set"}), UsageError);
    CHECK_THROWS(parse({"pageout", "set", "--json"}), UsageError);
    CHECK_THROWS(parse({"pageout", "set", "--limit", "15"}), UsageError);
    CHECK_THROWS(parse({"pageout", "set", "--limit", "0"}), UsageError);
    CHECK_THROWS(parse({"pageout", "set", "--limit", "none"}), UsageError);
    CHECK_THROWS(parse({"pageout", "set", "--limit", "-5"}), UsageError);
    CHECK_THROWS(parse({"pageout", "set", "--limit", "1G"}), UsageError);
    CHECK_THROWS(parse({"pageout", "set", "--limit"}), UsageError);
    CHECK_THROWS(parse({"pageout", "set", "--high", "101"}), UsageError);
    CHECK_THROWS(parse({"pageout", "set", "--high", "1"}), UsageError);
    CHECK_THROWS(parse({"pageout", "set", "--low", "0"}), UsageError);
    CHECK_THROWS(parse({"pageout", "set", "--low", "100"}), UsageError);
    CHECK_THROWS(parse({"pageout", "set", "--high", "50", "--low", "50"}), UsageError);
    CHECK_THROWS(parse({"pageout", "set", "--high", "50", "--low", "60"}), UsageError);
    CHECK_THROWS(parse({"pageout", "set", "--high", "9x"}), UsageError);
    CHECK_THROWS(parse({"pageout", "set", "--batch", "0"}), UsageError);
    CHECK_THROWS(parse({"pageout", "set", "--batch", "65537"}), UsageError);
    CHECK_THROWS(parse({"pageout", "set", "--interval-ms", "9"}), UsageError);
    CHECK_THROWS(parse({"pageout", "set", "--interval-ms", "60001"}), UsageError);
    CHECK_THROWS(parse({"pageout", "set", "--object-limit", "x"}), UsageError);
    CHECK_THROWS(parse({"pageout", "set", "--object", "7"}), UsageError); // no --limit
    CHECK_THROWS(parse({"pageout", "set", "--object", "abc", "--limit", "20"}), UsageError);
    CHECK_THROWS(parse({"pageout", "set", "--object", "7", "--limit", "20", "--batch", "4"}),
                 UsageError);
    CHECK_THROWS(parse({"pageout", "set", "--force"}), UsageError);
    CHECK_THROWS(parse({"pageout", "run", "--target", "0"}), UsageError);
    CHECK_THROWS(parse({"pageout", "run", "--target", "x"}), UsageError);
    CHECK_THROWS(parse({"pageout", "run", "--object", "-1"}), UsageError);
    CHECK_THROWS(parse({"pageout", "run", "--force=1"}), UsageError);
    CHECK_THROWS(parse({"pageout", "run", "--limit", "20"}), UsageError);
    CHECK_THROWS(parse({"pageout", "run", "12"}), UsageError);

    CHECK(failed_topic({"pageout"}) == "pageout");
    CHECK(failed_topic({"pageout", "set", "--batch", "0"}) == "pageout set");
    CHECK(failed_topic({"pageout", "run", "--bogus"}) == "pageout run");
    try {
        parse({"pageout", "set", "--high", "50", "--low", "60"});
        CHECK(false);
    } catch (const UsageError& e) {
        CHECK(contains(e.what(), "--low 60 must be below --high 50"));
    }
    try {
        parse({"pageout", "set", "--batch", "0"});
        CHECK(false);
    } catch (const UsageError& e) {
        CHECK(contains(e.what(), "--batch: '0' is not a number from 1 to 65536"));
    }
    try {
        parse({"pageout", "set"});
        CHECK(false);
    } catch (const UsageError& e) {
        CHECK(contains(e.what(), "nothing to set"));
    }
    try {
        parse({"pageout", "set", "--limit", "8"});
        CHECK(false);
    } catch (const UsageError& e) {
        CHECK(contains(e.what(), "below 16 pages"));
    }
}

void test_parse_swap() {
    ctl::Command c = parse({"swap", "list"});
    CHECK(c.sub == ctl::Sub::SwapList);
    CHECK(c.topic == "swap list");
    c = parse({"swap", "list", "--json"});
    CHECK(c.sub == ctl::Sub::SwapList && c.json);

    c = parse({"swap", "add", "/tmp/swap0"});
    CHECK(c.sub == ctl::Sub::SwapAdd);
    CHECK(c.path == "/tmp/swap0");
    CHECK_EQ(c.size, 0u);
    CHECK_EQ(c.prio, 0);
    c = parse({"swap", "add", "--size", "64M", "/tmp/swap0", "--prio", "-5", "--json"});
    CHECK(c.path == "/tmp/swap0");
    CHECK_EQ(c.size, 64u << 20);
    CHECK_EQ(c.prio, -5);
    CHECK(c.json);
    c = parse({"swap", "add", "/dev/vdb", "--size=1g", "--prio=32767"});
    CHECK_EQ(c.size, 1ull << 30);
    CHECK_EQ(c.prio, 32767);
    c = parse({"swap", "add", "/s", "--size", "65536"});
    CHECK_EQ(c.size, 65536u);
    c = parse({"swap", "add", "/s", "--size", "0"});
    CHECK_EQ(c.size, 0u);
    c = parse({"swap", "add", "/s", "--prio", "-2147483648"});
    CHECK_EQ(c.prio, INT32_MIN);
    c = parse({"swap", "add", "--", "/-odd"});
    CHECK(c.path == "/-odd");
    // A relative path is made absolute against the current directory.
    c = parse({"swap", "add", "rel.swap"});
    CHECK(c.path.size() > 1 && c.path.front() == '/');
    CHECK(c.path.size() >= 9 && c.path.substr(c.path.size() - 9) == "/rel.swap");

    c = parse({"swap", "remove", "3"});
    CHECK(c.sub == ctl::Sub::SwapRemove);
    CHECK_EQ(c.swap_id, 3u);
    c = parse({"--json", "swap", "remove", "0x10"});
    CHECK_EQ(c.swap_id, 16u);
    CHECK(c.json);
    c = parse({"swap", "remove", "4294967295"});
    CHECK_EQ(c.swap_id, 4294967295u);
    c = parse({"swap", "show", "2", "--json"});
    CHECK(c.sub == ctl::Sub::SwapShow && c.json);
    CHECK_EQ(c.swap_id, 2u);
    CHECK(c.topic == "swap show");

    c = parse({"swap", "--help"});
    CHECK(c.help && c.topic == "swap");
    c = parse({"swap", "add", "--help"});
    CHECK(c.help && c.topic == "swap add");
    c = parse({"swap", "add", "--size", "1", "--help"});
    CHECK(c.help && c.topic == "swap add");
    c = parse({"help", "swap", "remove"});
    CHECK(c.help && c.topic == "swap remove");
}

void test_parse_swap_errors() {
    CHECK_THROWS(parse({"swap"}), UsageError);
    CHECK_THROWS(parse({"swap", "show"}), UsageError);
    CHECK_THROWS(parse({"swap", "add"}), UsageError);
    CHECK_THROWS(parse({"swap", "add", ""}), UsageError);
    CHECK_THROWS(parse({"swap", "add", "/a", "/b"}), UsageError);
    CHECK_THROWS(parse({"swap", "add", "/a", "--size"}), UsageError);
    CHECK_THROWS(parse({"swap", "add", "/a", "--size", "x"}), UsageError);
    CHECK_THROWS(parse({"swap", "add", "/a", "--size", "-1M"}), UsageError);
    CHECK_THROWS(parse({"swap", "add", "/a", "--size", "1000"}), UsageError); // not pages
    CHECK_THROWS(parse({"swap", "add", "/a", "--size", "32K"}), UsageError);  // < 16 pages
    CHECK_THROWS(parse({"swap", "add", "/a", "--size", "99999999T"}), UsageError);
    CHECK_THROWS(parse({"swap", "add", "/a", "--prio", "x"}), UsageError);
    CHECK_THROWS(parse({"swap", "add", "/a", "--prio", "2147483648"}), UsageError);
    CHECK_THROWS(parse({"swap", "add", "/a", "--prio", "-2147483649"}), UsageError);
    CHECK_THROWS(parse({"swap", "add", "/a", "--prio", "1.5"}), UsageError);
    CHECK_THROWS(parse({"swap", "add", "/a", "--force"}), UsageError);
    CHECK_THROWS(parse({"swap", "remove"}), UsageError);
    CHECK_THROWS(parse({"swap", "remove", "abc"}), UsageError);
    CHECK_THROWS(parse({"swap", "remove", "-1"}), UsageError);
    CHECK_THROWS(parse({"swap", "remove", "4294967296"}), UsageError);
    CHECK_THROWS(parse({"swap", "remove", "1", "2"}), UsageError);
    CHECK_THROWS(parse({"swap", "remove", "1", "--size", "1M"}), UsageError);
    CHECK_THROWS(parse({"swap", "list", "1"}), UsageError);
    CHECK_THROWS(parse({"swap", "show"}), UsageError);
    CHECK_THROWS(parse({"swap", "show", "x"}), UsageError);
    CHECK_THROWS(parse({"swap", "show", "1", "2"}), UsageError);
    CHECK_THROWS(parse({"swap", "show", "1", "--prio", "2"}), UsageError);
    CHECK_THROWS(parse({"swap", "list", "--prio", "1"}), UsageError);

    CHECK(failed_topic({"swap"}) == "swap");
    CHECK(failed_topic({"swap", "add", "/a", "--size", "x"}) == "swap add");
    CHECK(failed_topic({"swap", "remove", "x"}) == "swap remove");
    try {
        parse({"swap", "add", "/a", "--size", "1000"});
        CHECK(false);
    } catch (const UsageError& e) {
        CHECK(contains(e.what(), "'1000'"));
        CHECK(contains(e.what(), "page size"));
    }
    try {
        parse({"swap", "remove", "abc"});
        CHECK(false);
    } catch (const UsageError& e) {
        CHECK(contains(e.what(), "'abc' is not a swap store ID"));
    }
    try {
        parse({"swap", "frob"});
        CHECK(false);
    } catch (const UsageError& e) {
        CHECK(contains(e.what(), "unknown action 'frob' (add, remove, list, show)"));
    }
}

void test_canonical_swap_path() {
    char tmpl[] = "/tmp/machvmctl-unit-XXXXXX";
    const char* d = ::mkdtemp(tmpl);
    CHECK(d != nullptr);
    if (!d)
        return;
    const std::string dir = ctl::canonical_swap_path(d); // /tmp may be a link
    const std::string sub = dir + "/sub";
    CHECK(::mkdir(sub.c_str(), 0700) == 0);
    const std::string file = sub + "/f.swap";
    const int fd = ::open(file.c_str(), O_CREAT | O_WRONLY, 0600);
    CHECK(fd >= 0);
    if (fd >= 0)
        ::close(fd);
    CHECK(::symlink(sub.c_str(), (dir + "/link").c_str()) == 0);

    // An existing file: one name however it is reached.
    CHECK(ctl::canonical_swap_path(file) == file);
    CHECK(ctl::canonical_swap_path(dir + "/link/f.swap") == file);
    CHECK(ctl::canonical_swap_path(dir + "/sub/./f.swap") == file);
    CHECK(ctl::canonical_swap_path(dir + "/sub/../sub//f.swap") == file);
    // A file to be created: its directory resolved.
    CHECK(ctl::canonical_swap_path(dir + "/link/new.swap") == sub + "/new.swap");
    CHECK(ctl::canonical_swap_path(dir + "/./new.swap") == dir + "/new.swap");
    // What cannot be resolved stays as given (the module says why).
    CHECK(ctl::canonical_swap_path(dir + "/none/x.swap") == dir + "/none/x.swap");
    CHECK(ctl::canonical_swap_path(dir + "/none/..") == dir + "/none/..");
    CHECK(ctl::canonical_swap_path("/") == "/");
    CHECK(ctl::canonical_swap_path("/machvmctl-unit-missing") == "/machvmctl-unit-missing");
    // The parser resolves it too.
    CHECK(parse({"swap", "add", dir + "/link/f.swap"}).path == file);

    ::unlink((dir + "/link").c_str());
    ::unlink(file.c_str());
    ::rmdir(sub.c_str());
    ::rmdir(dir.c_str());
}

void test_swap_and_int_args() {
    CHECK(ctl::swap_path_arg("/x", "/cwd") == "/x");
    CHECK(ctl::swap_path_arg("x", "/cwd") == "/cwd/x");
    CHECK(ctl::swap_path_arg("a/b", "/") == "/a/b");
    CHECK(ctl::swap_path_arg("../y", "/c/d/") == "/c/d/../y");
    CHECK_THROWS(ctl::swap_path_arg("", "/cwd"), UsageError);
    CHECK_THROWS(ctl::swap_path_arg("x", ""), UsageError);
    CHECK_THROWS(ctl::swap_path_arg(std::string_view("/a\0b", 4), "/"), UsageError);
    CHECK_THROWS(ctl::swap_path_arg(std::string(5000, 'a'), "/"), UsageError);

    CHECK_EQ(ctl::swap_size_arg("0", 4096), 0u);
    CHECK_EQ(ctl::swap_size_arg("64K", 4096), 65536u);
    CHECK_EQ(ctl::swap_size_arg("1M", 4096), 1u << 20);
    CHECK_EQ(ctl::swap_size_arg("2G", 4096), 2ull << 30);
    CHECK_EQ(ctl::swap_size_arg("65536", 4096), 65536u);
    CHECK_THROWS(ctl::swap_size_arg("61440", 4096), UsageError); // 15 pages
    CHECK_THROWS(ctl::swap_size_arg("65537", 4096), UsageError);
    CHECK_THROWS(ctl::swap_size_arg("64K", 65536), UsageError); // one 64K page
    CHECK_EQ(ctl::swap_size_arg("1M", 65536), 1u << 20);
    CHECK_THROWS(ctl::swap_size_arg("", 4096), UsageError);
    CHECK_THROWS(ctl::swap_size_arg("1Q", 4096), UsageError);

    CHECK_EQ(ctl::int_arg("--n", "0", -5, 5), 0);
    CHECK_EQ(ctl::int_arg("--n", "-5", -5, 5), -5);
    CHECK_EQ(ctl::int_arg("--n", "5", -5, 5), 5);
    CHECK_EQ(ctl::int_arg("--n", "-9223372036854775808", INT64_MIN, INT64_MAX), INT64_MIN);
    CHECK_EQ(ctl::int_arg("--n", "9223372036854775807", INT64_MIN, INT64_MAX), INT64_MAX);
    CHECK_THROWS(ctl::int_arg("--n", "9223372036854775808", INT64_MIN, INT64_MAX), UsageError);
    CHECK_THROWS(ctl::int_arg("--n", "-9223372036854775809", INT64_MIN, INT64_MAX), UsageError);
    CHECK_THROWS(ctl::int_arg("--n", "6", -5, 5), UsageError);
    CHECK_THROWS(ctl::int_arg("--n", "-6", -5, 5), UsageError);
    CHECK_THROWS(ctl::int_arg("--n", "-", -5, 5), UsageError);
    CHECK_THROWS(ctl::int_arg("--n", "", -5, 5), UsageError);
    CHECK_THROWS(ctl::int_arg("--n", "+1", -5, 5), UsageError);
    CHECK_THROWS(ctl::int_arg("--n", "0x1", -5, 5), UsageError);
    CHECK_THROWS(ctl::int_arg("--n", "99999999999999999999", INT64_MIN, INT64_MAX), UsageError);
    try {
        (void)ctl::int_arg("--prio", "x", -1, 1);
        CHECK(false);
    } catch (const UsageError& e) {
        CHECK(contains(e.what(), "--prio: 'x' is not a number from -1 to 1"));
    }
}

PageoutInfo sample_pageout() {
    PageoutInfo p;
    p.limit = 1000;
    p.high = 90;
    p.low = 80;
    p.obj_limit = 0;
    p.batch = 64;
    p.interval_ms = 1000;
    p.resident = 12;
    p.returning = 3;
    p.stuck = false;
    return p;
}

SwapInfo sample_swap() {
    SwapInfo w;
    w.id = 2;
    w.path = "/tmp/machvm.swap";
    w.kind = MACHVM_SWAP_KIND_FILE;
    w.prio = -3;
    w.slots = 4096;
    w.used = 10;
    w.writes = 12;
    w.reads = 2;
    w.direct = true;
    return w;
}

void test_json_pageout_swap_events() {
    PageoutInfo p = sample_pageout();
    const std::string pj = to_json(p);
    CHECK(pj == "{\"limit\":1000,\"high\":90,\"low\":80,\"obj_limit\":0,\"batch\":64,"
                "\"interval_ms\":1000,\"resident\":12,\"returning\":3,\"stuck\":false}");
    CHECK(valid_json(pj));
    p.stuck = true;
    CHECK(contains(to_json(p), "\"stuck\":true}"));

    PageoutResult r;
    r.scanned = 100;
    r.freed = 60;
    r.returning = 30;
    CHECK(to_json(r) == "{\"scanned\":100,\"freed\":60,\"returning\":30}");

    SwapInfo w = sample_swap();
    const std::string wj = to_json(w);
    CHECK(wj == "{\"id\":2,\"path\":\"/tmp/machvm.swap\",\"kind\":\"file\",\"prio\":-3,"
                "\"slots\":4096,\"used\":10,\"writes\":12,\"reads\":2,\"direct\":true}");
    CHECK(valid_json(wj));
    w.path = "/tmp/a \"b\"\n";
    w.kind = MACHVM_SWAP_KIND_BDEV;
    w.prio = INT32_MIN;
    const std::string oddj = to_json(w);
    CHECK(valid_json(oddj));
    CHECK(contains(oddj, "\"path\":\"/tmp/a \\\"b\\\"\\n\""));
    CHECK(contains(oddj, "\"kind\":\"bdev\",\"prio\":-2147483648,"));
    CHECK(to_json(std::vector<SwapInfo>{}) == "[]\n");

    // A path that is not UTF-8 (issue 12.6): valid JSON, each stray byte
    // U+FFFD; the tables quote it the same way.
    SwapInfo bad = sample_swap();
    bad.path = "/tmp/ctl-\xff\xfe.swap";
    const std::string bj = to_json(bad);
    CHECK(valid_json(bj));
    CHECK(valid_json(to_json(std::vector<SwapInfo>{bad, sample_swap()})));
    CHECK(parsed(bj)["path"] == "/tmp/ctl-\xef\xbf\xbd\xef\xbf\xbd.swap");
    CHECK(contains(format_swap(bad, 4096), "path    \"/tmp/ctl-\xef\xbf\xbd\xef\xbf\xbd.swap\"\n"));
    CHECK(contains(format_swaps({bad}, 4096), "  \"/tmp/ctl-\xef\xbf\xbd\xef\xbf\xbd.swap\"\n"));
    Event be;
    be.type = MACHVM_EVENT_SWAP_ADDED;
    be.swap_id = 3;
    be.swap_path = bad.path;
    CHECK(valid_json(to_json(be)));
    CHECK(parsed(to_json(be))["swap_path"] == "/tmp/ctl-\xef\xbf\xbd\xef\xbf\xbd.swap");
    CHECK(contains(format_event(be, 0.0), " path=\"/tmp/ctl-\xef\xbf\xbd\xef\xbf\xbd.swap\""));

    const std::string lj = to_json(std::vector<SwapInfo>{sample_swap(), w});
    CHECK(valid_json(lj));
    CHECK_EQ(lines(lj).size(), 4u);

    Event e;
    e.type = MACHVM_EVENT_SWAP_ADDED;
    e.swap_id = 2;
    e.swap_path = "/tmp/machvm.swap";
    CHECK(to_json(e, 1.5) == "{\"time\":1.5,\"event\":\"SWAP_ADDED\",\"type\":7,\"swap_id\":2,"
                             "\"swap_path\":\"/tmp/machvm.swap\"}");
    CHECK(format_event(e, 0.0) == "00:00:00.000 SWAP_ADDED swap_id=2 path=/tmp/machvm.swap");
    e.type = MACHVM_EVENT_SWAP_REMOVED;
    e.swap_path = "/tmp/with space";
    CHECK(format_event(e, 0.0) == "00:00:00.000 SWAP_REMOVED swap_id=2 path=\"/tmp/with space\"");
    CHECK(valid_json(to_json(e)));
    Event f;
    f.type = MACHVM_EVENT_SWAP_FULL;
    CHECK(format_event(f, 0.0) == "00:00:00.000 SWAP_FULL");
    CHECK(to_json(f) == "{\"event\":\"SWAP_FULL\",\"type\":9}");
}

void test_format_pageout_swap() {
    CHECK(format_pages(0, 4096) == "0 pages");
    CHECK(format_pages(1, 4096) == "1 page (4K)");
    CHECK(format_pages(256, 4096) == "256 pages (1M)");
    CHECK(format_pages(256, 0) == "256 pages");
    CHECK(format_pages(~std::uint64_t{0}, 4096) == "18446744073709551615 pages");

    const std::string po = format_pageout(sample_pageout(), 4096);
    CHECK(po == "limit         1000 pages (4000K)\n"
                "high          90% of the limit, 900 pages (3600K)\n"
                "low           80% of the limit, 800 pages (3200K)\n"
                "object limit  none\n"
                "batch         64 pages\n"
                "interval      1000 ms\n"
                "resident      12 pages (48K)\n"
                "returning     3 pages (12K)\n"
                "stuck         no\n");
    PageoutInfo p = sample_pageout();
    p.obj_limit = 256;
    p.stuck = true;
    const std::string po2 = format_pageout(p, 0);
    CHECK(contains(po2, "object limit  256 pages\n"));
    CHECK(contains(po2, "stuck         yes"));
    CHECK(contains(po2, "limit         1000 pages\n"));

    PageoutResult r;
    r.scanned = 100;
    r.freed = 1;
    r.returning = 30;
    CHECK(format_pageout_result(r) == "scanned    100 pages\n"
                                      "freed      1 page\n"
                                      "returning  30 pages\n");

    SwapInfo b = sample_swap();
    b.id = 10;
    b.path = "/dev/vdb";
    b.kind = MACHVM_SWAP_KIND_BDEV;
    b.prio = 5;
    b.slots = 262144;
    b.direct = false;
    const std::string t = format_swaps({sample_swap(), b}, 4096);
    CHECK(t == "ID  PRIO  KIND  SIZE   SLOTS  USED  WRITES  READS  IO      PATH\n"
               " 2    -3  file   16M    4096    10      12      2  direct  /tmp/machvm.swap\n"
               "10     5  bdev    1G  262144    10      12      2  cached  /dev/vdb\n");
    CHECK(lines(format_swaps({}, 4096)).size() == 1);
    CHECK(contains(format_swaps({b}, 0), "  ?  "));

    const std::string d = format_swap(sample_swap(), 4096);
    CHECK(d == "id      2\n"
               "path    /tmp/machvm.swap\n"
               "kind    file\n"
               "prio    -3\n"
               "slots   4096 pages (16M)\n"
               "used    10 pages (40K)\n"
               "writes  12 pages\n"
               "reads   2 pages\n"
               "io      direct (O_DIRECT)\n");
}

} // namespace

int main() {
    test_parse_subcommands();
    test_parse_help();
    test_parse_errors();
    test_seconds_arg();
    test_help_texts();
    test_exit_status();
    test_json_string();
    test_json_values();
    test_json_structs();
    test_json_object_list();
    test_names();
    test_format_table();
    test_format_objects_and_object();
    test_format_status_stats_events();
    test_parse_pageout();
    test_parse_pageout_errors();
    test_parse_swap();
    test_parse_swap_errors();
    test_swap_and_int_args();
    test_canonical_swap_path();
    test_json_pageout_swap_events();
    test_format_pageout_swap();
    return unit::finish("machvmctl_test");
}
