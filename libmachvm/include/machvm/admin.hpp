// SPDX-License-Identifier: GPL-2.0
//
// Administration of the machvm module over its generic netlink family
// (kmod/uapi/linux/machvm.h, "Generic netlink family"): AdminClient asks for the
// module's status, its objects and counters, destroys objects, tunes and
// runs the pageout daemon, adds and removes swap stores and follows the
// "events" multicast group.  Plain structs mirror the attributes; their
// JSON and table forms live here too, for machvmctl and every other user
// (machvmctl's command line is its own: tools/machvmctl/command.hpp).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <vector>

#include <linux/machvm.h>
#include <machvm/result.hpp>
#include <nlohmann/json_fwd.hpp>

struct nl_sock;

namespace machvm {

// ---- what the family reports ----

// MACHVM_GENL_CMD_GET_STATUS.
struct Status {
    std::uint32_t abi_version = 0;
    std::uint32_t page_size = 0;
    std::uint64_t features = 0; // MACHVM_F_*
    std::uint32_t nr_objects = 0;
    std::uint32_t nr_pagers = 0;
    std::string module_version; // the module's release ("" if it does not say)
    std::string tools_version;  // this library's release (machvm::release())
};

// One MACHVM_A_OBJECT nest of MACHVM_GENL_CMD_GET_OBJECT.
struct ObjectInfo {
    std::uint64_t name = 0;
    std::uint64_t id = 0;   // control id on its pager endpoint
    std::uint64_t size = 0; // bytes
    std::uint32_t max_prot = 0;
    std::uint32_t state = 0;    // MACHVM_OBJ_STATE_*
    std::uint64_t resident = 0; // pages
    std::uint32_t mappings = 0;
    std::uint32_t pager_pid = 0;
    std::uint32_t pager_state = 0; // MACHVM_PAGER_STATE_*
    std::uint32_t pending = 0;     // outstanding data requests
    std::uint8_t may_cache = 0;
    std::uint8_t copy_strategy = 0; // MACHVM_COPY_*
    std::uint32_t cluster_pages = 0;
    std::uint32_t timeout_ms = 0;
    std::uint64_t faults = 0;
    std::uint64_t requests = 0;
    std::uint64_t supplied = 0;
    std::uint64_t errors = 0;
    std::uint64_t timeouts = 0;
    std::uint32_t kind = 0;    // MACHVM_OBJ_KIND_*
    std::uint64_t dirty = 0;   // resident pages known written
    std::uint64_t swapped = 0; // pages with a swap slot
    std::uint64_t limit = 0;   // resident limit in pages, 0: none
    std::uint64_t pageouts = 0;
    std::uint64_t pageins = 0;
    std::uint64_t returned = 0;
    std::uint64_t default_taken = 0;
    std::uint64_t scans = 0;
    std::uint64_t ref_hits = 0;
};

// MACHVM_A_STATS of MACHVM_GENL_CMD_GET_STATS.
struct Stats {
    std::uint64_t faults = 0;
    std::uint64_t requests = 0;
    std::uint64_t supplied = 0;
    std::uint64_t not_taken = 0;
    std::uint64_t errors = 0;
    std::uint64_t timeouts = 0;
    std::uint64_t sigbus = 0;
    std::uint64_t objects_created = 0;
    std::uint64_t objects_terminated = 0;
    std::uint64_t pagers_died = 0;
    std::uint64_t pageouts = 0;
    std::uint64_t pageins = 0;
    std::uint64_t returned = 0;
    std::uint64_t default_taken = 0;
    std::uint64_t scans = 0;
    std::uint64_t ref_hits = 0;
    std::uint64_t swap_writes = 0;
    std::uint64_t swap_full = 0;
    std::uint64_t resident = 0; // gauge
    std::uint64_t swapped = 0;  // gauge
    std::uint64_t limit_waits = 0;
    std::uint64_t lock_requests = 0;
};

// MACHVM_GENL_CMD_GET_PAGEOUT (and the reply of SET_PAGEOUT): the pageout
// daemon's tunables and state.
struct PageoutInfo {
    std::uint64_t limit = 0;       // global resident limit, pages
    std::uint32_t high = 0;        // percent of limit: pageout starts above
    std::uint32_t low = 0;         // percent of limit: pageout stops at
    std::uint64_t obj_limit = 0;   // default limit of new objects, 0: none
    std::uint32_t batch = 0;       // pages scanned per step
    std::uint32_t interval_ms = 0; // period of the idle scan
    std::uint64_t resident = 0;    // resident pages now
    std::uint64_t returning = 0;   // pages under DATA_RETURN
    bool stuck = false;            // over the limit and nothing can go
};

// What MACHVM_GENL_CMD_SET_PAGEOUT changes: the tunables given.
struct PageoutSettings {
    std::optional<std::uint64_t> limit;
    std::optional<std::uint32_t> high;
    std::optional<std::uint32_t> low;
    std::optional<std::uint64_t> obj_limit;
    std::optional<std::uint32_t> batch;
    std::optional<std::uint32_t> interval_ms;
    bool empty() const noexcept {
        return !limit && !high && !low && !obj_limit && !batch && !interval_ms;
    }
};

// The request of MACHVM_GENL_CMD_RUN_PAGEOUT.
struct PageoutRun {
    std::optional<std::uint64_t> target; // pages to free
    std::optional<std::uint64_t> object; // only this object's pages
    bool force = false;                  // no second chance
};

// The reply of MACHVM_GENL_CMD_RUN_PAGEOUT.
struct PageoutResult {
    std::uint64_t scanned = 0;
    std::uint64_t freed = 0;
    std::uint64_t returning = 0; // pages sent to pagers by this pass
};

// One MACHVM_A_SWAP nest of MACHVM_GENL_CMD_GET_SWAP / SWAP_ADD.
struct SwapInfo {
    std::uint32_t id = 0;
    std::string path;
    std::uint32_t kind = 0; // MACHVM_SWAP_KIND_*
    std::int32_t prio = 0;
    std::uint64_t slots = 0; // pages
    std::uint64_t used = 0;  // pages
    std::uint64_t writes = 0;
    std::uint64_t reads = 0;
    bool direct = false; // O_DIRECT I/O
};

// One MACHVM_GENL_CMD_EVENT message of the "events" group.  Which of the
// optional fields are present depends on the type (see the uapi header).
struct Event {
    std::uint32_t type = 0; // MACHVM_EVENT_*
    std::optional<std::uint64_t> name;
    std::optional<std::uint32_t> pager_pid;
    std::optional<std::uint64_t> offset;
    std::optional<std::uint32_t> swap_id;
    std::optional<std::string> swap_path;
};

// ---- errors ----

// Errors of the admin client that no errno names exactly.  Both compare
// equal to std::errc::no_such_file_or_directory.
enum class AdminErrc {
    family_not_found = 1, // no "machvm" genl family: the module is not loaded
    group_not_found,      // the family has no "events" multicast group
};

const std::error_category& admin_category() noexcept;
std::error_code make_error_code(AdminErrc e) noexcept;

} // namespace machvm

