// SPDX-License-Identifier: GPL-2.0
#include <machvm/admin.hpp>
#include <machvm/admin_fields.hpp>
#include <machvm/version.hpp>

#include <limits.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <type_traits>
#include <variant>

#include <linux/genetlink.h>
#include <linux/netlink.h>

#include <netlink/attr.h>
#include <netlink/errno.h>
#include <netlink/genl/ctrl.h>
#include <netlink/genl/genl.h>
#include <netlink/handlers.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/socket.h>

#include <nlohmann/json.hpp>

namespace machvm {

// ---- errors ----

namespace {

class AdminCategory : public std::error_category {
  public:
    const char* name() const noexcept override { return "machvm-admin"; }
    std::string message(int v) const override {
        switch (static_cast<AdminErrc>(v)) {
        case AdminErrc::family_not_found:
            return "generic netlink family \"" MACHVM_GENL_NAME
                   "\" not found (is the machvm module loaded?)";
        case AdminErrc::group_not_found:
            return "multicast group \"" MACHVM_GENL_MCGRP_EVENTS
                   "\" of the generic netlink family \"" MACHVM_GENL_NAME "\" not found";
        }
        return "unknown machvm admin error";
    }
    std::error_condition default_error_condition(int) const noexcept override {
        return std::make_error_condition(std::errc::no_such_file_or_directory);
    }
};

// A libnl error (negative NLE_*) as the errno it stands for.
std::error_code nl_error(int nle) noexcept {
    int e;
    switch (nle < 0 ? -nle : nle) {
    case NLE_INTR:
        e = EINTR;
        break;
    case NLE_BAD_SOCK:
        e = EBADF;
        break;
    case NLE_AGAIN:
        e = EAGAIN;
        break;
    case NLE_NOMEM:
        e = ENOMEM;
        break;
    case NLE_EXIST:
        e = EEXIST;
        break;
    case NLE_INVAL:
        e = EINVAL;
        break;
    case NLE_RANGE:
        e = ERANGE;
        break;
    case NLE_MSGSIZE:
    case NLE_MSG_TRUNC:
        e = EMSGSIZE;
        break;
    case NLE_OPNOTSUPP:
        e = EOPNOTSUPP;
        break;
    case NLE_AF_NOSUPPORT:
        e = EAFNOSUPPORT;
        break;
    case NLE_OBJ_NOTFOUND:
        e = ENOENT;
        break;
    case NLE_BUSY:
        e = EBUSY;
        break;
    case NLE_PROTO_MISMATCH:
        e = EPROTONOSUPPORT;
        break;
    case NLE_NOACCESS:
        e = EACCES;
        break;
    case NLE_PERM:
        e = EPERM;
        break;
    case NLE_NODEV:
        e = ENODEV;
        break;
    default:
        e = EPROTO;
        break;
    }
    return errno_code(e);
}

std::error_code bad_message() noexcept {
    return errno_code(EBADMSG);
}

} // namespace

const std::error_category& admin_category() noexcept {
    static const AdminCategory c;
    return c;
}

std::error_code make_error_code(AdminErrc e) noexcept {
    return std::error_code(static_cast<int>(e), admin_category());
}

// ---- libnl handles ----

void AdminClient::SockDeleter::operator()(nl_sock* s) const noexcept {
    nl_socket_free(s);
}

namespace {

struct MsgDeleter {
    void operator()(nl_msg* m) const noexcept { nlmsg_free(m); }
};
using Msg = std::unique_ptr<nl_msg, MsgDeleter>;

struct CbDeleter {
    void operator()(nl_cb* c) const noexcept { nl_cb_put(c); }
};
using Cb = std::unique_ptr<nl_cb, CbDeleter>;

// ---- attribute policies ----

using AttrPolicy = std::array<nla_policy, MACHVM_A_MAX + 1>;
using ObjPolicy = std::array<nla_policy, MACHVM_OBJ_A_MAX + 1>;
using SwapPolicy = std::array<nla_policy, MACHVM_SWAP_A_MAX + 1>;
using StatPolicy = std::array<nla_policy, MACHVM_A_STAT_MAX + 1>;

constexpr nla_policy fixed(std::uint16_t type, std::uint16_t len) noexcept {
    nla_policy p{};
    p.type = type;
    p.minlen = len;
    p.maxlen = len;
    return p;
}

constexpr nla_policy u8p = fixed(NLA_U8, 1), u32p = fixed(NLA_U32, 4), u64p = fixed(NLA_U64, 8),
                     s32p = fixed(NLA_S32, 4);

// One policy per attribute enum (the top level and each nest).  Integers
// must have exactly their size, so a width mismatch is an error, not a
// truncation.
const nla_policy* attr_policy() noexcept {
    static const AttrPolicy p = [] {
        AttrPolicy a{};
        const nla_policy u8 = u8p, u32 = u32p, u64 = u64p, s32 = s32p;
        a[MACHVM_A_ABI_VERSION] = u32;
        a[MACHVM_A_PAGE_SIZE] = u32;
        a[MACHVM_A_FEATURES] = u64;
        a[MACHVM_A_NR_OBJECTS] = u32;
        a[MACHVM_A_NR_PAGERS] = u32;
        a[MACHVM_A_OBJECT].type = NLA_NESTED;
        a[MACHVM_A_OBJ_NAME] = u64;
        a[MACHVM_A_OBJ_LIMIT] = u64;
        a[MACHVM_A_OBJ_PAGER_PID] = u32;
        a[MACHVM_A_OBJ_OFFSET] = u64;
        a[MACHVM_A_STATS].type = NLA_NESTED;
        a[MACHVM_A_EVENT] = u32;
        a[MACHVM_A_PO_LIMIT] = u64;
        a[MACHVM_A_PO_HIGH] = u32;
        a[MACHVM_A_PO_LOW] = u32;
        a[MACHVM_A_PO_OBJ_LIMIT] = u64;
        a[MACHVM_A_PO_BATCH] = u32;
        a[MACHVM_A_PO_INTERVAL_MS] = u32;
        a[MACHVM_A_PO_RESIDENT] = u64;
        a[MACHVM_A_PO_RETURNING] = u64;
        a[MACHVM_A_PO_STUCK] = u8;
        a[MACHVM_A_PO_TARGET] = u64;
        a[MACHVM_A_PO_FORCE] = u8;
        a[MACHVM_A_PO_SCANNED] = u64;
        a[MACHVM_A_PO_FREED] = u64;
        a[MACHVM_A_SWAP].type = NLA_NESTED;
        a[MACHVM_A_SWAP_ID] = u32;
        a[MACHVM_A_SWAP_PATH].type = NLA_STRING; // NUL-terminated
        a[MACHVM_A_SWAP_PRIO] = s32;
        a[MACHVM_A_SWAP_SIZE] = u64;
        return a;
    }();
    return p.data();
}

const nla_policy* obj_policy() noexcept {
    static const ObjPolicy p = [] {
        ObjPolicy a{};
        const nla_policy u8 = u8p, u32 = u32p, u64 = u64p;
        a[MACHVM_OBJ_A_NAME] = u64;
        a[MACHVM_OBJ_A_ID] = u64;
        a[MACHVM_OBJ_A_SIZE] = u64;
        a[MACHVM_OBJ_A_MAX_PROT] = u32;
        a[MACHVM_OBJ_A_STATE] = u32;
        a[MACHVM_OBJ_A_RESIDENT] = u64;
        a[MACHVM_OBJ_A_MAPPINGS] = u32;
        a[MACHVM_OBJ_A_PAGER_PID] = u32;
        a[MACHVM_OBJ_A_PAGER_STATE] = u32;
        a[MACHVM_OBJ_A_PENDING] = u32;
        a[MACHVM_OBJ_A_MAY_CACHE] = u8;
        a[MACHVM_OBJ_A_COPY] = u8;
        a[MACHVM_OBJ_A_CLUSTER] = u32;
        a[MACHVM_OBJ_A_TIMEOUT_MS] = u32;
        a[MACHVM_OBJ_A_FAULTS] = u64;
        a[MACHVM_OBJ_A_REQUESTS] = u64;
        a[MACHVM_OBJ_A_SUPPLIED] = u64;
        a[MACHVM_OBJ_A_ERRORS] = u64;
        a[MACHVM_OBJ_A_TIMEOUTS] = u64;
        a[MACHVM_OBJ_A_KIND] = u32;
        for (int t : {MACHVM_OBJ_A_DIRTY, MACHVM_OBJ_A_SWAPPED, MACHVM_OBJ_A_LIMIT,
                      MACHVM_OBJ_A_PAGEOUTS, MACHVM_OBJ_A_PAGEINS, MACHVM_OBJ_A_RETURNED,
                      MACHVM_OBJ_A_DEFAULT_TAKEN, MACHVM_OBJ_A_SCANS, MACHVM_OBJ_A_REF_HITS})
            a[static_cast<std::size_t>(t)] = u64;
        return a;
    }();
    return p.data();
}

const nla_policy* swap_policy() noexcept {
    static const SwapPolicy p = [] {
        SwapPolicy a{};
        const nla_policy u8 = u8p, u32 = u32p, u64 = u64p, s32 = s32p;
        a[MACHVM_SWAP_A_ID] = u32;
        a[MACHVM_SWAP_A_PATH].type = NLA_STRING; // NUL-terminated
        a[MACHVM_SWAP_A_KIND] = u32;
        a[MACHVM_SWAP_A_PRIO] = s32;
        a[MACHVM_SWAP_A_SLOTS] = u64;
        a[MACHVM_SWAP_A_USED] = u64;
        a[MACHVM_SWAP_A_WRITES] = u64;
        a[MACHVM_SWAP_A_READS] = u64;
        a[MACHVM_SWAP_A_DIRECT] = u8;
        return a;
    }();
    return p.data();
}

const nla_policy* stat_policy() noexcept {
    static const StatPolicy p = [] {
        StatPolicy a{};
        // Every counter but MACHVM_A_STAT_PAD (never sent; ignored).
        for (int i = MACHVM_A_STAT_FAULTS; i <= MACHVM_A_STAT_MAX; ++i)
            if (i != MACHVM_A_STAT_PAD)
                a[static_cast<std::size_t>(i)] = fixed(NLA_U64, 8);
        return a;
    }();
    return p.data();
}

// Reads attributes out of a parsed table; the first missing one is
// remembered (by its uapi name) and makes ok() false.
class Attrs {
  public:
    explicit Attrs(nlattr** tb) noexcept : tb_(tb) {}

    std::uint64_t u64(int type, const char* what) {
        return has(type, what) ? nla_get_u64(tb_[type]) : 0;
    }
    std::uint32_t u32(int type, const char* what) {
        return has(type, what) ? nla_get_u32(tb_[type]) : 0;
    }
    std::uint8_t u8(int type, const char* what) {
        return has(type, what) ? nla_get_u8(tb_[type]) : 0;
    }
    std::int32_t s32(int type, const char* what) {
        return has(type, what) ? nla_get_s32(tb_[type]) : 0;
    }
    std::string str(int type, const char* what) {
        return has(type, what) ? std::string(nla_get_string(tb_[type])) : std::string();
    }
    bool ok() const noexcept { return missing_.empty(); }
    // "missing attribute MACHVM_A_..." for error_detail().
    std::string detail(std::string_view where) const {
        return std::string(where) + ": missing attribute " + missing_;
    }

