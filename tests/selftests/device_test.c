// SPDX-License-Identifier: GPL-2.0
/*
 * The /dev/machvm device: the module is loaded, the node is there, and the
 * version query answers what the ABI header says.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include <linux/machvm.h>

FIXTURE(dev) {
	int fd;
};

FIXTURE_SETUP(dev)
{
	self->fd = open(MACHVM_DEVICE, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, self->fd) TH_LOG("open %s: %s", MACHVM_DEVICE,
				      strerror(errno));
}

FIXTURE_TEARDOWN(dev)
{
	close(self->fd);
}

TEST(module_is_listed)
{
	char buf[4096] = { 0 };
	int fd = open("/proc/modules", O_RDONLY);
	ssize_t n;

	ASSERT_LE(0, fd);
	n = read(fd, buf, sizeof(buf) - 1);
	ASSERT_LT(0, n);
	close(fd);
	EXPECT_NE(NULL, strstr(buf, "machvm "));
}

TEST(node_is_char_device_open_to_all)
{
	struct stat st;

	ASSERT_EQ(0, stat(MACHVM_DEVICE, &st));
	EXPECT_TRUE(S_ISCHR(st.st_mode));
	EXPECT_EQ(0666, st.st_mode & 0777);
}

TEST_F(dev, version)
{
	struct machvm_version v;

	memset(&v, 0xa5, sizeof(v));
	ASSERT_EQ(0, ioctl(self->fd, MACHVM_IOC_VERSION, &v));
	EXPECT_EQ(MACHVM_ABI_VERSION, v.abi_version);
	EXPECT_EQ((unsigned int)getpagesize(), v.page_size);
	EXPECT_NE(0, v.max_object_size);
	EXPECT_EQ(0, v.max_object_size % v.page_size);
	for (int i = 0; i < 5; i++)
		EXPECT_EQ(0, v.reserved[i]);
}

TEST_F(dev, version_bad_pointer)
{
	EXPECT_EQ(-1, ioctl(self->fd, MACHVM_IOC_VERSION, (void *)8));
	EXPECT_EQ(EFAULT, errno);
}

TEST_F(dev, unknown_ioctl)
{
	EXPECT_EQ(-1, ioctl(self->fd, _IO('M', 0x7f), 0));
	EXPECT_EQ(ENOTTY, errno);
}

TEST_HARNESS_MAIN
