// SPDX-License-Identifier: GPL-2.0
/*
 * The "machvm" generic netlink family: status, objects (dump with
 * continuation), statistics, administrative destroy, pageout tunables and
 * passes, swap stores, and the "events" multicast group.  The attribute
 * tree is documented in uapi/linux/machvm.h.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/capability.h>
#include <linux/module.h>
#include <net/genetlink.h>
#include "genl.h"
#include "object.h"
#include "pageout.h"
#include "pager.h"
#include "swap.h"

DEFINE_PER_CPU(struct mvm_stats, mvm_stats);

/* The sum over CPUs; a gauge caught mid-move never reads below 0. */
u64 mvm_stat_read(int stat)
{
	s64 sum = 0;
	int cpu;

	for_each_possible_cpu(cpu)
		sum += per_cpu(mvm_stats, cpu).v[stat];
	return max_t(s64, sum, 0);
}

static const struct nla_policy mvm_genl_policy[MACHVM_A_MAX + 1] = {
	[MACHVM_A_OBJ_NAME] = { .type = NLA_U64 },
	[MACHVM_A_OBJ_LIMIT] = { .type = NLA_U64 },
	[MACHVM_A_PO_LIMIT] = { .type = NLA_U64 },
	[MACHVM_A_PO_HIGH] = { .type = NLA_U32 },
	[MACHVM_A_PO_LOW] = { .type = NLA_U32 },
	[MACHVM_A_PO_OBJ_LIMIT] = { .type = NLA_U64 },
	[MACHVM_A_PO_BATCH] = { .type = NLA_U32 },
	[MACHVM_A_PO_INTERVAL_MS] = { .type = NLA_U32 },
	[MACHVM_A_PO_TARGET] = { .type = NLA_U64 },
	[MACHVM_A_PO_FORCE] = NLA_POLICY_MAX(NLA_U8, 1),
	[MACHVM_A_SWAP_ID] = { .type = NLA_U32 },
	[MACHVM_A_SWAP_PATH] = { .type = NLA_NUL_STRING, .len = PATH_MAX - 1 },
	[MACHVM_A_SWAP_PRIO] = { .type = NLA_S32 },
	[MACHVM_A_SWAP_SIZE] = { .type = NLA_U64 },
};

/*
 * The attributes each request takes.  The policy refuses attributes it
 * does not know; mvm_genl_check() refuses the ones a command does not
 * take, so that no request is acted on half understood.
 */
static const u8 mvm_takes_object[] = { MACHVM_A_OBJ_NAME, 0 };
static const u8 mvm_takes_set_pageout[] = {
	MACHVM_A_PO_LIMIT, MACHVM_A_PO_HIGH, MACHVM_A_PO_LOW,
	MACHVM_A_PO_OBJ_LIMIT, MACHVM_A_PO_BATCH, MACHVM_A_PO_INTERVAL_MS,
	MACHVM_A_OBJ_NAME, MACHVM_A_OBJ_LIMIT, 0
};

static const u8 mvm_takes_run_pageout[] = {
	MACHVM_A_PO_TARGET, MACHVM_A_PO_FORCE, MACHVM_A_OBJ_NAME, 0
};

static const u8 mvm_takes_swap_add[] = {
	MACHVM_A_SWAP_PATH, MACHVM_A_SWAP_SIZE, MACHVM_A_SWAP_PRIO, 0
};

static const u8 mvm_takes_swap_id[] = { MACHVM_A_SWAP_ID, 0 };

/* NULL: none. */
static const u8 *const mvm_genl_takes[MACHVM_GENL_CMD_MAX + 1] = {
	[MACHVM_GENL_CMD_GET_OBJECT] = mvm_takes_object,
	[MACHVM_GENL_CMD_DESTROY_OBJECT] = mvm_takes_object,
	[MACHVM_GENL_CMD_SET_PAGEOUT] = mvm_takes_set_pageout,
	[MACHVM_GENL_CMD_RUN_PAGEOUT] = mvm_takes_run_pageout,
	[MACHVM_GENL_CMD_SWAP_ADD] = mvm_takes_swap_add,
	[MACHVM_GENL_CMD_SWAP_REMOVE] = mvm_takes_swap_id,
	[MACHVM_GENL_CMD_GET_SWAP] = mvm_takes_swap_id,
};

