// SPDX-License-Identifier: GPL-2.0
/*
 * Faults that wait on a pager that never answers, with signals arriving
 * all the while: a timer with a handler installed without SA_RESTART
 * fires every 2 ms.  Each access must end (EFAULT, or SIGBUS for a
 * user-mode access) about when the object's timeout says, and must sleep
 * meanwhile: the process's system CPU time stays far below the time it took.
 * (A signal that interrupts a user-mode wait is delivered, and each costs
 * CPU time, a lot of it under emulation: there the storm is slower, 20
 * ms, and the bound on CPU time wider, half; a spin is all of it.)
 * A kernel-mode fault (copy_to_user(), GUP, io_uring) whose wait returned
 * at once because a signal was pending was retried by the architecture at
 * once, for ever: it spun in the kernel at 100% system CPU.  And a wait
 * stays killable.
 *
 * Each access runs in a forked child; the parent serves the object (a
 * pager thread that answers INIT and nothing else), bounds the child's
 * time, and reads the child's CPU time.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdnoreturn.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "mvm_test.h"

#define TIMEOUT_MS	500	/* the object's fault timeout */
#define LONG_MS		60000	/* a timeout no test waits out */
#define LIMIT_S		12.0	/* a child still running then spins */
#define TICK_US		2000	/* signal period */
#define USER_TICK_US	20000	/* the same when each signal is delivered */
#define SLOW_MS		800	/* a handler that outlasts the timeout */

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double tv(struct timeval t)
{
	return t.tv_sec + t.tv_usec / 1e6;
}

/* What the child reports, in a shared page. */
struct outcome {
	long ret;	/* the call's return (or io_uring's res) */
	int err;	/* errno after it */
	int sigbus;	/* a user-mode access got SIGBUS */
	int signals;	/* timer signals handled */
	double wall;	/* time the access took */
	double cpu;	/* system CPU time meanwhile, all threads */
	long faults;	/* page faults meanwhile (minor + major) */
	int done;
};

FIXTURE(sig) {
	int dev, pager, fd;
	struct machvm_object_create oc;
	struct mvm_server srv;
	char *map;
	size_t len;
	struct outcome *out;
};

/* The fixture's type by name, for the helpers that take it. */
typedef FIXTURE_DATA(sig) sig_fixture;

static volatile sig_atomic_t ticks;
static int slow_ms;	/* each handler sleeps this long */
static sigjmp_buf bus_env;

static void on_tick(int sig)
{
	struct timespec ts = { .tv_nsec = slow_ms * 1000000L };

	(void)sig;
	ticks++;
	if (slow_ms)
		nanosleep(&ts, NULL);
}

static void on_bus(int sig)
{
	(void)sig;
	siglongjmp(bus_env, 1);
}

/*
 * The timer signal, its handler without SA_RESTART, every @us; only once
 * (after 50 ms) when its handler is slow.
 */
static int start_ticks(long us)
{
	struct sigaction sa = { .sa_handler = on_tick };
	struct itimerval it = {
		.it_interval = { .tv_usec = slow_ms ? 0 : us },
		.it_value = { .tv_usec = slow_ms ? 50000 : us },
	};

	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGALRM, &sa, NULL))
		return -1;
	return setitimer(ITIMER_REAL, &it, NULL);
}

static void stop_ticks(void)
{
	struct itimerval it = { 0 };

	setitimer(ITIMER_REAL, &it, NULL);
}

static double self_cpu(long *faults)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	*faults = ru.ru_minflt + ru.ru_majflt;
	return tv(ru.ru_stime);
}

/* A pipe with @fill bytes in it (fill <= 64 KiB, the default size). */
static int make_pipe(int p[2], size_t fill)
{
	static char buf[PG];

	if (pipe(p))
		return -1;
	for (; fill; fill -= PG)
		if (write(p[1], buf, PG) != PG)
			return -1;
	return 0;
}

