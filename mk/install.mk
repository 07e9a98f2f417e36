# install.mk: installing machvm as users install out-of-tree modules and
# libraries (included by the top-level Makefile; see README "Install").
#
#   make install        module (updates/, depmod) + user space, PREFIX/DESTDIR
#   make install-user   user space only (no kernel headers needed)
#   make install-module the module only, for KERNELRELEASE (default: running)
#   make uninstall      removes exactly what install put there (its manifest)
#   make dkms-install   module sources + dkms.conf to /usr/src/machvm-VERSION
#   make dkms-uninstall dkms remove, and the sources
#   make deb            Debian packages in build/deb/ (debhelper, dh-dkms)
#   make dist           everything install-user installs, built (no tests)

# The release version: kmod/version.h is the only place it is written.
VERSION   := $(shell sed -n 's/^\#define MACHVM_VERSION "\(.*\)"$$/\1/p' kmod/version.h)
SOVERSION := 0

PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
DATADIR    ?= $(PREFIX)/share
MANDIR     ?= $(DATADIR)/man
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
# machvm-run's preload library, private to it (not on the linker's path).
PKGLIBDIR  ?= $(PREFIX)/lib/machvm
# systemd and udev read /usr/local/lib/... as well as /usr/lib/...
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
UDEVRULESDIR   ?= $(PREFIX)/lib/udev/rules.d
# The units read their configuration from here.
SYSCONFDIR ?= /etc
EXAMPLEDIR ?= $(DATADIR)/machvm/examples
KERNELRELEASE ?= $(shell uname -r)
MODKDIR    ?= /lib/modules/$(KERNELRELEASE)/build
DKMSSRCDIR ?= /usr/src

# The uapi header, installed where the library's headers include it from:
# <linux/machvm.h>.
UAPI_SRC := kmod/uapi/linux/machvm.h
UAPI_DST := linux/machvm.h

# Packaging builds pass their hardening flags here (debian/rules).
CXXFLAGS += $(EXTRA_CXXFLAGS)
LDLIBS   += $(EXTRA_LDFLAGS)