/*
 * The object the request names (MACHVM_A_OBJ_NAME), with a reference, in
 * @obj; NULL if it names none.  -ENOENT if it names one that is gone.
 */
static int mvm_genl_object(struct genl_info *info, struct mvm_object **obj)
{
	struct nlattr *name = info->attrs[MACHVM_A_OBJ_NAME];

	*obj = NULL;
	if (!name)
		return 0;
	*obj = mvm_object_get(nla_get_u64(name));
	if (!*obj) {
		GENL_SET_ERR_MSG(info, "no such object");
		return -ENOENT;
	}
	return 0;
}

/* -EINVAL if the request has an attribute its command does not take. */
static int mvm_genl_check(struct genl_info *info)
{
	u8 cmd = info->genlhdr->cmd;
	const u8 *t;
	int i;

	for (i = 1; i <= MACHVM_A_MAX; i++) {
		if (!info->attrs[i])
			continue;
		t = cmd <= MACHVM_GENL_CMD_MAX ? mvm_genl_takes[cmd] : NULL;
		while (t && *t && *t != i)
			t++;
		if (!t || !*t) {
			NL_SET_ERR_MSG_ATTR(info->extack, info->attrs[i],
					    "attribute not taken by this command");
			return -EINVAL;
		}
	}
	return 0;
}

static const struct genl_multicast_group mvm_mcgrps[] = {
	{ .name = MACHVM_GENL_MCGRP_EVENTS },
};

static struct genl_family mvm_genl_family;

static int mvm_genl_status(struct sk_buff *skb, struct genl_info *info)
{
	struct sk_buff *msg;
	void *hdr;

	if (mvm_genl_check(info))
		return -EINVAL;
	msg = genlmsg_new(NLMSG_DEFAULT_SIZE, GFP_KERNEL);
	if (!msg)
		return -ENOMEM;
	hdr = genlmsg_put_reply(msg, info, &mvm_genl_family, 0,
				MACHVM_GENL_CMD_GET_STATUS);
	if (!hdr)
		goto nospace;
	if (nla_put_u32(msg, MACHVM_A_ABI_VERSION, MACHVM_ABI_VERSION) ||
	    nla_put_u32(msg, MACHVM_A_PAGE_SIZE, PAGE_SIZE) ||
	    nla_put_u64_64bit(msg, MACHVM_A_FEATURES, MACHVM_FEATURES,
			      MACHVM_A_PAD) ||
	    nla_put_u32(msg, MACHVM_A_NR_OBJECTS, mvm_object_count()) ||
	    nla_put_u32(msg, MACHVM_A_NR_PAGERS, mvm_pager_count()))
		goto nospace;
	genlmsg_end(msg, hdr);
	return genlmsg_reply(msg, info);
nospace:
	nlmsg_free(msg);
	return -EMSGSIZE;
}

static int mvm_genl_stats(struct sk_buff *skb, struct genl_info *info)
{
	struct nlattr *nest;
	struct sk_buff *msg;
	void *hdr;
	int i;

	if (mvm_genl_check(info))
		return -EINVAL;
	msg = genlmsg_new(NLMSG_DEFAULT_SIZE, GFP_KERNEL);
	if (!msg)
		return -ENOMEM;
	hdr = genlmsg_put_reply(msg, info, &mvm_genl_family, 0,
				MACHVM_GENL_CMD_GET_STATS);
	if (!hdr)
		goto nospace;
	nest = nla_nest_start(msg, MACHVM_A_STATS);
	if (!nest)
		goto nospace;
	for (i = MACHVM_A_STAT_FAULTS; i <= MACHVM_A_STAT_MAX; i++)
		if (i != MACHVM_A_STAT_PAD &&
		    nla_put_u64_64bit(msg, i, mvm_stat_read(i),
				      MACHVM_A_STAT_PAD))
			goto nospace;
	nla_nest_end(msg, nest);
	genlmsg_end(msg, hdr);
	return genlmsg_reply(msg, info);
nospace:
	nlmsg_free(msg);
	return -EMSGSIZE;
}