  private:
    bool has(int type, const char* what) {
        if (tb_[type])
            return true;
        if (missing_.empty())
            missing_ = what;
        return false;
    }
    nlattr** tb_;
    std::string missing_;
};

#define MVM_U64(a, attr) (a).u64(attr, #attr)
#define MVM_U32(a, attr) (a).u32(attr, #attr)
#define MVM_U8(a, attr) (a).u8(attr, #attr)
#define MVM_S32(a, attr) (a).s32(attr, #attr)
#define MVM_STR(a, attr) (a).str(attr, #attr)

// Every attribute-backed field of `fields` (admin_fields.hpp) out of `a`
// into `s`.
template <typename S, std::size_t N>
void read_fields(Attrs& a, const fields::Field<S> (&fs)[N], S& s) {
    for (const fields::Field<S>& f : fs) {
        if (!f.attr)
            continue;
        std::visit(
            [&](auto m) {
                using T = std::remove_cvref_t<decltype(s.*m)>;
                if constexpr (std::is_same_v<T, std::uint64_t>)
                    s.*m = a.u64(f.attr, f.attr_name);
                else if constexpr (std::is_same_v<T, std::uint32_t>)
                    s.*m = a.u32(f.attr, f.attr_name);
                else if constexpr (std::is_same_v<T, std::int32_t>)
                    s.*m = a.s32(f.attr, f.attr_name);
                else if constexpr (std::is_same_v<T, std::uint8_t>)
                    s.*m = a.u8(f.attr, f.attr_name);
                else if constexpr (std::is_same_v<T, bool>)
                    s.*m = a.u8(f.attr, f.attr_name) != 0;
                else
                    s.*m = a.str(f.attr, f.attr_name);
            },
            f.member);
    }
}

std::error_code parse_object(nlattr* nest, ObjectInfo& o, std::string& detail) {
    nlattr* tb[MACHVM_OBJ_A_MAX + 1];
    int r = nla_parse_nested(tb, MACHVM_OBJ_A_MAX, nest, obj_policy());
    if (r < 0) {
        detail = std::string("MACHVM_A_OBJECT: ") + nl_geterror(r);
        return bad_message();
    }
    Attrs a(tb);
    read_fields(a, fields::kObject, o);
    if (!a.ok()) {
        detail = a.detail("MACHVM_A_OBJECT");
        return bad_message();
    }
    return {};
}

std::error_code parse_swap(nlattr* nest, SwapInfo& w, std::string& detail) {
    nlattr* tb[MACHVM_SWAP_A_MAX + 1];
    int r = nla_parse_nested(tb, MACHVM_SWAP_A_MAX, nest, swap_policy());
    if (r < 0) {
        detail = std::string("MACHVM_A_SWAP: ") + nl_geterror(r);
        return bad_message();
    }
    Attrs a(tb);
    read_fields(a, fields::kSwap, w);
    if (!a.ok()) {
        detail = a.detail("MACHVM_A_SWAP");
        return bad_message();
    }
    return {};
}

// Validates a genl message against the family's policy into tb.
std::error_code parse_genl(nlmsghdr* nlh, nlattr** tb, std::string& detail) {
    int r = genlmsg_parse(nlh, 0, tb, MACHVM_A_MAX, attr_policy());
    if (r < 0) {
        detail = std::string("reply attributes: ") + nl_geterror(r);
        return bad_message();
    }
    return {};
}

// Every MACHVM_A_OBJECT of one reply message (a dump message may hold
// several).
std::error_code parse_objects(nlmsghdr* nlh, std::vector<ObjectInfo>& out, std::string& detail) {
    nlattr* tb[MACHVM_A_MAX + 1];
    if (auto ec = parse_genl(nlh, tb, detail))
        return ec;
    genlmsghdr* gh = genlmsg_hdr(nlh);
    int rem = genlmsg_attrlen(gh, 0);
    for (nlattr* a = genlmsg_attrdata(gh, 0); nla_ok(a, rem); a = nla_next(a, &rem)) {
        if (nla_type(a) != MACHVM_A_OBJECT)
            continue;
        ObjectInfo o;
        if (auto ec = parse_object(a, o, detail))
            return ec;
        out.push_back(o);
    }
    return {};
}

// Every MACHVM_A_SWAP of one reply message.
std::error_code parse_swaps(nlmsghdr* nlh, std::vector<SwapInfo>& out, std::string& detail) {
    nlattr* tb[MACHVM_A_MAX + 1];
    if (auto ec = parse_genl(nlh, tb, detail))
        return ec;
    genlmsghdr* gh = genlmsg_hdr(nlh);
    int rem = genlmsg_attrlen(gh, 0);
    for (nlattr* a = genlmsg_attrdata(gh, 0); nla_ok(a, rem); a = nla_next(a, &rem)) {
        if (nla_type(a) != MACHVM_A_SWAP)
            continue;
        SwapInfo w;
        if (auto ec = parse_swap(a, w, detail))
            return ec;
        out.push_back(std::move(w));
    }
    return {};
}

// The reply of GET_PAGEOUT / SET_PAGEOUT.
std::error_code parse_pageout(nlmsghdr* nlh, PageoutInfo& p, const char* cmd, std::string& detail) {
    nlattr* tb[MACHVM_A_MAX + 1];
    if (auto ec = parse_genl(nlh, tb, detail))
        return ec;
    Attrs a(tb);
    read_fields(a, fields::kPageout, p);
    if (!a.ok()) {
        detail = a.detail(cmd);
        return bad_message();
    }
    return {};
}

std::error_code parse_event(nlmsghdr* nlh, Event& e, std::string& detail) {
    nlattr* tb[MACHVM_A_MAX + 1];
    if (auto ec = parse_genl(nlh, tb, detail))
        return ec;
    Attrs a(tb);
    e.type = MVM_U32(a, MACHVM_A_EVENT);
    if (tb[MACHVM_A_OBJ_NAME])
        e.name = nla_get_u64(tb[MACHVM_A_OBJ_NAME]);
    if (tb[MACHVM_A_OBJ_PAGER_PID])
        e.pager_pid = nla_get_u32(tb[MACHVM_A_OBJ_PAGER_PID]);
    if (tb[MACHVM_A_OBJ_OFFSET])
        e.offset = nla_get_u64(tb[MACHVM_A_OBJ_OFFSET]);
    if (tb[MACHVM_A_SWAP_ID])
        e.swap_id = nla_get_u32(tb[MACHVM_A_SWAP_ID]);
    if (tb[MACHVM_A_SWAP_PATH])
        e.swap_path = std::string(nla_get_string(tb[MACHVM_A_SWAP_PATH]));
    // What each known type must carry (the uapi header's list).
    switch (e.type) {
    case MACHVM_EVENT_OBJECT_CREATED:
    case MACHVM_EVENT_OBJECT_TERMINATED:
    case MACHVM_EVENT_OBJECT_DESTROYED:
        (void)MVM_U64(a, MACHVM_A_OBJ_NAME);
        break;
    case MACHVM_EVENT_PAGER_ATTACHED:
    case MACHVM_EVENT_PAGER_DIED:
        (void)MVM_U32(a, MACHVM_A_OBJ_PAGER_PID);
        break;
    case MACHVM_EVENT_PAGER_TIMEOUT:
        (void)MVM_U64(a, MACHVM_A_OBJ_NAME);
        (void)MVM_U32(a, MACHVM_A_OBJ_PAGER_PID);
        (void)MVM_U64(a, MACHVM_A_OBJ_OFFSET);
        break;
    case MACHVM_EVENT_SWAP_ADDED:
    case MACHVM_EVENT_SWAP_REMOVED:
        (void)MVM_U32(a, MACHVM_A_SWAP_ID);
        (void)MVM_STR(a, MACHVM_A_SWAP_PATH);
        break;
    default: // SWAP_FULL names a store when the kernel has one to name
        break;
    }
    if (!a.ok()) {
        detail = a.detail("MACHVM_GENL_CMD_EVENT " + event_type_string(e.type));
        return bad_message();
    }
    return {};
}

// The text of a NETLINK_EXT_ACK error message, if the kernel sent one.
std::string extack_message(const nlmsgerr* e) {
    const auto* nlh =
        reinterpret_cast<const nlmsghdr*>(reinterpret_cast<const char*>(e) - NLMSG_HDRLEN);
    if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS))
        return {};
    std::size_t off = NLMSG_HDRLEN + sizeof(*e);
    if (!(nlh->nlmsg_flags & NLM_F_CAPPED) && e->msg.nlmsg_len > NLMSG_HDRLEN)
        off += NLMSG_ALIGN(e->msg.nlmsg_len - NLMSG_HDRLEN);
    const char* base = reinterpret_cast<const char*>(nlh);
    std::size_t end = nlh->nlmsg_len;
    while (off + NLA_HDRLEN <= end) {
        nlattr a;
        std::memcpy(&a, base + off, sizeof(a));
        if (a.nla_len < NLA_HDRLEN || off + a.nla_len > end)
            break;
        if ((a.nla_type & NLA_TYPE_MASK) == NLMSGERR_ATTR_MSG) {
            std::string s(base + off + NLA_HDRLEN, a.nla_len - NLA_HDRLEN);
            s.resize(std::strlen(s.c_str()));
            return s;
        }
        off += NLA_ALIGN(a.nla_len);
    }
    return {};
}

} // namespace

// ---- the client ----

namespace {

// The replies to one request, as the callbacks see them.
struct Replies {
    // Called for every reply message; an error fails the request (the
    // remaining replies are still read and dropped).
    std::function<std::error_code(nlmsghdr*, std::string& detail)> on_reply;

    int status = 1; // >0 waiting, 0 done, <0 -errno from the kernel
    std::error_code parse_error;
    std::string detail;
};

} // namespace

// One request and its replies.
struct AdminClient::Request {
    std::uint8_t cmd = 0;
    bool dump = false;
    std::optional<std::uint64_t> name; // MACHVM_A_OBJ_NAME
    // Puts the other attributes of the request; a negative libnl error.
    std::function<int(nl_msg*)> put;
    Replies replies;
};

namespace {

int on_valid(nl_msg* msg, void* arg) {
    auto* r = static_cast<Replies*>(arg);
    if (r->parse_error || !r->on_reply)
        return NL_SKIP;
    try {
        if (auto ec = r->on_reply(nlmsg_hdr(msg), r->detail))
            r->parse_error = ec;
    } catch (const std::bad_alloc&) {
        r->parse_error = std::make_error_code(std::errc::not_enough_memory);
    }
    return NL_OK;
}

int on_finish(nl_msg* msg, void* arg) {
    auto* r = static_cast<Replies*>(arg);
    // NLMSG_DONE carries the dump's error, if it failed part-way.
    nlmsghdr* nlh = nlmsg_hdr(msg);
    int err = 0;
    if (nlh->nlmsg_len >= NLMSG_LENGTH(sizeof(int)))
        std::memcpy(&err, NLMSG_DATA(nlh), sizeof(int));
    r->status = err < 0 ? err : 0;
    return NL_STOP;
}

int on_ack(nl_msg*, void* arg) {
    static_cast<Replies*>(arg)->status = 0;
    return NL_STOP;
}

int on_error(sockaddr_nl*, nlmsgerr* e, void* arg) {
    auto* r = static_cast<Replies*>(arg);
    r->status = e->error < 0 ? e->error : -EPROTO;
    try {
        r->detail = extack_message(e);
    } catch (...) {
    }
    return NL_STOP;
}

} // namespace

AdminClient::AdminClient(Sock sock, int family) noexcept
    : sock_(std::move(sock)), family_(family) {}
AdminClient::AdminClient(AdminClient&&) noexcept = default;
AdminClient& AdminClient::operator=(AdminClient&&) noexcept = default;
AdminClient::~AdminClient() = default;

Result<AdminClient> AdminClient::open() noexcept {
    Sock sk(nl_socket_alloc());
    if (!sk)
        return std::make_error_code(std::errc::not_enough_memory);
    if (int r = genl_connect(sk.get()); r < 0)
        return nl_error(r);
    int family = genl_ctrl_resolve(sk.get(), MACHVM_GENL_NAME);
    if (family == -NLE_OBJ_NOTFOUND)
        return make_error_code(AdminErrc::family_not_found);
    if (family < 0)
        return nl_error(family);
    // Every request says itself whether it wants an ACK: a dump must not.
    nl_socket_disable_auto_ack(sk.get());
    nl_socket_enable_msg_peek(sk.get()); // dump messages bigger than a page
    const int fd = nl_socket_get_fd(sk.get());
    const int one = 1;
    // The kernel's error text, and no copy of our request in errors.
    ::setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
    ::setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
    return AdminClient(std::move(sk), family);
}

std::error_code AdminClient::nl_fail(int nle) {
    try {
        detail_ = std::string("libnl: ") + nl_geterror(nle);
    } catch (...) {
    }
    return nl_error(nle);
}

Result<void> AdminClient::exchange(Request& req) {
    detail_.clear();
    Msg msg(nlmsg_alloc());
    if (!msg)
        return std::make_error_code(std::errc::not_enough_memory);
    const int flags = req.dump ? NLM_F_DUMP : NLM_F_ACK;
    if (!genlmsg_put(msg.get(), NL_AUTO_PORT, NL_AUTO_SEQ, family_, 0, flags, req.cmd,
                     MACHVM_GENL_VERSION))
        return std::make_error_code(std::errc::not_enough_memory);
    if (req.name && nla_put_u64(msg.get(), MACHVM_A_OBJ_NAME, *req.name) < 0)
        return std::make_error_code(std::errc::not_enough_memory);
    if (req.put) {
        if (int r = req.put(msg.get()); r < 0)
            return nl_fail(r);
    }
    Cb cb(nl_cb_alloc(NL_CB_DEFAULT));
    if (!cb)
        return std::make_error_code(std::errc::not_enough_memory);
    nl_cb_set(cb.get(), NL_CB_VALID, NL_CB_CUSTOM, on_valid, &req.replies);
    nl_cb_set(cb.get(), NL_CB_FINISH, NL_CB_CUSTOM, on_finish, &req.replies);
    nl_cb_set(cb.get(), NL_CB_ACK, NL_CB_CUSTOM, on_ack, &req.replies);
    nl_cb_err(cb.get(), NL_CB_CUSTOM, on_error, &req.replies);

    if (int r = nl_send_auto(sock_.get(), msg.get()); r < 0)
        return nl_fail(r);
    while (req.replies.status > 0) {
        int r = nl_recvmsgs(sock_.get(), cb.get());
        // An error message makes nl_recvmsgs fail too; status has it.
        if (r < 0 && req.replies.status > 0 && r != -NLE_INTR)
            return nl_fail(r);
    }
    if (req.replies.status < 0) {
        detail_ = req.replies.detail;
        return errno_code(-req.replies.status);
    }
    if (req.replies.parse_error) {
        detail_ = req.replies.detail;
        return req.replies.parse_error;
    }
    return {};
}