enum op {
	OP_TOUCH_READ,		/* user-mode load */
	OP_TOUCH_WRITE,		/* user-mode store */
	OP_PIPE_WRITE,		/* write(pipe, map) */
	OP_PIPE_READ,		/* read(pipe, map) */
	OP_ZERO_READ,		/* read(/dev/zero, map) */
	OP_MEMFD_READ,		/* read(shmem file, map) */
	OP_MEMFD_WRITE,		/* write(shmem file, map) */
	OP_VMSPLICE,		/* vmsplice(pipe, map): GUP */
	OP_URING_READ,		/* IORING_OP_READ into map, issued inline */
	OP_URING_READ_ASYNC,	/* the same from an io-wq worker (which
				 * takes no signals; the storm is held
				 * off the submitter, whose worker
				 * creation it can cancel)
				 */
};

/* What an access needs, made before it is timed. */
static struct {
	int pfd[2];	/* a pipe */
	int fd;		/* /dev/zero or a shmem file */
	struct io_uring ring;
} ctx;

static int prep_op(enum op op)
{
	switch (op) {
	case OP_TOUCH_READ:
	case OP_TOUCH_WRITE:
		return 0;
	case OP_PIPE_WRITE:
	case OP_VMSPLICE:
		return make_pipe(ctx.pfd, 0);
	case OP_PIPE_READ:
		return make_pipe(ctx.pfd, PG);
	case OP_MEMFD_READ:
	case OP_MEMFD_WRITE:
		ctx.fd = memfd_create("sigfault", 0);
		return ctx.fd < 0 ? -1 : ftruncate(ctx.fd, 4 * PG);
	case OP_ZERO_READ:
	case OP_URING_READ:
	case OP_URING_READ_ASYNC:
		ctx.fd = open("/dev/zero", O_RDONLY);
		if (ctx.fd < 0 || op == OP_ZERO_READ)
			return ctx.fd < 0 ? -1 : 0;
		return io_uring_queue_init(4, &ctx.ring, 0);
	}
	return -1;
}

static long uring_read(void *buf, int async)
{
	struct io_uring_cqe *cqe;
	struct io_uring_sqe *sqe;
	sigset_t mask;
	long ret;

	sigemptyset(&mask);
	sigaddset(&mask, SIGALRM);
	if (async)
		sigprocmask(SIG_BLOCK, &mask, NULL);
	sqe = io_uring_get_sqe(&ctx.ring);
	io_uring_prep_read(sqe, ctx.fd, buf, PG, 0);
	if (async)
		sqe->flags |= IOSQE_ASYNC;
	ret = io_uring_submit(&ctx.ring);
	/*
	 * The fault is in the submission (inline) or in an io-wq worker;
	 * the wait for the completion blocks the timer signal, which would
	 * cut it short each time and cost CPU time of its own.
	 */
	if (ret == 1)
		do
			ret = io_uring_wait_cqes(&ctx.ring, &cqe, 1, NULL,
						 &mask);
		while (ret == -EINTR);
	if (!ret) {
		ret = cqe->res;
		io_uring_cqe_seen(&ctx.ring, cqe);
	} else if (ret > 0) {
		ret = -EIO;	/* nothing submitted */
	}
	sigprocmask(SIG_UNBLOCK, &mask, NULL);
	if (ret < 0) {
		errno = -ret;
		ret = -1;
	}
	return ret;
}

static long do_op(enum op op, char *p, struct outcome *out)
{
	struct iovec iov = { .iov_base = p, .iov_len = PG };

	switch (op) {
	case OP_TOUCH_READ:
	case OP_TOUCH_WRITE:
		signal(SIGBUS, on_bus);
		if (sigsetjmp(bus_env, 1)) {
			out->sigbus = 1;
			return 0;
		}
		if (op == OP_TOUCH_WRITE)
			*(volatile char *)p = 1;
		else
			(void)*(volatile char *)p;
		return 0;
	case OP_PIPE_WRITE:
		return write(ctx.pfd[1], p, PG);
	case OP_PIPE_READ:
		return read(ctx.pfd[0], p, PG);
	case OP_ZERO_READ:
	case OP_MEMFD_READ:
		return read(ctx.fd, p, PG);
	case OP_MEMFD_WRITE:
		return write(ctx.fd, p, PG);
	case OP_VMSPLICE:
		return vmsplice(ctx.pfd[1], &iov, 1, 0);
	case OP_URING_READ:
	case OP_URING_READ_ASYNC:
		return uring_read(p, op == OP_URING_READ_ASYNC);
	}
	return -2;
}

