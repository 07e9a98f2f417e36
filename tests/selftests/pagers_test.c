// SPDX-License-Identifier: GPL-2.0
/*
 * The example pagers (C++, libmachvm) against the real module: each serves
 * a client (machvm-map) over io_uring and over the blocking path, and a
 * misbehaving pager ends the client's faults with SIGBUS, never a hang.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "mvm_test.h"

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Run a shell command; returns its exit status, output in out. */
static int run(const char *cmd, char *out, size_t len)
{
	FILE *p = popen(cmd, "r");
	size_t n = 0;
	int st;

	if (!p)
		return -1;
	if (out) {
		n = fread(out, 1, len - 1, p);
		out[n] = 0;
	} else {
		char sink[4096];

		while (fread(sink, 1, sizeof(sink), p) > 0)
			;
	}
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void make_file(const char *path, size_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	uint64_t x = 88172645463325252ULL;
	char buf[4096];

	for (size_t done = 0; done < size;) {
		size_t n = size - done < sizeof(buf) ? size - done : sizeof(buf);

		for (size_t i = 0; i < n; i++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			buf[i] = x;
		}
		if (write(fd, buf, n) != (ssize_t)n)
			abort();
		done += n;
	}
	close(fd);
}

TEST(zero_pager_serves_zeroes)
{
	EXPECT_EQ(0, run("zero-pager --size 4M --exec machvm-map --verify zero",
			 NULL, 0));
	EXPECT_EQ(0, run("zero-pager --blocking --size 1M --exec machvm-map "
			 "--verify zero", NULL, 0));
}

TEST(file_pager_serves_the_file)
{
	char want[256], got[256];

	make_file("/tmp/fp.data", 3 * 1024 * 1024 + 123);
	ASSERT_EQ(0, run("machvm-map --file /tmp/fp.data", want, sizeof(want)));
	ASSERT_EQ(0, run("file-pager /tmp/fp.data --exec machvm-map", got,
			 sizeof(got)));
	EXPECT_STREQ(want, got);
	ASSERT_EQ(0, run("file-pager --blocking /tmp/fp.data --exec "
			 "machvm-map --order random", got, sizeof(got)));
	EXPECT_STREQ(want, got);
	ASSERT_EQ(0, run("file-pager --threads 2 --readahead 0 /tmp/fp.data "
			 "--exec machvm-map --order reverse", got, sizeof(got)));
	EXPECT_STREQ(want, got);
	unlink("/tmp/fp.data");
}

/* Pages written through a shared mapping reach the file: returned on
 * pageout while mapped, and when the object terminates.
 */
TEST(file_pager_writes_back)
{
	char want[256], got[256];

	make_file("/tmp/fw.data", 1024 * 1024);
	/* test-pager serves the pattern machvm-map --write writes. */
	ASSERT_EQ(0, run("test-pager --size 1M --exec machvm-map", want,
			 sizeof(want)));
	ASSERT_EQ(0, run("file-pager /tmp/fw.data --exec machvm-map "
			 "--write pattern", got, sizeof(got)));
	EXPECT_STREQ(want, got);
	/* The pager has exited: the file itself holds the writes. */
	ASSERT_EQ(0, run("machvm-map --file /tmp/fw.data", got, sizeof(got)));
	EXPECT_STREQ(want, got);
	/* A read-only file: returns are refused, nothing is lost meanwhile. */
	make_file("/tmp/fw.data", 1024 * 1024);
	ASSERT_EQ(0, run("machvm-map --file /tmp/fw.data", want, sizeof(want)));
	ASSERT_EQ(0, run("file-pager --max-prot r /tmp/fw.data --exec "
			 "machvm-map", got, sizeof(got)));
	EXPECT_STREQ(want, got);
	unlink("/tmp/fw.data");
}

TEST(test_pager_pattern_many_threads)
{
	EXPECT_EQ(0, run("test-pager --size 8M --threads 2 --exec machvm-map "
			 "--verify pattern --order random", NULL, 0));
	EXPECT_EQ(0, run("test-pager --size 2M --misbehave flood:64 --exec "
			 "machvm-map --verify pattern", NULL, 0));
}

TEST(test_pager_supplying_the_wrong_pages_times_out)
{
	/* Supplies next to the request, never the page asked for. */
	EXPECT_EQ(4, run("test-pager --size 2M --timeout 300 --misbehave "
			 "unasked --exec machvm-map", NULL, 0));
}

TEST(test_pager_error_gives_sigbus)
{
	/* machvm-map exits 4 when a touch hits SIGBUS. */
	EXPECT_EQ(4, run("test-pager --size 1M --misbehave error --exec "
			 "machvm-map", NULL, 0));
}

TEST(test_pager_silent_times_out)
{
	EXPECT_EQ(4, run("test-pager --size 1M --timeout 300 --misbehave "
			 "silent --exec machvm-map", NULL, 0));
}

TEST(test_pager_dies_mid_request)
{
	int st;
	pid_t pid = fork();

	ASSERT_LE(0, pid);
	if (pid == 0) {
		execlp("test-pager", "test-pager", "--size", "1M", "--timeout",
		       "60000", "--misbehave", "die:3", "--socket", "/tmp/die.s",
		       NULL);
		_exit(127);
	}
	EXPECT_EQ(4, run("machvm-map --socket /tmp/die.s --wait 10", NULL, 0));
	ASSERT_EQ(pid, waitpid(pid, &st, 0));
	EXPECT_TRUE(WIFEXITED(st));
	EXPECT_EQ(3, WEXITSTATUS(st));
}

struct toucher {
	char *map;
	int first, pages, bad;
};

static void *touch_pages(void *p)
{
	struct toucher *t = p;

	for (int i = t->first; i < t->first + t->pages; i++)
		if (mvm_check(t->map + i * PG, (uint64_t)i * PG, PG))
			t->bad++;
	return NULL;
}

/*
 * libmachvm's loop hands a one-thread pager its messages in queue order at
 * any depth: test-pager --check-order exits (status 5) on the first seq
 * that is not above the last.  Answering slowly, with 32 FETCHes in flight
 * and 16 faulting threads, it reaps many messages per batch (on 6.1 the
 * kernel runs a batch's task work newest first).
 */
TEST(loop_handles_messages_in_queue_order)
{
	struct toucher t[16];
	pthread_t th[16];
	int fd, st, bad = 0;
	double t0;
	char *map;
	pid_t pid = fork();

	ASSERT_LE(0, pid);
	if (pid == 0) {
		execlp("test-pager", "test-pager", "--size", "4M", "--depth",
		       "32", "--check-order", "--misbehave", "delay:2",
		       "--timeout", "30000", "--socket", "/tmp/order.s", NULL);
		_exit(127);
	}
	fd = mvm_pager_socket_fd("/tmp/order.s");
	ASSERT_LE(0, fd);
	map = mmap(NULL, 4 << 20, PROT_READ, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, map);
	for (int i = 0; i < 16; i++) {
		t[i] = (struct toucher){ map, 64 * i, 64, 0 };
		ASSERT_EQ(0, pthread_create(&th[i], NULL, touch_pages, &t[i]));
	}
	for (int i = 0; i < 16; i++) {
		pthread_join(th[i], NULL);
		bad += t[i].bad;
	}
	EXPECT_EQ(0, bad);
	/* Still serving: it found nothing out of order. */
	EXPECT_EQ(0, waitpid(pid, &st, WNOHANG));
	munmap(map, 4 << 20);
	close(fd);
	/*
	 * Its 32 idle FETCHes are released at the stop
	 * (MACHVM_IOC_FETCH_RELEASE), not left to idle out for 2 s.
	 */
	t0 = now();
	kill(pid, SIGTERM);
	ASSERT_EQ(pid, waitpid(pid, &st, 0));
	EXPECT_GT(1.0, now() - t0);
	EXPECT_TRUE(WIFEXITED(st));
	EXPECT_EQ(0, WEXITSTATUS(st));
}

TEST_HARNESS_MAIN
