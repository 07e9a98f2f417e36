// SPDX-License-Identifier: GPL-2.0
//
// One table per struct of admin.hpp: each field once, with the attribute
// it comes in (AdminClient parses by it), its JSON key (to_json), its line
// in the key-value form ("object show") and its column in the table form
// ("objects").  Adding a field to a struct means adding one row here.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <variant>

#include <linux/machvm.h>
#include <machvm/admin.hpp>

namespace machvm::fields {

// How a value reads in JSON and, unless `text` or `cell` says otherwise,
// to people.
enum class As : std::uint8_t {
    Number,     // the integer
    Bool,       // JSON true/false; "yes"/"no"
    Prot,       // "rw-" (prot_string)
    ObjState,   // object_state_string
    PagerState, // pager_state_string
    Copy,       // copy_strategy_string
    ObjKind,    // object_kind_string
    SwapKind,   // swap_kind_string
    Features,   // JSON: the array of feature_names
    String,     // a std::string member (JSON: invalid UTF-8 replaced)
};

// The key-value form of a field, beyond "value" + unit.
enum class Text : std::uint8_t {
    Plain,          // the value as `As` says, then `unit`
    Bytes,          // "262144 (256K)": bytes, and format_size when it differs
    Pages,          // format_pages with the page size
    PagesOrNone,    // "none" for 0, else Pages
    CountOrNone,    // "none" for 0, else Plain
    PageCount,      // format_pages without a page size: "1 page", "30 pages"
    PercentOfLimit, // PageoutInfo: "90% of the limit, 900 pages (3600K)"
    Features,       // Status: "objects uring_cmd (0x3)", "none (0x0)"
    Pager,          // ObjectInfo: "pid 4242, live", "none (default pager only)"
    Path,           // path_cell: quoted as a JSON string when not one plain word
    Stuck,          // PageoutInfo: "yes (over the limit and nothing can go)", "no"
    Direct,         // SwapInfo: "direct (O_DIRECT)", "cached"
    OrUnknown,      // a string, "unknown" when empty
};

// The table form of a field.
enum class Cell : std::uint8_t {
    Plain,      // the value as `As` says
    Size,       // format_size of the value (bytes)
    DashIfZero, // "-" for 0
    Pager,      // ObjectInfo: "4242", "4242 (dead)", "none"
    SlotsSize,  // SwapInfo: format_size(slots * page size), "?" if unknown
    Path,       // path_cell
    Direct,     // SwapInfo: "direct", "cached"
};

template <typename S>
using Member = std::variant<std::uint64_t S::*, std::uint32_t S::*, std::int32_t S::*,
                            std::uint8_t S::*, bool S::*, std::string S::*>;

template <typename S> struct Field {
    int attr;              // MACHVM_A_* it comes in; 0: derived, not parsed
    const char* attr_name; // that attribute's uapi name (error_detail)
    const char* key;       // JSON key; nullptr: not in JSON
    Member<S> member;
    As as = As::Number;
    const char* title = nullptr; // key-value title; nullptr: no line
    const char* unit = "";       // after a Plain value: " pages", " ms"
    Text text = Text::Plain;
    int col = -1;                 // table column, left to right; -1: none
    const char* column = nullptr; // its title
    Cell cell = Cell::Plain;
    bool gauge = false; // Stats: a level, not a counter (stats --watch)
};

#define MVM_ATTR(a) a, #a
#define MVM_DERIVED 0, nullptr

// clang-format off
inline const Field<Status> kStatus[] = {
    {MVM_DERIVED, "module_version", &Status::module_version, As::String, "module version", "", Text::OrUnknown},
    {MVM_DERIVED, "tools_version", &Status::tools_version, As::String, "tools version"},
    {MVM_ATTR(MACHVM_A_ABI_VERSION), "abi_version", &Status::abi_version, As::Number, "abi version"},
    {MVM_ATTR(MACHVM_A_PAGE_SIZE), "page_size", &Status::page_size, As::Number, "page size"},
    {MVM_ATTR(MACHVM_A_FEATURES), "features", &Status::features, As::Number, "features", "", Text::Features},
    {MVM_DERIVED, "feature_names", &Status::features, As::Features},
    {MVM_ATTR(MACHVM_A_NR_OBJECTS), "nr_objects", &Status::nr_objects, As::Number, "objects"},
    {MVM_ATTR(MACHVM_A_NR_PAGERS), "nr_pagers", &Status::nr_pagers, As::Number, "pagers"},
};

inline const Field<ObjectInfo> kObject[] = {
    {MVM_ATTR(MACHVM_OBJ_A_NAME), "name", &ObjectInfo::name, As::Number, "name", "", Text::Plain, 0, "NAME"},
    {MVM_ATTR(MACHVM_OBJ_A_ID), "id", &ObjectInfo::id, As::Number, "id", "", Text::Plain, 1, "ID"},
    {MVM_ATTR(MACHVM_OBJ_A_SIZE), "size", &ObjectInfo::size, As::Number, "size", "", Text::Bytes, 2, "SIZE", Cell::Size},
    {MVM_ATTR(MACHVM_OBJ_A_MAX_PROT), "max_prot", &ObjectInfo::max_prot, As::Prot, "max prot", "", Text::Plain, 3, "PROT"},
    {MVM_ATTR(MACHVM_OBJ_A_STATE), "state", &ObjectInfo::state, As::ObjState, "state", "", Text::Plain, 4, "STATE"},
    {MVM_ATTR(MACHVM_OBJ_A_RESIDENT), "resident", &ObjectInfo::resident, As::Number, "resident", " pages", Text::Plain, 5, "RESIDENT"},
    {MVM_ATTR(MACHVM_OBJ_A_MAPPINGS), "mappings", &ObjectInfo::mappings, As::Number, "mappings", "", Text::Plain, 6, "MAPS"},
    {MVM_ATTR(MACHVM_OBJ_A_PAGER_PID), "pager_pid", &ObjectInfo::pager_pid, As::Number, "pager", "", Text::Pager, 20, "PAGER", Cell::Pager},
    {MVM_ATTR(MACHVM_OBJ_A_PAGER_STATE), "pager_state", &ObjectInfo::pager_state, As::PagerState},
    {MVM_ATTR(MACHVM_OBJ_A_PENDING), "pending", &ObjectInfo::pending, As::Number, "pending", " requests", Text::Plain, 10, "PENDING"},
    {MVM_ATTR(MACHVM_OBJ_A_MAY_CACHE), "may_cache", &ObjectInfo::may_cache, As::Bool, "may cache"},
    {MVM_ATTR(MACHVM_OBJ_A_COPY), "copy", &ObjectInfo::copy_strategy, As::Copy, "copy"},
    {MVM_ATTR(MACHVM_OBJ_A_CLUSTER), "cluster", &ObjectInfo::cluster_pages, As::Number, "cluster", " pages"},
    {MVM_ATTR(MACHVM_OBJ_A_TIMEOUT_MS), "timeout_ms", &ObjectInfo::timeout_ms, As::Number, "timeout", " ms"},
    {MVM_ATTR(MACHVM_OBJ_A_FAULTS), "faults", &ObjectInfo::faults, As::Number, "faults", "", Text::Plain, 11, "FAULTS"},
    {MVM_ATTR(MACHVM_OBJ_A_REQUESTS), "requests", &ObjectInfo::requests, As::Number, "requests", "", Text::Plain, 12, "REQUESTS"},
    {MVM_ATTR(MACHVM_OBJ_A_SUPPLIED), "supplied", &ObjectInfo::supplied, As::Number, "supplied", "", Text::Plain, 13, "SUPPLIED"},
    {MVM_ATTR(MACHVM_OBJ_A_ERRORS), "errors", &ObjectInfo::errors, As::Number, "errors", "", Text::Plain, 14, "ERRORS"},
    {MVM_ATTR(MACHVM_OBJ_A_TIMEOUTS), "timeouts", &ObjectInfo::timeouts, As::Number, "timeouts", "", Text::Plain, 15, "TIMEOUTS"},
    {MVM_ATTR(MACHVM_OBJ_A_KIND), "kind", &ObjectInfo::kind, As::ObjKind, "kind", "", Text::Plain, 19, "KIND"},
    {MVM_ATTR(MACHVM_OBJ_A_DIRTY), "dirty", &ObjectInfo::dirty, As::Number, "dirty", " pages", Text::Plain, 7, "DIRTY"},
    {MVM_ATTR(MACHVM_OBJ_A_SWAPPED), "swapped", &ObjectInfo::swapped, As::Number, "swapped", " pages", Text::Plain, 8, "SWAPPED"},
    {MVM_ATTR(MACHVM_OBJ_A_LIMIT), "limit", &ObjectInfo::limit, As::Number, "limit", " pages", Text::CountOrNone, 9, "LIMIT", Cell::DashIfZero},
    {MVM_ATTR(MACHVM_OBJ_A_PAGEOUTS), "pageouts", &ObjectInfo::pageouts, As::Number, "pageouts", "", Text::Plain, 16, "PAGEOUTS"},
    {MVM_ATTR(MACHVM_OBJ_A_PAGEINS), "pageins", &ObjectInfo::pageins, As::Number, "pageins", "", Text::Plain, 17, "PAGEINS"},
    {MVM_ATTR(MACHVM_OBJ_A_RETURNED), "returned", &ObjectInfo::returned, As::Number, "returned", "", Text::Plain, 18, "RETURNED"},
    {MVM_ATTR(MACHVM_OBJ_A_DEFAULT_TAKEN), "default_taken", &ObjectInfo::default_taken, As::Number, "default taken"},
    {MVM_ATTR(MACHVM_OBJ_A_SCANS), "scans", &ObjectInfo::scans, As::Number, "scans"},
    {MVM_ATTR(MACHVM_OBJ_A_REF_HITS), "ref_hits", &ObjectInfo::ref_hits, As::Number, "ref hits"},
};

// Key-value titles are the JSON keys; `column` is the stats --watch column.
inline const Field<Stats> kStats[] = {
    {MVM_ATTR(MACHVM_A_STAT_FAULTS), "faults", &Stats::faults, As::Number, "faults", "", Text::Plain, 0, "FAULTS"},
    {MVM_ATTR(MACHVM_A_STAT_REQUESTS), "requests", &Stats::requests, As::Number, "requests", "", Text::Plain, 1, "REQUESTS"},
    {MVM_ATTR(MACHVM_A_STAT_SUPPLIED), "supplied", &Stats::supplied, As::Number, "supplied", "", Text::Plain, 2, "SUPPLIED"},
    {MVM_ATTR(MACHVM_A_STAT_NOT_TAKEN), "not_taken", &Stats::not_taken, As::Number, "not_taken", "", Text::Plain, 3, "NOT_TAKEN"},
    {MVM_ATTR(MACHVM_A_STAT_ERRORS), "errors", &Stats::errors, As::Number, "errors", "", Text::Plain, 4, "ERRORS"},
    {MVM_ATTR(MACHVM_A_STAT_TIMEOUTS), "timeouts", &Stats::timeouts, As::Number, "timeouts", "", Text::Plain, 5, "TIMEOUTS"},
    {MVM_ATTR(MACHVM_A_STAT_SIGBUS), "sigbus", &Stats::sigbus, As::Number, "sigbus", "", Text::Plain, 6, "SIGBUS"},
    {MVM_ATTR(MACHVM_A_STAT_OBJECTS_CREATED), "objects_created", &Stats::objects_created, As::Number, "objects_created", "", Text::Plain, 7, "CREATED"},
    {MVM_ATTR(MACHVM_A_STAT_OBJECTS_TERMINATED), "objects_terminated", &Stats::objects_terminated, As::Number, "objects_terminated", "", Text::Plain, 8, "TERMINATED"},
    {MVM_ATTR(MACHVM_A_STAT_PAGERS_DIED), "pagers_died", &Stats::pagers_died, As::Number, "pagers_died", "", Text::Plain, 9, "PAGERS_DIED"},
    {MVM_ATTR(MACHVM_A_STAT_PAGEOUTS), "pageouts", &Stats::pageouts, As::Number, "pageouts", "", Text::Plain, 10, "PAGEOUTS"},
    {MVM_ATTR(MACHVM_A_STAT_PAGEINS), "pageins", &Stats::pageins, As::Number, "pageins", "", Text::Plain, 11, "PAGEINS"},
    {MVM_ATTR(MACHVM_A_STAT_RETURNED), "returned", &Stats::returned, As::Number, "returned", "", Text::Plain, 12, "RETURNED"},
    {MVM_ATTR(MACHVM_A_STAT_DEFAULT_TAKEN), "default_taken", &Stats::default_taken, As::Number, "default_taken"},
    {MVM_ATTR(MACHVM_A_STAT_SCANS), "scans", &Stats::scans, As::Number, "scans"},
    {MVM_ATTR(MACHVM_A_STAT_REF_HITS), "ref_hits", &Stats::ref_hits, As::Number, "ref_hits"},
    {MVM_ATTR(MACHVM_A_STAT_SWAP_WRITES), "swap_writes", &Stats::swap_writes, As::Number, "swap_writes", "", Text::Plain, 13, "SWAP_WRITES"},
    {MVM_ATTR(MACHVM_A_STAT_SWAP_FULL), "swap_full", &Stats::swap_full, As::Number, "swap_full"},
    {MVM_ATTR(MACHVM_A_STAT_RESIDENT), "resident", &Stats::resident, As::Number, "resident", "", Text::Plain, 14, "RESIDENT", Cell::Plain, true},
    {MVM_ATTR(MACHVM_A_STAT_SWAPPED), "swapped", &Stats::swapped, As::Number, "swapped", "", Text::Plain, 15, "SWAPPED", Cell::Plain, true},
    {MVM_ATTR(MACHVM_A_STAT_LIMIT_WAITS), "limit_waits", &Stats::limit_waits, As::Number, "limit_waits"},
    {MVM_ATTR(MACHVM_A_STAT_LOCK_REQUESTS), "lock_requests", &Stats::lock_requests, As::Number, "lock_requests"},
};

inline const Field<PageoutInfo> kPageout[] = {
    {MVM_ATTR(MACHVM_A_PO_LIMIT), "limit", &PageoutInfo::limit, As::Number, "limit", "", Text::Pages},
    {MVM_ATTR(MACHVM_A_PO_HIGH), "high", &PageoutInfo::high, As::Number, "high", "", Text::PercentOfLimit},
    {MVM_ATTR(MACHVM_A_PO_LOW), "low", &PageoutInfo::low, As::Number, "low", "", Text::PercentOfLimit},
    {MVM_ATTR(MACHVM_A_PO_OBJ_LIMIT), "obj_limit", &PageoutInfo::obj_limit, As::Number, "object limit", "", Text::PagesOrNone},
    {MVM_ATTR(MACHVM_A_PO_BATCH), "batch", &PageoutInfo::batch, As::Number, "batch", "", Text::PageCount},
    {MVM_ATTR(MACHVM_A_PO_INTERVAL_MS), "interval_ms", &PageoutInfo::interval_ms, As::Number, "interval", " ms"},
    {MVM_ATTR(MACHVM_A_PO_RESIDENT), "resident", &PageoutInfo::resident, As::Number, "resident", "", Text::Pages},
    {MVM_ATTR(MACHVM_A_PO_RETURNING), "returning", &PageoutInfo::returning, As::Number, "returning", "", Text::Pages},
    {MVM_ATTR(MACHVM_A_PO_STUCK), "stuck", &PageoutInfo::stuck, As::Bool, "stuck", "", Text::Stuck},
};

inline const Field<PageoutResult> kPageoutResult[] = {
    {MVM_ATTR(MACHVM_A_PO_SCANNED), "scanned", &PageoutResult::scanned, As::Number, "scanned", "", Text::PageCount},
    {MVM_ATTR(MACHVM_A_PO_FREED), "freed", &PageoutResult::freed, As::Number, "freed", "", Text::PageCount},
    {MVM_ATTR(MACHVM_A_PO_RETURNING), "returning", &PageoutResult::returning, As::Number, "returning", "", Text::PageCount},
};

inline const Field<SwapInfo> kSwap[] = {
    {MVM_ATTR(MACHVM_SWAP_A_ID), "id", &SwapInfo::id, As::Number, "id", "", Text::Plain, 0, "ID"},
    {MVM_ATTR(MACHVM_SWAP_A_PATH), "path", &SwapInfo::path, As::String, "path", "", Text::Path, 9, "PATH", Cell::Path},
    {MVM_ATTR(MACHVM_SWAP_A_KIND), "kind", &SwapInfo::kind, As::SwapKind, "kind", "", Text::Plain, 2, "KIND"},
    {MVM_ATTR(MACHVM_SWAP_A_PRIO), "prio", &SwapInfo::prio, As::Number, "prio", "", Text::Plain, 1, "PRIO"},
    {MVM_DERIVED, nullptr, &SwapInfo::slots, As::Number, nullptr, "", Text::Plain, 3, "SIZE", Cell::SlotsSize},
    {MVM_ATTR(MACHVM_SWAP_A_SLOTS), "slots", &SwapInfo::slots, As::Number, "slots", "", Text::Pages, 4, "SLOTS"},
    {MVM_ATTR(MACHVM_SWAP_A_USED), "used", &SwapInfo::used, As::Number, "used", "", Text::Pages, 5, "USED"},
    {MVM_ATTR(MACHVM_SWAP_A_WRITES), "writes", &SwapInfo::writes, As::Number, "writes", " pages", Text::Plain, 6, "WRITES"},
    {MVM_ATTR(MACHVM_SWAP_A_READS), "reads", &SwapInfo::reads, As::Number, "reads", " pages", Text::Plain, 7, "READS"},
    {MVM_ATTR(MACHVM_SWAP_A_DIRECT), "direct", &SwapInfo::direct, As::Bool, "io", "", Text::Direct, 8, "IO", Cell::Direct},
};
// clang-format on

#undef MVM_DERIVED
#undef MVM_ATTR

// The feature bits the module reports (MACHVM_F_*) and their names, in
// bit order: status's "features" line and JSON "feature_names".  A bit
// missing here is shown as "bitN" (and fails machvmctl_test).
struct FeatureName {
    std::uint64_t flag;
    const char* name;
};
inline constexpr FeatureName kFeatures[] = {
    {MACHVM_F_OBJECTS, "objects"},
    {MACHVM_F_URING_CMD, "uring_cmd"},
    {MACHVM_F_REGION, "region"},
    {MACHVM_F_PAGEOUT, "pageout"},
    {MACHVM_F_ANON, "anon"},
    {MACHVM_F_LOCKS, "locks"},
    {MACHVM_F_CLUSTER_RETURN, "cluster_return"},
    {MACHVM_F_FETCH_RELEASE, "fetch_release"},
    {MACHVM_F_EXISTENCE, "existence"},
    {MACHVM_F_TEMPORARY, "temporary"},
};

} // namespace machvm::fields