Result<Status> AdminClient::status() {
    Status s;
    bool got = false;
    Request req;
    req.cmd = MACHVM_GENL_CMD_GET_STATUS;
    req.replies.on_reply = [&](nlmsghdr* nlh, std::string& detail) -> std::error_code {
        nlattr* tb[MACHVM_A_MAX + 1];
        if (auto ec = parse_genl(nlh, tb, detail))
            return ec;
        Attrs a(tb);
        read_fields(a, fields::kStatus, s);
        if (!a.ok()) {
            detail = a.detail("MACHVM_GENL_CMD_GET_STATUS");
            return bad_message();
        }
        got = true;
        return {};
    };
    if (auto r = exchange(req); !r)
        return r.error();
    if (!got) {
        detail_ = "MACHVM_GENL_CMD_GET_STATUS: no reply";
        return bad_message();
    }
    try {
        s.module_version = module_release();
        s.tools_version = release();
    } catch (...) {
        return std::make_error_code(std::errc::not_enough_memory);
    }
    return s;
}

Result<std::vector<ObjectInfo>> AdminClient::objects() {
    std::vector<ObjectInfo> out;
    Request req;
    req.cmd = MACHVM_GENL_CMD_GET_OBJECT;
    req.dump = true;
    req.replies.on_reply = [&](nlmsghdr* nlh, std::string& detail) {
        return parse_objects(nlh, out, detail);
    };
    if (auto r = exchange(req); !r)
        return r.error();
    return out;
}

Result<ObjectInfo> AdminClient::object(std::uint64_t name) {
    std::vector<ObjectInfo> out;
    Request req;
    req.cmd = MACHVM_GENL_CMD_GET_OBJECT;
    req.name = name;
    req.replies.on_reply = [&](nlmsghdr* nlh, std::string& detail) {
        return parse_objects(nlh, out, detail);
    };
    if (auto r = exchange(req); !r)
        return r.error();
    if (out.size() != 1) {
        detail_ = "MACHVM_GENL_CMD_GET_OBJECT: " + std::to_string(out.size()) +
                  " objects in the reply, expected 1";
        return bad_message();
    }
    if (out[0].name != name) {
        detail_ = "MACHVM_GENL_CMD_GET_OBJECT: the reply is about object " +
                  std::to_string(out[0].name) + ", not " + std::to_string(name);
        return bad_message();
    }
    return out[0];
}

Result<Stats> AdminClient::stats() {
    Stats s;
    bool got = false;
    Request req;
    req.cmd = MACHVM_GENL_CMD_GET_STATS;
    req.replies.on_reply = [&](nlmsghdr* nlh, std::string& detail) -> std::error_code {
        nlattr* tb[MACHVM_A_MAX + 1];
        if (auto ec = parse_genl(nlh, tb, detail))
            return ec;
        if (!tb[MACHVM_A_STATS]) {
            detail = "MACHVM_GENL_CMD_GET_STATS: missing attribute MACHVM_A_STATS";
            return bad_message();
        }
        nlattr* st[MACHVM_A_STAT_MAX + 1];
        if (int r = nla_parse_nested(st, MACHVM_A_STAT_MAX, tb[MACHVM_A_STATS], stat_policy());
            r < 0) {
            detail = std::string("MACHVM_A_STATS: ") + nl_geterror(r);
            return bad_message();
        }
        Attrs a(st);
        read_fields(a, fields::kStats, s);
        if (!a.ok()) {
            detail = a.detail("MACHVM_A_STATS");
            return bad_message();
        }
        got = true;
        return {};
    };
    if (auto r = exchange(req); !r)
        return r.error();
    if (!got) {
        detail_ = "MACHVM_GENL_CMD_GET_STATS: no reply";
        return bad_message();
    }
    return s;
}

Result<void> AdminClient::destroy(std::uint64_t name) {
    Request req;
    req.cmd = MACHVM_GENL_CMD_DESTROY_OBJECT;
    req.name = name;
    return exchange(req);
}

// ---- pageout ----

namespace {

// The request's doit with its reply as GET_PAGEOUT's.
struct PageoutReply {
    PageoutInfo info;
    bool got = false;
    const char* cmd;

    void arm(Replies& r) {
        r.on_reply = [this](nlmsghdr* nlh, std::string& detail) -> std::error_code {
            if (auto ec = parse_pageout(nlh, info, cmd, detail))
                return ec;
            got = true;
            return {};
        };
    }
};

} // namespace

Result<PageoutInfo> AdminClient::pageout() {
    PageoutReply rep{{}, false, "MACHVM_GENL_CMD_GET_PAGEOUT"};
    Request req;
    req.cmd = MACHVM_GENL_CMD_GET_PAGEOUT;
    rep.arm(req.replies);
    if (auto r = exchange(req); !r)
        return r.error();
    if (!rep.got) {
        detail_ = std::string(rep.cmd) + ": no reply";
        return bad_message();
    }
    return rep.info;
}

Result<PageoutInfo> AdminClient::set_pageout(const PageoutSettings& s) {
    detail_.clear();
    if (s.empty()) {
        detail_ = "MACHVM_GENL_CMD_SET_PAGEOUT: nothing to set";
        return errno_code(EINVAL);
    }
    PageoutReply rep{{}, false, "MACHVM_GENL_CMD_SET_PAGEOUT"};
    Request req;
    req.cmd = MACHVM_GENL_CMD_SET_PAGEOUT;
    req.put = [&s](nl_msg* m) {
        int r = 0;
        if (s.limit && r >= 0)
            r = nla_put_u64(m, MACHVM_A_PO_LIMIT, *s.limit);
        if (s.high && r >= 0)
            r = nla_put_u32(m, MACHVM_A_PO_HIGH, *s.high);
        if (s.low && r >= 0)
            r = nla_put_u32(m, MACHVM_A_PO_LOW, *s.low);
        if (s.obj_limit && r >= 0)
            r = nla_put_u64(m, MACHVM_A_PO_OBJ_LIMIT, *s.obj_limit);
        if (s.batch && r >= 0)
            r = nla_put_u32(m, MACHVM_A_PO_BATCH, *s.batch);
        if (s.interval_ms && r >= 0)
            r = nla_put_u32(m, MACHVM_A_PO_INTERVAL_MS, *s.interval_ms);
        return r;
    };
    rep.arm(req.replies);
    if (auto r = exchange(req); !r)
        return r.error();
    if (!rep.got) {
        detail_ = std::string(rep.cmd) + ": no reply";
        return bad_message();
    }
    return rep.info;
}

Result<PageoutInfo> AdminClient::set_object_limit(std::uint64_t name, std::uint64_t limit) {
    PageoutReply rep{{}, false, "MACHVM_GENL_CMD_SET_PAGEOUT"};
    Request req;
    req.cmd = MACHVM_GENL_CMD_SET_PAGEOUT;
    req.name = name;
    req.put = [limit](nl_msg* m) { return nla_put_u64(m, MACHVM_A_OBJ_LIMIT, limit); };
    rep.arm(req.replies);
    if (auto r = exchange(req); !r)
        return r.error();
    if (!rep.got) {
        detail_ = std::string(rep.cmd) + ": no reply";
        return bad_message();
    }
    return rep.info;
}

Result<PageoutResult> AdminClient::run_pageout(const PageoutRun& run) {
    PageoutResult res;
    bool got = false;
    Request req;
    req.cmd = MACHVM_GENL_CMD_RUN_PAGEOUT;
    req.name = run.object;
    req.put = [&run](nl_msg* m) {
        int r = 0;
        if (run.target)
            r = nla_put_u64(m, MACHVM_A_PO_TARGET, *run.target);
        if (run.force && r >= 0)
            r = nla_put_u8(m, MACHVM_A_PO_FORCE, 1);
        return r;
    };
    req.replies.on_reply = [&](nlmsghdr* nlh, std::string& detail) -> std::error_code {
        nlattr* tb[MACHVM_A_MAX + 1];
        if (auto ec = parse_genl(nlh, tb, detail))
            return ec;
        Attrs a(tb);
        read_fields(a, fields::kPageoutResult, res);
        if (!a.ok()) {
            detail = a.detail("MACHVM_GENL_CMD_RUN_PAGEOUT");
            return bad_message();
        }
        got = true;
        return {};
    };
    if (auto r = exchange(req); !r)
        return r.error();
    if (!got) {
        detail_ = "MACHVM_GENL_CMD_RUN_PAGEOUT: no reply";
        return bad_message();
    }
    return res;
}

// ---- swap ----

Result<SwapInfo> AdminClient::swap_add(const std::string& path, std::uint64_t size,
                                       std::int32_t prio) {
    std::vector<SwapInfo> out;
    Request req;
    req.cmd = MACHVM_GENL_CMD_SWAP_ADD;
    req.put = [&](nl_msg* m) {
        int r = nla_put_string(m, MACHVM_A_SWAP_PATH, path.c_str());
        if (r >= 0)
            r = nla_put_u64(m, MACHVM_A_SWAP_SIZE, size);
        if (r >= 0)
            r = nla_put_s32(m, MACHVM_A_SWAP_PRIO, prio);
        return r;
    };
    req.replies.on_reply = [&](nlmsghdr* nlh, std::string& detail) {
        return parse_swaps(nlh, out, detail);
    };
    if (auto r = exchange(req); !r)
        return r.error();
    if (out.size() != 1) {
        detail_ = "MACHVM_GENL_CMD_SWAP_ADD: " + std::to_string(out.size()) +
                  " stores in the reply, expected 1";
        return bad_message();
    }
    return std::move(out[0]);
}

Result<void> AdminClient::swap_remove(std::uint32_t id) {
    Request req;
    req.cmd = MACHVM_GENL_CMD_SWAP_REMOVE;
    req.put = [id](nl_msg* m) { return nla_put_u32(m, MACHVM_A_SWAP_ID, id); };
    return exchange(req);
}

Result<std::vector<SwapInfo>> AdminClient::swaps() {
    std::vector<SwapInfo> out;
    Request req;
    req.cmd = MACHVM_GENL_CMD_GET_SWAP;
    req.dump = true;
    req.replies.on_reply = [&](nlmsghdr* nlh, std::string& detail) {
        return parse_swaps(nlh, out, detail);
    };
    if (auto r = exchange(req); !r)
        return r.error();
    return out;
}

Result<SwapInfo> AdminClient::swap(std::uint32_t id) {
    std::vector<SwapInfo> out;
    Request req;
    req.cmd = MACHVM_GENL_CMD_GET_SWAP;
    req.put = [id](nl_msg* m) { return nla_put_u32(m, MACHVM_A_SWAP_ID, id); };
    req.replies.on_reply = [&](nlmsghdr* nlh, std::string& detail) {
        return parse_swaps(nlh, out, detail);
    };
    if (auto r = exchange(req); !r)
        return r.error();
    if (out.size() != 1 || out[0].id != id) {
        detail_ = "MACHVM_GENL_CMD_GET_SWAP: the reply is not about store " + std::to_string(id);
        return bad_message();
    }
    return std::move(out[0]);
}

// ---- events ----

namespace {

struct EventSink {
    std::vector<Event>* queue;
    std::error_code error; // the first malformed event
    std::string detail;
};

int accept_any_seq(nl_msg*, void*) {
    return NL_OK;
}

int on_event(nl_msg* msg, void* arg) {
    auto* sink = static_cast<EventSink*>(arg);
    nlmsghdr* nlh = nlmsg_hdr(msg);
    if (nlh->nlmsg_len < NLMSG_LENGTH(GENL_HDRLEN) ||
        genlmsg_hdr(nlh)->cmd != MACHVM_GENL_CMD_EVENT)
        return NL_SKIP;
    try {
        Event e;
        if (auto ec = parse_event(nlh, e, sink->detail)) {
            if (!sink->error)
                sink->error = ec;
            return NL_SKIP;
        }
        sink->queue->push_back(e);
    } catch (const std::bad_alloc&) {
        if (!sink->error)
            sink->error = std::make_error_code(std::errc::not_enough_memory);
    }
    return NL_OK;
}

} // namespace

Result<void> AdminClient::subscribe_events() {
    detail_.clear();
    if (events_)
        return {};
    Sock sk(nl_socket_alloc());
    if (!sk)
        return std::make_error_code(std::errc::not_enough_memory);
    if (int r = genl_connect(sk.get()); r < 0)
        return nl_fail(r);
    int group = genl_ctrl_resolve_grp(sk.get(), MACHVM_GENL_NAME, MACHVM_GENL_MCGRP_EVENTS);
    if (group == -NLE_OBJ_NOTFOUND) {
        // The module may have gone since open().
        if (genl_ctrl_resolve(sk.get(), MACHVM_GENL_NAME) == -NLE_OBJ_NOTFOUND)
            return make_error_code(AdminErrc::family_not_found);
        return make_error_code(AdminErrc::group_not_found);
    }
    if (group < 0)
        return nl_fail(group);
    // Multicast messages carry sequence number 0.
    nl_socket_disable_seq_check(sk.get());
    nl_socket_enable_msg_peek(sk.get());
    // Room for bursts (objects created by the thousand); capped by
    // net.core.rmem_max.
    nl_socket_set_buffer_size(sk.get(), 4 << 20, 0);
    if (int r = nl_socket_add_membership(sk.get(), group); r < 0)
        return nl_fail(r);
    if (int r = nl_socket_set_nonblocking(sk.get()); r < 0)
        return nl_fail(r);
    events_ = std::move(sk);
    return {};
}