template <> struct std::is_error_code_enum<machvm::AdminErrc> : std::true_type {};

namespace machvm {

// ---- the client ----

// A connection to the machvm genl family.  Requests and replies go over one
// socket; events, once subscribed, over a second one.  Not thread-safe.
// Errors the kernel returns come back as their errno (system_category):
// EPERM for a change without CAP_SYS_ADMIN, ENOENT for an unknown object.
// A reply that lacks a required attribute is EBADMSG.
class AdminClient {
  public:
    AdminClient(AdminClient&&) noexcept;
    AdminClient& operator=(AdminClient&&) noexcept;
    ~AdminClient();

    // Connects and resolves the family.  AdminErrc::family_not_found when
    // the module is not loaded.
    static Result<AdminClient> open() noexcept;

    int family_id() const noexcept { return family_; }

    Result<Status> status();
    // Every object (a dump, any number of messages), in the kernel's order.
    Result<std::vector<ObjectInfo>> objects();
    // One object by name; ENOENT if there is none.
    Result<ObjectInfo> object(std::uint64_t name);
    Result<Stats> stats();
    // MACHVM_GENL_CMD_DESTROY_OBJECT: EPERM without CAP_SYS_ADMIN, ENOENT if
    // no such live object.
    Result<void> destroy(std::uint64_t name);

