// SPDX-License-Identifier: GPL-2.0
#include <machvm/admin.hpp>
#include <machvm/admin_fields.hpp>
#include <machvm/version.hpp>

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

// The attributes of one enum by type; integers must have exactly their
// size, so a width mismatch is an error, not a truncation.
struct Types {
    std::initializer_list<int> u8 = {}, u32 = {}, u64 = {}, s32 = {}, nested = {};
    std::initializer_list<int> string = {}; // NUL-terminated
};

template <std::size_t N> std::array<nla_policy, N> make_policy(const Types& t) {
    std::array<nla_policy, N> a{};
    auto set = [&a](std::initializer_list<int> types, nla_policy p) {
        for (int type : types)
            a[static_cast<std::size_t>(type)] = p;
    };
    set(t.u8, fixed(NLA_U8, 1));
    set(t.u32, fixed(NLA_U32, 4));
    set(t.u64, fixed(NLA_U64, 8));
    set(t.s32, fixed(NLA_S32, 4));
    for (int type : t.nested)
        a[static_cast<std::size_t>(type)].type = NLA_NESTED;
    for (int type : t.string)
        a[static_cast<std::size_t>(type)].type = NLA_STRING;
    return a;
}

// One policy per attribute enum (the top level and each nest).
const nla_policy* attr_policy() noexcept {
    static const AttrPolicy p = make_policy<MACHVM_A_MAX + 1>({
        .u8 = {MACHVM_A_PO_STUCK, MACHVM_A_PO_FORCE},
        .u32 = {MACHVM_A_ABI_VERSION, MACHVM_A_PAGE_SIZE, MACHVM_A_NR_OBJECTS, MACHVM_A_NR_PAGERS,
                MACHVM_A_OBJ_PAGER_PID, MACHVM_A_EVENT, MACHVM_A_PO_HIGH, MACHVM_A_PO_LOW,
                MACHVM_A_PO_BATCH, MACHVM_A_PO_INTERVAL_MS, MACHVM_A_SWAP_ID},
        .u64 = {MACHVM_A_FEATURES, MACHVM_A_OBJ_NAME, MACHVM_A_OBJ_LIMIT, MACHVM_A_OBJ_OFFSET,
                MACHVM_A_PO_LIMIT, MACHVM_A_PO_OBJ_LIMIT, MACHVM_A_PO_RESIDENT,
                MACHVM_A_PO_RETURNING, MACHVM_A_PO_TARGET, MACHVM_A_PO_SCANNED, MACHVM_A_PO_FREED,
                MACHVM_A_SWAP_SIZE},
        .s32 = {MACHVM_A_SWAP_PRIO},
        .nested = {MACHVM_A_OBJECT, MACHVM_A_STATS, MACHVM_A_SWAP},
        .string = {MACHVM_A_SWAP_PATH},
    });
    return p.data();
}

const nla_policy* obj_policy() noexcept {
    static const ObjPolicy p = make_policy<MACHVM_OBJ_A_MAX + 1>({
        .u8 = {MACHVM_OBJ_A_MAY_CACHE, MACHVM_OBJ_A_COPY},
        .u32 = {MACHVM_OBJ_A_MAX_PROT, MACHVM_OBJ_A_STATE, MACHVM_OBJ_A_MAPPINGS,
                MACHVM_OBJ_A_PAGER_PID, MACHVM_OBJ_A_PAGER_STATE, MACHVM_OBJ_A_PENDING,
                MACHVM_OBJ_A_CLUSTER, MACHVM_OBJ_A_TIMEOUT_MS, MACHVM_OBJ_A_KIND},
        .u64 = {MACHVM_OBJ_A_NAME, MACHVM_OBJ_A_ID, MACHVM_OBJ_A_SIZE, MACHVM_OBJ_A_RESIDENT,
                MACHVM_OBJ_A_FAULTS, MACHVM_OBJ_A_REQUESTS, MACHVM_OBJ_A_SUPPLIED,
                MACHVM_OBJ_A_ERRORS, MACHVM_OBJ_A_TIMEOUTS, MACHVM_OBJ_A_DIRTY,
                MACHVM_OBJ_A_SWAPPED, MACHVM_OBJ_A_LIMIT, MACHVM_OBJ_A_PAGEOUTS,
                MACHVM_OBJ_A_PAGEINS, MACHVM_OBJ_A_RETURNED, MACHVM_OBJ_A_DEFAULT_TAKEN,
                MACHVM_OBJ_A_SCANS, MACHVM_OBJ_A_REF_HITS},
    });
    return p.data();
}

