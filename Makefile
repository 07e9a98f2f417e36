# machvm top-level Makefile.  See README.md.
#
#   make            module for the installed headers (KDIR=) + all user space
#   make deps       install/download everything (run by the other targets)
#   make check      lint, host tests, then every VM test on each stock kernel
#   make demo       the main job, in the VM (KERNEL= picks the kernel)
#   make vm-shell   a shell in the VM with the module loaded
#   make bench      benchmarks in the VM
#   make soak       every operation at random for SOAK_MIN minutes per kernel
#   make lint       checkpatch --strict, sparse, clang-format
#   make install    module (KERNELRELEASE=) + library, tools, pagers, man pages
#                   (PREFIX=/usr/local, DESTDIR=); make uninstall undoes it;
#                   make dkms-install, make deb: see mk/install.mk

BUILD    := $(CURDIR)/build
DEPS     := $(BUILD)/.deps-ok
KSRC     := $(BUILD)/linux-source
SELFTEST := $(KSRC)/tools/testing/selftests

# The module's target kernel: KDIR= overrides; else the running kernel's
# headers; else the newest installed Debian 6.1 headers.
KDIR ?= $(firstword $(wildcard /lib/modules/$(shell uname -r)/build) \
	$(patsubst %/Makefile,%,$(wildcard /usr/src/linux-headers-6.1*-amd64/Makefile)))
# Its release (from the path: /lib/modules/REL/build or
# /usr/src/linux-headers-REL) names the build directory, build/kmod/$(KREL).
KREL     := $(patsubst linux-headers-%,%,$(notdir $(patsubst %/build,%,$(patsubst %/,%,$(KDIR)))))

CXX      ?= g++
CC       ?= gcc
CXXFLAGS = -std=c++20 -O2 -g -Wall -Wextra -Werror -pthread \
	    $(shell pkg-config --cflags libnl-genl-3.0 2>/dev/null) \
	    -Ilibmachvm/include -Ikmod/uapi
CFLAGS_T := -std=gnu11 -O2 -g -Wall -Wextra -Wno-unused-parameter \
	    -Wno-sign-compare -Werror -pthread -I$(SELFTEST) -Ikmod/uapi \
	    -Itests/selftests
LDLIBS   := -luring -lnl-genl-3 -lnl-3 -lzstd -lhiredis -pthread