int AdminClient::event_fd() const noexcept {
    return events_ ? nl_socket_get_fd(events_.get()) : -1;
}

Result<std::optional<Event>> AdminClient::next_event(std::chrono::milliseconds timeout) {
    using Clock = std::chrono::steady_clock;
    detail_.clear();
    if (!events_)
        return std::make_error_code(std::errc::not_connected);
    const bool forever = timeout.count() < 0;
    const auto deadline = Clock::now() + (forever ? std::chrono::milliseconds(0) : timeout);
    Cb cb(nl_cb_alloc(NL_CB_DEFAULT));
    if (!cb)
        return std::make_error_code(std::errc::not_enough_memory);
    EventSink sink{&queued_, {}, {}};
    nl_cb_set(cb.get(), NL_CB_VALID, NL_CB_CUSTOM, on_event, &sink);
    // Multicast messages carry sequence number 0; a callback set of our own
    // does not inherit nl_socket_disable_seq_check().
    nl_cb_set(cb.get(), NL_CB_SEQ_CHECK, NL_CB_CUSTOM, accept_any_seq, nullptr);
    for (;;) {
        if (!queued_.empty()) {
            Event e = queued_.front();
            queued_.erase(queued_.begin());
            return std::optional<Event>(e);
        }
        int wait_ms = -1;
        if (!forever) {
            auto left =
                std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
            wait_ms = left > 0 ? static_cast<int>(std::min<long long>(left, 1 << 30)) : 0;
        }
        pollfd p{nl_socket_get_fd(events_.get()), POLLIN, 0};
        int n = ::poll(&p, 1, wait_ms);
        if (n < 0)
            return errno_code(); // EINTR: the caller looks at its signals
        if (n == 0)
            return std::optional<Event>();
        errno = 0;
        int r = nl_recvmsgs(events_.get(), cb.get());
        if (r < 0 && r != -NLE_AGAIN && r != -NLE_INTR) {
            // libnl reports the overrun's ENOBUFS as NLE_NOMEM.
            if (r == -NLE_NOMEM && (errno == ENOBUFS || errno == 0))
                return errno_code(ENOBUFS);
            return nl_fail(r);
        }
        if (sink.error) {
            detail_ = sink.detail;
            return sink.error;
        }
    }
}

// ---- names ----

namespace {
std::string unknown(std::string_view what, std::uint64_t v) {
    return std::string(what) + "(" + std::to_string(v) + ")";
}
} // namespace

std::string object_state_string(std::uint32_t state) {
    switch (state) {
    case MACHVM_OBJ_STATE_NEW:
        return "new";
    case MACHVM_OBJ_STATE_INIT:
        return "init";
    case MACHVM_OBJ_STATE_READY:
        return "ready";
    case MACHVM_OBJ_STATE_DESTROYED:
        return "destroyed";
    }
    return unknown("unknown", state);
}

std::string pager_state_string(std::uint32_t state) {
    switch (state) {
    case MACHVM_PAGER_STATE_LIVE:
        return "live";
    case MACHVM_PAGER_STATE_DEAD:
        return "dead";
    case MACHVM_PAGER_STATE_NONE:
        return "none";
    }
    return unknown("unknown", state);
}

std::string object_kind_string(std::uint32_t kind) {
    switch (kind) {
    case MACHVM_OBJ_KIND_PAGER:
        return "pager";
    case MACHVM_OBJ_KIND_ANON:
        return "anon";
    }
    return unknown("unknown", kind);
}

std::string swap_kind_string(std::uint32_t kind) {
    switch (kind) {
    case MACHVM_SWAP_KIND_FILE:
        return "file";
    case MACHVM_SWAP_KIND_BDEV:
        return "bdev";
    }
    return unknown("unknown", kind);
}

std::string copy_strategy_string(std::uint32_t copy) {
    switch (copy) {
    case MACHVM_COPY_NONE:
        return "none";
    case MACHVM_COPY_CALL:
        return "call";
    case MACHVM_COPY_DELAY:
        return "delay";
    }
    return unknown("unknown", copy);
}

std::string event_type_string(std::uint32_t type) {
    switch (type) {
    case MACHVM_EVENT_OBJECT_CREATED:
        return "OBJECT_CREATED";
    case MACHVM_EVENT_OBJECT_TERMINATED:
        return "OBJECT_TERMINATED";
    case MACHVM_EVENT_OBJECT_DESTROYED:
        return "OBJECT_DESTROYED";
    case MACHVM_EVENT_PAGER_ATTACHED:
        return "PAGER_ATTACHED";
    case MACHVM_EVENT_PAGER_DIED:
        return "PAGER_DIED";
    case MACHVM_EVENT_PAGER_TIMEOUT:
        return "PAGER_TIMEOUT";
    case MACHVM_EVENT_SWAP_ADDED:
        return "SWAP_ADDED";
    case MACHVM_EVENT_SWAP_REMOVED:
        return "SWAP_REMOVED";
    case MACHVM_EVENT_SWAP_FULL:
        return "SWAP_FULL";
    }
    return unknown("UNKNOWN", type);
}

std::string prot_string(std::uint32_t prot) {
    std::string s = "---";
    if (prot & 1) // PROT_READ
        s[0] = 'r';
    if (prot & 2) // PROT_WRITE
        s[1] = 'w';
    if (prot & 4) // PROT_EXEC
        s[2] = 'x';
    return s;
}

std::vector<std::string> feature_names(std::uint64_t features) {
    std::vector<std::string> v;
    for (unsigned bit = 0; bit < 64; ++bit) {
        const std::uint64_t f = std::uint64_t{1} << bit;
        if (!(features & f))
            continue;
        const char* name = nullptr;
        for (const fields::FeatureName& n : fields::kFeatures)
            if (n.flag == f)
                name = n.name;
        v.push_back(name ? std::string(name) : "bit" + std::to_string(bit));
    }
    return v;
}

std::string format_size(std::uint64_t bytes) {
    static const char suffix[] = "KMGTPE";
    if (bytes == 0)
        return "0";
    int i = -1;
    while (i < 5 && bytes % 1024 == 0) {
        bytes /= 1024;
        ++i;
    }
    std::string s = std::to_string(bytes);
    if (i >= 0)
        s += suffix[i];
    return s;
}

// ---- JSON ----

namespace {

// One line, no blanks; UTF-8 verbatim; a byte that is not part of valid
// UTF-8 becomes U+FFFD (the replacement character), never a raw byte.
std::string dump(const Json& j) {
    return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

template <typename S> std::uint64_t number_of(const S& s, const fields::Member<S>& m) {
    return std::visit(
        [&](auto p) -> std::uint64_t {
            using T = std::remove_cvref_t<decltype(s.*p)>;
            if constexpr (std::is_same_v<T, std::string>)
                return 0;
            else if constexpr (std::is_same_v<T, std::int32_t>)
                return static_cast<std::uint64_t>(static_cast<std::int64_t>(s.*p));
            else
                return static_cast<std::uint64_t>(s.*p);
        },
        m);
}

template <typename S> std::string string_of(const S& s, const fields::Member<S>& m) {
    const auto* p = std::get_if<std::string S::*>(&m);
    return p ? s.**p : std::string();
}

// A field's value as `as` names it: an enum's name, "rw-", the number.
template <typename S> std::string name_of(const S& s, const fields::Field<S>& f) {
    const std::uint64_t v = number_of(s, f.member);
    const auto v32 = static_cast<std::uint32_t>(v);
    switch (f.as) {
    case fields::As::Bool:
        return v ? "yes" : "no";
    case fields::As::Prot:
        return prot_string(v32);
    case fields::As::ObjState:
        return object_state_string(v32);
    case fields::As::PagerState:
        return pager_state_string(v32);
    case fields::As::Copy:
        return copy_strategy_string(v32);
    case fields::As::ObjKind:
        return object_kind_string(v32);
    case fields::As::SwapKind:
        return swap_kind_string(v32);
    case fields::As::String:
        return string_of(s, f.member);
    case fields::As::Features:
    case fields::As::Number:
        break;
    }
    if (std::holds_alternative<std::int32_t S::*>(f.member))
        return std::to_string(static_cast<std::int64_t>(v));
    return std::to_string(v);
}

template <typename S> Json json_value(const S& s, const fields::Field<S>& f) {
    const std::uint64_t v = number_of(s, f.member);
    switch (f.as) {
    case fields::As::Number:
        if (std::holds_alternative<std::int32_t S::*>(f.member))
            return static_cast<std::int64_t>(v);
        return v;
    case fields::As::Bool:
        return v != 0;
    case fields::As::Features:
        return feature_names(v);
    default:
        return name_of(s, f);
    }
}

template <typename S, std::size_t N>
Json json_fields(const S& s, const fields::Field<S> (&fs)[N], Json j = Json::object()) {
    for (const fields::Field<S>& f : fs)
        if (f.key)
            j[f.key] = json_value(s, f);
    return j;
}

// Seconds since the epoch, rounded to the millisecond.
Json json_time(double t) {
    return std::round(t * 1000.0) / 1000.0;
}

Json with_time(std::optional<double> time) {
    Json j = Json::object();
    if (time)
        j["time"] = json_time(*time);
    return j;
}

template <typename T> std::string json_array(const std::vector<T>& v) {
    if (v.empty())
        return "[]\n";
    std::string out = "[\n";
    for (std::size_t i = 0; i < v.size(); ++i) {
        out += to_json(v[i]);
        out += i + 1 < v.size() ? ",\n" : "\n";
    }
    out += "]\n";
    return out;
}

} // namespace

std::string json_string(std::string_view s) {
    return dump(Json(std::string(s)));
}

std::string to_json(const Json& j) {
    return dump(j);
}

std::string to_json(const Status& s) {
    return dump(json_fields(s, fields::kStatus));
}

std::string to_json(const ObjectInfo& o) {
    return dump(json_fields(o, fields::kObject));
}

std::string to_json(const Stats& s, std::optional<double> time) {
    return dump(json_fields(s, fields::kStats, with_time(time)));
}

std::string to_json(const Event& e, std::optional<double> time) {
    Json j = with_time(time);
    j["event"] = event_type_string(e.type);
    j["type"] = e.type;
    if (e.name)
        j["name"] = *e.name;
    if (e.pager_pid)
        j["pager_pid"] = *e.pager_pid;
    if (e.offset)
        j["offset"] = *e.offset;
    if (e.swap_id)
        j["swap_id"] = *e.swap_id;
    if (e.swap_path)
        j["swap_path"] = *e.swap_path;
    return dump(j);
}

std::string to_json(const PageoutInfo& p) {
    return dump(json_fields(p, fields::kPageout));
}

std::string to_json(const PageoutResult& r) {
    return dump(json_fields(r, fields::kPageoutResult));
}

std::string to_json(const SwapInfo& w) {
    return dump(json_fields(w, fields::kSwap));
}

std::string to_json(const std::vector<ObjectInfo>& objects) {
    return json_array(objects);
}

std::string to_json(const std::vector<SwapInfo>& swaps) {
    return json_array(swaps);
}

// ---- tables ----

std::string format_table(const std::vector<Column>& columns,
                         const std::vector<std::vector<std::string>>& rows) {
    std::vector<std::size_t> width(columns.size());
    for (std::size_t c = 0; c < columns.size(); ++c)
        width[c] = columns[c].title.size();
    for (const auto& row : rows)
        for (std::size_t c = 0; c < columns.size() && c < row.size(); ++c)
            width[c] = std::max(width[c], row[c].size());
    std::string out;
    auto line = [&](auto cell) {
        std::string l;
        for (std::size_t c = 0; c < columns.size(); ++c) {
            const std::string& s = cell(c);
            const std::size_t pad = width[c] - s.size();
            const bool last = c + 1 == columns.size();
            if (c)
                l += "  ";
            if (columns[c].right)
                l.append(pad, ' ');
            l += s;
            if (!columns[c].right && !last)
                l.append(pad, ' ');
        }
        while (!l.empty() && l.back() == ' ')
            l.pop_back();
        out += l;
        out += '\n';
    };
    line([&](std::size_t c) -> const std::string& { return columns[c].title; });
    static const std::string empty;
    for (const auto& row : rows)
        line([&](std::size_t c) -> const std::string& { return c < row.size() ? row[c] : empty; });
    return out;
}

namespace {

using KeyValues = std::vector<std::pair<std::string, std::string>>;

std::string format_key_values(const KeyValues& kv) {
    std::size_t w = 0;
    for (const auto& [k, v] : kv)
        w = std::max(w, k.size());
    std::string out;
    for (const auto& [k, v] : kv) {
        out += k;
        out.append(w - k.size() + 2, ' ');
        out += v;
        out += '\n';
    }
    return out;
}

std::string join(const std::vector<std::string>& v, std::string_view sep) {
    std::string out;
    for (std::size_t i = 0; i < v.size(); ++i) {
        if (i)
            out += sep;
        out += v[i];
    }
    return out;
}

std::string hex(std::uint64_t v) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "0x%" PRIx64, v);
    return buf;
}

