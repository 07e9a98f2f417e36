// SPDX-License-Identifier: GPL-2.0
/*
 * A small raw generic-netlink client for the tests (no libnl): resolves
 * the "machvm" family, sends one request, collects the reply's attributes.
 */
#include <errno.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "mvm_genl.h"

struct mvm_nlreq {
	struct nlmsghdr n;
	struct genlmsghdr g;
	char buf[1024];
};

static void put_attr(struct mvm_nlreq *r, int type, const void *data,
		     int len)
{
	struct nlattr *a = (void *)((char *)r + NLMSG_ALIGN(r->n.nlmsg_len));

	a->nla_type = type;
	a->nla_len = NLA_HDRLEN + len;
	memcpy((char *)a + NLA_HDRLEN, data, len);
	r->n.nlmsg_len = NLMSG_ALIGN(r->n.nlmsg_len) + NLA_ALIGN(a->nla_len);
}

static void walk(struct mvm_nlreply *out, struct nlattr *a, int len, int nest)
{
	for (; len >= NLA_HDRLEN && a->nla_len >= NLA_HDRLEN &&
	     a->nla_len <= len;
	     len -= NLA_ALIGN(a->nla_len),
	     a = (void *)((char *)a + NLA_ALIGN(a->nla_len))) {
		int type = a->nla_type & NLA_TYPE_MASK;
		int plen = a->nla_len - NLA_HDRLEN;
		void *p = (char *)a + NLA_HDRLEN;
		uint64_t v = 0;

		if (nest == 0 && type == MACHVM_A_OBJECT) {
			walk(out, p, plen, 1);
			continue;
		}
		if (nest == 0 && type == MACHVM_A_SWAP) {
			walk(out, p, plen, 3);
			continue;
		}
		if (nest == 0 && type == MACHVM_A_STATS) {
			walk(out, p, plen, 2);
			continue;
		}
		if (plen == 1)
			v = *(uint8_t *)p;
		else if (plen == 4)
			v = *(uint32_t *)p;
		else if (plen == 8)
			memcpy(&v, p, 8);
		if (nest == 1) {
			if (type <= MACHVM_OBJ_A_MAX)
				out->obj[type] = v;
		} else if (nest == 2) {
			if (type <= MACHVM_A_STAT_MAX)
				out->stat[type] = v;
		} else if (nest == 3) {
			if (type <= MACHVM_SWAP_A_MAX)
				out->swap[type] = v;
			if (type == MACHVM_SWAP_A_PATH)
				strncpy(out->path, p, sizeof(out->path) - 1);
		} else if (type <= MACHVM_A_MAX) {
			out->a[type] = v;
			out->have[type] = 1;
			if (type == MACHVM_A_SWAP_PATH)
				strncpy(out->path, p, sizeof(out->path) - 1);
		}
	}
}

static int nl_request(int family, int cmd, const struct mvm_nlattr *attrs,
		      struct mvm_nlreply *out, int dump)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	struct mvm_nlreq r;
	char buf[32768];
	int fd, ret = 0, done = 0;

	memset(&r, 0, sizeof(r));
	r.n.nlmsg_len = NLMSG_LENGTH(GENL_HDRLEN);
	r.n.nlmsg_type = family;
	r.n.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | (dump ? NLM_F_DUMP : 0);
	r.n.nlmsg_seq = 1;
	r.g.cmd = cmd;
	r.g.version = family == GENL_ID_CTRL ? 2 : MACHVM_GENL_VERSION;
	for (; attrs && attrs->type; attrs++)
		put_attr(&r, attrs->type, attrs->str ? (void *)attrs->str :
			 (void *)&attrs->v, attrs->str ? (int)strlen(attrs->str) + 1 :
			 attrs->len);
	if (out)
		memset(out, 0, sizeof(*out));
	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
	if (fd < 0)
		return -errno;
	if (sendto(fd, &r, r.n.nlmsg_len, 0, (void *)&sa, sizeof(sa)) < 0) {
		ret = -errno;
		goto out;
	}
	while (!done) {
		int len = recv(fd, buf, sizeof(buf), 0);
		struct nlmsghdr *h;

		if (len < 0) {
			ret = -errno;
			break;
		}
		for (h = (void *)buf; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
			if (h->nlmsg_type == NLMSG_ERROR) {
				struct nlmsgerr *e = NLMSG_DATA(h);

				ret = e->error;
				done = 1;
				break;
			}
			if (h->nlmsg_type == NLMSG_DONE) {
				done = 1;
				break;
			}
			if (out) {
				walk(out, (void *)((char *)NLMSG_DATA(h) + GENL_HDRLEN),
				     h->nlmsg_len - NLMSG_LENGTH(GENL_HDRLEN), 0);
				out->count++;
			}
		}
	}
out:
	close(fd);
	return ret;
}