LIB_SRC  := $(wildcard libmachvm/src/*.cpp)
LIB_OBJ  := $(LIB_SRC:%.cpp=$(BUILD)/obj/%.o)
LIB      := $(BUILD)/lib/libmachvm.a

PAGERS   := $(patsubst pagers/%.cpp,$(BUILD)/bin/%,$(wildcard pagers/*.cpp)) \
	    $(BUILD)/bin/netmem-server
# What the tests share (tests/lib): test-pager's pattern and misbehaviour,
# machvm-map's fill specs; test-pager, machvm-map, machvm-bench-faults and -file
# use them too.  Not part of libmachvm, not installed.
TESTLIB_OBJ := $(patsubst %.cpp,$(BUILD)/obj/%.o,$(wildcard tests/lib/*.cpp))
TESTLIB  := $(BUILD)/tests/lib/libtesthelpers.a
# What the benchmark tools share (tools/bench), and its unit test.
BENCH_OBJ := $(BUILD)/obj/tools/bench/bench.o
# netmem-server's coherence engine, which its unit test links too.
NETMEM_OBJ := $(BUILD)/obj/pagers/netmem/netmem.o
TOOLS    := $(patsubst tools/%.cpp,$(BUILD)/bin/%,$(wildcard tools/*.cpp)) \
	    $(BUILD)/bin/machvmctl
# machvmctl's command line and manual, which its unit test links too.
CTL_OBJ  := $(patsubst %.cpp,$(BUILD)/obj/%.o,\
	$(filter-out tools/machvmctl/main.cpp,$(wildcard tools/machvmctl/*.cpp)))
SELFTESTS := $(patsubst tests/selftests/%.c,$(BUILD)/tests/vm/%,\
	$(wildcard tests/selftests/*_test.c))
SELFTEST_LIB := $(wildcard tests/selftests/lib/*.c)
HARNESS_T := $(patsubst tests/harness/%.c,$(BUILD)/tests/harness/%,\
	$(wildcard tests/harness/*.c))
UNIT     := $(patsubst tests/unit/%.cpp,$(BUILD)/tests/unit/%,\
	$(wildcard tests/unit/*_test.cpp))

USER := $(LIB) $(PAGERS) $(TOOLS) $(SELFTESTS) $(HARNESS_T) $(UNIT)

all: module user

$(DEPS): scripts/deps.sh
	bash scripts/deps.sh
	@touch $@

deps:
	bash scripts/deps.sh
	@touch $(DEPS)

# Built out of the source tree: build/kmod/$(KREL)/machvm.ko.
module: $(DEPS)
	+bash scripts/build-kmod.sh $(KDIR) $(BUILD)/kmod/$(KREL)
	@echo "module: $(BUILD)/kmod/$(KREL)/machvm.ko"

user: $(DEPS) $(USER)

# Each object depends on the headers it includes, as the compiler lists
# them (-MMD: build/obj/....d; -MP: a removed header is no error).
$(BUILD)/obj/%.o: %.cpp | $(DEPS)
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -MMD -MP -c $< -o $@

-include $(shell find $(BUILD)/obj $(BUILD)/tests $(BUILD)/lib -name '*.d' 2>/dev/null)

$(LIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(TESTLIB): $(TESTLIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

# A C++ program: its objects and archives (as the rules below add them),
# then libmachvm, which the archives use too.
LINK_CXX = mkdir -p $(dir $@) && \
	$(CXX) $(CXXFLAGS) $(filter-out $(LIB),$(filter %.o %.a,$^)) -o $@ $(LIB) $(LDLIBS)

$(BUILD)/bin/%: $(BUILD)/obj/pagers/%.o $(LIB)
	$(LINK_CXX)

$(BUILD)/bin/%: $(BUILD)/obj/tools/%.o $(LIB)
	$(LINK_CXX)

$(BUILD)/tests/unit/%: $(BUILD)/obj/tests/unit/%.o $(LIB)
	$(LINK_CXX)

# Programs of more than one file, and what their unit tests link.
$(BUILD)/bin/machvmctl: $(BUILD)/obj/tools/machvmctl/main.o $(CTL_OBJ) $(LIB)
	$(LINK_CXX)
$(BUILD)/tests/unit/machvmctl_test: $(CTL_OBJ)
$(BUILD)/bin/netmem-server: $(BUILD)/obj/pagers/netmem/netmem-server.o $(NETMEM_OBJ) $(LIB)
	$(LINK_CXX)
$(BUILD)/tests/unit/netmem_test: $(NETMEM_OBJ)
$(addprefix $(BUILD)/bin/machvm-bench-,faults file netmem pageout) \
	$(BUILD)/tests/unit/bench_test: $(BENCH_OBJ)
# bench_test runs machvm-bench-file (its command line, its mmap case).
$(BUILD)/tests/unit/bench_test: | $(BUILD)/bin/machvm-bench-file
TESTLIB_USERS := $(BUILD)/bin/test-pager $(BUILD)/bin/machvm-map \
	$(BUILD)/bin/machvm-bench-faults $(BUILD)/bin/machvm-bench-file $(UNIT)
$(TESTLIB_USERS): $(TESTLIB)
$(BUILD)/obj/pagers/test-pager.o $(BUILD)/obj/tools/machvm-map.o \
	$(BUILD)/obj/tools/machvm-bench-faults.o \
	$(BUILD)/obj/tools/machvm-bench-file.o: CXXFLAGS += -Itests/lib
# The unit tests include the headers of the tools and pagers they test.
$(BUILD)/obj/tests/unit/%.o: CXXFLAGS += -Itools -Ipagers -Itests/lib

# Kselftest binaries are C (the harness is C) and static, so the initramfs
# needs no libraries for them.
SELFTEST_LIB_OBJ := $(SELFTEST_LIB:%.c=$(BUILD)/obj/%.o)

$(BUILD)/obj/%.o: %.c | $(DEPS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_T) -MMD -MP -c $< -o $@

$(BUILD)/tests/vm/%: $(BUILD)/obj/tests/selftests/%.o $(SELFTEST_LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_T) -static $^ -o $@ -luring

$(BUILD)/tests/harness/%: $(BUILD)/obj/tests/harness/%.o
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_T) -static $< -o $@

# machvm-run's LD_PRELOAD library: no libmachvm, no exceptions, no RTTI.
PRELOAD := $(BUILD)/lib/libmachvm-preload.so
user: $(PRELOAD)
$(PRELOAD): libmachvm/preload/preload.cpp | $(DEPS)
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -MMD -MP -MF $@.d -MT $@ -fPIC -shared -fno-exceptions -fno-rtti \
		-Wl,--as-needed $< -o $@ -ldl
$(BUILD)/tests/unit/preload_test: $(PRELOAD)

# Pair-mode tests (scripts/vm.sh pair): run on two guests at once.
PAIR_T := $(patsubst tests/pair/%.c,$(BUILD)/tests/pair/%,\
	$(wildcard tests/pair/*_test.c))
user: $(PAIR_T)
$(BUILD)/tests/pair/%: $(BUILD)/obj/tests/pair/%.o $(SELFTEST_LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_T) -static $^ -o $@ -luring

# The soak (make soak) and soak_test, the Kselftest case that runs it:
# 45 s in each kernel's make check boot, longer in make soak's.
SOAK := $(BUILD)/bin/machvm-soak
SOAK_T := $(BUILD)/tests/vm/soak_test
user: $(SOAK) $(SOAK_T)
$(SOAK): $(BUILD)/obj/tests/soak/soak.o $(SELFTEST_LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_T) -static $^ -o $@ -luring
$(SOAK_T): $(BUILD)/obj/tests/soak/soak_test.o $(SELFTEST_LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_T) -static $^ -o $@ -luring

check: $(DEPS)
	bash scripts/check.sh

demo: $(DEPS) user
	bash scripts/vm.sh demo $(KERNEL)

bench: $(DEPS) user
	bash scripts/vm.sh bench $(KERNEL)

# SOAK_MIN minutes (default 20) per kernel, then a pair; SOAK_SEED replays.
soak: $(DEPS) user
	SOAK_MIN=$(or $(SOAK_MIN),20) SOAK_SEED=$(SOAK_SEED) bash scripts/vm.sh soak $(KERNEL)

vm-shell: $(DEPS) user
	bash scripts/vm.sh shell $(KERNEL)

lint: $(DEPS)
	bash scripts/lint.sh

format:
	clang-format -i $$(git ls-files '*.cpp' '*.hpp')

clean:
	rm -rf $(BUILD)/obj $(BUILD)/bin $(BUILD)/lib $(BUILD)/tests \
		$(BUILD)/kmod $(BUILD)/vm

distclean:
	rm -rf $(BUILD)

.PHONY: all deps module user check demo bench soak vm-shell lint format clean \
	distclean
.SECONDARY:

include mk/install.mk
