// SPDX-License-Identifier: GPL-2.0
/*
 * store-pager over Redis (RedisStore) against the real module, with a
 * real redis-server in the guest (on 127.0.0.1, append-only file fsynced
 * on every write, so that a restart keeps what it acknowledged):
 *  - a checksummed workload eight times the resident limit goes out to
 *    Redis (one key per page) and comes back byte for byte;
 *  - the server killed: a fault on a page only Redis holds ends with
 *    SIGBUS within the store's timeout, never a hang; the server
 *    restarted: store-pager reconnects and every page it had is back;
 *  - memtester under machvm-run --pager redis://, the server killed and
 *    restarted mid-run: memtester ends (passes, or dies of SIGBUS) in
 *    bounded time and never sees a wrong byte;
 *  - GNU sort under machvm-run --pager redis://, its output checked;
 *  - an unreachable server is one line and exit 1;
 *  - a 3-master cluster (redis-cli --cluster create): pages spread over
 *    the masters, then redis-cli --cluster reshard moves slots holding
 *    them while the workload runs, and no page is lost.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "mvm_genl.h"
#include "mvm_test.h"

#define RS_PORT		6391
#define RS_URL		"redis://127.0.0.1:6391?timeout=1500"
#define RS_DIR		"/tmp/redis-vm"
#define RS_SIZE		(2UL << 20)
#define RS_PAGES	(RS_SIZE / PG)
#define RS_LIMIT	"256K"
#define RS_TIMEOUT	"4000"
#define RS_SOCK		"/tmp/rstore.s"
#define RS_STATS	"/tmp/rstore.json"

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* 0 if the server on @port answers PING with +PONG. */
static int redis_ping(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons(port) };
	struct timeval tv = { 1, 0 };
	char buf[16] = "";
	int s, rc = -1;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -1;
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (!connect(s, (struct sockaddr *)&a, sizeof(a)) &&
	    write(s, "PING\r\n", 6) == 6 && read(s, buf, sizeof(buf) - 1) > 0 &&
	    !strncmp(buf, "+PONG", 5))
		rc = 0;
	close(s);
	return rc;
}

/*
 * Starts redis-server on @port, its data in @dir: an append-only file
 * fsynced on every write, or (@cluster) a cluster node without one.  Its
 * pid once it answers, or -1.
 */
