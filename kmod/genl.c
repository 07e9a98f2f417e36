// SPDX-License-Identifier: GPL-2.0
/*
 * The "machvm" generic netlink family: status, objects (dump with
 * continuation), statistics, administrative destroy, and the "events"
 * multicast group.  The attribute tree is documented in uapi/machvm.h.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/capability.h>
#include <linux/module.h>
#include <net/genetlink.h>
#include "machvm.h"

atomic64_t mvm_stats[MACHVM_A_STAT_MAX + 1];

static const struct nla_policy mvm_genl_policy[MACHVM_A_MAX + 1] = {
	[MACHVM_A_OBJ_NAME] = { .type = NLA_U64 },
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
	for (i = MACHVM_A_STAT_FAULTS; i < MACHVM_A_STAT_PAD; i++)
		if (nla_put_u64_64bit(msg, i, atomic64_read(&mvm_stats[i]),
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
 * Announce an event to the "events" group.  Process context, no spinlocks
 * held; costs nothing when nobody listens.
 */
void mvm_event(u32 event, u64 name, struct pid *pager, u64 offset)
{
	struct sk_buff *msg;
	void *hdr;

	if (!genl_has_listeners(&mvm_genl_family, &init_net, 0))
		return;
	msg = genlmsg_new(NLMSG_GOODSIZE, GFP_KERNEL);
	if (!msg)
		return;
	hdr = genlmsg_put(msg, 0, 0, &mvm_genl_family, 0,
			  MACHVM_GENL_CMD_EVENT);
	if (!hdr)
		goto fail;
	if (nla_put_u32(msg, MACHVM_A_EVENT, event) ||
	    (name && nla_put_u64_64bit(msg, MACHVM_A_OBJ_NAME, name,
				       MACHVM_A_PAD)) ||
	    (pager && nla_put_u32(msg, MACHVM_A_OBJ_PAGER_PID,
				  pid_nr(pager))) ||
	    (event == MACHVM_EVENT_PAGER_TIMEOUT &&
	     nla_put_u64_64bit(msg, MACHVM_A_OBJ_OFFSET, offset, MACHVM_A_PAD)))
		goto fail;
	genlmsg_end(msg, hdr);
	genlmsg_multicast(&mvm_genl_family, msg, 0, 0, GFP_KERNEL);
	return;
fail:
	nlmsg_free(msg);
}

int mvm_genl_init(void)
{
	return genl_register_family(&mvm_genl_family);
}

void mvm_genl_exit(void)
{
	genl_unregister_family(&mvm_genl_family);
}
