// SPDX-License-Identifier: GPL-2.0
/* Harness self-test: a clean binary; the runner must pass it. */
#include "kselftest_harness.h"

TEST(passes)
{
	EXPECT_EQ(2, 1 + 1);
}

TEST_HARNESS_MAIN