static pid_t redis_start_on(int port, const char *dir, int cluster)
{
	char p[16], conf[128];
	pid_t pid;
	int i;

	mkdir(dir, 0755);
	snprintf(p, sizeof(p), "%d", port);
	snprintf(conf, sizeof(conf), "%s/nodes.conf", dir);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int fd = open("/tmp/redis-vm.log", O_WRONLY | O_CREAT | O_APPEND, 0644);

		dup2(fd, 1);
		dup2(fd, 2);
		if (cluster)
			execl("/usr/bin/redis-server", "redis-server", "--port", p,
			      "--bind", "127.0.0.1", "--dir", dir, "--save", "",
			      "--appendonly", "no", "--daemonize", "no",
			      "--protected-mode", "no", "--cluster-enabled", "yes",
			      "--cluster-config-file", conf,
			      "--cluster-node-timeout", "5000", NULL);
		else
			execl("/usr/bin/redis-server", "redis-server", "--port", p,
			      "--bind", "127.0.0.1", "--dir", dir, "--save", "",
			      "--appendonly", "yes", "--appendfsync", "always",
			      "--daemonize", "no", "--protected-mode", "no",
			      "--maxmemory-policy", "noeviction", NULL);
		_exit(127);
	}
	for (i = 0; i < 500; i++) {
		if (!redis_ping(port))
			return pid;
		if (waitpid(pid, NULL, WNOHANG) == pid)
			return -1;
		usleep(20000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return -1;
}

static pid_t redis_start(void)
{
	return redis_start_on(RS_PORT, RS_DIR, 0);
}

static void redis_kill(pid_t *pid)
{
	if (*pid > 0) {
		kill(*pid, SIGKILL);
		waitpid(*pid, NULL, 0);
	}
	*pid = 0;
}

/* Runs @cmd: its exit status (-1 if it did not run), its output in @out. */
static int run_cmd(const char *cmd, char *out, size_t len)
{
	FILE *f = popen(cmd, "r");
	size_t n;

	out[0] = 0;
	if (!f)
		return -1;
	n = fread(out, 1, len - 1, f);
	out[n] = 0;
	return WEXITSTATUS(pclose(f));
}

/* Page i of generation gen: xorshift noise seeded by both. */
static void fill(char *pg, uint64_t i, uint64_t gen)
{
	uint64_t *w = (uint64_t *)pg;
	uint64_t x = (i + 1) * 0x9e3779b97f4a7c15ULL ^ gen;
	size_t k;

	for (k = 0; k < PG / 8; k++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		w[k] = x;
	}
}

static int page_ok(const char *p, uint64_t i, uint64_t gen)
{
	static char want[PG];

	fill(want, i, gen);
	return !memcmp(p, want, PG);
}

/*
 * Stops store-pager: SIGTERM, then (after 0.3 s of draining the object's
 * last returns) SIGTERM again, which it takes as "go now".
 */
static void pager_stop(pid_t *pid)
{
	int i, st;

	if (*pid <= 0)
		return;
	kill(*pid, SIGTERM);
	for (i = 0; i < 15 && waitpid(*pid, &st, WNOHANG) == 0; i++)
		usleep(20000);
	if (i == 15) {
		kill(*pid, SIGTERM);
		waitpid(*pid, &st, 0);
	}
	*pid = 0;
}

/*
 * The object store-pager serves on @sock, mapped: its fd (close-on-exec:
 * not for the redis-servers a test starts later), mapping and name.
 */
static void map_served(struct __test_metadata *_metadata, const char *sock,
		       int *fd, char **p, uint64_t *name)
{
	struct machvm_region r;
	int dev;

	*fd = mvm_pager_socket_fd(sock);
	ASSERT_LE(0, *fd);
	fcntl(*fd, F_SETFD, FD_CLOEXEC);
	*p = mmap(NULL, RS_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0);
	ASSERT_NE(MAP_FAILED, *p);
	dev = mvm_dev();
	ASSERT_LE(0, dev);
	ASSERT_EQ(0, mvm_region(dev, *p, &r));
	close(dev);
	*name = r.name;
}

FIXTURE(rstore)
{
	pid_t redis;
	pid_t pid;
	int fd;
	char *p;
	uint64_t name;
};

FIXTURE_SETUP(rstore)
{
	double t0 = now();

	system("rm -rf " RS_DIR);
	unlink(RS_SOCK);
	unlink(RS_STATS);
	self->redis = redis_start();
	ASSERT_LT(0, self->redis) TH_LOG("redis-server did not start: see /tmp/redis-vm.log");
	ksft_print_msg("redis-server up in %.1f s\n", now() - t0);
	self->pid = fork();
	ASSERT_LE(0, self->pid);
	if (self->pid == 0) {
		int out = open(RS_STATS, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		dup2(out, 1);
		execlp("store-pager", "store-pager", "--store", RS_URL,
		       "--size", "2M", "--resident", RS_LIMIT, "--timeout",
		       RS_TIMEOUT, "--json", "--socket", RS_SOCK, NULL);
		_exit(127);
	}
	map_served(_metadata, RS_SOCK, &self->fd, &self->p, &self->name);
	ksft_print_msg("store-pager serving %.1f s after the start\n", now() - t0);
}

FIXTURE_TEARDOWN(rstore)
{
	double t0 = now();

	if (self->p && self->p != MAP_FAILED)
		munmap(self->p, RS_SIZE);
	if (self->fd >= 0)
		close(self->fd);
	pager_stop(&self->pid);
	redis_kill(&self->redis);
	unlink(RS_STATS);
	ksft_print_msg("teardown took %.1f s\n", now() - t0);
}

static uint64_t check_all(char *p, uint64_t gen)
{
	uint64_t i, bad = 0;

	for (i = 0; i < RS_PAGES; i++)
		bad += !page_ok(p + i * PG, i, gen);
	return bad;
}

/* Writes generation gen everywhere, then pages it all out to Redis. */
static int write_all_out(char *p, uint64_t name, uint64_t gen)
{
	struct mvm_nlreply r;
	uint64_t i;

	for (i = 0; i < RS_PAGES; i++)
		fill(p + i * PG, i, gen);
	if (mvm_pageout_run(RS_PAGES, name, 1, &r))
		return -1;
	return mvm_wait_resident(name, 0, 10000) ? 0 : -1;
}

/*
 * 2M through a 256K limit: every page a key in Redis, every byte back.
 * Then the server killed: a fault on a page only Redis holds gets SIGBUS
 * in bounded time.  Restarted from its append-only file: every page that
 * Redis acknowledged comes back, byte for byte.
 */
TEST_F(rstore, round_trip_server_killed_and_restarted)
{
	struct mvm_nlreply r;
	char out[256];
	double t0, t;
	void *bus = NULL;

	ASSERT_EQ(0, write_all_out(self->p, self->name, 1));
	r = mvm_info(self->name);
	EXPECT_LE(RS_PAGES, r.obj[MACHVM_OBJ_A_RETURNED]);
	EXPECT_EQ(0, r.obj[MACHVM_OBJ_A_DEFAULT_TAKEN]);
	ASSERT_EQ(0, mvm_stats_request(self->pid, RS_STATS));
	EXPECT_EQ(RS_PAGES, mvm_stats_value(RS_STATS, "pages"));
	EXPECT_EQ(0, run_cmd("redis-cli -p 6391 dbsize", out, sizeof(out)));
	EXPECT_EQ(RS_PAGES, strtoull(out, NULL, 10));
	EXPECT_EQ(0, check_all(self->p, 1));
	r = mvm_info(self->name);
	EXPECT_EQ(0, r.obj[MACHVM_OBJ_A_ERRORS]);
	EXPECT_EQ(0, r.obj[MACHVM_OBJ_A_TIMEOUTS]);

	ASSERT_EQ(0, write_all_out(self->p, self->name, 2));
	redis_kill(&self->redis);
	t0 = now();
	EXPECT_EQ(1, mvm_touch(self->p + 40 * PG, 0, &bus));
	t = now() - t0;
	EXPECT_EQ(self->p + 40 * PG, (char *)bus);
	ksft_print_msg("server down: SIGBUS after %.1f s\n", t);
	EXPECT_GT(10, t);

	self->redis = redis_start();
	ASSERT_LT(0, self->redis);
	t0 = now();
	EXPECT_EQ(0, check_all(self->p, 2));
	ksft_print_msg("server back: all %lu pages read back in %.1f s\n",
		       RS_PAGES, now() - t0);
	/* And the store takes pages again. */
	ASSERT_EQ(0, write_all_out(self->p, self->name, 3));
	EXPECT_EQ(0, check_all(self->p, 3));
	EXPECT_EQ(0, mvm_info(self->name).obj[MACHVM_OBJ_A_DEFAULT_TAKEN]);
}

static int lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* An unreachable server: one line, exit 1.  A bad URL: exit 2. */
TEST(redis_store_refusals)
{
	char out[1024];

	EXPECT_EQ(1, run_cmd("store-pager --store redis://127.0.0.1:1 "
			     "--socket /tmp/x.s 2>&1", out, sizeof(out)));
	EXPECT_NE(NULL, strstr(out, "Connection refused"));
	EXPECT_EQ(1, lines(out));
	EXPECT_EQ(2, run_cmd("store-pager --store redis://h:x --socket /tmp/x.s 2>&1",
			     out, sizeof(out)));
	EXPECT_NE(NULL, strstr(out, "bad redis URL"));
}

/*
 * memtester's heap in Redis through machvm-run --pager, 512K through a
 * 256K limit (its Stuck Address pass alone moves some 5,000 pages); the
 * server killed and restarted while it runs.  memtester must end within
 * the bound: Done (the server came back in time) or killed by SIGBUS (a
 * fault the store could not serve) -- never a FAILURE line, which a page
 * of wrong bytes would give.
 */
FIXTURE(mrun)
{
	int unused;
};

FIXTURE_SETUP(mrun)
{
}

FIXTURE_TEARDOWN(mrun)
{
}

TEST_F_TIMEOUT(mrun, memtester_heap_in_redis_server_restarted, 240)
{
	static char err[65536], out[65536];
	const char *mt = mvm_memtester_path();
	char cmd[512];
	pid_t redis, run;
	double t0;
	int st = 0, i, done = 0, restarted = 0;
	const char *puts;

	if (!mt)
		SKIP(return, "memtester is not in the VM");
	system("rm -rf " RS_DIR);
	redis = redis_start();
	ASSERT_LT(0, redis);
	snprintf(cmd, sizeof(cmd),
		 "MEMTESTER_TEST_MASK=0x1 exec /bin/machvm-run --pager '%s' "
		 "--resident 256K --size 16M --verbose -- %s 512K 1 "
		 ">/tmp/mrr.out 2>/tmp/mrr.err", RS_URL, mt);
	t0 = now();
	run = fork();
	ASSERT_LE(0, run);
	if (run == 0) {
		execl("/bin/sh", "sh", "-c", cmd, NULL);
		_exit(127);
	}
	/* Let it page out for a while, then take the server away briefly. */
	for (i = 0; i < 75 && waitpid(run, &st, WNOHANG) == 0; i++)
		usleep(20000);
	if (waitpid(run, &st, WNOHANG) == 0) {
		redis_kill(&redis);
		usleep(300000);
		redis = redis_start();
		EXPECT_LT(0, redis);
		restarted = 1;
	} else {
		done = 1;
	}
	/* The server must have gone away while memtester ran. */
	EXPECT_TRUE(restarted);
	for (i = 0; !done && i < 9000; i++) {	/* 180 s */
		if (waitpid(run, &st, WNOHANG) == run) {
			done = 1;
			break;
		}
		usleep(20000);
	}
	if (!done) {
		kill(run, SIGKILL);
		waitpid(run, &st, 0);
	}
	redis_kill(&redis);
	mvm_slurp("/tmp/mrr.err", err, sizeof(err));
	mvm_slurp("/tmp/mrr.out", out, sizeof(out));
	ksft_print_msg("after %.1f s, status %d; machvm-run said:\n%s", now() - t0,
		       WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st), err);
	ASSERT_TRUE(done);
	EXPECT_EQ(NULL, strstr(out, "FAILURE"));
	EXPECT_TRUE(WIFEXITED(st));
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
		EXPECT_NE(NULL, strstr(out, "Done."));
	} else {
		/* A clear end: memtester killed by SIGBUS (store-pager exits 128+7). */
		EXPECT_EQ(128 + SIGBUS, WEXITSTATUS(st));
	}
	/* store-pager's last word: pages went through Redis. */
	puts = strstr(err, ", puts ");
	ASSERT_NE(NULL, puts);
	EXPECT_LT(128, atoll(puts + 7));
}

