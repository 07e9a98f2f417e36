// SPDX-License-Identifier: GPL-2.0
/*
 * The "machvm" generic netlink family: status, objects (dump with
 * continuation), statistics, administrative destroy, pageout tunables and
 * passes, swap stores, and the "events" multicast group.  The attribute
 * tree is documented in uapi/machvm.h.
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

atomic64_t mvm_stats[MACHVM_A_STAT_MAX + 1];

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

static const struct genl_multicast_group mvm_mcgrps[] = {
	{ .name = MACHVM_GENL_MCGRP_EVENTS },
};

static struct genl_family mvm_genl_family;

static int mvm_genl_status(struct sk_buff *skb, struct genl_info *info)
{
	struct sk_buff *msg;
	void *hdr;

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
		    nla_put_u64_64bit(msg, i, atomic64_read(&mvm_stats[i]),
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

static int mvm_genl_pageout_reply(struct genl_info *info, u8 cmd)
{
	struct mvm_tunables t;
	u64 resident, returning;
	struct sk_buff *msg;
	bool stuck;
	void *hdr;
	int err = 0;

	msg = mvm_reply_new(info, cmd, &hdr);
	if (!msg)
		return -ENOMEM;
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
		err = -EMSGSIZE;
	return mvm_reply_send(msg, hdr, info, err);
}

static int mvm_genl_get_pageout(struct sk_buff *skb, struct genl_info *info)
{
	return mvm_genl_pageout_reply(info, MACHVM_GENL_CMD_GET_PAGEOUT);
}

static int mvm_genl_set_pageout(struct sk_buff *skb, struct genl_info *info)
{
	struct nlattr **a = info->attrs;
	const char *why = NULL;
	struct mvm_tunables t;
	u64 resident, returning;
	bool stuck, any = false;
	int ret;

	if (!netlink_capable(skb, CAP_SYS_ADMIN))
		return -EPERM;
	/* Everything is checked before anything is applied. */
	if (a[MACHVM_A_OBJ_NAME] || a[MACHVM_A_OBJ_LIMIT]) {
		struct mvm_object *obj;

		if (!a[MACHVM_A_OBJ_NAME] || !a[MACHVM_A_OBJ_LIMIT]) {
			GENL_SET_ERR_MSG(info, "an object limit needs a name and a limit");
			return -EINVAL;
		}
		obj = mvm_object_get(nla_get_u64(a[MACHVM_A_OBJ_NAME]));
		if (!obj) {
			GENL_SET_ERR_MSG(info, "no such object");
			return -ENOENT;
		}
		mvm_object_put(obj);
	}
	mvm_pageout_get(&t, &resident, &returning, &stuck);
	if (a[MACHVM_A_PO_LIMIT])
		t.limit = nla_get_u64(a[MACHVM_A_PO_LIMIT]);
	if (a[MACHVM_A_PO_HIGH])
		t.high = nla_get_u32(a[MACHVM_A_PO_HIGH]);
	if (a[MACHVM_A_PO_LOW])
		t.low = nla_get_u32(a[MACHVM_A_PO_LOW]);
	if (a[MACHVM_A_PO_OBJ_LIMIT])
		t.obj_limit = nla_get_u64(a[MACHVM_A_PO_OBJ_LIMIT]);
	if (a[MACHVM_A_PO_BATCH])
		t.batch = nla_get_u32(a[MACHVM_A_PO_BATCH]);
	if (a[MACHVM_A_PO_INTERVAL_MS])
		t.interval_ms = nla_get_u32(a[MACHVM_A_PO_INTERVAL_MS]);
	if (a[MACHVM_A_PO_LIMIT] || a[MACHVM_A_PO_HIGH] || a[MACHVM_A_PO_LOW] ||
	    a[MACHVM_A_PO_OBJ_LIMIT] || a[MACHVM_A_PO_BATCH] ||
	    a[MACHVM_A_PO_INTERVAL_MS]) {
		ret = mvm_pageout_set(&t, &why);
		if (ret) {
			mvm_errmsg(info, why);
			return ret;
		}
		any = true;
	}
	if (a[MACHVM_A_OBJ_NAME]) {
		ret = mvm_object_set_limit(nla_get_u64(a[MACHVM_A_OBJ_NAME]),
					   nla_get_u64(a[MACHVM_A_OBJ_LIMIT]));
		if (ret) {
			GENL_SET_ERR_MSG(info, "no such object");
			return ret;
		}
		any = true;
	}
	if (!any) {
		GENL_SET_ERR_MSG(info, "nothing to set");
		return -EINVAL;
	}
	return mvm_genl_pageout_reply(info, MACHVM_GENL_CMD_SET_PAGEOUT);
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
	if (a[MACHVM_A_OBJ_NAME]) {
		obj = mvm_object_get(nla_get_u64(a[MACHVM_A_OBJ_NAME]));
		if (!obj) {
			GENL_SET_ERR_MSG(info, "no such object");
			return -ENOENT;
		}
	}
	ret = mvm_pageout_run(a[MACHVM_A_PO_TARGET] ?
			      nla_get_u64(a[MACHVM_A_PO_TARGET]) : 0, obj,
			      a[MACHVM_A_PO_FORCE] &&
			      nla_get_u8(a[MACHVM_A_PO_FORCE]), &res);
	if (obj)
		mvm_object_put(obj);
	if (ret)
		return ret;
	msg = mvm_reply_new(info, MACHVM_GENL_CMD_RUN_PAGEOUT, &hdr);
	if (!msg)
		return -ENOMEM;
	if (nla_put_u64_64bit(msg, MACHVM_A_PO_SCANNED, res.scanned,
			      MACHVM_A_PAD) ||
	    nla_put_u64_64bit(msg, MACHVM_A_PO_FREED, res.freed, MACHVM_A_PAD) ||
	    nla_put_u64_64bit(msg, MACHVM_A_PO_RETURNING, res.returning,
			      MACHVM_A_PAD))
		ret = -EMSGSIZE;
	return mvm_reply_send(msg, hdr, info, ret);
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
	u32 id;
	int ret;

	if (!netlink_capable(skb, CAP_SYS_ADMIN))
		return -EPERM;
	if (!a[MACHVM_A_SWAP_PATH]) {
		GENL_SET_ERR_MSG(info, "MACHVM_A_SWAP_PATH is required");
		return -EINVAL;
	}
	ret = mvm_swap_add(nla_data(a[MACHVM_A_SWAP_PATH]),
			   a[MACHVM_A_SWAP_SIZE] ?
			   nla_get_u64(a[MACHVM_A_SWAP_SIZE]) : 0,
			   a[MACHVM_A_SWAP_PRIO] ?
			   nla_get_s32(a[MACHVM_A_SWAP_PRIO]) : 0, &id, &why);
	if (ret) {
		if (why)
			mvm_errmsg(info, why);
		return ret;
	}
	return mvm_genl_swap_reply(info, MACHVM_GENL_CMD_SWAP_ADD, id);
}

static int mvm_genl_swap_remove(struct sk_buff *skb, struct genl_info *info)
{
	const char *why = NULL;
	int ret;

	if (!netlink_capable(skb, CAP_SYS_ADMIN))
		return -EPERM;
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
