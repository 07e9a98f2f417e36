// SPDX-License-Identifier: GPL-2.0
/*
 * soak_test: machvm-soak (tests/soak/soak.c) as one Kselftest case.  In
 * make check it runs for 45 seconds on each kernel (90 s in all);
 * make soak's boots set the kernel command line's mvm_soak_seconds,
 * mvm_soak_seed (to replay a run) and mvm_soak_args (more options,
 * comma-separated).  On a pair guest
 * (MVM_NODE set: scripts/vm.sh soak's pair) it adds --netmem.  The TAP
 * and the final table are machvm-soak's.
 *
 * Default options: --no-memcg, until machvm pages out under a memory
 * cgroup's direct reclaim instead of meeting the OOM killer (issue 12:
 * workers of a cgroup at memory.max 8-64 MiB are OOM-killed today).
 * mvm_soak_args=--memcg turns it back on.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_ARGS "--no-memcg"

int main(void)
{
	const char *secs = getenv("mvm_soak_seconds");
	const char *seed = getenv("mvm_soak_seed");
	const char *node = getenv("MVM_NODE");
	const char *more = getenv("mvm_soak_args");
	char *argv[32] = { "machvm-soak", "--tap", "--seconds",
			   (char *)(secs && *secs ? secs : "45") };
	char args[256], *tok, *save = NULL;
	int argc = 4;

	if (seed && *seed) {
		argv[argc++] = "--seed";
		argv[argc++] = (char *)seed;
	}
	if (node && *node)
		argv[argc++] = "--netmem";
	snprintf(args, sizeof(args), "%s", more ? more : DEFAULT_ARGS);
	for (tok = strtok_r(args, ",", &save); tok && argc < 31;
	     tok = strtok_r(NULL, ",", &save))
		if (strcmp(tok, "--memcg"))
			argv[argc++] = tok;
	argv[argc] = NULL;
	execvp(argv[0], argv);
	perror("soak_test: machvm-soak");
	printf("TAP version 13\n1..1\nnot ok 1 soak # machvm-soak missing\n"
	       "# Totals: pass:0 fail:1 xfail:0 xpass:0 skip:0 error:0\n");
	return 1;
}