/*
 * A checksummed workload under machvm-run --pager redis://: GNU sort
 * sorts 20,000 lines in its heap (some 1 MiB with its line table) through
 * a 768K resident limit; its output must be the lines in order, byte for
 * byte (the test sorts them itself with qsort).  (40,000 lines through
 * 512K thrash: sort's comparisons reach into its text at random, some
 * 250,000 page moves, minutes under TCG.)
 */
#define SORT_LINES	20000
#define SORT_WIDTH	16	/* 15 hex digits and a newline */

static int cmp_line(const void *a, const void *b)
{
	return memcmp(a, b, SORT_WIDTH);
}

TEST_F_TIMEOUT(mrun, sort_heap_in_redis, 240)
{
	static char in[SORT_LINES * SORT_WIDTH], got[SORT_LINES * SORT_WIDTH + 1];
	static char err[65536];
	uint64_t x = 0x9e3779b97f4a7c15ULL;
	const char *puts;
	pid_t redis;
	double t0;
	ssize_t n;
	int i, fd, st;

	if (access("/usr/bin/sort", X_OK))
		SKIP(return, "GNU sort is not in the VM");
	for (i = 0; i < SORT_LINES; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		snprintf(in + i * SORT_WIDTH, SORT_WIDTH + 1, "%015llx\n",
			 (unsigned long long)(x >> 4));
	}
	fd = open("/tmp/sort.in", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	ASSERT_LE(0, fd);
	ASSERT_EQ(sizeof(in), write(fd, in, sizeof(in)));
	close(fd);
	qsort(in, SORT_LINES, SORT_WIDTH, cmp_line);

	system("rm -rf " RS_DIR);
	redis = redis_start();
	ASSERT_LT(0, redis);
	t0 = now();
	st = system("LC_ALL=C /bin/machvm-run --pager '" RS_URL "' --resident 768K "
		    "--size 16M -- /usr/bin/sort -S 8M -o /tmp/sort.out /tmp/sort.in "
		    "2>/tmp/sort.err");
	redis_kill(&redis);
	mvm_slurp("/tmp/sort.err", err, sizeof(err));
	ksft_print_msg("sort took %.1f s, status %d; it said:\n%s", now() - t0,
		       WIFEXITED(st) ? WEXITSTATUS(st) : -1, err);
	ASSERT_TRUE(WIFEXITED(st));
	ASSERT_EQ(0, WEXITSTATUS(st));
	fd = open("/tmp/sort.out", O_RDONLY);
	ASSERT_LE(0, fd);
	n = read(fd, got, sizeof(got));
	close(fd);
	EXPECT_EQ(sizeof(in), n);
	EXPECT_EQ(0, memcmp(in, got, sizeof(in)));
	/* Pages went through Redis. */
	puts = strstr(err, ", puts ");
	ASSERT_NE(NULL, puts);
	EXPECT_LT(64, atoll(puts + 7));
}

/* ---- a 3-master cluster ---- */

#define RC_PORT		7101	/* and 7102, 7103; buses 17101.. */
#define RC_URL		"redis://127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103?timeout=3000"
#define RC_SOCK		"/tmp/rcluster.s"

/* The slots redis-cli --cluster create gives three masters, in order. */
static const unsigned int rc_first[3] = { 0, 5461, 10923 };

/* CRC16-CCITT (XMODEM) of the key's hash tag, mod 16384: its slot. */
static unsigned int key_slot(const char *key)
{
	const char *open = strchr(key, '{'), *close;
	size_t len = strlen(key), i;
	uint16_t crc = 0;
	int b;

	if (open) {
		close = strchr(open + 1, '}');
		if (close && close > open + 1) {
			key = open + 1;
			len = close - key;
		}
	}
	for (i = 0; i < len; i++) {
		crc ^= (uint16_t)((unsigned char)key[i] << 8);
		for (b = 0; b < 8; b++)
			crc = crc & 0x8000 ? (uint16_t)(crc << 1 ^ 0x1021) : (uint16_t)(crc << 1);
	}
	return crc & 16383;
}

FIXTURE(rcluster)
{
	pid_t redis[3];
	pid_t pid;
	int fd;
	char *p;
	uint64_t name;
};

FIXTURE_SETUP(rcluster)
{
	char cmd[512], out[4096], dir[64];
	double t0 = now();
	int i, dev, ok = 0;

	system("rm -rf /tmp/rc-0 /tmp/rc-1 /tmp/rc-2");
	unlink(RC_SOCK);
	for (i = 0; i < 3; i++) {
		snprintf(dir, sizeof(dir), "/tmp/rc-%d", i);
		self->redis[i] = redis_start_on(RC_PORT + i, dir, 1);
		ASSERT_LT(0, self->redis[i]);
	}
	ASSERT_EQ(0, run_cmd("redis-cli --cluster create 127.0.0.1:7101 127.0.0.1:7102 "
			     "127.0.0.1:7103 --cluster-yes 2>&1", out, sizeof(out)))
		TH_LOG("%s", out);
	for (i = 0; i < 500 && !ok; i++) {
		ok = 1;
		for (dev = 0; dev < 3; dev++) {
			snprintf(cmd, sizeof(cmd), "redis-cli -p %d cluster info", RC_PORT + dev);
			run_cmd(cmd, out, sizeof(out));
			ok = ok && strstr(out, "cluster_state:ok");
		}
		if (!ok)
			usleep(20000);
	}
	ASSERT_TRUE(ok);
	ksft_print_msg("cluster of 3 masters up in %.1f s\n", now() - t0);
	self->pid = fork();
	ASSERT_LE(0, self->pid);
	if (self->pid == 0) {
		int out = open("/tmp/rcluster.json", O_WRONLY | O_CREAT | O_TRUNC, 0644);

		dup2(out, 1);
		execlp("store-pager", "store-pager", "--store", RC_URL, "--size", "2M",
		       "--resident", RS_LIMIT, "--timeout", "8000", "--json",
		       "--socket", RC_SOCK, NULL);
		_exit(127);
	}
	map_served(_metadata, RC_SOCK, &self->fd, &self->p, &self->name);
}

FIXTURE_TEARDOWN(rcluster)
{
	double t0 = now();
	int i;

	if (self->p && self->p != MAP_FAILED)
		munmap(self->p, RS_SIZE);
	if (self->fd >= 0)
		close(self->fd);
	pager_stop(&self->pid);
	for (i = 0; i < 3; i++)
		redis_kill(&self->redis[i]);
	ksft_print_msg("teardown took %.1f s\n", now() - t0);
}

/*
 * Pages spread over the three masters; then redis-cli --cluster reshard
 * moves slots from one master to the next while the workload keeps
 * reading every page back and writing a new generation out.  The slots
 * moved are the source's first ones (redis-cli's order), as many as it
 * takes to include one that holds our pages (at most 200).  No page
 * lost, none wrong.
 */
TEST_F_TIMEOUT(rcluster, resharded_mid_run, 240)
{
	char cmd[512], from_id[64], to_id[64], line[256];
	unsigned int slot, best_slot = 0, best = 16384, n;
	int i, src = -1, keys[3] = { 0 }, st = 0, done = 0;
	uint64_t gen = 1, rounds = 0, bad = 0;
	pid_t reshard;
	double t0;
	FILE *f;

	ASSERT_EQ(0, write_all_out(self->p, self->name, gen));
	for (i = 0; i < 3; i++) {
		snprintf(cmd, sizeof(cmd), "redis-cli -p %d --scan --pattern 'mvm:*'",
			 RC_PORT + i);
		f = popen(cmd, "r");
		ASSERT_NE(NULL, f);
		while (fgets(line, sizeof(line), f)) {
			line[strcspn(line, "\n")] = 0;
			slot = key_slot(line);
			keys[i]++;
			if (slot >= rc_first[i] && slot - rc_first[i] < best) {
				best = slot - rc_first[i];
				best_slot = slot;
				src = i;
			}
		}
		pclose(f);
	}
	ksft_print_msg("keys per master: %d %d %d\n", keys[0], keys[1], keys[2]);
	EXPECT_EQ(RS_PAGES, keys[0] + keys[1] + keys[2]);
	EXPECT_LT(0, keys[0]);
	EXPECT_LT(0, keys[1]);
	EXPECT_LT(0, keys[2]);
	ASSERT_LE(0, src);
	/*
	 * redis-cli moves some 30 slots a second under TCG: at most 200.
	 * With 32 groups of pages, one lies that close to its master's first
	 * slot seven times in ten; otherwise the slots moved hold none of
	 * ours and only "nothing lost" is checked.
	 */
	n = best < 200 ? best + 1 : 200;
	snprintf(cmd, sizeof(cmd), "redis-cli -p %d cluster myid", RC_PORT + src);
	ASSERT_EQ(0, run_cmd(cmd, from_id, sizeof(from_id)));
	from_id[strcspn(from_id, "\n")] = 0;
	snprintf(cmd, sizeof(cmd), "redis-cli -p %d cluster myid", RC_PORT + (src + 1) % 3);
	ASSERT_EQ(0, run_cmd(cmd, to_id, sizeof(to_id)));
	to_id[strcspn(to_id, "\n")] = 0;
	ksft_print_msg("resharding %u slots (up to slot %u) from master %d to %d\n",
		       n, best_slot, src + 1, (src + 1) % 3 + 1);

	snprintf(cmd, sizeof(cmd),
		 "exec redis-cli --cluster reshard 127.0.0.1:%d --cluster-from %s "
		 "--cluster-to %s --cluster-slots %u --cluster-yes >/tmp/reshard.log 2>&1",
		 RC_PORT, from_id, to_id, n);
	t0 = now();
	reshard = fork();
	ASSERT_LE(0, reshard);
	if (reshard == 0) {
		execl("/bin/sh", "sh", "-c", cmd, NULL);
		_exit(127);
	}
	/* Read every page back, write the next generation out, until done. */
	while (now() - t0 < 120) {
		done = waitpid(reshard, &st, WNOHANG) == reshard;
		bad += check_all(self->p, gen);
		if (write_all_out(self->p, self->name, ++gen))
			bad++;
		rounds++;
		if (done)
			break;
	}
	if (!done) {
		kill(reshard, SIGKILL);
		waitpid(reshard, &st, 0);
	}
	ksft_print_msg("reshard took %.1f s; %llu rounds of 512 pages beside it, %llu bad\n",
		       now() - t0, (unsigned long long)rounds, (unsigned long long)bad);
	ASSERT_TRUE(done);
	EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	EXPECT_EQ(0, bad);
	EXPECT_EQ(0, check_all(self->p, gen));
	/* The slot really moved, with our pages. */
	if (best < 200) {
		snprintf(cmd, sizeof(cmd), "redis-cli -p %d cluster countkeysinslot %u",
			 RC_PORT + (src + 1) % 3, best_slot);
		ASSERT_EQ(0, run_cmd(cmd, line, sizeof(line)));
		EXPECT_LT(0, atoi(line));
	}
	EXPECT_EQ(0, mvm_info(self->name).obj[MACHVM_OBJ_A_DEFAULT_TAKEN]);
}

TEST_HARNESS_MAIN