# The shared library: the static library's objects, position independent.
SOLIB      := $(BUILD)/lib/libmachvm.so.$(VERSION)
$(LIB_OBJ): CXXFLAGS += -fPIC
$(SOLIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -shared -Wl,-soname,libmachvm.so.$(SOVERSION) -Wl,--no-undefined \
		-o $@ $^ $(LDLIBS)
	ln -sfn $(notdir $@) $(BUILD)/lib/libmachvm.so.$(SOVERSION)
	ln -sfn libmachvm.so.$(SOVERSION) $(BUILD)/lib/libmachvm.so

# What gets installed: pagers and the user tools (not the benchmarks).
INST_BINS := $(PAGERS) $(addprefix $(BUILD)/bin/,machvmctl machvm-map machvm-run)
MAN_GEN   := $(patsubst $(BUILD)/bin/%,$(BUILD)/man/%.1,$(filter-out %/machvmctl,$(INST_BINS))) \
	     $(BUILD)/man/machvmctl.8
MAN_SRC   := $(wildcard man/*.[0-9])

$(BUILD)/man/%.1: $(BUILD)/bin/% scripts/help2man.py kmod/version.h
	@mkdir -p $(dir $@)
	python3 scripts/help2man.py --section 1 --version $(VERSION) $< > $@.tmp && mv $@.tmp $@
$(BUILD)/man/machvmctl.8: $(BUILD)/bin/machvmctl scripts/help2man.py kmod/version.h
	@mkdir -p $(dir $@)
	python3 scripts/help2man.py --section 8 --version $(VERSION) --subcommands $< > $@.tmp
	mv $@.tmp $@

$(BUILD)/dist/libmachvm.pc: dist/libmachvm.pc.in kmod/version.h FORCE
	@mkdir -p $(dir $@)
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' \
	    -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' -e 's|@VERSION@|$(VERSION)|g' $< > $@.tmp
	cmp -s $@.tmp $@ && rm $@.tmp || mv $@.tmp $@
$(BUILD)/dist/%: dist/%.in FORCE
	@mkdir -p $(dir $@)
	sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
	    -e 's|@VERSION@|$(VERSION)|g' $< > $@.tmp
	cmp -s $@.tmp $@ && rm $@.tmp || mv $@.tmp $@
$(BUILD)/dkms.conf: dist/dkms.conf.in kmod/version.h
	@mkdir -p $(dir $@)
	sed 's|@VERSION@|$(VERSION)|g' $< > $@

UNITS := $(patsubst dist/%.in,$(BUILD)/dist/%,$(wildcard dist/*.service.in))

dist: $(DEPS) $(LIB) $(SOLIB) $(INST_BINS) $(PRELOAD) $(MAN_GEN) \
	$(BUILD)/dist/libmachvm.pc $(UNITS)

# Every variable scripts/install.sh reads.
INSTALL_ENV = DESTDIR="$(DESTDIR)" BUILD="$(BUILD)" VERSION="$(VERSION)" \
	SOVERSION="$(SOVERSION)" PREFIX="$(PREFIX)" BINDIR="$(BINDIR)" \
	LIBDIR="$(LIBDIR)" INCLUDEDIR="$(INCLUDEDIR)" DATADIR="$(DATADIR)" \
	MANDIR="$(MANDIR)" PKGCONFIGDIR="$(PKGCONFIGDIR)" PKGLIBDIR="$(PKGLIBDIR)" \
	SYSTEMDUNITDIR="$(SYSTEMDUNITDIR)" UDEVRULESDIR="$(UDEVRULESDIR)" \
	EXAMPLEDIR="$(EXAMPLEDIR)" KERNELRELEASE="$(KERNELRELEASE)" \
	MODKDIR="$(MODKDIR)" UAPI_SRC="$(UAPI_SRC)" UAPI_DST="$(UAPI_DST)" \
	INST_BINS="$(INST_BINS)" MAN_GEN="$(MAN_GEN)" MAN_SRC="$(MAN_SRC)" \
	UNITS="$(UNITS)" MANIFEST="$(MANIFEST)"

install: dist module-for-install
	$(INSTALL_ENV) bash scripts/install.sh user
	$(INSTALL_ENV) bash scripts/install.sh module
install-user: dist
	$(INSTALL_ENV) bash scripts/install.sh user
install-module: module-for-install
	$(INSTALL_ENV) bash scripts/install.sh module
uninstall:
	$(INSTALL_ENV) bash scripts/install.sh uninstall

# The module for KERNELRELEASE, built out of the tree like the VM's.
module-for-install: $(DEPS)
	@[ -f "$(MODKDIR)/Makefile" ] || { echo "install: no kernel headers in" \
		"$(MODKDIR): install linux-headers-$(KERNELRELEASE), pick another" \
		"kernel with KERNELRELEASE=, or use make install-user" >&2; exit 1; }
	bash scripts/build-kmod.sh $(MODKDIR) $(BUILD)/kmod/$(KERNELRELEASE)

# DKMS: the module's sources and dkms.conf to /usr/src/machvm-VERSION;
# without DESTDIR also "dkms add" (then: dkms install machvm/VERSION).
dkms-install: $(BUILD)/dkms.conf
	DESTDIR="$(DESTDIR)" bash scripts/dkms.sh install "$(DKMSSRCDIR)/machvm-$(VERSION)" $(VERSION)
dkms-uninstall:
	DESTDIR="$(DESTDIR)" bash scripts/dkms.sh uninstall "$(DKMSSRCDIR)/machvm-$(VERSION)" $(VERSION)

# Debian packages, built in a copy of the tracked sources under build/deb
# (dpkg-buildpackage writes its results to the parent directory).
# DEB_REUSE_BUILD=1: with the tree's compiled objects (scripts/deb.sh).
deb:
	DEB_REUSE_BUILD="$(DEB_REUSE_BUILD)" bash scripts/deb.sh "$(BUILD)/deb" $(VERSION)

.PHONY: install install-user install-module uninstall module-for-install \
	dkms-install dkms-uninstall deb dist FORCE

clean: clean-install
clean-install:
	rm -rf $(BUILD)/man $(BUILD)/dist $(BUILD)/deb $(BUILD)/dkms.conf \
		$(BUILD)/install
.PHONY: clean-install

# The release compiled into the library (machvm::release()) and its test.
$(BUILD)/obj/libmachvm/src/version.o $(BUILD)/obj/tests/unit/version_test.o: kmod/version.h
$(BUILD)/obj/libmachvm/src/version.o $(BUILD)/obj/tests/unit/version_test.o: \
	CXXFLAGS += -DMACHVM_RELEASE='"$(VERSION)"'