/*
 * The child: the timer storm (a signal every @us, each handler sleeping
 * @slow ms), then the access; reports in @out.
 */
static noreturn void child(enum op op, char *p, struct outcome *out, long us,
			   int slow)
{
	double t, cpu;
	long faults, f;

	slow_ms = slow;
	if (prep_op(op) || start_ticks(us))
		_exit(2);
	t = now();
	cpu = self_cpu(&faults);
	errno = 0;
	out->ret = do_op(op, p, out);
	out->err = errno;
	out->wall = now() - t;
	out->cpu = self_cpu(&f) - cpu;
	out->faults = f - faults;
	stop_ticks();
	out->signals = ticks;
	out->done = 1;
	_exit(0);
}

/* Utime + stime of a running @pid, from /proc (-1 if unreadable). */
static double proc_cpu(pid_t pid)
{
	unsigned long ut, st;
	char path[64], buf[1024], *s;
	FILE *f;
	int n;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n > 0 ? n : 0] = 0;
	s = strrchr(buf, ')');
	/* After "pid (comm)": state is field 3, utime 14, stime 15. */
	if (!s || sscanf(s + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
			 &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / sysconf(_SC_CLK_TCK);
}

/*
 * Wait up to @limit seconds for @pid.  0 once reaped (*status set); else
 * the child is still running: its CPU time so far is in *cpu, and it is
 * killed and reaped.
 */
static int wait_child(pid_t pid, double limit, int *status, double *cpu)
{
	double end = now() + limit;

	while (now() < end) {
		if (waitpid(pid, status, WNOHANG) == pid)
			return 0;
		usleep(10 * 1000);
	}
	*cpu = proc_cpu(pid);
	kill(pid, SIGKILL);
	waitpid(pid, status, 0);
	return -1;
}

FIXTURE_SETUP(sig)
{
	memset(&self->srv, 0, sizeof(self->srv));
	self->dev = mvm_dev();
	ASSERT_LE(0, self->dev);
	self->pager = mvm_pager(self->dev);
	ASSERT_LE(0, self->pager);
	self->len = 16 * PG;
	self->fd = mvm_object(self->pager, self->len, PROT_READ | PROT_WRITE,
			      TIMEOUT_MS, &self->oc);
	ASSERT_LE(0, self->fd);
	self->srv.cluster = 1;
	self->srv.timeout_ms = TIMEOUT_MS;
	mvm_server_start(&self->srv, self->pager, MVM_SILENT);
	self->map = mmap(NULL, self->len, PROT_READ | PROT_WRITE, MAP_SHARED,
			 self->fd, 0);
	ASSERT_NE(MAP_FAILED, self->map);
	self->out = mmap(NULL, PG, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->out);
}

FIXTURE_TEARDOWN(sig)
{
	mvm_server_stop(&self->srv);
	munmap(self->out, PG);
	munmap(self->map, self->len);
	close(self->fd);
	close(self->pager);
	close(self->dev);
}

/* Set the object's fault timeout, after the pager thread's READY. */
static int set_timeout(sig_fixture *self, uint32_t ms)
{
	struct machvm_cmd c = { .type = MACHVM_CMD_CHANGE_ATTRIBUTES,
				.object = self->oc.id };

	for (int i = 0; i < 1000 && !atomic_load(&self->srv.readies); i++)
		usleep(10 * 1000);
	c.attr.cluster_pages = 1;
	c.attr.timeout_ms = ms;
	return mvm_cmd(self->pager, &c);
}

/*
 * Run @op on page @page in a child with the signal storm; check that it
 * ended within the limit, with little CPU, and how (@want_ret / @want_err,
 * or a SIGBUS when @want_bus).
 */
static void run_as(struct __test_metadata *_metadata,
		   sig_fixture *self, enum op op, int page, long us,
		   int slow, long want_ret, int want_err, int want_bus)
{
	int user = op == OP_TOUCH_READ || op == OP_TOUCH_WRITE;
	struct outcome *o = self->out;
	double cpu = -1, t;
	int status = 0, reqs;
	pid_t pid;

	memset(o, 0, sizeof(*o));
	reqs = atomic_load(&self->srv.requests);
	t = now();
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid)
		child(op, self->map + page * PG, o, us, slow);
	if (wait_child(pid, LIMIT_S, &status, &cpu)) {
		TH_LOG("still running after %.0f s, %.2f s of CPU: the fault spins",
		       LIMIT_S, cpu);
		ASSERT_TRUE(0);
	}
	t = now() - t;
	ASSERT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status));
	ASSERT_EQ(1, o->done);
	TH_LOG("ret %ld errno %d sigbus %d: %.2f s, %.3f s system CPU, %d signals, %ld faults",
	       o->ret, o->err, o->sigbus, o->wall, o->cpu, o->signals,
	       o->faults);
	if (want_bus) {
		EXPECT_EQ(1, o->sigbus);
	} else {
		EXPECT_EQ(want_ret, o->ret);
		if (want_ret < 0)
			EXPECT_EQ(want_err, o->err);
	}
	/* One DATA_REQUEST at most: signals never start another. */
	usleep(100 * 1000);	/* the pager thread reads every 50 ms */
	EXPECT_GE(1, atomic_load(&self->srv.requests) - reqs);
	/* It waited for the timeout, not much less, and ended. */
	EXPECT_GE(o->wall, TIMEOUT_MS / 1000.0 * 0.8);
	EXPECT_LT(t, LIMIT_S);
	/* Signals did arrive while it waited. */
	EXPECT_LT(0, o->signals);
	/* It slept: a spin is ~100% system CPU. */
	EXPECT_LT(o->cpu, (user ? 0.5 : 0.25) * o->wall);
}

