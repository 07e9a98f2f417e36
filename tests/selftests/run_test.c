// SPDX-License-Identifier: GPL-2.0
/*
 * machvm-run against the real module: an unmodified Debian program that
 * checks its own memory (memtester) runs with its heap in an anonymous
 * machvm object whose resident limit is a sixth of what it uses, with a
 * swap file behind it.  It must pass, and the module's counters must show
 * that its pages really went to swap and came back.  Also: the object is
 * really a machvm one, the program's exit status comes through, fork in a
 * preloaded shell keeps working, and machvm-run's own errors are clear.
 * machvm-run and machvmctl are in /bin, the library in /lib.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "mvm_genl.h"
#include "mvm_test.h"

#define RUN "/bin/machvm-run"
#define SWAPFILE "/tmp/run.swap"

/* ---- running programs ---- */

/*
 * Runs argv (NULL-terminated) with stdout and stderr to files; extra
 * environment entries "NAME=VALUE" from env (NULL-terminated, may be
 * NULL).  Returns the exit status, 128+N if killed by signal N.
 */
static int run_prog(const char *out, const char *err, char *const env[],
		    char *const argv[])
{
	pid_t pid = fork();
	int st;

	if (pid < 0)
		return -1;
	if (pid == 0) {
		int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int e = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		if (o < 0 || e < 0)
			_exit(126);
		dup2(o, 1);
		dup2(e, 2);
		for (; env && *env; env++)
			putenv(*env);
		execv(argv[0], argv);
		_exit(127);
	}
	if (waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* The file's contents (at most 64 KiB, the tail if longer), NUL-terminated. */
static char *slurp(const char *path)
{
	static char buf[65536];
	int fd = open(path, O_RDONLY);
	off_t size;
	ssize_t n;

	buf[0] = 0;
	if (fd < 0)
		return buf;
	size = lseek(fd, 0, SEEK_END);
	lseek(fd, size > (off_t)sizeof(buf) - 1 ? size - (off_t)sizeof(buf) + 1 : 0,
	      SEEK_SET);
	n = read(fd, buf, sizeof(buf) - 1);
	buf[n > 0 ? n : 0] = 0;
	close(fd);
	return buf;
}

/*
 * A swap store for the default pager: machvmctl if it can, else genl.  The
 * file is created first: the module then opens an existing regular file,
 * which works on tmpfs on 6.1 too (no O_DIRECT there).  EBUSY: an earlier
 * test of this run added it already.
 */
static int ensure_swap(void)
{
	char *argv[] = { "/bin/machvmctl", "swap", "add", SWAPFILE, "--size",
			 "256M", NULL };
	int fd, rc;

	fd = open(SWAPFILE, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	close(fd);
	rc = run_prog("/tmp/run-swap.out", "/tmp/run-swap.err", NULL, argv);
	if (rc == 0)
		return 0;
	rc = mvm_swap_add(SWAPFILE, 256ULL << 20, 0, NULL);
	if (rc == -EBUSY)
		return 0;
	if (rc)
		ksft_print_msg("machvmctl swap add: %s; SWAP_ADD over netlink: %s\n",
			       slurp("/tmp/run-swap.err"), strerror(-rc));
	return rc;
}

/* Removes the store ensure_swap added (found by its path), and the file. */
static void remove_swap(void)
{
	struct mvm_nlreply r;
	uint32_t id;

	for (id = 1; id < 256; id++) {
		if (mvm_swap_info(id, &r) == 0 && strcmp(r.path, SWAPFILE) == 0) {
			mvm_swap_remove(id);
			break;
		}
	}
	unlink(SWAPFILE);
}

FIXTURE(run) {
	int swap;
};

FIXTURE_SETUP(run)
{
	self->swap = ensure_swap();
	ASSERT_EQ(0, self->swap);
}

FIXTURE_TEARDOWN(run)
{
	if (self->swap == 0)
		remove_swap();
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

TEST_F_TIMEOUT(run, memtester_pages_through_swap, 540)
{
	static const int stats[] = {
		MACHVM_A_STAT_PAGEOUTS, MACHVM_A_STAT_PAGEINS,
		MACHVM_A_STAT_SWAP_WRITES, MACHVM_A_STAT_LIMIT_WAITS,
		MACHVM_A_STAT_SIGBUS,
	};
	uint64_t before[MACHVM_A_STAT_MAX + 1], after[MACHVM_A_STAT_MAX + 1];
	unsigned int i;
	const char *mt = mvm_memtester_path();
	char mtbuf[64];
	char *env[] = { NULL, NULL };
	char *argv[] = { RUN, "--resident", "8M", "--verbose", "--",
			 (char *)mt, "24M", "1", NULL };
	const char *err;
	double t0;
	int rc;

	if (!mt)
		SKIP(return, "memtester is not in the VM");
	for (i = 0; i < ARRAY_SIZE(stats); i++) {
		before[stats[i]] = mvm_stat(stats[i]);
		ASSERT_NE(~0ULL, before[stats[i]]);
	}
	/*
	 * Stuck Address (always run) plus Random Value pass over all 24 MiB
	 * several times, each pass paging most of it out and in again: some
	 * 200,000 pageouts, fifty times what the checks below ask, in about
	 * 20 s under TCG.  MVM_MEMTESTER_MASK selects more tests.
	 */
	snprintf(mtbuf, sizeof(mtbuf), "MEMTESTER_TEST_MASK=%s",
		 getenv("MVM_MEMTESTER_MASK") ?: "0x1");
	env[0] = mtbuf;
	t0 = now();
	rc = run_prog("/tmp/run-memtester.out", "/tmp/run-memtester.err", env, argv);
	err = slurp("/tmp/run-memtester.err");
	ksft_print_msg("memtester took %.1f s; machvm-run said:\n%s", now() - t0, err);
	if (rc != 0)
		ksft_print_msg("memtester output (tail):\n%s\n",
			       slurp("/tmp/run-memtester.out"));
	ASSERT_EQ(0, rc);
	/* The heap was a machvm object, not the fallback private memory. */
	EXPECT_NE(NULL, strstr(err, "heap in machvm object"));
	EXPECT_NE(NULL, strstr(slurp("/tmp/run-memtester.out"), "Done."));
	for (i = 0; i < ARRAY_SIZE(stats); i++)
		after[stats[i]] = mvm_stat(stats[i]);
	ksft_print_msg("pageouts %llu, pageins %llu, swap writes %llu, limit waits %llu\n",
		       (unsigned long long)(after[MACHVM_A_STAT_PAGEOUTS] -
					    before[MACHVM_A_STAT_PAGEOUTS]),
		       (unsigned long long)(after[MACHVM_A_STAT_PAGEINS] -
					    before[MACHVM_A_STAT_PAGEINS]),
		       (unsigned long long)(after[MACHVM_A_STAT_SWAP_WRITES] -
					    before[MACHVM_A_STAT_SWAP_WRITES]),
		       (unsigned long long)(after[MACHVM_A_STAT_LIMIT_WAITS] -
					    before[MACHVM_A_STAT_LIMIT_WAITS]));
	/* 24 MiB through 8 MiB: at least the 16 MiB above the limit moved. */
	EXPECT_LE(before[MACHVM_A_STAT_PAGEOUTS] + 4096,
		  after[MACHVM_A_STAT_PAGEOUTS]);
	EXPECT_LE(before[MACHVM_A_STAT_PAGEINS] + 4096,
		  after[MACHVM_A_STAT_PAGEINS]);
	EXPECT_LT(before[MACHVM_A_STAT_SWAP_WRITES],
		  after[MACHVM_A_STAT_SWAP_WRITES]);
	EXPECT_EQ(before[MACHVM_A_STAT_SIGBUS], after[MACHVM_A_STAT_SIGBUS]);
}

/* The program's exit status comes through, with and without --verbose. */
TEST_F(run, exit_status)
{
	char *plain[] = { RUN, "--resident", "1M", "--", "/bin/sh", "-c",
			  "exit 7", NULL };
	char *verbose[] = { RUN, "-v", "--resident=1M", "/bin/sh", "-c",
			    "kill -TERM $$", NULL };

	EXPECT_EQ(7, run_prog("/tmp/run.out", "/tmp/run.err", NULL, plain));
	EXPECT_EQ(128 + 15, run_prog("/tmp/run.out", "/tmp/run.err", NULL, verbose));
}

/*
 * fork in a preloaded program: machvm-run is itself dynamic, so running it
 * under machvm-run preloads it; with --verbose it forks and the child
 * copies the heap to an object of its own before it executes the shell.
 */
TEST_F(run, fork_copies_heap)
{
	char *argv[] = { RUN, "-v", "--resident", "1M", "--", RUN, "-v",
			 "--resident", "2M", "--", "/bin/sh", "-c", "exit 3",
			 NULL };
	const char *err;

	EXPECT_EQ(3, run_prog("/tmp/run.out", "/tmp/run.err", NULL, argv));
	err = slurp("/tmp/run.err");
	EXPECT_NE(NULL, strstr(err, "fork: child heap copied to machvm object"));
	EXPECT_NE(NULL, strstr(err, "heap at exit"));
	if (_metadata->passed == 0 || !strstr(err, "copied"))
		ksft_print_msg("stderr:\n%s\n", err);
}

/* The shell and its pipeline run (busybox is static: exec only). */
TEST_F(run, shell_pipeline)
{
	char *argv[] = { RUN, "--resident", "256K", "--", "/bin/sh", "-c",
			 "x=$(echo machvm | tr a-z A-Z); echo $x | cat; "
			 "seq 1 30000 | sort -rn | head -n 1", NULL };

	ASSERT_EQ(0, run_prog("/tmp/run.out", "/tmp/run.err", NULL, argv));
	EXPECT_STREQ("MACHVM\n30000\n", slurp("/tmp/run.out"));
}

/* machvm-run's own failures: 125 with a message, 127 for no program. */
TEST(errors)
{
	char *bad_size[] = { RUN, "--resident", "8X", "--", "/bin/true", NULL };
	char *tiny[] = { RUN, "--resident", "1K", "--", "/bin/true", NULL };
	char *no_cmd[] = { RUN, "--resident", "8M", NULL };
	char *missing[] = { RUN, "--", "/nonexistent/program", NULL };
	char *help[] = { RUN, "--help", NULL };

	EXPECT_EQ(125, run_prog("/tmp/run.out", "/tmp/run.err", NULL, bad_size));
	EXPECT_NE(NULL, strstr(slurp("/tmp/run.err"), "bad size '8X'"));
	EXPECT_EQ(125, run_prog("/tmp/run.out", "/tmp/run.err", NULL, tiny));
	EXPECT_EQ(125, run_prog("/tmp/run.out", "/tmp/run.err", NULL, no_cmd));
	EXPECT_NE(NULL, strstr(slurp("/tmp/run.err"), "no command"));
	EXPECT_EQ(127, run_prog("/tmp/run.out", "/tmp/run.err", NULL, missing));
	EXPECT_NE(NULL, strstr(slurp("/tmp/run.err"), "/nonexistent/program"));
	EXPECT_EQ(0, run_prog("/tmp/run.out", "/tmp/run.err", NULL, help));
	EXPECT_NE(NULL, strstr(slurp("/tmp/run.out"), "SYNOPSIS"));
}

TEST_HARNESS_MAIN