static int mvm_genl_object_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct mvm_object *obj;
	struct sk_buff *msg;
	u64 name;
	void *hdr;
	int ret;

	if (mvm_genl_check(info))
		return -EINVAL;
	if (!info->attrs[MACHVM_A_OBJ_NAME])
		return -EINVAL;
	name = nla_get_u64(info->attrs[MACHVM_A_OBJ_NAME]);
	obj = mvm_object_get(name);
	if (!obj)
		return -ENOENT;
	ret = -ENOMEM;
	msg = genlmsg_new(NLMSG_DEFAULT_SIZE, GFP_KERNEL);
	if (!msg)
		goto out;
	ret = -EMSGSIZE;
	hdr = genlmsg_put_reply(msg, info, &mvm_genl_family, 0,
				MACHVM_GENL_CMD_GET_OBJECT);
	if (!hdr || mvm_object_fill(msg, obj)) {
		nlmsg_free(msg);
		goto out;
	}
	genlmsg_end(msg, hdr);
	ret = genlmsg_reply(msg, info);
out:
	mvm_object_put(obj);
	return ret;
}

/* cb->args[0]: the name to continue from. */
static int mvm_genl_object_dumpit(struct sk_buff *skb,
				  struct netlink_callback *cb)
{
	struct mvm_object *obj;
	u64 name = cb->args[0];
	u64 resume;
	void *hdr;

	for (;;) {
		resume = name;
		obj = mvm_object_next(&name);
		if (!obj)
			break;
		hdr = genlmsg_put(skb, NETLINK_CB(cb->skb).portid,
				  cb->nlh->nlmsg_seq, &mvm_genl_family,
				  NLM_F_MULTI, MACHVM_GENL_CMD_GET_OBJECT);
		if (!hdr || mvm_object_fill(skb, obj)) {
			if (hdr)
				genlmsg_cancel(skb, hdr);
			mvm_object_put(obj);
			name = resume;	/* this one goes in the next message */
			break;
		}
		genlmsg_end(skb, hdr);
		mvm_object_put(obj);
	}
	cb->args[0] = name;
	return skb->len;
}

static int mvm_genl_destroy(struct sk_buff *skb, struct genl_info *info)
{
	struct nlattr *name = info->attrs[MACHVM_A_OBJ_NAME];

	if (!netlink_capable(skb, CAP_SYS_ADMIN))
		return -EPERM;
	if (mvm_genl_check(info))
		return -EINVAL;
	if (!name)
		return -EINVAL;
	return mvm_object_destroy_by_name(nla_get_u64(name));
}

/* @why is a string literal (static), as the extack requires. */
static void mvm_errmsg(struct genl_info *info, const char *why)
{
	if (info->extack && why)
		info->extack->_msg = why;
}

/* A reply skeleton for @cmd; NULL if out of memory. */
static struct sk_buff *mvm_reply_new(struct genl_info *info, u8 cmd,
				     void **hdr)
{
	struct sk_buff *msg = genlmsg_new(NLMSG_DEFAULT_SIZE, GFP_KERNEL);

	if (!msg)
		return NULL;
	*hdr = genlmsg_put_reply(msg, info, &mvm_genl_family, 0, cmd);
	if (!*hdr) {
		nlmsg_free(msg);
		return NULL;
	}
	return msg;
}

static int mvm_reply_send(struct sk_buff *msg, void *hdr,
			  struct genl_info *info, int err)
{
	if (err) {
		nlmsg_free(msg);
		return err;
	}
	genlmsg_end(msg, hdr);
	return genlmsg_reply(msg, info);
}

