// SPDX-License-Identifier: GPL-2.0
/*
 * Harness self-test: announces a plan, then never reports (sleeps until
 * the guest's per-binary timeout kills it).
 */
#include <stdio.h>
#include <unistd.h>

int main(void)
{
	printf("TAP version 13\n1..1\n# Starting 1 tests from 1 test cases.\n");
	fflush(stdout);
	for (;;)
		pause();
}
