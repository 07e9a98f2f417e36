// SPDX-License-Identifier: GPL-2.0
/*
 * The test VM's disks (tests/vm/init): a raw virtio disk for a swap
 * partition and an ext4 file system for swap files, named by MVM_SWAP_DEV
 * and MVM_DISK_DIR, plus the tools other tests rely on.  Swap tests would
 * skip or fail in confusing ways without them; this fails plainly.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "kselftest_harness.h"

#define EXT4_MAGIC 0xEF53

static const char *disk_env(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

TEST(swap_dev_is_a_usable_block_device)
{
	const char *dev = disk_env("MVM_SWAP_DEV");
	uint64_t bytes = 0;
	struct stat st;
	void *page;
	int fd;

	ASSERT_NE(NULL, dev) TH_LOG("MVM_SWAP_DEV is not set");
	ASSERT_EQ(0, stat(dev, &st)) TH_LOG("%s: %s", dev, strerror(errno));
	ASSERT_TRUE(S_ISBLK(st.st_mode));
	fd = open(dev, O_RDWR | O_DIRECT | O_CLOEXEC);
	ASSERT_LE(0, fd) TH_LOG("open %s: %s", dev, strerror(errno));
	ASSERT_EQ(0, ioctl(fd, BLKGETSIZE64, &bytes));
	EXPECT_LE(64ULL << 20, bytes) TH_LOG("%s: only %llu bytes", dev,
					     (unsigned long long)bytes);
	page = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, page);
	/* Read only: the disk is for the swap tests. */
	EXPECT_EQ(4096, pread(fd, page, 4096, bytes - 4096));
	munmap(page, 4096);
	close(fd);
}

TEST(disk_dir_is_ext4_with_direct_io)
{
	const char *dir = disk_env("MVM_DISK_DIR");
	char path[256];
	struct statfs sf;
	char *buf;
	int fd;

	ASSERT_NE(NULL, dir) TH_LOG("MVM_DISK_DIR is not set");
	ASSERT_EQ(0, statfs(dir, &sf)) TH_LOG("%s: %s", dir, strerror(errno));
	ASSERT_EQ(EXT4_MAGIC, (unsigned long)sf.f_type);
	EXPECT_LE(256ULL << 20, (uint64_t)sf.f_bavail * sf.f_bsize);

	snprintf(path, sizeof(path), "%s/disks_test.%d", dir, getpid());
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_DIRECT | O_CLOEXEC, 0600);
	ASSERT_LE(0, fd) TH_LOG("open %s: %s", path, strerror(errno));
	unlink(path);
	ASSERT_EQ(0, fallocate(fd, 0, 0, 1 << 20));
	buf = mmap(NULL, 8192, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, buf);
	memset(buf, 0x5a, 4096);
	EXPECT_EQ(4096, pwrite(fd, buf, 4096, 65536));
	EXPECT_EQ(0, fsync(fd));
	EXPECT_EQ(4096, pread(fd, buf + 4096, 4096, 65536));
	EXPECT_EQ(0, memcmp(buf, buf + 4096, 4096));
	munmap(buf, 8192);
	close(fd);
}

TEST(disks_file_matches_environment)
{
	char line[256], want[300];
	static const char * const names[] = { "MVM_SWAP_DEV", "MVM_DISK_DIR" };
	unsigned int found = 0;
	FILE *f = fopen("/run/machvm-disks", "r");

	ASSERT_NE(NULL, f) TH_LOG("/run/machvm-disks: %s", strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = 0;
		for (unsigned int i = 0; i < 2; i++) {
			const char *v = disk_env(names[i]);

			snprintf(want, sizeof(want), "%s=%s", names[i],
				 v ? v : "");
			if (v && !strcmp(line, want))
				found |= 1U << i;
		}
	}
	fclose(f);
	EXPECT_EQ(3U, found);
}

TEST(loop_and_memtester_present)
{
	EXPECT_EQ(0, access("/dev/loop-control", F_OK));
	ASSERT_EQ(0, access("/usr/bin/memtester", X_OK));
	/* Its libraries came along: a tiny run works. */
	EXPECT_EQ(0, system("/usr/bin/memtester 16k 1 >/dev/null 2>&1"));
}

TEST_HARNESS_MAIN