static int family_id(void)
{
	static int id;
	struct mvm_nlattr a[] = {
		{ .type = CTRL_ATTR_FAMILY_NAME, .str = MACHVM_GENL_NAME },
		{ 0 },
	};
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	struct mvm_nlreq r;
	char buf[8192];
	struct nlmsghdr *h = (void *)buf;
	struct nlattr *at;
	int fd, len, alen;

	if (id)
		return id;
	memset(&r, 0, sizeof(r));
	r.n.nlmsg_len = NLMSG_LENGTH(GENL_HDRLEN);
	r.n.nlmsg_type = GENL_ID_CTRL;
	r.n.nlmsg_flags = NLM_F_REQUEST;
	r.g.cmd = CTRL_CMD_GETFAMILY;
	r.g.version = 2;
	put_attr(&r, a[0].type, a[0].str, strlen(a[0].str) + 1);
	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
	if (fd < 0)
		return -errno;
	len = -1;
	if (sendto(fd, &r, r.n.nlmsg_len, 0, (void *)&sa, sizeof(sa)) >= 0)
		len = recv(fd, buf, sizeof(buf), 0);
	if (len < 0) {
		close(fd);
		return -errno;
	}
	close(fd);
	if (!NLMSG_OK(h, len) || h->nlmsg_type == NLMSG_ERROR)
		return -ENOENT;
	at = (void *)((char *)NLMSG_DATA(h) + GENL_HDRLEN);
	alen = h->nlmsg_len - NLMSG_LENGTH(GENL_HDRLEN);
	for (; alen >= NLA_HDRLEN && at->nla_len >= NLA_HDRLEN;
	     alen -= NLA_ALIGN(at->nla_len),
	     at = (void *)((char *)at + NLA_ALIGN(at->nla_len)))
		if (at->nla_type == CTRL_ATTR_FAMILY_ID)
			id = *(uint16_t *)((char *)at + NLA_HDRLEN);
	return id ? id : -ENOENT;
}

int mvm_nl(int cmd, const struct mvm_nlattr *attrs, struct mvm_nlreply *out)
{
	int id = family_id();

	return id < 0 ? id : nl_request(id, cmd, attrs, out, 0);
}

int mvm_nl_dump(int cmd, struct mvm_nlreply *out)
{
	int id = family_id();

	return id < 0 ? id : nl_request(id, cmd, NULL, out, 1);
}

int mvm_swap_add(const char *path, uint64_t size, int32_t prio, uint32_t *id)
{
	struct mvm_nlattr a[] = {
		{ .type = MACHVM_A_SWAP_PATH, .str = path },
		{ .type = MACHVM_A_SWAP_SIZE, .v = size, .len = 8 },
		{ .type = MACHVM_A_SWAP_PRIO, .v = (uint32_t)prio, .len = 4 },
		{ 0 },
	};
	struct mvm_nlreply r;
	int ret = mvm_nl(MACHVM_GENL_CMD_SWAP_ADD, a, &r);

	if (!ret && id)
		*id = r.swap[MACHVM_SWAP_A_ID];
	return ret;
}

int mvm_swap_remove(uint32_t id)
{
	struct mvm_nlattr a[] = {
		{ .type = MACHVM_A_SWAP_ID, .v = id, .len = 4 }, { 0 },
	};

	return mvm_nl(MACHVM_GENL_CMD_SWAP_REMOVE, a, NULL);
}

int mvm_swap_info(uint32_t id, struct mvm_nlreply *r)
{
	struct mvm_nlattr a[] = {
		{ .type = MACHVM_A_SWAP_ID, .v = id, .len = 4 }, { 0 },
	};

	return mvm_nl(MACHVM_GENL_CMD_GET_SWAP, a, r);
}

int mvm_object_info(uint64_t name, struct mvm_nlreply *r)
{
	struct mvm_nlattr a[] = {
		{ .type = MACHVM_A_OBJ_NAME, .v = name, .len = 8 }, { 0 },
	};

	return mvm_nl(MACHVM_GENL_CMD_GET_OBJECT, a, r);
}

struct mvm_nlreply mvm_info(uint64_t name)
{
	struct mvm_nlreply r;

	memset(&r, 0, sizeof(r));
	mvm_object_info(name, &r);
	return r;
}

int mvm_wait_resident(uint64_t name, uint64_t want, int ms)
{
	for (; ms > 0; ms -= 20) {
		if (mvm_info(name).obj[MACHVM_OBJ_A_RESIDENT] <= want)
			return 1;
		usleep(20000);
	}
	return 0;
}

int mvm_pageout_run(uint64_t target, uint64_t name, int force,
		    struct mvm_nlreply *r)
{
	struct mvm_nlattr a[4] = { { 0 } };
	int n = 0;

	if (target)
		a[n++] = (struct mvm_nlattr){ .type = MACHVM_A_PO_TARGET,
					      .v = target, .len = 8 };
	if (name)
		a[n++] = (struct mvm_nlattr){ .type = MACHVM_A_OBJ_NAME,
					      .v = name, .len = 8 };
	if (force)
		a[n++] = (struct mvm_nlattr){ .type = MACHVM_A_PO_FORCE,
					      .v = 1, .len = 1 };
	return mvm_nl(MACHVM_GENL_CMD_RUN_PAGEOUT, a, r);
}

uint64_t mvm_stat(int stat)
{
	struct mvm_nlreply r;

	if (mvm_nl(MACHVM_GENL_CMD_GET_STATS, NULL, &r))
		return ~0ULL;
	return r.stat[stat];
}