/* The GET_PAGEOUT reply's attributes. */
static int mvm_pageout_fill(struct sk_buff *msg)
{
	struct mvm_tunables t;
	u64 resident, returning;
	bool stuck;

	mvm_pageout_get(&t, &resident, &returning, &stuck);
	if (nla_put_u64_64bit(msg, MACHVM_A_PO_LIMIT, t.limit, MACHVM_A_PAD) ||
	    nla_put_u32(msg, MACHVM_A_PO_HIGH, t.high) ||
	    nla_put_u32(msg, MACHVM_A_PO_LOW, t.low) ||
	    nla_put_u64_64bit(msg, MACHVM_A_PO_OBJ_LIMIT, t.obj_limit,
			      MACHVM_A_PAD) ||
	    nla_put_u32(msg, MACHVM_A_PO_BATCH, t.batch) ||
	    nla_put_u32(msg, MACHVM_A_PO_INTERVAL_MS, t.interval_ms) ||
	    nla_put_u64_64bit(msg, MACHVM_A_PO_RESIDENT, resident,
			      MACHVM_A_PAD) ||
	    nla_put_u64_64bit(msg, MACHVM_A_PO_RETURNING, returning,
			      MACHVM_A_PAD) ||
	    nla_put_u8(msg, MACHVM_A_PO_STUCK, stuck))
		return -EMSGSIZE;
	return 0;
}

static int mvm_genl_get_pageout(struct sk_buff *skb, struct genl_info *info)
{
	struct sk_buff *msg;
	void *hdr;

	if (mvm_genl_check(info))
		return -EINVAL;
	msg = mvm_reply_new(info, MACHVM_GENL_CMD_GET_PAGEOUT, &hdr);
	if (!msg)
		return -ENOMEM;
	return mvm_reply_send(msg, hdr, info, mvm_pageout_fill(msg));
}

/* The tunables SET_PAGEOUT takes: attribute, MVM_TUN_* bit. */
static const struct {
	u16 attr;
	u16 bit;
} mvm_tun_attrs[] = {
	{ MACHVM_A_PO_LIMIT, MVM_TUN_LIMIT },
	{ MACHVM_A_PO_OBJ_LIMIT, MVM_TUN_OBJ_LIMIT },
	{ MACHVM_A_PO_HIGH, MVM_TUN_HIGH },
	{ MACHVM_A_PO_LOW, MVM_TUN_LOW },
	{ MACHVM_A_PO_BATCH, MVM_TUN_BATCH },
	{ MACHVM_A_PO_INTERVAL_MS, MVM_TUN_INTERVAL },
};

/*
 * Everything is checked before anything is applied: the object is looked
 * up and held first (it cannot go between the check and the set), the
 * tunables are checked and applied at once by mvm_pageout_set(), and what
 * follows cannot fail.
 */