const nla_policy* swap_policy() noexcept {
    static const SwapPolicy p = make_policy<MACHVM_SWAP_A_MAX + 1>({
        .u8 = {MACHVM_SWAP_A_DIRECT},
        .u32 = {MACHVM_SWAP_A_ID, MACHVM_SWAP_A_KIND},
        .u64 = {MACHVM_SWAP_A_SLOTS, MACHVM_SWAP_A_USED, MACHVM_SWAP_A_WRITES, MACHVM_SWAP_A_READS},
        .s32 = {MACHVM_SWAP_A_PRIO},
        .string = {MACHVM_SWAP_A_PATH},
    });
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

// Every attribute of `fields` out of `tb` into `s`; `where` names the
// message or nest in the error detail.
template <typename S, std::size_t N>
std::error_code read_all(nlattr** tb, const fields::Field<S> (&fs)[N], S& s, std::string_view where,
                         std::string& detail) {
    Attrs a(tb);
    read_fields(a, fs, s);
    if (!a.ok()) {
        detail = a.detail(where);
        return bad_message();
    }
    return {};
}

// One nest (MACHVM_A_OBJECT, MACHVM_A_SWAP, MACHVM_A_STATS) of
// attributes up to `Max`.
template <int Max, typename S, std::size_t N>
std::error_code parse_nest(nlattr* nest, const nla_policy* policy, const fields::Field<S> (&fs)[N],
                           S& s, const char* where, std::string& detail) {
    nlattr* tb[Max + 1];
    int r = nla_parse_nested(tb, Max, nest, policy);
    if (r < 0) {
        detail = std::string(where) + ": " + nl_geterror(r);
        return bad_message();
    }
    return read_all(tb, fs, s, where, detail);
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

// Every top-level attribute `type` of one reply message (a dump message
// may hold several), parsed by `parse` into `out`.
template <typename S, typename Parse>
std::error_code parse_each(nlmsghdr* nlh, int type, std::vector<S>& out, std::string& detail,
                           Parse parse) {
    nlattr* tb[MACHVM_A_MAX + 1];
    if (auto ec = parse_genl(nlh, tb, detail))
        return ec;
    genlmsghdr* gh = genlmsg_hdr(nlh);
    int rem = genlmsg_attrlen(gh, 0);
    for (nlattr* a = genlmsg_attrdata(gh, 0); nla_ok(a, rem); a = nla_next(a, &rem)) {
        if (nla_type(a) != type)
            continue;
        S s;
        if (auto ec = parse(a, s, detail))
            return ec;
        out.push_back(std::move(s));
    }
    return {};
}

// Every MACHVM_A_OBJECT of one reply message.
std::error_code parse_objects(nlmsghdr* nlh, std::vector<ObjectInfo>& out, std::string& detail) {
    return parse_each(nlh, MACHVM_A_OBJECT, out, detail,
                      [](nlattr* a, ObjectInfo& o, std::string& d) {
                          return parse_nest<MACHVM_OBJ_A_MAX>(a, obj_policy(), fields::kObject, o,
                                                              "MACHVM_A_OBJECT", d);
                      });
}

// Every MACHVM_A_SWAP of one reply message.
std::error_code parse_swaps(nlmsghdr* nlh, std::vector<SwapInfo>& out, std::string& detail) {
    return parse_each(nlh, MACHVM_A_SWAP, out, detail, [](nlattr* a, SwapInfo& w, std::string& d) {
        return parse_nest<MACHVM_SWAP_A_MAX>(a, swap_policy(), fields::kSwap, w, "MACHVM_A_SWAP",
                                             d);
    });
}

// A reply whose top-level attributes are the fields of `fs` (GET_STATUS,
// GET_PAGEOUT, RUN_PAGEOUT...); `cmd` names it in the error detail.
template <typename S, std::size_t N>
std::error_code parse_reply(nlmsghdr* nlh, const fields::Field<S> (&fs)[N], S& s, const char* cmd,
                            std::string& detail) {
    nlattr* tb[MACHVM_A_MAX + 1];
    if (auto ec = parse_genl(nlh, tb, detail))
        return ec;
    return read_all(tb, fs, s, cmd, detail);
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
    // Set when the request must have a reply: names it in "no reply".
    const char* what = nullptr;
    bool got = false; // on_reply has taken a message

    int status = 1; // >0 waiting, 0 done, <0 -errno from the kernel
    std::error_code parse_error;
    std::string detail;
};

// The one reply the request must have, its top-level attributes the
// fields of `fs` (into `s`); `what` names the command in errors.
template <typename S, std::size_t N>
void expect_reply(Replies& r, const fields::Field<S> (&fs)[N], S& s, const char* what) {
    r.what = what;
    r.on_reply = [&fs, &s, what](nlmsghdr* nlh, std::string& detail) {
        return parse_reply(nlh, fs, s, what, detail);
    };
}

// Every reply parsed by `parse` (parse_objects, parse_swaps) into `out`.
template <typename S>
void collect(Replies& r, std::vector<S>& out,
             std::error_code (*parse)(nlmsghdr*, std::vector<S>&, std::string&)) {
    r.on_reply = [&out, parse](nlmsghdr* nlh, std::string& detail) {
        return parse(nlh, out, detail);
    };
}

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
        else
            r->got = true;
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
    if (req.replies.what && !req.replies.got) {
        detail_ = std::string(req.replies.what) + ": no reply";
        return bad_message();
    }
    return {};
}

Result<Status> AdminClient::status() {
    Status s;
    Request req;
    req.cmd = MACHVM_GENL_CMD_GET_STATUS;
    expect_reply(req.replies, fields::kStatus, s, "MACHVM_GENL_CMD_GET_STATUS");
    if (auto r = exchange(req); !r)
        return r.error();
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
    collect(req.replies, out, parse_objects);
    if (auto r = exchange(req); !r)
        return r.error();
    return out;
}

Result<ObjectInfo> AdminClient::object(std::uint64_t name) {
    std::vector<ObjectInfo> out;
    Request req;
    req.cmd = MACHVM_GENL_CMD_GET_OBJECT;
    req.name = name;
    collect(req.replies, out, parse_objects);
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
    Request req;
    req.cmd = MACHVM_GENL_CMD_GET_STATS;
    req.replies.what = "MACHVM_GENL_CMD_GET_STATS";
    req.replies.on_reply = [&](nlmsghdr* nlh, std::string& detail) -> std::error_code {
        nlattr* tb[MACHVM_A_MAX + 1];
        if (auto ec = parse_genl(nlh, tb, detail))
            return ec;
        if (!tb[MACHVM_A_STATS]) {
            detail = "MACHVM_GENL_CMD_GET_STATS: missing attribute MACHVM_A_STATS";
            return bad_message();
        }
        return parse_nest<MACHVM_A_STAT_MAX>(tb[MACHVM_A_STATS], stat_policy(), fields::kStats, s,
                                             "MACHVM_A_STATS", detail);
    };
    if (auto r = exchange(req); !r)
        return r.error();
    return s;
}

Result<void> AdminClient::destroy(std::uint64_t name) {
    Request req;
    req.cmd = MACHVM_GENL_CMD_DESTROY_OBJECT;
    req.name = name;
    return exchange(req);
}

// ---- pageout ----

Result<PageoutInfo> AdminClient::pageout() {
    PageoutInfo p;
    Request req;
    req.cmd = MACHVM_GENL_CMD_GET_PAGEOUT;
    expect_reply(req.replies, fields::kPageout, p, "MACHVM_GENL_CMD_GET_PAGEOUT");
    if (auto r = exchange(req); !r)
        return r.error();
    return p;
}

Result<PageoutInfo> AdminClient::set_pageout(const PageoutSettings& s) {
    detail_.clear();
    if (s.empty()) {
        detail_ = "MACHVM_GENL_CMD_SET_PAGEOUT: nothing to set";
        return errno_code(EINVAL);
    }
    PageoutInfo p;
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
    expect_reply(req.replies, fields::kPageout, p, "MACHVM_GENL_CMD_SET_PAGEOUT");
    if (auto r = exchange(req); !r)
        return r.error();
    return p;
}

Result<PageoutInfo> AdminClient::set_object_limit(std::uint64_t name, std::uint64_t limit) {
    PageoutInfo p;
    Request req;
    req.cmd = MACHVM_GENL_CMD_SET_PAGEOUT;
    req.name = name;
    req.put = [limit](nl_msg* m) { return nla_put_u64(m, MACHVM_A_OBJ_LIMIT, limit); };
    expect_reply(req.replies, fields::kPageout, p, "MACHVM_GENL_CMD_SET_PAGEOUT");
    if (auto r = exchange(req); !r)
        return r.error();
    return p;
}

Result<PageoutResult> AdminClient::run_pageout(const PageoutRun& run) {
    PageoutResult res;
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
    expect_reply(req.replies, fields::kPageoutResult, res, "MACHVM_GENL_CMD_RUN_PAGEOUT");
    if (auto r = exchange(req); !r)
        return r.error();
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
    collect(req.replies, out, parse_swaps);
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
    collect(req.replies, out, parse_swaps);
    if (auto r = exchange(req); !r)
        return r.error();
    return out;
}

Result<SwapInfo> AdminClient::swap(std::uint32_t id) {
    std::vector<SwapInfo> out;
    Request req;
    req.cmd = MACHVM_GENL_CMD_GET_SWAP;
    req.put = [id](nl_msg* m) { return nla_put_u32(m, MACHVM_A_SWAP_ID, id); };
    collect(req.replies, out, parse_swaps);
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

// A value's name, or "unknown(7)" (`what`(7)) for one the table lacks.
struct ValueName {
    std::uint32_t value;
    const char* name;
};

template <std::size_t N>
std::string name_in(const ValueName (&names)[N], std::uint32_t v,
                    std::string_view what = "unknown") {
    for (const ValueName& n : names)
        if (n.value == v)
            return n.name;
    return std::string(what) + "(" + std::to_string(v) + ")";
}

constexpr ValueName kObjectStates[] = {
    {MACHVM_OBJ_STATE_NEW, "new"},
    {MACHVM_OBJ_STATE_INIT, "init"},
    {MACHVM_OBJ_STATE_READY, "ready"},
    {MACHVM_OBJ_STATE_DESTROYED, "destroyed"},
};
constexpr ValueName kPagerStates[] = {
    {MACHVM_PAGER_STATE_LIVE, "live"},
    {MACHVM_PAGER_STATE_DEAD, "dead"},
    {MACHVM_PAGER_STATE_NONE, "none"},
};
constexpr ValueName kObjectKinds[] = {
    {MACHVM_OBJ_KIND_PAGER, "pager"},
    {MACHVM_OBJ_KIND_ANON, "anon"},
};
constexpr ValueName kSwapKinds[] = {
    {MACHVM_SWAP_KIND_FILE, "file"},
    {MACHVM_SWAP_KIND_BDEV, "bdev"},
};
constexpr ValueName kCopyStrategies[] = {
    {MACHVM_COPY_NONE, "none"},
    {MACHVM_COPY_CALL, "call"},
    {MACHVM_COPY_DELAY, "delay"},
};
constexpr ValueName kEventTypes[] = {
    {MACHVM_EVENT_OBJECT_CREATED, "OBJECT_CREATED"},
    {MACHVM_EVENT_OBJECT_TERMINATED, "OBJECT_TERMINATED"},
    {MACHVM_EVENT_OBJECT_DESTROYED, "OBJECT_DESTROYED"},
    {MACHVM_EVENT_PAGER_ATTACHED, "PAGER_ATTACHED"},
    {MACHVM_EVENT_PAGER_DIED, "PAGER_DIED"},
    {MACHVM_EVENT_PAGER_TIMEOUT, "PAGER_TIMEOUT"},
    {MACHVM_EVENT_SWAP_ADDED, "SWAP_ADDED"},
    {MACHVM_EVENT_SWAP_REMOVED, "SWAP_REMOVED"},
    {MACHVM_EVENT_SWAP_FULL, "SWAP_FULL"},
};

} // namespace

std::string object_state_string(std::uint32_t state) {
    return name_in(kObjectStates, state);
}

std::string pager_state_string(std::uint32_t state) {
    return name_in(kPagerStates, state);
}

std::string object_kind_string(std::uint32_t kind) {
    return name_in(kObjectKinds, kind);
}

std::string swap_kind_string(std::uint32_t kind) {
    return name_in(kSwapKinds, kind);
}

std::string copy_strategy_string(std::uint32_t copy) {
    return name_in(kCopyStrategies, copy);
}

std::string event_type_string(std::uint32_t type) {
    return name_in(kEventTypes, type, "UNKNOWN");
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