// A path as one word: verbatim, or as a JSON string when it has blanks,
// quotes, backslashes, control characters or bytes that are not UTF-8 (or
// is empty).
std::string path_cell(const std::string& p) {
    bool plain = !p.empty() && json_string(p) == "\"" + p + "\"";
    for (char ch : p) {
        const auto c = static_cast<unsigned char>(ch);
        if (c <= 0x20 || c == 0x7f)
            plain = false;
    }
    return plain ? p : json_string(p);
}

std::string clock_string(double time) {
    const auto secs = static_cast<time_t>(time);
    int ms = static_cast<int>((time - static_cast<double>(secs)) * 1000.0);
    ms = std::clamp(ms, 0, 999);
    struct tm tm;
    if (!::localtime_r(&secs, &tm))
        return "??:??:??.???";
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%02d:%02d:%02d.%03d", tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
    return buf;
}

// A field's line in the key-value form.
template <typename S>
std::string text_of(const S& s, const fields::Field<S>& f, std::uint32_t page_size) {
    const std::uint64_t v = number_of(s, f.member);
    switch (f.text) {
    case fields::Text::Plain:
        break;
    case fields::Text::Bytes: {
        std::string t = std::to_string(v);
        if (format_size(v) != t)
            t += " (" + format_size(v) + ")";
        return t;
    }
    case fields::Text::Pages:
        return format_pages(v, page_size);
    case fields::Text::PagesOrNone:
        return v ? format_pages(v, page_size) : "none";
    case fields::Text::CountOrNone:
        return v ? std::to_string(v) + f.unit : "none";
    case fields::Text::PageCount:
        return format_pages(v, 0);
    case fields::Text::PercentOfLimit: {
        std::string t = std::to_string(v) + "%";
        if constexpr (std::is_same_v<S, PageoutInfo>)
            if (s.limit)
                t += " of the limit, " +
                     format_pages(s.limit / 100 * v + s.limit % 100 * v / 100, page_size);
        return t;
    }
    case fields::Text::Features: {
        const std::vector<std::string> names = feature_names(v);
        return (names.empty() ? std::string("none") : join(names, " ")) + " (" + hex(v) + ")";
    }
    case fields::Text::Pager:
        if constexpr (std::is_same_v<S, ObjectInfo>) {
            if (s.pager_state == MACHVM_PAGER_STATE_NONE)
                return "none (default pager only)";
            return "pid " + std::to_string(s.pager_pid) + ", " + pager_state_string(s.pager_state);
        }
        break;
    case fields::Text::Path:
        return path_cell(string_of(s, f.member));
    case fields::Text::Stuck:
        return v ? "yes (over the limit and nothing can go)" : "no";
    case fields::Text::Direct:
        return v ? "direct (O_DIRECT)" : "cached";
    case fields::Text::OrUnknown: {
        const std::string t = string_of(s, f.member);
        return t.empty() ? "unknown" : t;
    }
    }
    return name_of(s, f) + f.unit;
}

template <typename S, std::size_t N>
std::string format_fields(const S& s, const fields::Field<S> (&fs)[N],
                          std::uint32_t page_size = 0) {
    KeyValues kv;
    for (const fields::Field<S>& f : fs)
        if (f.title)
            kv.emplace_back(f.title, text_of(s, f, page_size));
    return format_key_values(kv);
}

// A field's cell in the table form.
template <typename S>
std::string cell_of(const S& s, const fields::Field<S>& f, std::uint32_t page_size) {
    const std::uint64_t v = number_of(s, f.member);
    switch (f.cell) {
    case fields::Cell::Plain:
        break;
    case fields::Cell::Size:
        return format_size(v);
    case fields::Cell::DashIfZero:
        return v ? std::to_string(v) : "-";
    case fields::Cell::Pager:
        if constexpr (std::is_same_v<S, ObjectInfo>) {
            if (s.pager_state == MACHVM_PAGER_STATE_NONE)
                return "none";
            std::string t = std::to_string(s.pager_pid);
            if (s.pager_state != MACHVM_PAGER_STATE_LIVE)
                t += " (" + pager_state_string(s.pager_state) + ")";
            return t;
        }
        break;
    case fields::Cell::SlotsSize:
        if (page_size && v <= ~std::uint64_t{0} / page_size)
            return format_size(v * page_size);
        return "?";
    case fields::Cell::Path:
        return path_cell(string_of(s, f.member));
    case fields::Cell::Direct:
        return v ? "direct" : "cached";
    }
    return name_of(s, f);
}

// The table of `rows`, one column per field with a `col`, in `col` order;
// numbers right-aligned.
template <typename S, std::size_t N>
std::string format_rows(const std::vector<S>& rows, const fields::Field<S> (&fs)[N],
                        std::uint32_t page_size = 0) {
    std::vector<const fields::Field<S>*> cols;
    for (const fields::Field<S>& f : fs)
        if (f.col >= 0)
            cols.push_back(&f);
    std::sort(cols.begin(), cols.end(), [](auto* a, auto* b) { return a->col < b->col; });
    std::vector<Column> header;
    for (const auto* f : cols)
        header.push_back(
            {f->column, f->as == fields::As::Number && f->cell != fields::Cell::Pager});
    std::vector<std::vector<std::string>> cells;
    cells.reserve(rows.size());
    for (const S& s : rows) {
        std::vector<std::string> row;
        for (const auto* f : cols)
            row.push_back(cell_of(s, *f, page_size));
        cells.push_back(std::move(row));
    }
    return format_table(header, cells);
}

constexpr std::size_t kStatWidth = 11;

} // namespace

std::string format_status(const Status& s) {
    return format_fields(s, fields::kStatus);
}

std::string format_objects(const std::vector<ObjectInfo>& objects) {
    return format_rows(objects, fields::kObject);
}

std::string format_object(const ObjectInfo& o) {
    return format_fields(o, fields::kObject);
}

std::string format_stats(const Stats& s) {
    return format_fields(s, fields::kStats);
}

std::string format_stats_header() {
    std::string out = "TIME        ";
    for (const auto& f : fields::kStats) {
        if (!f.column)
            continue;
        out += ' ';
        out.append(kStatWidth - std::strlen(f.column), ' ');
        out += f.column;
    }
    out += '\n';
    return out;
}

std::string format_stats_row(const Stats& cur, const Stats* prev, double time) {
    std::string out = clock_string(time);
    for (const auto& f : fields::kStats) {
        if (!f.column)
            continue;
        std::uint64_t v = number_of(cur, f.member);
        if (prev && !f.gauge)
            v -= number_of(*prev, f.member); // counters only grow; wraps are the kernel's
        std::string s = std::to_string(v);
        out += ' ';
        if (s.size() < kStatWidth)
            out.append(kStatWidth - s.size(), ' ');
        out += s;
    }
    out += '\n';
    return out;
}

std::string format_event(const Event& e, double time) {
    std::string out = clock_string(time) + " " + event_type_string(e.type);
    if (e.name)
        out += " name=" + std::to_string(*e.name);
    if (e.pager_pid)
        out += " pager_pid=" + std::to_string(*e.pager_pid);
    if (e.offset)
        out += " offset=" + std::to_string(*e.offset);
    if (e.swap_id)
        out += " swap_id=" + std::to_string(*e.swap_id);
    if (e.swap_path)
        out += " path=" + path_cell(*e.swap_path);
    return out;
}

std::string format_pages(std::uint64_t pages, std::uint32_t page_size) {
    std::string s = std::to_string(pages) + (pages == 1 ? " page" : " pages");
    if (page_size && pages && pages <= ~std::uint64_t{0} / page_size)
        s += " (" + format_size(pages * page_size) + ")";
    return s;
}

std::string format_pageout(const PageoutInfo& p, std::uint32_t page_size) {
    return format_fields(p, fields::kPageout, page_size);
}

std::string format_pageout_result(const PageoutResult& r) {
    return format_fields(r, fields::kPageoutResult);
}

std::string format_swaps(const std::vector<SwapInfo>& swaps, std::uint32_t page_size) {
    return format_rows(swaps, fields::kSwap, page_size);
}

std::string format_swap(const SwapInfo& w, std::uint32_t page_size) {
    return format_fields(w, fields::kSwap, page_size);
}

} // namespace machvm

// ---- machvmctl's command line ----