static int mvm_genl_set_pageout(struct sk_buff *skb, struct genl_info *info)
{
	struct nlattr **a = info->attrs;
	struct mvm_object *obj = NULL;
	struct mvm_tunables t = { 0 };
	unsigned int which = 0;
	const char *why = NULL;
	struct sk_buff *msg;
	void *hdr;
	int i, ret;

	if (!netlink_capable(skb, CAP_SYS_ADMIN))
		return -EPERM;
	if (mvm_genl_check(info))
		return -EINVAL;
	for (i = 0; i < ARRAY_SIZE(mvm_tun_attrs); i++)
		if (a[mvm_tun_attrs[i].attr])
			which |= mvm_tun_attrs[i].bit;
	if (!which && !a[MACHVM_A_OBJ_NAME] && !a[MACHVM_A_OBJ_LIMIT]) {
		GENL_SET_ERR_MSG(info, "nothing to set");
		return -EINVAL;
	}
	if (!a[MACHVM_A_OBJ_NAME] != !a[MACHVM_A_OBJ_LIMIT]) {
		GENL_SET_ERR_MSG(info, "an object limit needs a name and a limit");
		return -EINVAL;
	}
	ret = mvm_genl_object(info, &obj);
	if (ret)
		return ret;
	ret = -ENOMEM;
	msg = mvm_reply_new(info, MACHVM_GENL_CMD_SET_PAGEOUT, &hdr);
	if (!msg)
		goto out;
	if (which) {
		t.limit = a[MACHVM_A_PO_LIMIT] ?
			  nla_get_u64(a[MACHVM_A_PO_LIMIT]) : 0;
		t.obj_limit = a[MACHVM_A_PO_OBJ_LIMIT] ?
			      nla_get_u64(a[MACHVM_A_PO_OBJ_LIMIT]) : 0;
		t.high = a[MACHVM_A_PO_HIGH] ?
			 nla_get_u32(a[MACHVM_A_PO_HIGH]) : 0;
		t.low = a[MACHVM_A_PO_LOW] ? nla_get_u32(a[MACHVM_A_PO_LOW]) : 0;
		t.batch = a[MACHVM_A_PO_BATCH] ?
			  nla_get_u32(a[MACHVM_A_PO_BATCH]) : 0;
		t.interval_ms = a[MACHVM_A_PO_INTERVAL_MS] ?
				nla_get_u32(a[MACHVM_A_PO_INTERVAL_MS]) : 0;
		ret = mvm_pageout_set(&t, which, &why);
		if (ret) {
			mvm_errmsg(info, why);
			nlmsg_free(msg);
			goto out;
		}
	}
	if (obj)
		mvm_object_set_limit(obj, nla_get_u64(a[MACHVM_A_OBJ_LIMIT]));
	ret = mvm_reply_send(msg, hdr, info, mvm_pageout_fill(msg));
out:
	if (obj)
		mvm_object_put(obj);
	return ret;
}

static int mvm_genl_run_pageout(struct sk_buff *skb, struct genl_info *info)
{
	struct nlattr **a = info->attrs;
	struct mvm_pageout_result res;
	struct mvm_object *obj = NULL;
	struct sk_buff *msg;
	void *hdr;
	int ret;

	if (!netlink_capable(skb, CAP_SYS_ADMIN))
		return -EPERM;
	if (mvm_genl_check(info))
		return -EINVAL;
	ret = mvm_genl_object(info, &obj);
	if (ret)
		return ret;
	/* The reply first: once pages went, only the sending can fail. */
	ret = -ENOMEM;
	msg = mvm_reply_new(info, MACHVM_GENL_CMD_RUN_PAGEOUT, &hdr);
	if (!msg)
		goto out;
	ret = mvm_pageout_run(a[MACHVM_A_PO_TARGET] ?
			      nla_get_u64(a[MACHVM_A_PO_TARGET]) : 0, obj,
			      a[MACHVM_A_PO_FORCE] &&
			      nla_get_u8(a[MACHVM_A_PO_FORCE]), &res);
	if (!ret &&
	    (nla_put_u64_64bit(msg, MACHVM_A_PO_SCANNED, res.scanned,
			       MACHVM_A_PAD) ||
	     nla_put_u64_64bit(msg, MACHVM_A_PO_FREED, res.freed,
			       MACHVM_A_PAD) ||
	     nla_put_u64_64bit(msg, MACHVM_A_PO_RETURNING, res.returning,
			       MACHVM_A_PAD)))
		ret = -EMSGSIZE;
	ret = mvm_reply_send(msg, hdr, info, ret);
out:
	if (obj)
		mvm_object_put(obj);
	return ret;
}

static int mvm_genl_swap_reply(struct genl_info *info, u8 cmd, u32 id)
{
	struct sk_buff *msg;
	void *hdr;

	msg = mvm_reply_new(info, cmd, &hdr);
	if (!msg)
		return -ENOMEM;
	return mvm_reply_send(msg, hdr, info, mvm_swap_fill(msg, id));
}

