// SPDX-License-Identifier: GPL-2.0
/*
 * Harness self-test: one case passes, one fails. run_test.py expects the
 * runner to report exactly "harness_fail/fails" as failed.
 */
#include "kselftest_harness.h"

TEST(passes)
{
	EXPECT_EQ(1, 1);
}

TEST(fails)
{
	EXPECT_EQ(1, 2);
}

TEST_HARNESS_MAIN