    // MACHVM_GENL_CMD_GET_PAGEOUT.
    Result<PageoutInfo> pageout();
    // MACHVM_GENL_CMD_SET_PAGEOUT with the tunables given (EINVAL if none
    // is); the kernel checks them all before applying any (EINVAL with a
    // message in error_detail()).  Returns the settings now in force.
    // EPERM without CAP_SYS_ADMIN.
    Result<PageoutInfo> set_pageout(const PageoutSettings& s);
    // MACHVM_GENL_CMD_SET_PAGEOUT of one object's resident limit (pages,
    // 0: none).  ENOENT if no such object.
    Result<PageoutInfo> set_object_limit(std::uint64_t name, std::uint64_t limit);
    // MACHVM_GENL_CMD_RUN_PAGEOUT: one pass now.  EPERM, ENOENT.
    Result<PageoutResult> run_pageout(const PageoutRun& r);

    // MACHVM_GENL_CMD_SWAP_ADD: `path` as a swap store of `size` bytes (0:
    // the file's or device's size) with priority `prio`.  EBUSY if it is
    // one already, ENOSPC if smaller than 16 pages, EINVAL if it cannot be
    // one; EPERM.
    Result<SwapInfo> swap_add(const std::string& path, std::uint64_t size, std::int32_t prio);
    // MACHVM_GENL_CMD_SWAP_REMOVE: ENOENT if no such store, ENOMEM if its
    // pages do not fit in memory (nothing changed); EPERM.
    Result<void> swap_remove(std::uint32_t id);
    // Every swap store (a MACHVM_GENL_CMD_GET_SWAP dump).
    Result<std::vector<SwapInfo>> swaps();
    // One store by id; ENOENT if there is none.
    Result<SwapInfo> swap(std::uint32_t id);

    // Joins the "events" multicast group (on a socket of its own).  Events
    // sent before this returns are not seen.
    Result<void> subscribe_events();
    // The next event; nullopt if none came within `timeout` (negative: wait
    // for ever).  EINTR if a signal interrupted the wait; ENOBUFS if events
    // were lost because the socket's buffer overflowed (later calls go on
    // with the events after the loss).  Requires subscribe_events().
    Result<std::optional<Event>> next_event(std::chrono::milliseconds timeout);
    // The events socket (for poll), -1 before subscribe_events().
    int event_fd() const noexcept;

    // What the last failed call knows beyond its error code (the kernel's
    // extended ack message, the missing attribute); empty if nothing.
    const std::string& error_detail() const noexcept { return detail_; }

  private:
    struct SockDeleter {
        void operator()(nl_sock* s) const noexcept;
    };
    using Sock = std::unique_ptr<nl_sock, SockDeleter>;

    struct Request; // one request and its replies (admin.cpp)

    AdminClient(Sock sock, int family) noexcept;
    Result<void> exchange(Request& req);
    // A libnl error as its errno, with libnl's text in detail_.
    std::error_code nl_fail(int nle);