static void run(struct __test_metadata *_metadata, sig_fixture *self,
		enum op op, int page, long want_ret, int want_err,
		int want_bus)
{
	int user = op == OP_TOUCH_READ || op == OP_TOUCH_WRITE;

	run_as(_metadata, self, op, page, user ? USER_TICK_US : TICK_US, 0,
	       want_ret, want_err, want_bus);
}

TEST_F(sig, user_read_gets_sigbus)
{
	run(_metadata, self, OP_TOUCH_READ, 1, 0, 0, 1);
}

TEST_F(sig, user_write_gets_sigbus)
{
	run(_metadata, self, OP_TOUCH_WRITE, 1, 0, 0, 1);
}

/*
 * A signal's handler runs past the deadline: the retry after it must end
 * in SIGBUS at once, not start a new request and wait again (for ever
 * when signals keep coming).
 */
TEST_F(sig, user_read_with_slow_handlers_gets_sigbus)
{
	run_as(_metadata, self, OP_TOUCH_READ, 1, TICK_US, SLOW_MS, 0, 0, 1);
}

TEST_F(sig, pipe_write_from_mapping)
{
	run(_metadata, self, OP_PIPE_WRITE, 1, -1, EFAULT, 0);
}

TEST_F(sig, pipe_read_into_mapping)
{
	run(_metadata, self, OP_PIPE_READ, 1, -1, EFAULT, 0);
}

TEST_F(sig, dev_zero_read_into_mapping)
{
	run(_metadata, self, OP_ZERO_READ, 1, -1, EFAULT, 0);
}