namespace machvm::ctl {

namespace {

const char kToolHelp[] =
    "NAME\n"
    "       machvmctl - inspect and administer the machvm module\n"
    "\n"
    "SYNOPSIS\n"
    "       machvmctl [--json] SUBCOMMAND [OPTIONS] [ARGUMENTS]\n"
    "       machvmctl [SUBCOMMAND] --help\n"
    "       machvmctl help [SUBCOMMAND]\n"
    "\n"
    "DESCRIPTION\n"
    "       machvmctl talks to the machvm kernel module over its generic netlink\n"
    "       family \"machvm\": it shows the module's status, its memory objects\n"
    "       and counters, destroys objects, tunes and runs the pageout daemon,\n"
    "       adds and removes the default pager's swap stores, and follows the\n"
    "       module's \"events\" multicast group.  Output is a table for people\n"
    "       by default, and JSON with --json.\n"
    "\n"
    "       Everyone may look; object destroy, pageout set, pageout run, swap\n"
    "       add and swap remove need CAP_SYS_ADMIN.\n"
    "       Objects are named by their object name: the number in the NAME\n"
    "       column of 'machvmctl objects' (and what MACHVM_IOC_REGION returns),\n"
    "       unique while the module is loaded.\n"
    "\n"
    "SUBCOMMANDS\n"
    "       status\n"
    "              Module and tools releases, ABI version, page size,\n"
    "              features, number of objects and of pager endpoints.\n"
    "       objects\n"
    "              Every object: size, state, resident pages, mappings, its\n"
    "              pager and its counters.\n"
    "       object show NAME\n"
    "              Everything about one object, attributes included.\n"
    "       object destroy NAME\n"
    "              Destroy an object as its pager's DESTROY would: mappings lose\n"
    "              their pages and every later fault on them gets SIGBUS.\n"
    "              Needs CAP_SYS_ADMIN.\n"
    "       stats [--watch SECONDS] [--count N]\n"
    "              The module's global counters, once or every SECONDS.\n"
    "       events [--count N] [--timeout SECONDS]\n"
    "              Follow the module's events (objects created, terminated,\n"
    "              destroyed; pagers attached, dead, timed out; swap stores\n"
    "              added, removed, full), one line each, as they come.\n"
    "       pageout show\n"
    "              The pageout daemon's tunables and state.\n"
    "       pageout set [--limit PAGES] [--high PCT] [--low PCT]\n"
    "                   [--object-limit PAGES] [--batch N] [--interval-ms MS]\n"
    "       pageout set --object NAME --limit PAGES\n"
    "              Change the tunables, or one object's resident limit.\n"
    "              Needs CAP_SYS_ADMIN.\n"
    "       pageout run [--target PAGES] [--object NAME] [--force]\n"
    "              One pageout pass now.  Needs CAP_SYS_ADMIN.\n"
    "       swap add PATH [--size SIZE] [--prio N]\n"
    "              Add a swap file or partition for the default pager.\n"
    "              Needs CAP_SYS_ADMIN.\n"
    "       swap remove ID\n"
    "              Read its pages back and remove a swap store.  Needs\n"
    "              CAP_SYS_ADMIN.\n"
    "       swap list\n"
    "              Every swap store: size, slots used, I/O counts.\n"
    "       swap show ID\n"
    "              One swap store.\n"
    "       help [SUBCOMMAND]\n"
    "              This manual, or a subcommand's.\n"
    "\n"
    "       'machvmctl SUBCOMMAND --help' describes each one, its options and\n"
    "       its JSON fields.\n"
    "\n"
    "OPTIONS\n"
    "       --json\n"
    "              Print JSON instead of tables, before or after the subcommand.\n"
    "              status, object show, stats, pageout and swap add print one\n"
    "              object; objects and swap list an array (one element per\n"
    "              line); stats --watch and events print one object per line\n"
    "              (JSON Lines).  Messages still go to stderr as text.\n"
    "              Strings are UTF-8; a byte of a swap path that is not part\n"
    "              of valid UTF-8 is shown as U+FFFD, the replacement\n"
    "              character, so the output is always valid JSON (tables\n"
    "              quote such a path).\n"
    "       -h, --help\n"
    "              Print this manual, or the subcommand's, and exit.\n"
    "\n"
    "EXIT STATUS\n"
    "       0      Success; also events and stats --watch stopped by SIGINT or\n"
    "              SIGTERM.\n"
    "       1      The operation failed; stderr says which, with the errno text.\n"
    "              Also events --count N when --timeout ends it first.\n"
    "              Also a value the module refuses (EINVAL, with its reason).\n"
    "       2      Bad command line (unknown subcommand or option, a NAME or\n"
    "              number that does not parse or is out of range).\n"
    "       3      The machvm module is not loaded: no generic netlink family\n"
    "              \"machvm\".\n"
    "       4      Permission denied (EPERM, EACCES): a change (object destroy,\n"
    "              pageout set/run, swap add/remove) without CAP_SYS_ADMIN.\n"
    "       5      No such object or swap store (ENOENT).\n"
    "\n"
    "EXAMPLES\n"
    "       machvmctl status\n"
    "       machvmctl objects\n"
    "       machvmctl objects --json | jq '.[] | select(.state == \"ready\") | .name'\n"
    "       machvmctl object show 12\n"
    "       sudo machvmctl object destroy 12\n"
    "       machvmctl stats --watch 1\n"
    "       machvmctl events --json --count 10 --timeout 30\n"
    "       sudo machvmctl swap add /var/machvm.swap --size 1G\n"
    "       sudo machvmctl pageout set --limit 65536 --high 90 --low 80\n";

const char kStatusHelp[] =
    "NAME\n"
    "       machvmctl status - the module's status\n"
    "\n"
    "SYNOPSIS\n"
    "       machvmctl status [--json]\n"
    "\n"
    "DESCRIPTION\n"
    "       Prints the module's release (/sys/module/machvm/version) and the\n"
    "       tools' (this machvmctl's), the module's ABI version, page size,\n"
    "       features, and how many objects and pager endpoints exist now\n"
    "       (MACHVM_GENL_CMD_GET_STATUS).  Every subcommand first compares\n"
    "       the module's ABI version with the one machvmctl was built for,\n"
    "       and if they differ says which is newer, with both releases, and\n"
    "       exits with 1.\n"
    "\n"
    "JSON\n"
    "       One object: module_version (\"\" if the module does not say),\n"
    "       tools_version, abi_version, page_size, features (the MACHVM_F_*\n"
    "       bits as a number), feature_names (array of \"objects\",\n"
    "       \"uring_cmd\", \"region\", \"pageout\", \"anon\", \"locks\", or\n"
    "       \"bitN\" for a bit this machvmctl has no name for), nr_objects,\n"
    "       nr_pagers.\n"
    "\n"
    "EXIT STATUS\n"
    "       0 success, 1 failure, 2 bad command line, 3 module not loaded.\n"
    "\n"
    "EXAMPLES\n"
    "       machvmctl status\n"
    "       machvmctl status --json\n";

const char kObjectsHelp[] =
    "NAME\n"
    "       machvmctl objects - list every memory object\n"
    "\n"
    "SYNOPSIS\n"
    "       machvmctl objects [--json]\n"
    "\n"
    "DESCRIPTION\n"
    "       Lists every object the module holds (a MACHVM_GENL_CMD_GET_OBJECT\n"
    "       dump), in name order, one row each:\n"
    "\n"
    "       NAME      the object name\n"
    "       ID        its control id on its pager endpoint\n"
    "       SIZE      bytes, with K, M, G, T when that is exact\n"
    "       PROT      the most any mapping may get (rwx)\n"
    "       STATE     new (never mapped), init (waiting for its pager's READY),\n"
    "                 ready, destroyed\n"
    "       RESIDENT  resident pages\n"
    "       MAPS      mmap()s that reached the object\n"
    "       DIRTY     resident pages known written (learnt when pages are\n"
    "                 unmapped)\n"
    "       SWAPPED   pages the default pager holds in a swap slot\n"
    "       LIMIT     the object's resident limit in pages; - for none\n"
    "       PENDING   outstanding data requests\n"
    "       FAULTS, REQUESTS, SUPPLIED, ERRORS, TIMEOUTS\n"
    "                 the object's counters (pages or events)\n"
    "       PAGEOUTS, PAGEINS, RETURNED\n"
    "                 pages freed by pageout, read back from swap, taken back\n"
    "                 by its pager (data_return)\n"
    "       KIND      pager (served by a user pager) or anon (anonymous,\n"
    "                 backed by the default pager only)\n"
    "       PAGER     pid of the process that created its pager endpoint, and\n"
    "                 \"(dead)\" once that endpoint is closed; none for\n"
    "                 anonymous objects\n"
    "\n"
    "JSON\n"
    "       An array, one object per line, each with: name, id, size (bytes),\n"
    "       max_prot (\"rw-\"), state (\"new\", \"init\", \"ready\", \"destroyed\"),\n"
    "       resident (pages), mappings, pager_pid (0 for anonymous objects),\n"
    "       pager_state (\"live\", \"dead\", \"none\"), pending, may_cache\n"
    "       (true/false), copy (\"none\", \"call\", \"delay\"), cluster (pages),\n"
    "       timeout_ms, faults, requests, supplied, errors, timeouts, kind\n"
    "       (\"pager\", \"anon\"), dirty, swapped, limit (pages, 0: none), and\n"
    "       the pageout counters pageouts, pageins, returned, default_taken\n"
    "       (pages the default pager took when the pager refused them or was\n"
    "       gone), scans (pages looked at), ref_hits (second chances).\n"
    "\n"
    "EXIT STATUS\n"
    "       0 success, 1 failure, 2 bad command line, 3 module not loaded.\n"
    "\n"
    "EXAMPLES\n"
    "       machvmctl objects\n"
    "       machvmctl objects --json | jq 'map(.resident) | add'\n";

const char kObjectHelp[] =
    "NAME\n"
    "       machvmctl object - show or destroy one memory object\n"
    "\n"
    "SYNOPSIS\n"
    "       machvmctl object show NAME [--json]\n"
    "       machvmctl object destroy NAME\n"
    "\n"
    "DESCRIPTION\n"
    "       NAME is an object name, decimal or 0x-hex, as 'machvmctl objects'\n"
    "       lists it.\n"
    "\n"
    "       show     Everything the module reports about the object: the\n"
    "                columns of 'machvmctl objects', its attributes (may_cache,\n"
    "                copy strategy, cluster pages, timeout), its kind, dirty\n"
    "                and swapped pages, resident limit and pageout counters\n"
    "                (pageouts, pageins, returned, default taken, scans, ref\n"
    "                hits).\n"
    "       destroy  Destroy the object (MACHVM_GENL_CMD_DESTROY_OBJECT), as\n"
    "                its pager's DESTROY would: every mapping loses its pages,\n"
    "                every later fault on it gets SIGBUS, its control id dies.\n"
    "                Needs CAP_SYS_ADMIN.  Prints nothing on success (but\n"
    "                with --json).\n"
    "\n"
    "JSON\n"
    "       show prints one object with the fields 'machvmctl objects --json'\n"
    "       gives each element.  destroy prints {\"name\":NAME,\"destroyed\":true}.\n"
    "\n"
    "EXIT STATUS\n"
    "       0      Success.\n"
    "       1      Failure (errno text on stderr).\n"
    "       2      Bad command line, e.g. a NAME that is not a number.\n"
    "       3      The module is not loaded.\n"
    "       4      destroy without CAP_SYS_ADMIN (EPERM).\n"
    "       5      No such object; for destroy, no such live object (ENOENT).\n"
    "\n"
    "EXAMPLES\n"
    "       machvmctl object show 12\n"
    "       machvmctl object show 0xc --json\n"
    "       sudo machvmctl object destroy 12\n";

const char kStatsHelp[] =
    "NAME\n"
    "       machvmctl stats - the module's global counters\n"
    "\n"
    "SYNOPSIS\n"
    "       machvmctl stats [--watch SECONDS] [--count N] [--json]\n"
    "\n"
    "DESCRIPTION\n"
    "       Prints the counters of MACHVM_GENL_CMD_GET_STATS, totals since the\n"
    "       module was loaded:\n"
    "\n"
    "       faults              faults that reached machvm\n"
    "       requests            data_request messages queued\n"
    "       supplied            pages supplied (data or zero fill)\n"
    "       not_taken           supplied pages that were already resident\n"
    "       errors              requests failed by data_error\n"
    "       timeouts            requests that timed out\n"
    "       sigbus              faults ended with SIGBUS\n"
    "       objects_created     objects created\n"
    "       objects_terminated  objects terminated\n"
    "       pagers_died         pager endpoints closed with objects\n"
    "       pageouts            pages freed by pageout\n"
    "       pageins             pages read back from swap\n"
    "       returned            pages taken by pagers (data_return)\n"
    "       default_taken       pages the default pager took from pagers\n"
    "                           (refused, timed out, dead)\n"
    "       scans               pages looked at by pageout\n"
    "       ref_hits            second chances given\n"
    "       swap_writes         pages written to swap\n"
    "       swap_full           pages that found no free swap slot\n"
    "       resident            resident pages now (a gauge)\n"
    "       swapped             swap slots in use now (a gauge)\n"
    "       limit_waits         faults that waited for room\n"
    "       lock_requests       lock_request commands\n"
    "\n"
    "       With --watch (or --count) it samples them repeatedly, one line per\n"
    "       sample: the first line holds the totals, every later one the\n"
    "       change since the line before (the gauges RESIDENT and SWAPPED\n"
    "       always show their value).  The table has the columns FAULTS to\n"
    "       PAGERS_DIED, PAGEOUTS, PAGEINS, RETURNED, SWAP_WRITES, RESIDENT\n"
    "       and SWAPPED; --json has every counter.  SIGINT or SIGTERM stop it\n"
    "       (exit 0).\n"
    "\n"
    "OPTIONS\n"
    "       --watch SECONDS\n"
    "              Sample every SECONDS (0.1 to 86400, decimals allowed) until\n"
    "              stopped.\n"
    "       --count N\n"
    "              Stop after N samples (default: one without --watch, no limit\n"
    "              with it).  --count without --watch samples every second.\n"
    "       --json\n"
    "              One JSON object per sample, with the counters above as\n"
    "              fields, always totals; with --watch or --count each also has\n"
    "              \"time\" (seconds since the epoch, millisecond precision).\n"
    "\n"
    "EXIT STATUS\n"
    "       0 success, 1 failure, 2 bad command line, 3 module not loaded.\n"
    "\n"
    "EXAMPLES\n"
    "       machvmctl stats\n"
    "       machvmctl stats --watch 1\n"
    "       machvmctl stats --json --watch 0.5 --count 20 > samples.jsonl\n";

const char kEventsHelp[] =
    "NAME\n"
    "       machvmctl events - follow the module's events\n"
    "\n"
    "SYNOPSIS\n"
    "       machvmctl events [--count N] [--timeout SECONDS] [--json]\n"
    "\n"
    "DESCRIPTION\n"
    "       Joins the \"events\" multicast group of the machvm genl family and\n"
    "       prints every event as it comes, one line each, flushed at once:\n"
    "\n"
    "              TIME EVENT [name=NAME] [pager_pid=PID] [offset=OFFSET]\n"
    "                         [swap_id=ID] [path=PATH]\n"
    "\n"
    "       TIME is the local time the event was received (HH:MM:SS.mmm).\n"
    "       EVENT is one of:\n"
    "\n"
    "       OBJECT_CREATED     an object was created (name)\n"
    "       OBJECT_TERMINATED  its last mapping and last right are gone (name)\n"
    "       OBJECT_DESTROYED   destroyed by its pager or by an admin (name)\n"
    "       PAGER_ATTACHED     a pager endpoint was created (pager_pid)\n"
    "       PAGER_DIED         a pager endpoint was closed (pager_pid)\n"
    "       PAGER_TIMEOUT      a data request timed out (name, pager_pid,\n"
    "                          offset of the request)\n"
    "       SWAP_ADDED         a swap store was added (swap_id, path)\n"
    "       SWAP_REMOVED       a swap store was removed (swap_id, path)\n"
    "       SWAP_FULL          a page found no free slot in any swap store\n"
    "                          (swap_id and path only if the module names\n"
    "                          a store)\n"
    "\n"
    "       A PATH with blanks, quotes or control characters is printed as a\n"
    "       JSON string.\n"
    "\n"
    "       Events that happen before machvmctl has joined the group are not\n"
    "       seen.  If the kernel drops events because they come faster than\n"
    "       they are read, a warning goes to stderr and following goes on.\n"
    "       It runs until SIGINT or SIGTERM (exit 0), N events, or the\n"
    "       timeout.\n"
    "\n"
    "OPTIONS\n"
    "       --count N\n"
    "              Exit 0 after N events.\n"
    "       --timeout SECONDS\n"
    "              Stop after SECONDS (decimals allowed).  Exit 0, unless\n"
    "              --count N was given and fewer than N events came: then 1.\n"
    "       --json\n"
    "              One JSON object per event and line: time (seconds since the\n"
    "              epoch, millisecond precision), event (the name above), type\n"
    "              (its MACHVM_EVENT_* number), and name, pager_pid, offset,\n"
    "              swap_id and swap_path when the event carries them.\n"
    "\n"
    "EXIT STATUS\n"
    "       0 success, 1 failure or --count not reached by --timeout, 2 bad\n"
    "       command line, 3 module not loaded, 4 not allowed to join the group.\n"
    "\n"
    "EXAMPLES\n"
    "       machvmctl events\n"
    "       machvmctl events --json | jq -c 'select(.event == \"PAGER_TIMEOUT\")'\n"
    "       machvmctl events --count 1 --timeout 10   # wait for one event\n";

const char kPageoutHelp[] =
    "NAME\n"
    "       machvmctl pageout - show, tune and run the pageout daemon\n"
    "\n"
    "SYNOPSIS\n"
    "       machvmctl pageout show [--json]\n"
    "       machvmctl pageout set [--limit PAGES] [--high PCT] [--low PCT]\n"
    "                             [--object-limit PAGES] [--batch N]\n"
    "                             [--interval-ms MS] [--json]\n"
    "       machvmctl pageout set --object NAME --limit PAGES [--json]\n"
    "       machvmctl pageout run [--target PAGES] [--object NAME] [--force]\n"
    "                             [--json]\n"
    "\n"
    "DESCRIPTION\n"
    "       machvm, not Linux reclaim, decides which resident pages of memory\n"
    "       objects go: its pageout daemon scans them in FIFO order with a\n"
    "       second chance for pages referenced since the last look, hands\n"
    "       them back to their pager (data_return) or to the default pager\n"
    "       (swap), and frees them.\n"
    "\n"
    "       show     The tunables and the state (MACHVM_GENL_CMD_GET_PAGEOUT):\n"
    "                limit         global resident limit (pages)\n"
    "                high, low     watermarks, percent of the limit: pageout\n"
    "                              starts above high and stops at low\n"
    "                object limit  resident limit given to new objects\n"
    "                batch         pages scanned per step\n"
    "                interval      period of the idle scan\n"
    "                resident      resident pages now\n"
    "                returning     pages under data_return now\n"
    "                stuck         over the limit with nothing that can go\n"
    "       set      Change the tunables given (at least one); the module\n"
    "                checks them all before applying any.  Prints the settings\n"
    "                then in force, as show does.  With --object NAME, --limit\n"
    "                is that object's resident limit instead (0 or none: no\n"
    "                limit of its own) and nothing else may be given; it\n"
    "                prints the object's name and new limit.  Needs\n"
    "                CAP_SYS_ADMIN.\n"
    "       run      One FIFO pass now, in machvmctl's process: frees --target\n"
    "                pages (default: down to the low watermark, at least one\n"
    "                batch), of one object with --object.  Pages handed to a\n"
    "                pager are freed when it answers: they are counted under\n"
    "                returning, not freed.  Prints the pages scanned, freed and\n"
    "                returning.  Needs CAP_SYS_ADMIN.\n"
    "\n"
    "OPTIONS\n"
    "       --limit PAGES\n"
    "              The global resident limit, at least 16; with --object, the\n"
    "              object's limit (0 or none: none).\n"
    "       --high PCT, --low PCT\n"
    "              The watermarks, 1 <= low < high <= 100.  Given alone, each\n"
    "              is checked against the other's current value by the module.\n"
    "       --object-limit PAGES\n"
    "              The resident limit of objects created from now on (0 or\n"
    "              none: none).\n"
    "       --batch N\n"
    "              Pages scanned per step, 1 to 65536.\n"
    "       --interval-ms MS\n"
    "              Period of the idle scan, 10 to 60000 milliseconds.\n"
    "       --object NAME\n"
    "              An object name as 'machvmctl objects' lists it.\n"
    "       --target PAGES\n"
    "              run: pages to free, at least 1.\n"
    "       --force\n"
    "              run: no second chance; referenced pages go too.\n"
    "       --json\n"
    "              show and set print one object: limit, high, low, obj_limit,\n"
    "              batch, interval_ms, resident, returning, stuck (true or\n"
    "              false).  set --object prints {\"name\":NAME,\"limit\":PAGES}.\n"
    "              run prints {\"scanned\":N,\"freed\":N,\"returning\":N}.\n"
    "\n"
    "EXIT STATUS\n"
    "       0      Success.\n"
    "       1      Failure; also a value the module refuses (EINVAL, with its\n"
    "              reason), e.g. --low at or above the current high watermark.\n"
    "       2      Bad command line: unknown option, a value that does not\n"
    "              parse or is out of the ranges above, set without anything\n"
    "              to set, --object with other tunables.\n"
    "       3      The module is not loaded.\n"
    "       4      set or run without CAP_SYS_ADMIN (EPERM).\n"
    "       5      --object names no such object (ENOENT).\n"
    "\n"
    "EXAMPLES\n"
    "       machvmctl pageout show\n"
    "       sudo machvmctl pageout set --limit 262144 --high 95 --low 85\n"
    "       sudo machvmctl pageout set --object 12 --limit 1024\n"
    "       sudo machvmctl pageout run --target 1000 --force --json\n";

const char kSwapHelp[] =
    "NAME\n"
    "       machvmctl swap - the default pager's swap stores\n"
    "\n"
    "SYNOPSIS\n"
    "       machvmctl swap add PATH [--size SIZE] [--prio N] [--json]\n"
    "       machvmctl swap remove ID [--json]\n"
    "       machvmctl swap list [--json]\n"
    "       machvmctl swap show ID [--json]\n"
    "\n"
    "DESCRIPTION\n"
    "       The default pager keeps the pages that anonymous objects and\n"
    "       failing pagers leave to it in swap stores: swap files and\n"
    "       partitions, several at once, the higher priority used first.\n"
    "       Their slots are allocated up front, so pageout never waits on a\n"
    "       file system.\n"
    "\n"
    "       add      Make PATH a store (MACHVM_GENL_CMD_SWAP_ADD): a regular\n"
    "                file, created if missing and allocated to SIZE now, or a\n"
    "                block device.  PATH is made absolute against the current\n"
    "                directory and symbolic links, \".\" and \"..\" in it are\n"
    "                resolved, so a file has one name as a store.  Prints the\n"
    "                new store as list does (its ID is what remove takes).\n"
    "                Needs CAP_SYS_ADMIN.\n"
    "       remove   Read every page store ID holds back into memory, then\n"
    "                remove it (they go to other stores later).  Fails with\n"
    "                \"Cannot allocate memory\", changing nothing, when they do\n"
    "                not fit.  Prints nothing on success (but with --json).\n"
    "                Needs CAP_SYS_ADMIN.\n"
    "       list     Every store, one row each:\n"
    "                ID      the store's id\n"
    "                PRIO    its priority\n"
    "                KIND    file or bdev\n"
    "                SIZE    its slots in bytes\n"
    "                SLOTS   page slots\n"
    "                USED    slots holding a page\n"
    "                WRITES  pages written to it\n"
    "                READS   pages read from it\n"
    "                IO      direct (O_DIRECT) or cached\n"
    "                PATH    its path (a JSON string if it has blanks or is\n"
    "                        not UTF-8)\n"
    "       show     One store, the fields of list one per line.\n"
    "\n"
    "OPTIONS\n"
    "       --size SIZE\n"
    "              Bytes, or a number with K, M, G or T (x 1024^n): a multiple\n"
    "              of the page size, at least 16 pages.  0 or none given: the\n"
    "              file's or device's current size.\n"
    "       --prio N\n"
    "              Priority, -2147483648 to 2147483647 (default 0); the store\n"
    "              with the highest is filled first.\n"
    "       --json\n"
    "              add, show and list print, for each store: id, path, kind\n"
    "              (\"file\", \"bdev\"), prio, slots, used, writes, reads (pages),\n"
    "              direct (true/false); list as an array, one store per line.\n"
    "              remove prints {\"id\":ID,\"removed\":true}.\n"
    "\n"
    "EXIT STATUS\n"
    "       0      Success.\n"
    "       1      Failure: PATH is a store already (EBUSY), smaller than 16\n"
    "              pages (ENOSPC), cannot be one (EINVAL), or remove finds no\n"
    "              room for the pages (ENOMEM).\n"
    "       2      Bad command line: a SIZE, N or ID that does not parse or is\n"
    "              out of range.\n"
    "       3      The module is not loaded.\n"
    "       4      add or remove without CAP_SYS_ADMIN (EPERM).\n"
    "       5      remove, show: no such store (ENOENT).\n"
    "\n"
    "EXAMPLES\n"
    "       sudo machvmctl swap add /var/machvm.swap --size 2G --prio 10\n"
    "       sudo machvmctl swap add /dev/vdb\n"
    "       machvmctl swap list\n"
    "       sudo machvmctl swap remove 1\n";

std::uint64_t object_name_arg(std::string_view action, std::string_view v) {
    auto r = parse_uint(v);
    if (!r)
        throw UsageError("object " + std::string(action) + ": '" + std::string(v) +
                         "' is not an object name (a number, decimal or 0x-hex, as "
                         "'machvmctl objects' lists it)");
    return *r;
}

constexpr std::chrono::milliseconds kMaxWatch{86400 * 1000LL};
constexpr std::chrono::milliseconds kMaxTimeout{7 * 86400 * 1000LL};
constexpr std::uint64_t kMaxCount = std::uint64_t{1} << 62;
// Most pages any limit or target may name (2^52 pages of 4 KiB: 16 EiB).
constexpr std::uint64_t kMaxPages = std::uint64_t{1} << 52;

// A page count for a limit where 0 or "none" means no limit.
std::uint64_t limit_arg(std::string_view option, std::string_view v) {
    if (v == "none")
        return 0;
    auto r = parse_uint(v);
    if (!r || *r > kMaxPages)
        throw UsageError(std::string(option) + ": '" + std::string(v) +
                         "' is not a number of pages from 0 to " + std::to_string(kMaxPages) +
                         " or none");
    return *r;
}

std::uint64_t option_object_arg(std::string_view option, std::string_view v) {
    auto r = parse_uint(v);
    if (!r)
        throw UsageError(std::string(option) + ": '" + std::string(v) +
                         "' is not an object name (a number, decimal or 0x-hex, as "
                         "'machvmctl objects' lists it)");
    return *r;
}

} // namespace

std::int64_t int_arg(std::string_view option, std::string_view value, std::int64_t min,
                     std::int64_t max) {
    auto bad = [&]() {
        return UsageError(std::string(option) + ": '" + std::string(value) +
                          "' is not a number from " + std::to_string(min) + " to " +
                          std::to_string(max));
    };
    std::string_view digits = value;
    const bool neg = !digits.empty() && digits[0] == '-';
    if (neg)
        digits.remove_prefix(1);
    if (digits.empty() || digits.size() > 19)
        throw bad();
    std::uint64_t mag = 0;
    for (char c : digits) {
        if (c < '0' || c > '9')
            throw bad();
        mag = mag * 10 + static_cast<std::uint64_t>(c - '0');
    }
    // |min| and max fit in 2^63 and a 19-digit magnitude below 10^19 does too.
    if (neg) {
        if (mag > std::uint64_t{1} << 63)
            throw bad();
        const std::int64_t v =
            mag == std::uint64_t{1} << 63 ? INT64_MIN : -static_cast<std::int64_t>(mag);
        if (v < min || v > max)
            throw bad();
        return v;
    }
    if (mag > static_cast<std::uint64_t>(INT64_MAX) || static_cast<std::int64_t>(mag) < min ||
        static_cast<std::int64_t>(mag) > max)
        throw bad();
    return static_cast<std::int64_t>(mag);
}

std::string swap_path_arg(std::string_view value, std::string_view cwd) {
    if (value.empty())
        throw UsageError("swap add: empty PATH");
    if (value.find('\0') != std::string_view::npos)
        throw UsageError("swap add: PATH has a NUL byte");
    std::string path;
    if (value[0] == '/') {
        path = value;
    } else {
        if (cwd.empty() || cwd[0] != '/')
            throw UsageError("swap add: cannot make '" + std::string(value) +
                             "' absolute: the current directory is unknown");
        path = std::string(cwd);
        if (path.back() != '/')
            path += '/';
        path += value;
    }
    if (path.size() >= PATH_MAX)
        throw UsageError("swap add: PATH is longer than " + std::to_string(PATH_MAX - 1) +
                         " bytes");
    return path;
}

namespace {
struct FreeDeleter {
    void operator()(char* p) const noexcept { std::free(p); }
};

// realpath(3), or nullopt.
std::optional<std::string> real_path(const std::string& p) {
    std::unique_ptr<char, FreeDeleter> r(::realpath(p.c_str(), nullptr));
    if (!r)
        return std::nullopt;
    return std::string(r.get());
}
} // namespace

std::string canonical_swap_path(const std::string& path) {
    if (auto r = real_path(path))
        return *r;
    if (errno != ENOENT)
        return path;
    // A file to be created: its directory resolved, its name kept.
    const std::size_t slash = path.rfind('/');
    if (slash == std::string::npos)
        return path;
    const std::string base = path.substr(slash + 1);
    if (base.empty() || base == "." || base == "..")
        return path;
    auto dir = real_path(slash ? path.substr(0, slash) : std::string("/"));
    if (!dir)
        return path;
    return (*dir == "/" ? "" : *dir) + "/" + base;
}

std::uint64_t swap_size_arg(std::string_view value, std::uint64_t page_size) {
    const std::uint64_t size = size_arg("--size", value);
    if (size == 0)
        return 0;
    if (page_size && size % page_size)
        throw UsageError("--size: '" + std::string(value) +
                         "' is not a multiple of the page size (" + std::to_string(page_size) +
                         " bytes)");
    if (page_size && size / page_size < 16)
        throw UsageError("--size: '" + std::string(value) + "' is smaller than 16 pages (" +
                         std::to_string(16 * page_size) + " bytes)");
    return size;
}

std::chrono::milliseconds seconds_arg(std::string_view option, std::string_view value,
                                      std::chrono::milliseconds min,
                                      std::chrono::milliseconds max) {
    auto bad = [&]() -> UsageError {
        char lo[32], hi[32];
        std::snprintf(lo, sizeof(lo), "%g", static_cast<double>(min.count()) / 1000.0);
        std::snprintf(hi, sizeof(hi), "%g", static_cast<double>(max.count()) / 1000.0);
        return UsageError(std::string(option) + ": '" + std::string(value) +
                          "' is not a number of seconds from " + lo + " to " + hi +
                          " (at most 3 decimals)");
    };
    const std::size_t dot = value.find('.');
    std::string_view whole = value.substr(0, dot);
    std::string_view frac =
        dot == std::string_view::npos ? std::string_view() : value.substr(dot + 1);
    if (whole.empty() || whole.size() > 9 || (dot != std::string_view::npos && frac.empty()) ||
        frac.size() > 3)
        throw bad();
    std::int64_t ms = 0;
    for (char c : whole) {
        if (c < '0' || c > '9')
            throw bad();
        ms = ms * 10 + (c - '0');
    }
    ms *= 1000;
    std::int64_t scale = 100;
    for (char c : frac) {
        if (c < '0' || c > '9')
            throw bad();
        ms += (c - '0') * scale;
        scale /= 10;
    }
    const std::chrono::milliseconds r(ms);
    if (r < min || r > max)
        throw bad();
    return r;
}

namespace {

// The current argument is a positional one, or the "--" before one.
bool at_positional(const ArgReader& a) {
    return !a.done() && (!a.at_option() || a.peek() == "--");
}

void parse_strict(const std::vector<std::string>& args, Command& out) {
    out = Command{};
    ArgReader a(args);
    // --json and --help are taken anywhere; true if the current one was.
    auto common = [&]() {
        if (a.flag("--json")) {
            out.json = true;
            return true;
        }
        if (a.flag("--help", "-h")) {
            out.help = true;
            return true;
        }
        return false;
    };

    while (a.at_option()) {
        if (!common())
            a.unknown();
        if (out.help) {
            out.sub = Sub::Help;
            return;
        }
    }
    if (a.done())
        throw UsageError("missing subcommand: status, objects, object, stats, events, pageout, "
                         "swap or help");
    const std::string word = a.positional();

    if (word == "help") {
        out.sub = Sub::Help;
        out.help = true;
        std::vector<std::string> rest = a.rest();
        std::string topic;
        for (const auto& r : rest)
            topic += (topic.empty() ? "" : " ") + r;
        if (!help_text(topic))
            throw UsageError("help: no subcommand '" + topic + "'");
        out.topic = topic;
        return;
    }

    if (word == "status" || word == "objects") {
        out.sub = word == "status" ? Sub::Status : Sub::Objects;
        out.topic = word;
        while (!a.done()) {
            if (!common())
                a.unknown();
            if (out.help)
                return;
        }
        return;
    }

    if (word == "object") {
        out.topic = "object";
        std::string action;
        while (!a.done() && action.empty()) {
            if (common()) {
                if (out.help)
                    return;
            } else if (!at_positional(a)) {
                a.unknown();
            } else {
                action = a.positional();
            }
        }
        if (action.empty())
            throw UsageError("object: missing action: show NAME or destroy NAME");
        if (action != "show" && action != "destroy")
            throw UsageError("object: unknown action '" + action + "' (show or destroy)");
        out.sub = action == "show" ? Sub::ObjectShow : Sub::ObjectDestroy;
        out.topic = "object " + action;
        bool have_name = false;
        while (!a.done()) {
            if (common()) {
                if (out.help)
                    return;
            } else if (!at_positional(a) || have_name) {
                a.unknown();
            } else {
                out.name = object_name_arg(action, a.positional());
                have_name = true;
            }
        }
        if (!have_name)
            throw UsageError("object " + action + ": missing NAME");
        return;
    }

    if (word == "stats") {
        out.sub = Sub::Stats;
        out.topic = "stats";
        while (!a.done()) {
            if (common()) {
                if (out.help)
                    return;
            } else if (auto v = a.value("--watch")) {
                out.watch = seconds_arg("--watch", *v, std::chrono::milliseconds(100), kMaxWatch);
            } else if (auto v = a.value("--count")) {
                out.count = uint_arg("--count", *v, 1, kMaxCount);
            } else {
                a.unknown();
            }
        }
        if (out.count && !out.watch)
            out.watch = std::chrono::seconds(1);
        return;
    }

    if (word == "events") {
        out.sub = Sub::Events;
        out.topic = "events";
        while (!a.done()) {
            if (common()) {
                if (out.help)
                    return;
            } else if (auto v = a.value("--count")) {
                out.count = uint_arg("--count", *v, 1, kMaxCount);
            } else if (auto v = a.value("--timeout")) {
                out.timeout =
                    seconds_arg("--timeout", *v, std::chrono::milliseconds(1), kMaxTimeout);
            } else {
                a.unknown();
            }
        }
        return;
    }

    // The ACTION after "pageout" or "swap"; --json and --help may come
    // before it.  Empty if --help was seen.
    auto action_of = [&](const char* what, std::initializer_list<const char*> actions) {
        std::string list;
        for (const char* x : actions)
            list += std::string(list.empty() ? "" : ", ") + x;
        std::string action;
        while (!a.done() && action.empty()) {
            if (common()) {
                if (out.help)
                    return std::string();
            } else if (!at_positional(a)) {
                a.unknown();
            } else {
                action = a.positional();
            }
        }
        if (action.empty())
            throw UsageError(std::string(what) + ": missing action (" + list + ")");
        for (const char* x : actions)
            if (action == x) {
                out.topic = std::string(what) + " " + action;
                return action;
            }
        throw UsageError(std::string(what) + ": unknown action '" + action + "' (" + list + ")");
    };

    if (word == "pageout") {
        out.topic = "pageout";
        const std::string action = action_of("pageout", {"show", "set", "run"});
        if (out.help)
            return;
        std::optional<std::uint64_t> limit;
        if (action == "show")
            out.sub = Sub::PageoutShow;
        else if (action == "set")
            out.sub = Sub::PageoutSet;
        else
            out.sub = Sub::PageoutRun;
        while (!a.done()) {
            if (common()) {
                if (out.help)
                    return;
                continue;
            }
            if (out.sub == Sub::PageoutSet) {
                if (auto v = a.value("--limit")) {
                    limit = limit_arg("--limit", *v);
                } else if (auto v = a.value("--high")) {
                    out.pageout.high = static_cast<std::uint32_t>(uint_arg("--high", *v, 2, 100));
                } else if (auto v = a.value("--low")) {
                    out.pageout.low = static_cast<std::uint32_t>(uint_arg("--low", *v, 1, 99));
                } else if (auto v = a.value("--object-limit")) {
                    out.pageout.obj_limit = limit_arg("--object-limit", *v);
                } else if (auto v = a.value("--batch")) {
                    out.pageout.batch =
                        static_cast<std::uint32_t>(uint_arg("--batch", *v, 1, 65536));
                } else if (auto v = a.value("--interval-ms")) {
                    out.pageout.interval_ms =
                        static_cast<std::uint32_t>(uint_arg("--interval-ms", *v, 10, 60000));
                } else if (auto v = a.value("--object")) {
                    out.object = option_object_arg("--object", *v);
                } else {
                    a.unknown();
                }
            } else if (out.sub == Sub::PageoutRun) {
                if (auto v = a.value("--target")) {
                    out.run.target = uint_arg("--target", *v, 1, kMaxPages);
                } else if (auto v = a.value("--object")) {
                    out.run.object = option_object_arg("--object", *v);
                } else if (a.flag("--force")) {
                    out.run.force = true;
                } else {
                    a.unknown();
                }
            } else {
                a.unknown();
            }
        }
        if (out.sub != Sub::PageoutSet)
            return;
        if (out.object) {
            if (!out.pageout.empty())
                throw UsageError("pageout set: --object takes only --limit (the object's "
                                 "resident limit); set the global tunables without --object");
            if (!limit)
                throw UsageError("pageout set: --object NAME needs --limit PAGES");
            out.object_limit = *limit;
            return;
        }
        if (limit) {
            if (*limit < 16)
                throw UsageError("--limit: '" + std::to_string(*limit) +
                                 "' is below 16 pages (the least global resident limit)");
            out.pageout.limit = limit;
        }
        if (out.pageout.empty())
            throw UsageError("pageout set: nothing to set (--limit, --high, --low, "
                             "--object-limit, --batch, --interval-ms, or --object NAME "
                             "--limit PAGES)");
        if (out.pageout.high && out.pageout.low && *out.pageout.low >= *out.pageout.high)
            throw UsageError("pageout set: --low " + std::to_string(*out.pageout.low) +
                             " must be below --high " + std::to_string(*out.pageout.high));
        return;
    }

    if (word == "swap") {
        out.topic = "swap";
        const std::string action = action_of("swap", {"add", "remove", "list", "show"});
        if (out.help)
            return;
        out.sub = action == "add"      ? Sub::SwapAdd
                  : action == "remove" ? Sub::SwapRemove
                  : action == "show"   ? Sub::SwapShow
                                       : Sub::SwapList;
        bool have_arg = false;
        while (!a.done()) {
            if (common()) {
                if (out.help)
                    return;
            } else if (auto v = out.sub == Sub::SwapAdd ? a.value("--size") : std::nullopt) {
                const long ps = ::sysconf(_SC_PAGESIZE);
                out.size = swap_size_arg(*v, ps > 0 ? static_cast<std::uint64_t>(ps) : 0);
            } else if (auto v = out.sub == Sub::SwapAdd ? a.value("--prio") : std::nullopt) {
                out.prio = static_cast<std::int32_t>(int_arg("--prio", *v, INT32_MIN, INT32_MAX));
            } else if (out.sub != Sub::SwapList && at_positional(a) && !have_arg) {
                const std::string v = a.positional();
                if (out.sub == Sub::SwapAdd) {
                    std::string cwd;
                    if (v.empty() || v[0] != '/') {
                        std::vector<char> buf(PATH_MAX);
                        if (::getcwd(buf.data(), buf.size()))
                            cwd = buf.data();
                    }
                    out.path = canonical_swap_path(swap_path_arg(v, cwd));
                } else {
                    auto id = parse_uint(v);
                    if (!id || *id > UINT32_MAX)
                        throw UsageError("swap " + action + ": '" + v +
                                         "' is not a swap store ID (a number from 0 to " +
                                         std::to_string(UINT32_MAX) +
                                         ", as 'machvmctl swap list' shows it)");
                    out.swap_id = static_cast<std::uint32_t>(*id);
                }
                have_arg = true;
            } else {
                a.unknown();
            }
        }
        if (out.sub == Sub::SwapAdd && !have_arg)
            throw UsageError("swap add: missing PATH");
        if ((out.sub == Sub::SwapRemove || out.sub == Sub::SwapShow) && !have_arg)
            throw UsageError("swap " + action + ": missing ID (as 'machvmctl swap list' shows it)");
        return;
    }

    throw UsageError("unknown subcommand '" + word +
                     "' (status, objects, object, stats, events, pageout, swap or help)");
}

} // namespace

void parse_command(const std::vector<std::string>& args, Command& out) {
    try {
        parse_strict(args, out);
    } catch (const UsageError&) {
        // --help anywhere (before "--") wins over mistakes elsewhere: the
        // help of the subcommand reached, or of the tool.
        for (const auto& a : args) {
            if (a == "--")
                break;
            if (a == "--help" || a == "-h") {
                const std::string topic = help_text(out.topic) ? out.topic : "";
                out = Command{};
                out.sub = Sub::Help;
                out.help = true;
                out.topic = topic;
                return;
            }
        }
        throw;
    }
}

const char* help_text(std::string_view topic) noexcept {
    if (topic.empty())
        return kToolHelp;
    if (topic == "status")
        return kStatusHelp;
    if (topic == "objects")
        return kObjectsHelp;
    if (topic == "object" || topic == "object show" || topic == "object destroy")
        return kObjectHelp;
    if (topic == "stats")
        return kStatsHelp;
    if (topic == "events")
        return kEventsHelp;
    if (topic == "pageout" || topic == "pageout show" || topic == "pageout set" ||
        topic == "pageout run")
        return kPageoutHelp;
    if (topic == "swap" || topic == "swap add" || topic == "swap remove" || topic == "swap list" ||
        topic == "swap show")
        return kSwapHelp;
    return nullptr;
}

int exit_status(std::error_code ec) noexcept {
    if (!ec)
        return kExitOk;
    if (ec == AdminErrc::family_not_found)
        return kExitNoModule;
    if (ec == AdminErrc::group_not_found)
        return kExitFailure;
    if (ec == std::errc::operation_not_permitted || ec == std::errc::permission_denied)
        return kExitPermission;
    if (ec == std::errc::no_such_file_or_directory)
        return kExitNotFound;
    return kExitFailure;
}

int exit_status(std::error_code ec, Sub sub) noexcept {
    const int st = exit_status(ec);
    if (sub == Sub::SwapAdd && st == kExitNotFound)
        return kExitFailure; // a missing directory on the way to PATH
    return st;
}

} // namespace machvm::ctl