    Sock sock_;
    Sock events_;
    int family_ = -1;
    std::vector<Event> queued_; // parsed, not yet returned (oldest first)
    std::string detail_;
};

// ---- names ----

// "new", "init", "ready", "destroyed"; "unknown(N)" otherwise.
std::string object_state_string(std::uint32_t state);
// "live", "dead", "none"; "unknown(N)".
std::string pager_state_string(std::uint32_t state);
// "none", "call", "delay"; "unknown(N)".
std::string copy_strategy_string(std::uint32_t copy);
// "pager", "anon"; "unknown(N)".
std::string object_kind_string(std::uint32_t kind);
// "file", "bdev"; "unknown(N)".
std::string swap_kind_string(std::uint32_t kind);
// "OBJECT_CREATED", ..., "SWAP_FULL"; "UNKNOWN(N)".
std::string event_type_string(std::uint32_t type);
// "rwx" with '-' for a missing bit: "rw-", "r--", "---".
std::string prot_string(std::uint32_t prot);
// The names of the MACHVM_F_* bits set, in bit order, from one table
// (fields::kFeatures in admin_fields.hpp): "objects", "uring_cmd",
// "region", "pageout", "anon", "locks", "cluster_return", "fetch_release",
// "existence", "temporary"; "bitN" for a bit without a name.
std::vector<std::string> feature_names(std::uint64_t features);
// Bytes with the largest binary suffix that divides them exactly: "4K",
// "64M", "1T", "12345".
std::string format_size(std::uint64_t bytes);

// ---- JSON ----

// JSON goes through nlohmann-json (Debian's nlohmann-json3-dev), fields
// in the order added.
using Json = nlohmann::ordered_json;

// `j` on one line without blanks.  Strings are UTF-8: '"', '\\' and
// control characters below 0x20 are escaped (\n, \t, ..., \u00XX), other
// characters verbatim, and a byte that is not part of valid UTF-8 (a swap
// path may hold any byte but NUL) becomes U+FFFD, the replacement
// character: the output is always valid JSON and valid UTF-8.
std::string to_json(const Json& j);
// `s` as a JSON string literal, quotes included, escaped as to_json says.
std::string json_string(std::string_view s);

// One line each (no newline).  Field names are the attributes' names
// without MACHVM_A_ / MACHVM_OBJ_A_ / MACHVM_A_STAT_ in lower case; enum
// values are strings (state "ready", event "OBJECT_CREATED"), counters
// numbers.  `time` (seconds since the epoch, to the millisecond) is added
// when given.
std::string to_json(const Status& s);
std::string to_json(const ObjectInfo& o);
std::string to_json(const Stats& s, std::optional<double> time = std::nullopt);
std::string to_json(const Event& e, std::optional<double> time = std::nullopt);
std::string to_json(const PageoutInfo& p);
std::string to_json(const PageoutResult& r);
std::string to_json(const SwapInfo& s);
// "[\n" + one object per line, comma-separated + "]\n"; "[]\n" if empty.
std::string to_json(const std::vector<ObjectInfo>& objects);
std::string to_json(const std::vector<SwapInfo>& swaps);

// ---- tables ----

struct Column {
    std::string title;
    bool right = false; // right-aligned (numbers)
};

// A text table: the header, then one line per row, columns two spaces
// apart and as wide as their widest cell; the last column is not padded.
// Rows shorter than the header get empty cells.  Every line ends in '\n'.
std::string format_table(const std::vector<Column>& columns,
                         const std::vector<std::vector<std::string>>& rows);

// The human forms machvmctl prints (each ends in '\n').
std::string format_status(const Status& s);
std::string format_objects(const std::vector<ObjectInfo>& objects);
std::string format_object(const ObjectInfo& o);
std::string format_stats(const Stats& s);
// Pages, with their size in bytes when page_size is known (non-zero):
// "256 pages (1M)".
std::string format_pages(std::uint64_t pages, std::uint32_t page_size);
std::string format_pageout(const PageoutInfo& p, std::uint32_t page_size);
std::string format_pageout_result(const PageoutResult& r);
// swap list: one row per store; page_size (0: unknown) gives SIZE.
std::string format_swaps(const std::vector<SwapInfo>& swaps, std::uint32_t page_size);
std::string format_swap(const SwapInfo& s, std::uint32_t page_size);
// "HH:MM:SS.mmm EVENT name=N pager_pid=P offset=O swap_id=I path=P"
// (local time, fields present only; a path with blanks, quotes or control
// characters is quoted as a JSON string).
std::string format_event(const Event& e, double time);
// stats --watch: the header line, then one row per sample.  A row shows
// the change since `prev`, or the totals when there is none; the gauges
// (RESIDENT, SWAPPED) always show their value.
std::string format_stats_header();
std::string format_stats_row(const Stats& cur, const Stats* prev, double time);

} // namespace machvm
