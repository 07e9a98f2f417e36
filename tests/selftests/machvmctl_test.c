// SPDX-License-Identifier: GPL-2.0
/*
 * machvmctl (the admin CLI over the "machvm" generic netlink family)
 * against the real module: what status, objects, object show, stats and
 * events report is checked against what the test did with the raw ABI;
 * object destroy revokes mappings; errors give the documented exit
 * statuses (2 usage, 4 permission, 5 no such object); a dump of thousands
 * of objects lists every one.  pageout show/set/run and swap add/remove/list
 * are checked the same way: settings read back, a swap file in /tmp listed
 * with its slots and removed, pages of an anonymous object paged out to it
 * and back, values refused (by machvmctl: exit 2; by the module: exit 1
 * with its reason), changes refused to an unprivileged user, SWAP_ADDED and
 * SWAP_REMOVED events.  machvmctl is /bin/machvmctl in the VM.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "mvm_test.h"

#define NOBODY 65534

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * Run "sh -c CMD" (as user NOBODY if as_nobody), stdout captured into a
 * malloc'd, NUL-terminated *out.  Returns the exit status, 128+N if killed
 * by signal N, -1 if it could not run.
 */
static int run_as(int as_nobody, char **out, const char *fmt, ...)
{
	char cmd[512];
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap);
	int p[2], st;
	va_list ap;
	pid_t pid;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	*out = buf;
	if (!buf || pipe(p))
		return -1;
	buf[0] = 0;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		close(p[0]);
		dup2(p[1], STDOUT_FILENO);
		if (as_nobody && (setgroups(0, NULL) || setgid(NOBODY) ||
				  setuid(NOBODY)))
			_exit(126);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	for (;;) {
		ssize_t n;

		if (cap - len < 4096) {
			char *nb = realloc(buf, cap * 2);

			if (!nb)
				break;
			buf = nb;
			*out = buf;
			cap *= 2;
		}
		n = read(p[0], buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += n;
		buf[len] = 0;
	}
	close(p[0]);
	if (waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

#define run(out, ...) run_as(0, out, __VA_ARGS__)

/* Runs CMD (printf-style): it exits @rc and its output holds @says. */
#define EXPECT_RUN_SAYS(rc, says, ...)					\
	do {								\
		char *says_out_;					\
		EXPECT_EQ((rc), run(&says_out_, __VA_ARGS__));		\
		EXPECT_NE(NULL, strstr(says_out_, (says)))		\
			TH_LOG("it said: %s", says_out_);		\
		free(says_out_);					\
	} while (0)

/* Copies the line of out that starts with the JSON object {"@key":@v,. */
static int json_line(const char *out, const char *key, uint64_t v, char *line,
		     size_t len)
{
	char start[64];
	const char *p, *e;
	size_t n;

	snprintf(start, sizeof(start), "{\"%s\":%llu,", key,
		 (unsigned long long)v);
	p = strstr(out, start);
	if (!p)
		return -1;
	e = strchr(p, '\n');
	n = e ? (size_t)(e - p) : strlen(p);
	if (n >= len)
		n = len - 1;
	memcpy(line, p, n);
	line[n] = 0;
	return 0;
}

/* Copies the line of out that starts with the JSON object of @name. */
static int object_line(const char *out, uint64_t name, char *line, size_t len)
{
	return json_line(out, "name", name, line, len);
}

/* The number after "key": in a one-line JSON object; -1 if absent. */
static int jnum(const char *line, const char *key, uint64_t *v)
{
	char k[64];
	const char *p;

	snprintf(k, sizeof(k), "\"%s\":", key);
	p = strstr(line, k);
	if (!p)
		return -1;
	p += strlen(k);
	if (*p < '0' || *p > '9')
		return -1;
	*v = strtoull(p, NULL, 10);
	return 0;
}

static uint64_t jget(const char *line, const char *key)
{
	uint64_t v;

	return jnum(line, key, &v) ? ~0ULL : v;
}

/* Whether the line holds "key":"want". */
static int jstr(const char *line, const char *key, const char *want)
{
	char k[128];

	snprintf(k, sizeof(k), "\"%s\":\"%s\"", key, want);
	return !!strstr(line, k);
}

static int count_lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

struct counts {
	uint64_t objects, pagers;
};

static int get_counts(struct counts *c)
{
	char *out;
	int rc = run(&out, "machvmctl status --json");

	if (rc == 0 && (jnum(out, "nr_objects", &c->objects) ||
			jnum(out, "nr_pagers", &c->pagers)))
		rc = -1;
	free(out);
	return rc;
}

/* Counts once they stop moving (the objects of earlier tests are gone). */
static int stable_counts(struct counts *c)
{
	struct counts prev = { ~0ULL, ~0ULL };

	for (int i = 0; i < 20; i++) {
		if (get_counts(c))
			return -1;
		if (c->objects == prev.objects && c->pagers == prev.pagers)
			return 0;
		prev = *c;
		usleep(100 * 1000);
	}
	return 0;
}

struct stats {
	uint64_t faults, requests, supplied, created, terminated;
};

static int get_stats(struct stats *s)
{
	char *out;
	int rc = run(&out, "machvmctl stats --json");

	if (rc == 0 && (jnum(out, "faults", &s->faults) ||
			jnum(out, "requests", &s->requests) ||
			jnum(out, "supplied", &s->supplied) ||
			jnum(out, "objects_created", &s->created) ||
			jnum(out, "objects_terminated", &s->terminated)))
		rc = -1;
	free(out);
	return rc;
}

/*
 * A child process creates and closes a pager endpoint: PAGER_ATTACHED and
 * PAGER_DIED with a pid other than ours.
 */
static void probe_pager(int dev)
{
	pid_t pid = fork();

	if (pid == 0) {
		int p = mvm_pager(dev);

		_exit(p < 0);
	}
	if (pid > 0)
		waitpid(pid, NULL, 0);
}

/* The first columns of a row of the objects table. */
struct row {
	unsigned long long name, id, resident;
	unsigned int maps;
	char size[32], prot[8], state[32];
};

/* Parses the row of the table whose NAME (first column) is @name. */
static int table_row(const char *out, uint64_t name, struct row *r)
{
	const char *p = strchr(out, '\n');

	while (p && p[1]) {
		p++;
		if (sscanf(p, "%llu %llu %31s %7s %31s %llu %u", &r->name,
			   &r->id, r->size, r->prot, r->state, &r->resident,
			   &r->maps) == 7 && r->name == name)
			return 0;
		p = strchr(p, '\n');
	}
	return -1;
}

/* Copies the row of the table whose NAME (first column) is @name. */
static int table_line(const char *out, uint64_t name, char *line, size_t len)
{
	const char *p = strchr(out, '\n');

	while (p && p[1]) {
		p++;
		if (strtoull(p, NULL, 10) == name) {
			snprintf(line, len, "%.*s", (int)strcspn(p, "\n"), p);
			return 0;
		}
		p = strchr(p, '\n');
	}
	return -1;
}

/* Lines read from a background machvmctl. */
struct reader {
	int fd;
	int eof;
	size_t len;
	char buf[1 << 16];
};

/* Reads what arrives within timeout_ms; returns the complete lines. */
static int pump(struct reader *r, int timeout_ms)
{
	struct pollfd p = { .fd = r->fd, .events = POLLIN };

	if (!r->eof && poll(&p, 1, timeout_ms) > 0) {
		ssize_t n = read(r->fd, r->buf + r->len,
				 sizeof(r->buf) - 1 - r->len);

		if (n <= 0)
			r->eof = 1;
		else
			r->len += n;
		r->buf[r->len] = 0;
	}
	return count_lines(r->buf);
}

/*
 * Waits until the background `machvmctl events` has joined the group: it
 * prints the events of probe pagers from then on.
 */
static int sync_events(int dev, struct reader *r)
{
	double t0 = now();

	while (now() - t0 < 15) {
		probe_pager(dev);
		if (pump(r, 200) > 0)
			return 0;
		if (r->eof)
			return -1;
	}
	return -1;
}

/*
 * Starts "machvmctl events ARGS" in the background, read by @r, and waits
 * until it has joined the group: its pipe (to pclose), or NULL.
 */
static FILE *start_events(int dev, struct reader *r, const char *args)
{
	char cmd[128];
	FILE *p;

	snprintf(cmd, sizeof(cmd), "machvmctl events %s", args);
	p = popen(cmd, "r");
	if (!p)
		return NULL;
	r->fd = fileno(p);
	return sync_events(dev, r) ? NULL : p;
}

/* Probes until the background machvmctl exits (its --count reached). */
static void drain_events(int dev, struct reader *r)
{
	double t0 = now();

	while (!r->eof && now() - t0 < 30) {
		probe_pager(dev);
		pump(r, 100);
	}
}

/* The line of an event with "event":"EV" and "key":val, or NULL. */
static const char *find_event(const char *buf, const char *ev,
			      const char *key, uint64_t val, char *line,
			      size_t len)
{
	const char *p = buf;

	while (*p) {
		const char *e = strchr(p, '\n');
		size_t n = e ? (size_t)(e - p) : strlen(p);

		if (n >= len)
			n = len - 1;
		memcpy(line, p, n);
		line[n] = 0;
		if (jstr(line, "event", ev) && jget(line, key) == val)
			return p;
		if (!e)
			break;
		p = e + 1;
	}
	return NULL;
}

FIXTURE(ctl) {
	int dev, pager;
	struct mvm_server srv;
	int server;
};

FIXTURE_SETUP(ctl)
{
	memset(&self->srv, 0, sizeof(self->srv));
	self->dev = mvm_dev();
	ASSERT_LE(0, self->dev);
	self->pager = mvm_pager(self->dev);
	ASSERT_LE(0, self->pager);
	self->server = 0;
}

FIXTURE_TEARDOWN(ctl)
{
	if (self->server)
		mvm_server_stop(&self->srv);
	if (self->pager >= 0)
		close(self->pager);
	close(self->dev);
}

static void serve(struct _test_data_ctl *self)
{
	mvm_server_start(&self->srv, self->pager, MVM_ZERO);
	self->server = 1;
}

TEST(help_and_usage_errors)
{
	char *out;

	EXPECT_EQ(0, run(&out, "machvmctl --help"));
	EXPECT_NE(NULL, strstr(out, "SYNOPSIS"));
	EXPECT_NE(NULL, strstr(out, "EXIT STATUS"));
	free(out);
	EXPECT_RUN_SAYS(0, "machvmctl object show NAME",
			"machvmctl object show --help");

	/* Bad arguments: exit 2, the message names what is wrong. */
	EXPECT_RUN_SAYS(2, "'abc'", "machvmctl object show abc 2>&1");
	EXPECT_RUN_SAYS(2, "frobnicate", "machvmctl frobnicate 2>&1");
	EXPECT_EQ(2, run(&out, "machvmctl 2>&1"));
	free(out);
	EXPECT_EQ(2, run(&out, "machvmctl objects --bogus 2>&1"));
	free(out);
	EXPECT_EQ(2, run(&out, "machvmctl stats --watch 0 2>&1"));
	free(out);
	EXPECT_EQ(2, run(&out, "machvmctl events --count x 2>&1"));
	free(out);
	EXPECT_EQ(2, run(&out, "machvmctl object destroy 2>&1"));
	free(out);
}

TEST(no_such_object)
{
	char *out;

	EXPECT_RUN_SAYS(5, "no such object",
			"machvmctl object show 999999999 2>&1");
	EXPECT_EQ(5, run(&out, "machvmctl object show 999999999 --json 2>/dev/null"));
	EXPECT_EQ(0, strlen(out)); /* nothing on stdout */
	free(out);
	EXPECT_RUN_SAYS(5, "no such object",
			"machvmctl object destroy 999999999 2>&1");
}

/*
 * The names of the MACHVM_F_* bits in `features`, joined by `sep`; -1 if
 * a bit has no name here (a new feature bit must get its name in
 * machvmctl and here).
 */
static int feature_names(uint64_t features, const char *sep, char *buf,
			 size_t len)
{
	static const struct {
		uint64_t flag;
		const char *name;
	} names[] = {
		{ MACHVM_F_OBJECTS, "objects" },
		{ MACHVM_F_URING_CMD, "uring_cmd" },
		{ MACHVM_F_REGION, "region" },
		{ MACHVM_F_PAGEOUT, "pageout" },
		{ MACHVM_F_ANON, "anon" },
		{ MACHVM_F_LOCKS, "locks" },
		{ MACHVM_F_CLUSTER_RETURN, "cluster_return" },
		{ MACHVM_F_FETCH_RELEASE, "fetch_release" },
		{ MACHVM_F_EXISTENCE, "existence" },
		{ MACHVM_F_TEMPORARY, "temporary" },
	};
	size_t used = 0;

	buf[0] = 0;
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		if (!(features & names[i].flag))
			continue;
		features &= ~names[i].flag;
		used += snprintf(buf + used, len - used, "%s%s",
				 used ? sep : "", names[i].name);
		if (used >= len)
			return -1;
	}
	return features ? -1 : 0;
}

TEST_F(ctl, status_counts_objects_and_pagers)
{
	struct machvm_version v;
	struct machvm_object_create oc;
	struct counts base, c;
	int fds[3], extra;
	char *out, want[256], names[128];
	double t0;

	ASSERT_EQ(0, ioctl(self->dev, MACHVM_IOC_VERSION, &v));
	ASSERT_EQ(0, stable_counts(&base));
	for (int i = 0; i < 3; i++) {
		fds[i] = mvm_object(self->pager, (i + 1) * PG,
				    PROT_READ | PROT_WRITE, 0, &oc);
		ASSERT_LE(0, fds[i]);
	}
	extra = mvm_pager(self->dev);
	ASSERT_LE(0, extra);

	ASSERT_EQ(0, run(&out, "machvmctl status --json"));
	EXPECT_EQ('{', out[0]);
	EXPECT_EQ(1, count_lines(out));
	EXPECT_EQ(base.objects + 3, jget(out, "nr_objects"));
	EXPECT_EQ(base.pagers + 1, jget(out, "nr_pagers"));
	EXPECT_EQ(MACHVM_ABI_VERSION, jget(out, "abi_version"));
	EXPECT_EQ(v.page_size, jget(out, "page_size"));
	EXPECT_EQ(v.features, jget(out, "features"));
	/* Every bit the module reports has its name, in bit order. */
	ASSERT_EQ(0, feature_names(v.features, "\",\"", names, sizeof(names)));
	snprintf(want, sizeof(want), ",\"feature_names\":[\"%s\"],", names);
	EXPECT_NE(NULL, strstr(out, want)) {
		TH_LOG("want %s in %s", want, out);
	}
	/* Both releases; the module's is known (MODULE_VERSION). */
	EXPECT_EQ(NULL, strstr(out, "\"module_version\":\"\""));
	EXPECT_NE(NULL, strstr(out, "\"module_version\":\""));
	EXPECT_NE(NULL, strstr(out, "\"tools_version\":\""));
	free(out);

	/* The table says the same. */
	ASSERT_EQ(0, run(&out, "machvmctl status"));
	snprintf(want, sizeof(want), "objects         %llu\n",
		 (unsigned long long)base.objects + 3);
	EXPECT_NE(NULL, strstr(out, want));
	feature_names(v.features, " ", names, sizeof(names));
	snprintf(want, sizeof(want), "\nfeatures        %s (0x%llx)\n", names,
		 (unsigned long long)v.features);
	EXPECT_NE(NULL, strstr(out, want)) {
		TH_LOG("want %s in %s", want, out);
	}
	/* Both releases: the module's and the tools'. */
	EXPECT_EQ(0, strncmp(out, "module version  ", 16));
	EXPECT_EQ(NULL, strstr(out, "module version  unknown"));
	EXPECT_NE(NULL, strstr(out, "\ntools version   "));
	free(out);

	/* Never-mapped objects die with their last descriptor. */
	for (int i = 0; i < 3; i++)
		close(fds[i]);
	close(extra);
	t0 = now();
	do {
		ASSERT_EQ(0, get_counts(&c));
		if (c.objects == base.objects && c.pagers == base.pagers)
			break;
		usleep(50 * 1000);
	} while (now() - t0 < 3);
	EXPECT_EQ(base.objects, c.objects);
	EXPECT_EQ(base.pagers, c.pagers);
}

TEST_F(ctl, objects_lists_ours_with_live_counts)
{
	struct machvm_object_create a, b;
	int fa, fb;
	char *out, line[1024];
	struct row row;
	char *m;

	fa = mvm_object(self->pager, 16 * PG, PROT_READ | PROT_WRITE, 0, &a);
	ASSERT_LE(0, fa);
	fb = mvm_object(self->pager, 4 * PG, PROT_READ, 0, &b);
	ASSERT_LE(0, fb);
	serve(self);
	m = mmap(NULL, 16 * PG, PROT_READ, MAP_SHARED, fa, 0);
	ASSERT_NE(MAP_FAILED, m);
	for (int i = 0; i < 5; i++)
		ASSERT_EQ(0, mvm_touch(m + i * 2 * PG, 0, NULL));

	ASSERT_EQ(0, run(&out, "machvmctl objects --json"));
	EXPECT_EQ(0, strncmp(out, "[\n", 2));
	EXPECT_NE(NULL, strstr(out, "\n]\n"));

	ASSERT_EQ(0, object_line(out, a.name, line, sizeof(line)));
	EXPECT_EQ(a.id, jget(line, "id"));
	EXPECT_EQ(16 * PG, jget(line, "size"));
	EXPECT_TRUE(jstr(line, "state", "ready"));
	EXPECT_TRUE(jstr(line, "max_prot", "rw-"));
	EXPECT_EQ(5, jget(line, "resident"));
	EXPECT_EQ(1, jget(line, "mappings"));
	EXPECT_EQ(getpid(), jget(line, "pager_pid"));
	EXPECT_TRUE(jstr(line, "pager_state", "live"));
	EXPECT_EQ(0, jget(line, "pending"));
	EXPECT_LE(5, jget(line, "faults"));
	EXPECT_LE(5, jget(line, "requests"));
	EXPECT_EQ(5, jget(line, "supplied"));
	EXPECT_EQ(0, jget(line, "errors"));
	EXPECT_EQ(0, jget(line, "timeouts"));
	EXPECT_EQ(1, jget(line, "cluster"));
	EXPECT_EQ(MACHVM_DEFAULT_TIMEOUT_MS, jget(line, "timeout_ms"));
	/* The pageout fields: a pager's object, nothing paged out yet. */
	EXPECT_TRUE(jstr(line, "kind", "pager"));
	EXPECT_EQ(0, jget(line, "swapped"));
	EXPECT_EQ(0, jget(line, "pageouts"));
	EXPECT_EQ(0, jget(line, "pageins"));
	EXPECT_EQ(0, jget(line, "returned"));
	EXPECT_EQ(0, jget(line, "default_taken"));
	EXPECT_EQ(0, jget(line, "dirty"));	/* read faults only */
	EXPECT_NE(~0ULL, jget(line, "limit"));
	EXPECT_NE(~0ULL, jget(line, "scans"));
	EXPECT_NE(~0ULL, jget(line, "ref_hits"));

	ASSERT_EQ(0, object_line(out, b.name, line, sizeof(line)));
	EXPECT_EQ(b.id, jget(line, "id"));
	EXPECT_EQ(4 * PG, jget(line, "size"));
	EXPECT_TRUE(jstr(line, "state", "new"));
	EXPECT_TRUE(jstr(line, "max_prot", "r--"));
	EXPECT_EQ(0, jget(line, "resident"));
	EXPECT_EQ(0, jget(line, "mappings"));
	EXPECT_EQ(0, jget(line, "faults"));
	/* In name order. */
	if (a.name < b.name) {
		char ka[48], kb[48];

		snprintf(ka, sizeof(ka), "{\"name\":%llu,",
			 (unsigned long long)a.name);
		snprintf(kb, sizeof(kb), "{\"name\":%llu,",
			 (unsigned long long)b.name);
		EXPECT_LT(strstr(out, ka), strstr(out, kb));
	}
	free(out);

	/* The table: a header, then a row for each, NAME first. */
	ASSERT_EQ(0, run(&out, "machvmctl objects"));
	EXPECT_LT(strstr(out, "NAME"), strchr(out, '\n'));
	EXPECT_LT(strstr(out, "RESIDENT"), strchr(out, '\n'));
	ASSERT_EQ(0, table_row(out, a.name, &row));
	EXPECT_EQ(a.id, row.id);
	EXPECT_STREQ("64K", row.size);
	EXPECT_STREQ("rw-", row.prot);
	EXPECT_STREQ("ready", row.state);
	EXPECT_EQ(5, row.resident);
	EXPECT_EQ(1, row.maps);
	ASSERT_EQ(0, table_row(out, b.name, &row));
	EXPECT_EQ(b.id, row.id);
	EXPECT_STREQ("16K", row.size);
	EXPECT_STREQ("r--", row.prot);
	EXPECT_STREQ("new", row.state);
	EXPECT_EQ(0, row.resident);
	EXPECT_EQ(0, row.maps);
	free(out);

	munmap(m, 16 * PG);
	close(fa);
	close(fb);
}

TEST_F(ctl, object_show)
{
	struct machvm_object_create a;
	char *out, *m;
	int fa;

	fa = mvm_object(self->pager, 8 * PG, PROT_READ | PROT_WRITE, 0, &a);
	ASSERT_LE(0, fa);
	serve(self);
	m = mmap(NULL, 8 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fa, 0);
	ASSERT_NE(MAP_FAILED, m);
	for (int i = 0; i < 3; i++)
		ASSERT_EQ(0, mvm_touch(m + i * PG, 1, NULL));

	ASSERT_EQ(0, run(&out, "machvmctl object show %llu --json",
			 (unsigned long long)a.name));
	EXPECT_EQ(1, count_lines(out));
	EXPECT_EQ(a.name, jget(out, "name"));
	EXPECT_EQ(a.id, jget(out, "id"));
	EXPECT_EQ(8 * PG, jget(out, "size"));
	EXPECT_TRUE(jstr(out, "state", "ready"));
	EXPECT_EQ(3, jget(out, "resident"));
	EXPECT_EQ(1, jget(out, "mappings"));
	EXPECT_EQ(getpid(), jget(out, "pager_pid"));
	EXPECT_LE(3, jget(out, "faults"));
	EXPECT_EQ(3, jget(out, "supplied"));
	free(out);

	/* Hex names, and the human form. */
	ASSERT_EQ(0, run(&out, "machvmctl object show 0x%llx",
			 (unsigned long long)a.name));
	EXPECT_NE(NULL, strstr(out, "state          ready\n"));
	EXPECT_NE(NULL, strstr(out, "resident       3 pages\n"));
	EXPECT_NE(NULL, strstr(out, "size           32768 (32K)\n"));
	EXPECT_NE(NULL, strstr(out, "kind           pager\n"));
	EXPECT_NE(NULL, strstr(out, "swapped        0 pages\n"));
	free(out);

	munmap(m, 8 * PG);
	close(fa);
}

TEST_F(ctl, destroy_as_root_revokes_the_mapping)
{
	struct machvm_object_create a, b;
	struct machvm_cmd c = { .type = MACHVM_CMD_DESTROY };
	void *addr;
	char *out;
	char *m;
	int fa, fb, rc;

	fa = mvm_object(self->pager, 4 * PG, PROT_READ, 0, &a);
	ASSERT_LE(0, fa);
	fb = mvm_object(self->pager, PG, PROT_READ, 0, &b);
	ASSERT_LE(0, fb);
	serve(self);
	m = mmap(NULL, 4 * PG, PROT_READ, MAP_SHARED, fa, 0);
	ASSERT_NE(MAP_FAILED, m);
	ASSERT_EQ(0, mvm_touch(m, 0, NULL));

	EXPECT_EQ(0, run(&out, "machvmctl object destroy %llu",
			 (unsigned long long)a.name));
	EXPECT_EQ(0, strlen(out));
	free(out);
	/* Resident or not, every page of the mapping is gone. */
	EXPECT_EQ(1, mvm_touch(m, 0, &addr));
	EXPECT_EQ(m, (char *)addr);
	EXPECT_EQ(1, mvm_touch(m + 3 * PG, 0, &addr));
	/* The pager's control id died with it. */
	c.object = a.id;
	EXPECT_EQ(-ENOENT, mvm_cmd(self->pager, &c));
	/* Shown destroyed while the descriptor lives, or gone. */
	rc = run(&out, "machvmctl object show %llu --json",
		 (unsigned long long)a.name);
	EXPECT_TRUE(rc == 5 || (rc == 0 && jstr(out, "state", "destroyed")));
	EXPECT_EQ(0, rc == 0 ? jget(out, "resident") : 0);
	free(out);
	/* Only live objects can be destroyed. */
	EXPECT_RUN_SAYS(5, "no such object",
			"machvmctl object destroy %llu 2>&1",
			(unsigned long long)a.name);

	/* --json says what it did. */
	EXPECT_EQ(0, run(&out, "machvmctl --json object destroy %llu",
			 (unsigned long long)b.name));
	EXPECT_EQ(b.name, jget(out, "name"));
	EXPECT_NE(NULL, strstr(out, "\"destroyed\":true"));
	free(out);
	EXPECT_EQ(MAP_FAILED, mmap(NULL, PG, PROT_READ, MAP_SHARED, fb, 0));

	munmap(m, 4 * PG);
	close(fa);
	close(fb);
}

TEST_F(ctl, destroy_unprivileged_is_denied)
{
	struct machvm_object_create a;
	struct stat root;
	char *out;
	int fa;

	fa = mvm_object(self->pager, PG, PROT_READ, 0, &a);
	ASSERT_LE(0, fa);
	/*
	 * The initramfs root may be 0700 (mkinitramfs's mktemp -d): nobody
	 * could run nothing.  Open it up for this test, put it back after.
	 */
	ASSERT_EQ(0, stat("/", &root));
	ASSERT_EQ(0, chmod("/", (root.st_mode & 07777) | 0755));

	EXPECT_EQ(4, run_as(1, &out, "machvmctl object destroy %llu 2>&1",
			    (unsigned long long)a.name));
	EXPECT_NE(NULL, strstr(out, "not permitted"));
	EXPECT_NE(NULL, strstr(out, "CAP_SYS_ADMIN"));
	free(out);
	/* Nothing happened to it. */
	ASSERT_EQ(0, run(&out, "machvmctl object show %llu --json",
			 (unsigned long long)a.name));
	EXPECT_TRUE(jstr(out, "state", "new"));
	free(out);
	/* Looking is open to everyone. */
	EXPECT_EQ(0, run_as(1, &out, "machvmctl object show %llu --json",
			    (unsigned long long)a.name));
	EXPECT_EQ(a.name, jget(out, "name"));
	free(out);
	EXPECT_EQ(0, run_as(1, &out, "machvmctl status --json"));
	EXPECT_NE(~0ULL, jget(out, "nr_objects"));
	free(out);
	chmod("/", root.st_mode & 07777);
	close(fa);
}

TEST_F(ctl, stats_counters_move)
{
	static const char * const counters[] = {
		"pageouts", "pageins", "returned", "default_taken", "scans",
		"ref_hits", "swap_writes", "swap_full", "resident", "swapped",
		"limit_waits", "lock_requests",
	};
	struct machvm_object_create a;
	struct stats s0, s1;
	char *out, *m;
	int fa;

	ASSERT_EQ(0, get_stats(&s0));
	fa = mvm_object(self->pager, 32 * PG, PROT_READ, 0, &a);
	ASSERT_LE(0, fa);
	serve(self);
	m = mmap(NULL, 32 * PG, PROT_READ, MAP_SHARED, fa, 0);
	ASSERT_NE(MAP_FAILED, m);
	for (int i = 0; i < 8; i++)
		ASSERT_EQ(0, mvm_touch(m + i * 4 * PG, 0, NULL));
	munmap(m, 32 * PG);
	close(fa);

	ASSERT_EQ(0, get_stats(&s1));
	EXPECT_LE(s0.faults + 8, s1.faults);
	EXPECT_LE(s0.requests + 8, s1.requests);
	EXPECT_LE(s0.supplied + 8, s1.supplied);
	EXPECT_LE(s0.created + 1, s1.created);
	EXPECT_LE(s0.terminated + 1, s1.terminated);

	/* --watch/--count: one JSON object per sample, with a time. */
	ASSERT_EQ(0, run(&out, "machvmctl stats --json --watch 0.1 --count 3"));
	EXPECT_EQ(3, count_lines(out));
	EXPECT_EQ(0, strncmp(out, "{\"time\":", 8));
	EXPECT_LE(s1.faults, jget(out, "faults"));
	free(out);
	/* The table: header, the totals, then the changes. */
	ASSERT_EQ(0, run(&out, "machvmctl stats --watch 0.1 --count 2"));
	EXPECT_EQ(3, count_lines(out));
	EXPECT_NE(NULL, strstr(out, "FAULTS"));
	free(out);
	ASSERT_EQ(0, run(&out, "machvmctl stats"));
	EXPECT_NE(NULL, strstr(out, "faults "));
	EXPECT_NE(NULL, strstr(out, "pagers_died "));
	EXPECT_NE(NULL, strstr(out, "pageouts "));
	EXPECT_NE(NULL, strstr(out, "swap_writes "));
	EXPECT_NE(NULL, strstr(out, "lock_requests "));
	free(out);
	/* Every counter the module sends is in the JSON. */
	ASSERT_EQ(0, run(&out, "machvmctl stats --json"));
	for (size_t i = 0; i < ARRAY_SIZE(counters); i++)
		EXPECT_NE(~0ULL, jget(out, counters[i]));
	free(out);
}

TEST_F_TIMEOUT(ctl, events_follow_the_group, 120)
{
	struct machvm_object_create a, b;
	struct reader *r = calloc(1, sizeof(*r));
	const char *created_a, *terminated_a, *attached, *died;
	char line[512], *out;
	int fa, fb, st, pager2;
	uint64_t pid = getpid();
	FILE *p;
	char *m;

	ASSERT_NE(NULL, r);
	p = start_events(self->dev, r, "--count 40 --json --timeout 90");
	ASSERT_NE(NULL, p);

	/* A pager attaches, creates A and B, serves A, A terminates. */
	pager2 = mvm_pager(self->dev);
	ASSERT_LE(0, pager2);
	fa = mvm_object(pager2, 4 * PG, PROT_READ, 0, &a);
	ASSERT_LE(0, fa);
	fb = mvm_object(pager2, 4 * PG, PROT_READ, 0, &b);
	ASSERT_LE(0, fb);
	mvm_server_start(&self->srv, pager2, MVM_ZERO);
	self->server = 1;
	m = mmap(NULL, 4 * PG, PROT_READ, MAP_SHARED, fa, 0);
	ASSERT_NE(MAP_FAILED, m);
	ASSERT_EQ(0, mvm_touch(m, 0, NULL));
	munmap(m, 4 * PG);
	close(fa);
	/* An admin destroys B. */
	ASSERT_EQ(0, run(&out, "machvmctl object destroy %llu",
			 (unsigned long long)b.name));
	free(out);
	close(fb);
	/* The pager dies. */
	mvm_server_stop(&self->srv);
	self->server = 0;
	close(pager2);

	drain_events(self->dev, r);
	st = pclose(p);
	EXPECT_TRUE(WIFEXITED(st));
	EXPECT_EQ(0, WEXITSTATUS(st));

	/* Exactly --count events, one JSON object per line. */
	EXPECT_EQ(40, count_lines(r->buf));
	for (const char *s = r->buf, *e; (e = strchr(s, '\n')); s = e + 1) {
		EXPECT_EQ(0, strncmp(s, "{\"time\":", 8));
		EXPECT_EQ('}', e[-1]);
		EXPECT_LT(strstr(s, "\"event\":\""), e);
	}

	created_a = find_event(r->buf, "OBJECT_CREATED", "name", a.name,
			       line, sizeof(line));
	EXPECT_NE(NULL, created_a);
	EXPECT_EQ(MACHVM_EVENT_OBJECT_CREATED, jget(line, "type"));
	EXPECT_NE(NULL, find_event(r->buf, "OBJECT_CREATED", "name", b.name,
				   line, sizeof(line)));
	terminated_a = find_event(r->buf, "OBJECT_TERMINATED", "name", a.name,
				  line, sizeof(line));
	EXPECT_NE(NULL, terminated_a);
	EXPECT_LT(created_a, terminated_a);
	EXPECT_NE(NULL, find_event(r->buf, "OBJECT_DESTROYED", "name", b.name,
				   line, sizeof(line)));
	/* Only pager2 is ours; the probes are other processes. */
	attached = find_event(r->buf, "PAGER_ATTACHED", "pager_pid", pid,
			      line, sizeof(line));
	EXPECT_NE(NULL, attached);
	died = find_event(r->buf, "PAGER_DIED", "pager_pid", pid, line,
			  sizeof(line));
	EXPECT_NE(NULL, died);
	EXPECT_LT(attached, created_a);
	EXPECT_LT(terminated_a, died);
	if (!_metadata->passed)
		TH_LOG("events seen:\n%s", r->buf);
	free(r);
}

TEST_F_TIMEOUT(ctl, events_human_count_and_timeout, 90)
{
	struct reader *r = calloc(1, sizeof(*r));
	char want[64], *out;
	FILE *p;
	int st;

	ASSERT_NE(NULL, r);
	/* Nothing happens: --timeout alone ends well, with --count not. */
	EXPECT_EQ(0, run(&out, "machvmctl events --timeout 0.3"));
	EXPECT_EQ(0, strlen(out));
	free(out);
	EXPECT_RUN_SAYS(1, "timed out",
			"machvmctl events --count 1 --timeout 0.3 2>&1");

	/* The human form: TIME EVENT pager_pid=PID, flushed per event. */
	p = start_events(self->dev, r, "--count 3 --timeout 60");
	ASSERT_NE(NULL, p);
	drain_events(self->dev, r);
	st = pclose(p);
	EXPECT_EQ(0, WEXITSTATUS(st));
	EXPECT_EQ(3, count_lines(r->buf));
	for (const char *l = r->buf, *e; (e = strchr(l, '\n')); l = e + 1) {
		unsigned int hh, mm, ss, ms, pid;
		char ev[32];
		int n;

		n = sscanf(l, "%2u:%2u:%2u.%3u %31s", &hh, &mm, &ss, &ms, ev);
		EXPECT_EQ(5, n);
		EXPECT_TRUE(!strcmp(ev, "PAGER_ATTACHED") ||
			    !strcmp(ev, "PAGER_DIED"));
		snprintf(want, sizeof(want), "%s pager_pid=", ev);
		ASSERT_NE(NULL, strstr(l, want));
		n = sscanf(strstr(l, want) + strlen(want), "%u", &pid);
		EXPECT_EQ(1, n);
		EXPECT_NE(0, pid);
		EXPECT_EQ(12, strchr(l, ' ') - l);
	}
	if (!_metadata->passed)
		TH_LOG("events seen:\n%s", r->buf);
	free(r);
}

#define MANY 3000

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

TEST_F_TIMEOUT(ctl, dump_lists_thousands_of_objects, 180)
{
	struct rlimit rl = { 8192, 8192 };
	struct machvm_object_create oc;
	uint64_t *names = calloc(MANY, sizeof(*names));
	char *seen = calloc(MANY, 1);
	int *fds = calloc(MANY, sizeof(*fds));
	int found = 0, dups = 0, rows = 0;
	char *out;
	const char *s;

	ASSERT_TRUE(names && seen && fds);
	ASSERT_EQ(0, setrlimit(RLIMIT_NOFILE, &rl));
	for (int i = 0; i < MANY; i++) {
		fds[i] = mvm_object(self->pager, PG, PROT_READ, 0, &oc);
		ASSERT_LE(0, fds[i]);
		names[i] = oc.name;
	}
	qsort(names, MANY, sizeof(*names), cmp_u64);

	ASSERT_EQ(0, run(&out, "machvmctl objects --json"));
	for (s = out; (s = strstr(s, "{\"name\":")); s++) {
		uint64_t name = strtoull(s + 8, NULL, 10);
		uint64_t *hit = bsearch(&name, names, MANY, sizeof(*names),
					cmp_u64);

		rows++;
		if (!hit)
			continue;
		if (seen[hit - names]++)
			dups++;
		else
			found++;
	}
	EXPECT_EQ(MANY, found);
	EXPECT_EQ(0, dups);
	EXPECT_LE(MANY, rows);
	EXPECT_EQ(rows + 2, count_lines(out)); /* "[", rows, "]" */
	free(out);

	/* The table too, and the status count. */
	ASSERT_EQ(0, run(&out, "machvmctl objects"));
	EXPECT_LE(MANY + 1, count_lines(out));
	free(out);
	ASSERT_EQ(0, run(&out, "machvmctl status --json"));
	EXPECT_LE(MANY, jget(out, "nr_objects"));
	free(out);

	for (int i = 0; i < MANY; i++)
		close(fds[i]);
	free(names);
	free(seen);
	free(fds);
}

/* ---- pageout and swap ---- */

struct pageout {
	uint64_t limit, high, low, obj_limit, batch, interval_ms;
};

static int parse_pageout(const char *out, struct pageout *p)
{
	return jnum(out, "limit", &p->limit) || jnum(out, "high", &p->high) ||
	       jnum(out, "low", &p->low) ||
	       jnum(out, "obj_limit", &p->obj_limit) ||
	       jnum(out, "batch", &p->batch) ||
	       jnum(out, "interval_ms", &p->interval_ms) ? -1 : 0;
}

static int get_pageout(struct pageout *p)
{
	char *out;
	int rc = run(&out, "machvmctl pageout show --json");

	if (rc == 0 && parse_pageout(out, p))
		rc = -1;
	free(out);
	return rc;
}

static int set_pageout(const struct pageout *p)
{
	char *out;
	int rc = run(&out, "machvmctl pageout set --limit %llu --high %llu "
		     "--low %llu --object-limit %llu --batch %llu "
		     "--interval-ms %llu",
		     (unsigned long long)p->limit, (unsigned long long)p->high,
		     (unsigned long long)p->low,
		     (unsigned long long)p->obj_limit,
		     (unsigned long long)p->batch,
		     (unsigned long long)p->interval_ms);

	free(out);
	return rc;
}

/* Copies the line of out that starts with the JSON object of store @id. */
static int swap_line(const char *out, uint64_t id, char *line, size_t len)
{
	return json_line(out, "id", id, line, len);
}

/* swap add PATH ARGS --json: the new store's id, or -1 (*rc: the exit). */
static int64_t swap_add(const char *path, const char *args, int *rc,
			char *line, size_t len)
{
	char *out;
	uint64_t id = 0;

	*rc = run(&out, "machvmctl swap add %s %s --json", path, args);
	if (*rc == 0 && !jnum(out, "id", &id)) {
		snprintf(line, len, "%s", out);
		free(out);
		return (int64_t)id;
	}
	free(out);
	return -1;
}

/* swap remove ID, quietly: its exit status (-1: no ID). */
static int swap_remove_quiet(int64_t id)
{
	char *out;
	int rc = -1;

	if (id >= 0) {
		rc = run(&out, "machvmctl swap remove %lld 2>/dev/null",
			 (long long)id);
		free(out);
	}
	return rc;
}

/* swap remove ID, retried for 5 s while the store is busy: the last exit. */
static int swap_remove_retry(int64_t id)
{
	int rc = -1;

	for (int i = 0; i < 50; i++) {
		rc = swap_remove_quiet(id);
		if (rc == 0)
			break;
		usleep(100 * 1000);
	}
	return rc;
}

/* An anonymous object (MACHVM_IOC_ANON_CREATE): its fd, or -errno. */
static int anon_object(int dev, uint64_t size, uint64_t limit, uint64_t *name)
{
	struct machvm_anon_create ac = {
		.size = size, .resident_limit = limit,
	};

	if (ioctl(dev, MACHVM_IOC_ANON_CREATE, &ac))
		return -errno;
	*name = ac.name;
	return ac.fd;
}

/* The object's JSON (object show --json), or -1. */
static int show_object(uint64_t name, char *line, size_t len)
{
	char *out;
	int rc = run(&out, "machvmctl object show %llu --json",
		     (unsigned long long)name);

	if (rc == 0)
		snprintf(line, len, "%s", out);
	free(out);
	return rc == 0 ? 0 : -1;
}

/* Opens up / for user nobody (see destroy_unprivileged_is_denied). */
static mode_t open_root(void)
{
	struct stat root;

	if (stat("/", &root))
		return 0755;
	chmod("/", (root.st_mode & 07777) | 0755);
	return root.st_mode & 07777;
}

/* Whether s is valid UTF-8 (RFC 3629: shortest forms, no surrogates). */
static bool utf8_valid(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		unsigned int c = *p++, n, cp, min;

		if (c < 0x80)
			continue;
		if ((c & 0xe0) == 0xc0) {
			n = 1;
			cp = c & 0x1f;
			min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			n = 2;
			cp = c & 0x0f;
			min = 0x800;
		} else if ((c & 0xf8) == 0xf0) {
			n = 3;
			cp = c & 0x07;
			min = 0x10000;
		} else {
			return false;
		}
		while (n--) {
			if ((*p & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (*p++ & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
	}
	return true;
}

/*
 * A swap path that is not UTF-8 (Linux names are bytes) comes out of every
 * --json as valid JSON: each stray byte U+FFFD (EF BF BD), never raw.
 */
TEST(swap_path_not_utf8_is_valid_json)
{
	static const char path[] = "/tmp/ctl-\xff\xfe.swap";
	static const char shown[] = "\"/tmp/ctl-\xef\xbf\xbd\xef\xbf\xbd.swap\"";
	char line[1024], *out;
	int64_t id;
	int rc;

	unlink(path);
	id = swap_add("'/tmp/ctl-\xff\xfe.swap'", "--size 64K", &rc, line,
		      sizeof(line));
	ASSERT_EQ(0, rc);
	ASSERT_LE(1, id);
	EXPECT_TRUE(utf8_valid(line)) {
		TH_LOG("swap add --json: %s", line);
	}
	EXPECT_EQ(NULL, strchr(line, '\xff'));
	EXPECT_NE(NULL, strstr(line, shown));

	EXPECT_EQ(0, run(&out, "machvmctl swap list --json"));
	EXPECT_TRUE(utf8_valid(out));
	EXPECT_NE(NULL, strstr(out, shown));
	free(out);
	EXPECT_EQ(0, run(&out, "machvmctl swap show %lld --json",
			 (long long)id));
	EXPECT_TRUE(utf8_valid(out));
	EXPECT_NE(NULL, strstr(out, shown));
	free(out);
	/* The table quotes it the same way. */
	EXPECT_EQ(0, run(&out, "machvmctl swap list"));
	EXPECT_TRUE(utf8_valid(out));
	EXPECT_NE(NULL, strstr(out, shown));
	free(out);

	swap_remove_quiet(id);
	EXPECT_EQ(0, unlink(path));
}

/*
 * For the tests that only run machvmctl many times: no device, but more
 * than the harness's default 30 s for a TCG guest on a loaded host.
 */
FIXTURE(cli) {};
FIXTURE_SETUP(cli) {}
FIXTURE_TEARDOWN(cli) {}

TEST_F_TIMEOUT(cli, pageout_and_swap_usage, 180)
{
	static const struct {
		const char *cmd, *says;
	} bad[] = {
		{ "pageout", "missing action" },
		{ "pageout list", "'list'" },
		{ "pageout set", "nothing to set" },
		{ "pageout set --limit 15", "16 pages" },
		{ "pageout set --limit lots", "'lots'" },
		{ "pageout set --high 101", "--high" },
		{ "pageout set --low 0", "--low" },
		{ "pageout set --high 50 --low 60", "below --high" },
		{ "pageout set --batch 0", "--batch" },
		{ "pageout set --batch 65537", "--batch" },
		{ "pageout set --interval-ms 9", "--interval-ms" },
		{ "pageout set --interval-ms 60001", "--interval-ms" },
		{ "pageout set --object 5", "needs --limit" },
		{ "pageout set --object 5 --limit 20 --batch 3", "only --limit" },
		{ "pageout set --object x --limit 20", "'x'" },
		{ "pageout run --target 0", "--target" },
		{ "pageout run --object -1", "--object" },
		{ "pageout show --force", "--force" },
		{ "swap", "missing action" },
		{ "swap add", "missing PATH" },
		{ "swap add /tmp/x.swap --size 12Q", "--size" },
		{ "swap add /tmp/x.swap --size 1000", "page size" },
		{ "swap add /tmp/x.swap --size 32K", "16 pages" },
		{ "swap add /tmp/x.swap --prio high", "--prio" },
		{ "swap add /tmp/x.swap --prio 2147483648", "--prio" },
		{ "swap remove", "missing ID" },
		{ "swap remove abc", "'abc'" },
		{ "swap remove 4294967296", "'4294967296'" },
		{ "swap list 3", "'3'" },
		{ "swap show", "missing ID" },
		{ "swap show x", "'x'" },
	};
	char *out;

	EXPECT_EQ(0, run(&out, "machvmctl pageout --help"));
	EXPECT_NE(NULL, strstr(out, "machvmctl pageout set --object NAME --limit PAGES"));
	EXPECT_NE(NULL, strstr(out, "EXIT STATUS"));
	free(out);
	EXPECT_RUN_SAYS(0, "machvmctl swap add PATH [--size SIZE] [--prio N]",
			"machvmctl swap add --help");
	EXPECT_EQ(0, run(&out, "machvmctl --help"));
	EXPECT_NE(NULL, strstr(out, "pageout run [--target PAGES]"));
	EXPECT_NE(NULL, strstr(out, "swap remove ID"));
	free(out);

	/* Exit 2, the message names what is wrong, nothing on stdout. */
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		EXPECT_EQ(2, run(&out, "machvmctl %s 2>/dev/null", bad[i].cmd));
		EXPECT_EQ(0, strlen(out));
		free(out);
		EXPECT_EQ(2, run(&out, "machvmctl %s 2>&1", bad[i].cmd));
		if (!strstr(out, bad[i].says))
			TH_LOG("'%s' said: %s", bad[i].cmd, out);
		EXPECT_NE(NULL, strstr(out, bad[i].says));
		EXPECT_NE(NULL, strstr(out, "--help' for more information"));
		free(out);
	}
	/* Nothing was created by the refused adds. */
	EXPECT_NE(0, access("/tmp/x.swap", F_OK));
}

TEST(pageout_set_then_show)
{
	struct pageout orig, want, now;
	char *out;

	ASSERT_EQ(0, get_pageout(&orig));
	EXPECT_LE(16, orig.limit);
	EXPECT_LT(orig.low, orig.high);

	want.limit = orig.limit + 4096;
	want.high = 85;
	want.low = 70;
	want.obj_limit = 4096;
	want.batch = 32;
	want.interval_ms = 500;
	ASSERT_EQ(0, run(&out, "machvmctl pageout set --limit %llu --high 85 "
			 "--low 70 --object-limit 4096 --batch 32 "
			 "--interval-ms 500 --json",
			 (unsigned long long)want.limit));
	/* set prints the settings now in force. */
	EXPECT_EQ(1, count_lines(out));
	ASSERT_EQ(0, parse_pageout(out, &now));
	EXPECT_EQ(0, memcmp(&want, &now, sizeof(want)));
	EXPECT_NE(~0ULL, jget(out, "resident"));
	EXPECT_NE(~0ULL, jget(out, "returning"));
	EXPECT_NE(NULL, strstr(out, "\"stuck\":"));
	free(out);
	ASSERT_EQ(0, get_pageout(&now));
	EXPECT_EQ(0, memcmp(&want, &now, sizeof(want)));

	/* The human form. */
	ASSERT_EQ(0, run(&out, "machvmctl pageout show"));
	EXPECT_NE(NULL, strstr(out, "high          85% of the limit"));
	EXPECT_NE(NULL, strstr(out, "low           70% of the limit"));
	EXPECT_NE(NULL, strstr(out, "object limit  4096 pages (16M)\n"));
	EXPECT_NE(NULL, strstr(out, "batch         32 pages\n"));
	EXPECT_NE(NULL, strstr(out, "interval      500 ms\n"));
	free(out);

	/* One tunable alone; "none" for no object limit. */
	EXPECT_RUN_SAYS(0, "object limit  none\n",
			"machvmctl pageout set --object-limit none");
	want.obj_limit = 0;
	ASSERT_EQ(0, get_pageout(&now));
	EXPECT_EQ(0, memcmp(&want, &now, sizeof(want)));

	/*
	 * The module refuses what only it can judge (--low against the
	 * current high): exit 1 with its reason; nothing changes, even the
	 * valid values sent with it.
	 */
	EXPECT_EQ(1, run(&out, "machvmctl pageout set --low 90 2>&1"));
	EXPECT_NE(NULL, strstr(out, "Invalid argument"));
	EXPECT_NE(NULL, strstr(out, "low < high"));
	free(out);
	EXPECT_EQ(1, run(&out, "machvmctl pageout set --batch 16 --high 60 "
			 "2>/dev/null"));
	EXPECT_EQ(0, strlen(out));
	free(out);
	ASSERT_EQ(0, get_pageout(&now));
	EXPECT_EQ(0, memcmp(&want, &now, sizeof(want)));

	/* Put everything back. */
	ASSERT_EQ(0, set_pageout(&orig));
	ASSERT_EQ(0, get_pageout(&now));
	EXPECT_EQ(0, memcmp(&orig, &now, sizeof(orig)));
}

TEST(pageout_and_swap_unprivileged_are_denied)
{
	struct pageout before, after;
	mode_t mode = open_root();
	char *out;

	ASSERT_EQ(0, get_pageout(&before));
	unlink("/tmp/nobody.swap");

	EXPECT_EQ(4, run_as(1, &out, "machvmctl pageout set --batch 8 2>&1"));
	EXPECT_NE(NULL, strstr(out, "not permitted"));
	EXPECT_NE(NULL, strstr(out, "CAP_SYS_ADMIN"));
	free(out);
	EXPECT_EQ(4, run_as(1, &out, "machvmctl pageout set --object 1 "
			    "--limit 20 2>&1"));
	EXPECT_NE(NULL, strstr(out, "not permitted"));
	free(out);
	EXPECT_EQ(4, run_as(1, &out, "machvmctl pageout run --json 2>&1"));
	EXPECT_NE(NULL, strstr(out, "CAP_SYS_ADMIN"));
	EXPECT_EQ(NULL, strstr(out, "\"scanned\""));
	free(out);
	EXPECT_EQ(4, run_as(1, &out, "machvmctl swap add /tmp/nobody.swap "
			    "--size 1M 2>&1"));
	EXPECT_NE(NULL, strstr(out, "not permitted"));
	EXPECT_NE(NULL, strstr(out, "CAP_SYS_ADMIN"));
	free(out);
	EXPECT_EQ(4, run_as(1, &out, "machvmctl swap remove 1 2>&1"));
	EXPECT_NE(NULL, strstr(out, "CAP_SYS_ADMIN"));
	free(out);
	/* Nothing happened. */
	EXPECT_NE(0, access("/tmp/nobody.swap", F_OK));
	ASSERT_EQ(0, get_pageout(&after));
	EXPECT_EQ(0, memcmp(&before, &after, sizeof(before)));
	ASSERT_EQ(0, run(&out, "machvmctl swap list --json"));
	EXPECT_EQ(NULL, strstr(out, "/tmp/nobody.swap"));
	free(out);

	/* Looking is open to everyone. */
	EXPECT_EQ(0, run_as(1, &out, "machvmctl pageout show --json"));
	EXPECT_EQ(before.batch, jget(out, "batch"));
	free(out);
	EXPECT_EQ(0, run_as(1, &out, "machvmctl swap list --json"));
	EXPECT_EQ('[', out[0]);
	free(out);
	chmod("/", mode);
}

TEST(swap_add_list_remove)
{
	char line[1024], want[128], *out;
	int64_t a, b;
	uint64_t ub;
	struct stat st;
	int rc, fd;

	unlink("/tmp/ctl0.swap");
	unlink("/tmp/ctl-rel.swap");
	unlink("/tmp/ctl-small.swap");

	/* A new file, allocated to its size up front. */
	a = swap_add("/tmp/ctl0.swap", "--size 1M --prio 7", &rc, line,
		     sizeof(line));
	ASSERT_EQ(0, rc);
	ASSERT_LE(1, a);
	EXPECT_EQ(1, count_lines(line));
	EXPECT_TRUE(jstr(line, "path", "/tmp/ctl0.swap"));
	EXPECT_TRUE(jstr(line, "kind", "file"));
	EXPECT_NE(NULL, strstr(line, "\"prio\":7,"));
	EXPECT_EQ((1 << 20) / PG, jget(line, "slots"));
	EXPECT_EQ(0, jget(line, "used"));
	EXPECT_EQ(0, jget(line, "writes"));
	EXPECT_EQ(0, jget(line, "reads"));
	ASSERT_EQ(0, stat("/tmp/ctl0.swap", &st));
	EXPECT_TRUE(S_ISREG(st.st_mode));
	EXPECT_EQ(1 << 20, st.st_size);

	/* A relative path, from machvmctl's current directory. */
	ASSERT_EQ(0, run(&out, "cd /tmp && machvmctl swap add ctl-rel.swap "
			 "--size 64K --prio -2 --json"));
	ASSERT_EQ(0, jnum(out, "id", &ub));
	b = (int64_t)ub;
	snprintf(line, sizeof(line), "%s", out);
	free(out);
	EXPECT_NE(a, b);
	EXPECT_TRUE(jstr(line, "path", "/tmp/ctl-rel.swap"));
	EXPECT_NE(NULL, strstr(line, "\"prio\":-2,"));
	EXPECT_EQ(16, jget(line, "slots"));

	/* list shows both, with their slots. */
	ASSERT_EQ(0, run(&out, "machvmctl swap list --json"));
	EXPECT_EQ(0, strncmp(out, "[\n", 2));
	EXPECT_NE(NULL, strstr(out, "\n]\n"));
	ASSERT_EQ(0, swap_line(out, a, line, sizeof(line)));
	EXPECT_TRUE(jstr(line, "path", "/tmp/ctl0.swap"));
	EXPECT_EQ((1 << 20) / PG, jget(line, "slots"));
	EXPECT_EQ(0, jget(line, "used"));
	EXPECT_NE(NULL, strstr(line, "\"prio\":7,"));
	EXPECT_NE(NULL, strstr(line, "\"direct\":"));
	ASSERT_EQ(0, swap_line(out, b, line, sizeof(line)));
	EXPECT_TRUE(jstr(line, "path", "/tmp/ctl-rel.swap"));
	/* show gives the same store as list. */
	free(out);
	ASSERT_EQ(0, run(&out, "machvmctl swap show %lld --json", (long long)b));
	EXPECT_EQ(1, count_lines(out));
	EXPECT_EQ(0, strncmp(out, line, strlen(line)));
	free(out);
	ASSERT_EQ(0, run(&out, "machvmctl swap show %lld", (long long)a));
	EXPECT_NE(NULL, strstr(out, "path    /tmp/ctl0.swap\n"));
	EXPECT_NE(NULL, strstr(out, "slots   256 pages (1M)\n"));
	EXPECT_NE(NULL, strstr(out, "prio    7\n"));
	free(out);
	ASSERT_EQ(0, run(&out, "machvmctl swap list"));
	EXPECT_EQ(0, strncmp(out, "ID  PRIO  KIND", 14));
	/* ID PRIO KIND SIZE SLOTS, right-aligned but for KIND */
	snprintf(want, sizeof(want), "%lld     7  file    1M    %lu  ",
		 (long long)a, (1UL << 20) / PG);
	EXPECT_NE(NULL, strstr(out, want));
	if (!strstr(out, want))
		TH_LOG("swap list:\n%s", out);
	EXPECT_NE(NULL, strstr(out, "  /tmp/ctl0.swap\n"));
	EXPECT_NE(NULL, strstr(out, "  /tmp/ctl-rel.swap\n"));
	free(out);

	/* The module's refusals: exit 1 with its reason. */
	EXPECT_RUN_SAYS(1, "busy", "machvmctl swap add /tmp/ctl0.swap 2>&1");
	/* By any other name too: one file is one store. */
	unlink("/tmp/ctl-link");
	ASSERT_EQ(0, symlink("/tmp", "/tmp/ctl-link"));
	EXPECT_RUN_SAYS(1, "busy",
			"machvmctl swap add /tmp/ctl-link/ctl0.swap 2>&1");
	EXPECT_RUN_SAYS(1, "busy",
			"cd /tmp && machvmctl swap add ./ctl0.swap 2>&1");
	unlink("/tmp/ctl-link");
	fd = open("/tmp/ctl-small.swap", O_CREAT | O_WRONLY, 0600);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ftruncate(fd, 8 * PG));
	close(fd);
	EXPECT_RUN_SAYS(1, "16 pages",
			"machvmctl swap add /tmp/ctl-small.swap 2>&1");
	EXPECT_RUN_SAYS(1, "Invalid argument", "machvmctl swap add /tmp 2>&1");
	EXPECT_RUN_SAYS(1, "No such file or directory",
			"machvmctl swap add /tmp/no/such/dir.swap --size 1M 2>&1");
	/* None of them became a store. */
	ASSERT_EQ(0, run(&out, "machvmctl swap list --json"));
	EXPECT_EQ(NULL, strstr(out, "ctl-small"));
	EXPECT_EQ(NULL, strstr(out, "\"/tmp\""));
	EXPECT_EQ(NULL, strstr(out, "/tmp/no/"));
	free(out);

	/* remove: silent, or {"id":ID,"removed":true} with --json. */
	EXPECT_EQ(0, run(&out, "machvmctl swap remove %lld", (long long)a));
	EXPECT_EQ(0, strlen(out));
	free(out);
	EXPECT_EQ(0, run(&out, "machvmctl swap remove %lld --json",
			 (long long)b));
	EXPECT_EQ((uint64_t)b, jget(out, "id"));
	EXPECT_NE(NULL, strstr(out, "\"removed\":true"));
	free(out);
	ASSERT_EQ(0, run(&out, "machvmctl swap list --json"));
	EXPECT_EQ(NULL, strstr(out, "/tmp/ctl0.swap"));
	EXPECT_EQ(NULL, strstr(out, "/tmp/ctl-rel.swap"));
	free(out);
	/* Gone: exit 5. */
	EXPECT_RUN_SAYS(5, "no such swap store",
			"machvmctl swap remove %lld 2>&1", (long long)a);
	EXPECT_EQ(5, run(&out, "machvmctl swap remove 4000000000 2>/dev/null"));
	free(out);
	EXPECT_RUN_SAYS(5, "no such swap store",
			"machvmctl swap show %lld 2>&1", (long long)b);

	unlink("/tmp/ctl0.swap");
	unlink("/tmp/ctl-rel.swap");
	unlink("/tmp/ctl-small.swap");
}

TEST(anonymous_object_and_its_limit)
{
	struct pageout po;
	char line[2048], *out, *m;
	uint64_t name = 0;
	int dev, fd;

	ASSERT_EQ(0, get_pageout(&po));
	dev = mvm_dev();
	ASSERT_LE(0, dev);
	fd = anon_object(dev, 64 * PG, 0, &name);
	ASSERT_LE(0, fd);
	m = mmap(NULL, 64 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, m);
	for (int i = 0; i < 8; i++)
		ASSERT_EQ(0, mvm_touch(m + i * PG, 1, NULL));

	ASSERT_EQ(0, show_object(name, line, sizeof(line)));
	EXPECT_TRUE(jstr(line, "kind", "anon"));
	EXPECT_EQ(0, jget(line, "pager_pid"));
	EXPECT_TRUE(jstr(line, "pager_state", "none"));
	EXPECT_EQ(64 * PG, jget(line, "size"));
	EXPECT_EQ(8, jget(line, "resident"));
	EXPECT_EQ(po.obj_limit, jget(line, "limit"));
	EXPECT_EQ(0, jget(line, "swapped"));
	/* In the list too. */
	ASSERT_EQ(0, run(&out, "machvmctl objects --json"));
	ASSERT_EQ(0, object_line(out, name, line, sizeof(line)));
	EXPECT_TRUE(jstr(line, "kind", "anon"));
	free(out);
	ASSERT_EQ(0, run(&out, "machvmctl object show %llu",
			 (unsigned long long)name));
	EXPECT_NE(NULL, strstr(out, "kind           anon\n"));
	EXPECT_NE(NULL, strstr(out, "pager          none"));
	free(out);
	ASSERT_EQ(0, run(&out, "machvmctl objects"));
	/* Its row ends in KIND anon and PAGER none. */
	ASSERT_EQ(0, table_line(out, name, line, sizeof(line)));
	EXPECT_NE(NULL, strstr(line, "  anon  "));
	EXPECT_EQ(0, strcmp(line + strlen(line) - 6, "  none"));
	free(out);

	/* Dirty bits are gathered when pages are unmapped. */
	munmap(m, 64 * PG);
	ASSERT_EQ(0, show_object(name, line, sizeof(line)));
	EXPECT_EQ(8, jget(line, "resident"));
	EXPECT_EQ(8, jget(line, "dirty"));

	/* The object's own limit. */
	ASSERT_EQ(0, run(&out, "machvmctl pageout set --object %llu --limit 32 "
			 "--json", (unsigned long long)name));
	EXPECT_EQ(name, jget(out, "name"));
	EXPECT_EQ(32, jget(out, "limit"));
	free(out);
	ASSERT_EQ(0, show_object(name, line, sizeof(line)));
	EXPECT_EQ(32, jget(line, "limit"));
	ASSERT_EQ(0, run(&out, "machvmctl pageout set --object %llu --limit none",
			 (unsigned long long)name));
	EXPECT_NE(NULL, strstr(out, "resident limit none"));
	free(out);
	ASSERT_EQ(0, show_object(name, line, sizeof(line)));
	EXPECT_EQ(0, jget(line, "limit"));
	EXPECT_RUN_SAYS(5, "no such object",
			"machvmctl pageout set --object 999999999 --limit 32 2>&1");
	/* The global tunables did not move. */
	{
		struct pageout now;

		ASSERT_EQ(0, get_pageout(&now));
		EXPECT_EQ(0, memcmp(&po, &now, sizeof(po)));
	}
	close(fd);
	close(dev);
}

TEST_F_TIMEOUT(ctl, pageout_run_to_swap_and_back, 120)
{
	char line[2048], *out, *m;
	uint64_t name = 0, sw0, po0, pi0;
	int64_t id;
	int fd, rc;

	unlink("/tmp/ctl-run.swap");
	id = swap_add("/tmp/ctl-run.swap", "--size 1M --prio 32000", &rc, line,
		      sizeof(line));
	ASSERT_EQ(0, rc);
	ASSERT_LE(1, id);
	ASSERT_EQ(0, run(&out, "machvmctl stats --json"));
	sw0 = jget(out, "swap_writes");
	po0 = jget(out, "pageouts");
	pi0 = jget(out, "pageins");
	free(out);

	fd = anon_object(self->dev, 32 * PG, 0, &name);
	ASSERT_LE(0, fd);
	m = mmap(NULL, 32 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, m);
	for (int i = 0; i < 16; i++)
		mvm_fill(m + i * PG, i * PG, PG);

	/* No such object: exit 5. */
	EXPECT_RUN_SAYS(5, "no such object",
			"machvmctl pageout run --object 999999999 2>&1");

	/* 8 of its 16 pages go to the default pager, into our store. */
	ASSERT_EQ(0, run(&out, "machvmctl pageout run --object %llu --target 8 "
			 "--force --json", (unsigned long long)name));
	EXPECT_EQ(1, count_lines(out));
	EXPECT_LE(8, jget(out, "scanned"));
	EXPECT_EQ(8, jget(out, "freed"));
	EXPECT_EQ(0, jget(out, "returning")); /* no pager to return to */
	free(out);
	ASSERT_EQ(0, show_object(name, line, sizeof(line)));
	EXPECT_EQ(8, jget(line, "resident"));
	EXPECT_EQ(8, jget(line, "swapped"));
	EXPECT_EQ(8, jget(line, "pageouts"));
	EXPECT_LE(8, jget(line, "scans"));
	ASSERT_EQ(0, run(&out, "machvmctl swap list --json"));
	ASSERT_EQ(0, swap_line(out, id, line, sizeof(line)));
	EXPECT_EQ(8, jget(line, "used"));
	EXPECT_EQ(8, jget(line, "writes"));
	free(out);
	ASSERT_EQ(0, run(&out, "machvmctl stats --json"));
	EXPECT_LE(sw0 + 8, jget(out, "swap_writes"));
	EXPECT_LE(po0 + 8, jget(out, "pageouts"));
	free(out);

	/* Read back from swap, intact. */
	for (int i = 0; i < 16; i++)
		EXPECT_EQ(0, mvm_check(m + i * PG, i * PG, PG));
	ASSERT_EQ(0, show_object(name, line, sizeof(line)));
	EXPECT_EQ(16, jget(line, "resident"));
	EXPECT_EQ(8, jget(line, "pageins"));
	ASSERT_EQ(0, run(&out, "machvmctl swap list --json"));
	ASSERT_EQ(0, swap_line(out, id, line, sizeof(line)));
	EXPECT_EQ(8, jget(line, "reads"));
	free(out);
	ASSERT_EQ(0, run(&out, "machvmctl stats --json"));
	EXPECT_LE(pi0 + 8, jget(out, "pageins"));
	free(out);

	/* The human form of a pass. */
	ASSERT_EQ(0, run(&out, "machvmctl pageout run --object %llu --target 1 "
			 "--force", (unsigned long long)name));
	EXPECT_NE(NULL, strstr(out, "scanned    "));
	EXPECT_NE(NULL, strstr(out, "freed      1 page\n"));
	EXPECT_NE(NULL, strstr(out, "returning  0 pages\n"));
	free(out);

	munmap(m, 32 * PG);
	close(fd);
	/* The object's slots went with it: the store can go. */
	rc = swap_remove_retry(id);
	EXPECT_EQ(0, rc);
	if (rc)
		swap_remove_quiet(id);
	unlink("/tmp/ctl-run.swap");
}

TEST_F_TIMEOUT(ctl, events_for_swap_add_and_remove, 120)
{
	struct reader *r = calloc(1, sizeof(*r));
	const char *added, *removed;
	char line[1024], *out;
	int64_t id;
	int rc, st;
	FILE *p;

	ASSERT_NE(NULL, r);
	unlink("/tmp/ctl-ev.swap");
	p = start_events(self->dev, r, "--count 12 --json --timeout 90");
	ASSERT_NE(NULL, p);

	id = swap_add("/tmp/ctl-ev.swap", "--size 64K", &rc, line,
		      sizeof(line));
	ASSERT_EQ(0, rc);
	ASSERT_LE(1, id);
	ASSERT_EQ(0, run(&out, "machvmctl swap remove %lld", (long long)id));
	free(out);

	drain_events(self->dev, r);
	st = pclose(p);
	EXPECT_TRUE(WIFEXITED(st));
	EXPECT_EQ(0, WEXITSTATUS(st));
	added = find_event(r->buf, "SWAP_ADDED", "swap_id", id, line,
			   sizeof(line));
	EXPECT_NE(NULL, added);
	EXPECT_EQ(MACHVM_EVENT_SWAP_ADDED, jget(line, "type"));
	EXPECT_TRUE(jstr(line, "swap_path", "/tmp/ctl-ev.swap"));
	removed = find_event(r->buf, "SWAP_REMOVED", "swap_id", id, line,
			     sizeof(line));
	EXPECT_NE(NULL, removed);
	EXPECT_EQ(MACHVM_EVENT_SWAP_REMOVED, jget(line, "type"));
	EXPECT_TRUE(jstr(line, "swap_path", "/tmp/ctl-ev.swap"));
	EXPECT_LT(added, removed);
	if (!_metadata->passed)
		TH_LOG("events seen:\n%s", r->buf);

	/* The human form: "TIME SWAP_ADDED swap_id=ID path=PATH". */
	memset(r, 0, sizeof(*r));
	p = start_events(self->dev, r, "--count 12 --timeout 90");
	ASSERT_NE(NULL, p);
	id = swap_add("/tmp/ctl-ev.swap", "", &rc, line, sizeof(line));
	ASSERT_EQ(0, rc);
	swap_remove_quiet(id);
	drain_events(self->dev, r);
	pclose(p);
	snprintf(line, sizeof(line), " SWAP_ADDED swap_id=%lld path=/tmp/ctl-ev.swap\n",
		 (long long)id);
	EXPECT_NE(NULL, strstr(r->buf, line));
	snprintf(line, sizeof(line), " SWAP_REMOVED swap_id=%lld path=/tmp/ctl-ev.swap\n",
		 (long long)id);
	EXPECT_NE(NULL, strstr(r->buf, line));
	if (!_metadata->passed)
		TH_LOG("events seen:\n%s", r->buf);
	unlink("/tmp/ctl-ev.swap");
	free(r);
}

TEST_F_TIMEOUT(ctl, swap_full_event_and_counter, 120)
{
	struct reader *r = calloc(1, sizeof(*r));
	char line[2048], *out, *m;
	uint64_t name = 0, full0, freed;
	int64_t id;
	int fd, rc, st;
	FILE *p;

	ASSERT_NE(NULL, r);
	unlink("/tmp/ctl-full.swap");
	/* No other store may take the pages. */
	ASSERT_EQ(0, run(&out, "machvmctl swap list --json"));
	ASSERT_EQ(0, strcmp(out, "[]\n"));
	free(out);
	ASSERT_EQ(0, run(&out, "machvmctl stats --json"));
	full0 = jget(out, "swap_full");
	free(out);
	p = start_events(self->dev, r, "--count 12 --json --timeout 90");
	ASSERT_NE(NULL, p);

	/* 16 slots for 32 pages. */
	id = swap_add("/tmp/ctl-full.swap", "--size 64K", &rc, line,
		      sizeof(line));
	ASSERT_EQ(0, rc);
	ASSERT_LE(1, id);
	fd = anon_object(self->dev, 32 * PG, 0, &name);
	ASSERT_LE(0, fd);
	m = mmap(NULL, 32 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, m);
	for (int i = 0; i < 32; i++)
		mvm_fill(m + i * PG, i * PG, PG);
	ASSERT_EQ(0, run(&out, "machvmctl pageout run --object %llu --target 32 "
			 "--force --json", (unsigned long long)name));
	freed = jget(out, "freed");
	EXPECT_LE(1, freed);
	EXPECT_GE(16, freed);
	free(out);
	ASSERT_EQ(0, run(&out, "machvmctl swap list --json"));
	ASSERT_EQ(0, swap_line(out, id, line, sizeof(line)));
	EXPECT_EQ(freed, jget(line, "used"));
	free(out);
	ASSERT_EQ(0, run(&out, "machvmctl stats --json"));
	EXPECT_LT(full0, jget(out, "swap_full"));
	free(out);
	/* Every page is still there. */
	for (int i = 0; i < 32; i++)
		EXPECT_EQ(0, mvm_check(m + i * PG, i * PG, PG));
	munmap(m, 32 * PG);
	close(fd);

	drain_events(self->dev, r);
	st = pclose(p);
	EXPECT_EQ(0, WEXITSTATUS(st));
	EXPECT_NE(NULL, strstr(r->buf, "\"event\":\"SWAP_FULL\",\"type\":9"));
	if (!_metadata->passed)
		TH_LOG("events seen:\n%s", r->buf);
	free(r);
	rc = swap_remove_retry(id);
	EXPECT_EQ(0, rc);
	unlink("/tmp/ctl-full.swap");
}

TEST_HARNESS_MAIN