TEST_F(sig, file_read_into_mapping)
{
	run(_metadata, self, OP_MEMFD_READ, 1, -1, EFAULT, 0);
}

TEST_F(sig, file_write_from_mapping)
{
	run(_metadata, self, OP_MEMFD_WRITE, 1, -1, EFAULT, 0);
}

TEST_F(sig, vmsplice_from_mapping)
{
	run(_metadata, self, OP_VMSPLICE, 1, -1, EFAULT, 0);
}

TEST_F(sig, io_uring_read_into_mapping)
{
	run(_metadata, self, OP_URING_READ, 1, -1, EFAULT, 0);
}

TEST_F(sig, io_uring_worker_read_into_mapping)
{
	run(_metadata, self, OP_URING_READ_ASYNC, 1, -1, EFAULT, 0);
}

/*
 * A write-locked page: the write waits for DATA_UNLOCK, which never
 * comes, in slices; the request's deadline bounds the whole.
 */
static void supply_locked(struct __test_metadata *_metadata,
			  sig_fixture *self, int page)
{
	struct machvm_cmd c = { .type = MACHVM_CMD_DATA_SUPPLY,
				.object = self->oc.id,
				.offset = page * PG, .length = PG,
				.lock = PROT_WRITE };
	static char buf[PG];
	int ret, i;

	c.addr = (uintptr_t)buf;
	/* The pager thread answers INIT with READY; supply after that. */
	for (i = 0; i < 500; i++) {
		ret = mvm_cmd(self->pager, &c);
		if (!ret)
			break;
		usleep(10 * 1000);
	}
	ASSERT_EQ(0, ret);
	/* Resident and readable without asking. */
	ASSERT_EQ(0, *(volatile char *)(self->map + page * PG));
}

TEST_F(sig, user_write_to_locked_page_gets_sigbus)
{
	supply_locked(_metadata, self, 2);
	run(_metadata, self, OP_TOUCH_WRITE, 2, 0, 0, 1);
}

TEST_F(sig, read_into_locked_page)
{
	supply_locked(_metadata, self, 2);
	run(_metadata, self, OP_ZERO_READ, 2, -1, EFAULT, 0);
}

TEST_F(sig, io_uring_read_into_locked_page)
{
	supply_locked(_metadata, self, 2);
	run(_metadata, self, OP_URING_READ, 2, -1, EFAULT, 0);
}

/*
 * With a long timeout the kernel-mode wait sleeps (little CPU) and
 * SIGKILL ends it at once, as it does a user-mode one.
 */
static void killed(struct __test_metadata *_metadata, sig_fixture *self,
		   enum op op)
{
	double cpu, t;
	int status;
	pid_t pid;

	ASSERT_EQ(0, set_timeout(self, LONG_MS));
	memset(self->out, 0, sizeof(*self->out));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid)
		child(op, self->map + 3 * PG, self->out,
		      op == OP_TOUCH_READ ? USER_TICK_US : TICK_US, 0);
	sleep(2);
	cpu = proc_cpu(pid);
	/* Still waiting, and asleep. */
	ASSERT_EQ(0, waitpid(pid, &status, WNOHANG));
	TH_LOG("%.2f s of CPU in its first 2 s", cpu);
	EXPECT_LE(0, cpu);
	EXPECT_LT(cpu, op == OP_TOUCH_READ ? 1.0 : 0.5);
	t = now();
	ASSERT_EQ(0, kill(pid, SIGKILL));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	t = now() - t;
	EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	EXPECT_LT(t, 3.0);
	EXPECT_EQ(0, self->out->done);
}

TEST_F(sig, killed_in_kernel_mode_wait)
{
	killed(_metadata, self, OP_PIPE_WRITE);
}

TEST_F(sig, killed_in_io_uring_wait)
{
	killed(_metadata, self, OP_URING_READ);
}

TEST_F(sig, killed_in_user_mode_wait)
{
	killed(_metadata, self, OP_TOUCH_READ);
}

TEST_HARNESS_MAIN