static int mvm_genl_swap_add(struct sk_buff *skb, struct genl_info *info)
{
	struct nlattr **a = info->attrs;
	const char *why = NULL;
	struct sk_buff *msg;
	void *hdr;
	u32 id;
	int ret;

	if (!netlink_capable(skb, CAP_SYS_ADMIN))
		return -EPERM;
	if (mvm_genl_check(info))
		return -EINVAL;
	if (!a[MACHVM_A_SWAP_PATH]) {
		GENL_SET_ERR_MSG(info, "MACHVM_A_SWAP_PATH is required");
		return -EINVAL;
	}
	/* The reply first: a store added is always reported. */
	msg = mvm_reply_new(info, MACHVM_GENL_CMD_SWAP_ADD, &hdr);
	if (!msg)
		return -ENOMEM;
	ret = mvm_swap_add(nla_data(a[MACHVM_A_SWAP_PATH]),
			   a[MACHVM_A_SWAP_SIZE] ?
			   nla_get_u64(a[MACHVM_A_SWAP_SIZE]) : 0,
			   a[MACHVM_A_SWAP_PRIO] ?
			   nla_get_s32(a[MACHVM_A_SWAP_PRIO]) : 0, &id, &why);
	if (ret) {
		if (why)
			mvm_errmsg(info, why);
		nlmsg_free(msg);
		return ret;
	}
	return mvm_reply_send(msg, hdr, info, mvm_swap_fill(msg, id));
}

static int mvm_genl_swap_remove(struct sk_buff *skb, struct genl_info *info)
{
	const char *why = NULL;
	int ret;

	if (!netlink_capable(skb, CAP_SYS_ADMIN))
		return -EPERM;
	if (mvm_genl_check(info))
		return -EINVAL;
	if (!info->attrs[MACHVM_A_SWAP_ID]) {
		GENL_SET_ERR_MSG(info, "MACHVM_A_SWAP_ID is required");
		return -EINVAL;
	}
	ret = mvm_swap_remove(nla_get_u32(info->attrs[MACHVM_A_SWAP_ID]), &why);
	if (ret && why)
		mvm_errmsg(info, why);
	return ret;
}

static int mvm_genl_swap_doit(struct sk_buff *skb, struct genl_info *info)
{
	if (mvm_genl_check(info))
		return -EINVAL;
	if (!info->attrs[MACHVM_A_SWAP_ID])
		return -EINVAL;
	return mvm_genl_swap_reply(info, MACHVM_GENL_CMD_GET_SWAP,
				   nla_get_u32(info->attrs[MACHVM_A_SWAP_ID]));
}

/* cb->args[0]: the store id to continue from. */
static int mvm_genl_swap_dumpit(struct sk_buff *skb,
				struct netlink_callback *cb)
{
	u32 id = cb->args[0];
	void *hdr;

	while (mvm_swap_next(&id)) {
		hdr = genlmsg_put(skb, NETLINK_CB(cb->skb).portid,
				  cb->nlh->nlmsg_seq, &mvm_genl_family,
				  NLM_F_MULTI, MACHVM_GENL_CMD_GET_SWAP);
		if (!hdr)
			break;
		if (mvm_swap_fill(skb, id)) {
			genlmsg_cancel(skb, hdr);
			if (skb->len)
				break;	/* this one goes in the next message */
			id++;		/* it went away meanwhile */
			continue;
		}
		genlmsg_end(skb, hdr);
		id++;
	}
	cb->args[0] = id;
	return skb->len;
}

static const struct genl_small_ops mvm_genl_ops[] = {
	{
		.cmd = MACHVM_GENL_CMD_GET_STATUS,
		.doit = mvm_genl_status,
	},
	{
		.cmd = MACHVM_GENL_CMD_GET_OBJECT,
		.doit = mvm_genl_object_doit,
		.dumpit = mvm_genl_object_dumpit,
	},
	{
		.cmd = MACHVM_GENL_CMD_GET_STATS,
		.doit = mvm_genl_stats,
	},
	{
		.cmd = MACHVM_GENL_CMD_DESTROY_OBJECT,
		.doit = mvm_genl_destroy,
	},
	{
		.cmd = MACHVM_GENL_CMD_GET_PAGEOUT,
		.doit = mvm_genl_get_pageout,
	},
	{
		.cmd = MACHVM_GENL_CMD_SET_PAGEOUT,
		.doit = mvm_genl_set_pageout,
	},
	{
		.cmd = MACHVM_GENL_CMD_RUN_PAGEOUT,
		.doit = mvm_genl_run_pageout,
	},
	{
		.cmd = MACHVM_GENL_CMD_SWAP_ADD,
		.doit = mvm_genl_swap_add,
	},
	{
		.cmd = MACHVM_GENL_CMD_SWAP_REMOVE,
		.doit = mvm_genl_swap_remove,
	},
	{
		.cmd = MACHVM_GENL_CMD_GET_SWAP,
		.doit = mvm_genl_swap_doit,
		.dumpit = mvm_genl_swap_dumpit,
	},
};

