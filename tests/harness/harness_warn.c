// SPDX-License-Identifier: GPL-2.0
/*
 * Harness self-test: passes, but a kernel-style WARNING reaches the guest
 * kernel log while it runs; the runner must fail it.
 */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include "kselftest_harness.h"

TEST(logs_warning)
{
	const char *msg = "WARNING: CPU: 0 PID: 1 at harness_warn.c:1 selftest\n";
	int fd = open("/dev/kmsg", O_WRONLY);

	ASSERT_LE(0, fd);
	ASSERT_EQ((ssize_t)strlen(msg), write(fd, msg, strlen(msg)));
	close(fd);
}

TEST_HARNESS_MAIN