static struct genl_family mvm_genl_family __ro_after_init = {
	.name = MACHVM_GENL_NAME,
	.version = MACHVM_GENL_VERSION,
	.maxattr = MACHVM_A_MAX,
	.policy = mvm_genl_policy,
	.module = THIS_MODULE,
	.parallel_ops = true,	/* every handler locks what it touches */
	.small_ops = mvm_genl_ops,
	.n_small_ops = ARRAY_SIZE(mvm_genl_ops),
	.resv_start_op = MACHVM_GENL_CMD_GET_STATUS,
	.mcgrps = mvm_mcgrps,
	.n_mcgrps = ARRAY_SIZE(mvm_mcgrps),
};

/*
 * An event message with its MACHVM_A_EVENT, or NULL when nobody listens
 * or memory is short.  Process context, no spinlocks held.
 */
static struct sk_buff *mvm_event_new(u32 event, void **hdr)
{
	struct sk_buff *msg;

	if (!genl_has_listeners(&mvm_genl_family, &init_net, 0))
		return NULL;
	msg = genlmsg_new(NLMSG_GOODSIZE, GFP_KERNEL);
	if (!msg)
		return NULL;
	*hdr = genlmsg_put(msg, 0, 0, &mvm_genl_family, 0,
			   MACHVM_GENL_CMD_EVENT);
	if (!*hdr || nla_put_u32(msg, MACHVM_A_EVENT, event)) {
		nlmsg_free(msg);
		return NULL;
	}
	return msg;
}

/* Send it to the "events" group, or drop it if an attribute failed. */
static void mvm_event_send(struct sk_buff *msg, void *hdr, int err)
{
	if (err) {
		nlmsg_free(msg);
		return;
	}
	genlmsg_end(msg, hdr);
	genlmsg_multicast(&mvm_genl_family, msg, 0, 0, GFP_KERNEL);
}

/* Announce an object or pager event; costs nothing when nobody listens. */
void mvm_event(u32 event, u64 name, struct pid *pager, u64 offset)
{
	struct sk_buff *msg;
	void *hdr;

	msg = mvm_event_new(event, &hdr);
	if (!msg)
		return;
	mvm_event_send(msg, hdr,
		       (name && nla_put_u64_64bit(msg, MACHVM_A_OBJ_NAME, name,
						  MACHVM_A_PAD)) ||
		       (pager && nla_put_u32(msg, MACHVM_A_OBJ_PAGER_PID,
					     pid_nr(pager))) ||
		       (event == MACHVM_EVENT_PAGER_TIMEOUT &&
			nla_put_u64_64bit(msg, MACHVM_A_OBJ_OFFSET, offset,
					  MACHVM_A_PAD)));
}

/* Announce a swap store event (added, removed, every store full). */
void mvm_swap_event(u32 event, u32 id, const char *path)
{
	struct sk_buff *msg;
	void *hdr;

	msg = mvm_event_new(event, &hdr);
	if (!msg)
		return;
	mvm_event_send(msg, hdr,
		       (id && nla_put_u32(msg, MACHVM_A_SWAP_ID, id)) ||
		       (path && nla_put_string(msg, MACHVM_A_SWAP_PATH, path)));
}

int mvm_genl_init(void)
{
	return genl_register_family(&mvm_genl_family);
}

void mvm_genl_exit(void)
{
	genl_unregister_family(&mvm_genl_family);
}
