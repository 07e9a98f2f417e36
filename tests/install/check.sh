#!/bin/bash
# tests/install/check.sh host|vm COUNTS: make check's install stages.
# Writes "passed failed skipped" to COUNTS; exit status 1 on a failure.
#
# host: make install DESTDIR=build/install-check/root (the module for the
#       first stock kernel) and the installed file list, SONAME, pkg-config
#       version and man pages (groff warnings); make uninstall leaves the
#       root empty; oot-pager compiled in a scratch directory with only
#       `pkg-config --cflags --libs libmachvm` (PKG_CONFIG_PATH and
#       PKG_CONFIG_SYSROOT_DIR into the root); make dkms-install and
#       `dkms build` against each stock kernel's headers, in a DKMS tree
#       and with a signing key under build/ (nothing of the machine's
#       /var/lib/dkms); make deb, each package's file list (dpkg -c), an
#       extraction into a throwaway root, and lintian without errors.
# vm:   one boot of the first stock kernel with the DKMS-built machvm.ko
#       instead of the tree's and the installed files under /usr/local:
#       tests/install/install_test (the module is the DKMS one, its
#       version, oot-pager, machvmctl status versions, an installed pager,
#       machvm-run finding its installed preload library)
#       and device_test.  Needs the host stage's results.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$ROOT/build
W=$BUILD/install-check
STAGE=$1 COUNTS=$2
cd "$ROOT" || exit 1
VERSION=$(sed -n 's/^#define MACHVM_VERSION "\(.*\)"$/\1/p' kmod/version.h)
REL=$(head -n 1 "$BUILD/kernels.list")
DKMS_KO=$W/dkms/tree/machvm/$VERSION/$REL/x86_64/module/machvm.ko
P=0 F=0
log=$W/step.log
mkdir -p "$W"

# step NAME CMD...: one check; its output goes to the log, shown on failure.
step() {	# step NAME COMMAND...: one result, with its seconds
	local name=$1 t=$SECONDS
	shift
	if "$@" > "$log" 2>&1; then
		P=$((P + 1)); echo "  PASS $name ($((SECONDS - t)) s)"
	else
		F=$((F + 1)); echo "  FAIL $name ($((SECONDS - t)) s)"
		tail -n 25 "$log"
	fi
}

files_present() {	# files_present ROOT PATH...
	local r=$1 f rc=0
	shift
	for f in "$@"; do
		[ -e "$r$f" ] || [ -L "$r$f" ] || { echo "missing: $f"; rc=1; }
	done
	return $rc
}

installed_list() {
	local r=$W/root/usr/local
	files_present "$W/root" /lib/modules/"$REL"/updates/machvm.ko || return 1
	files_present "$r" /lib/libmachvm.so."$VERSION" /lib/libmachvm.so.0 \
		/lib/libmachvm.so /lib/libmachvm.a /lib/pkgconfig/libmachvm.pc \
		/include/machvm/device.hpp /include/machvm/pager.hpp \
		/include/machvm/loop.hpp /lib/machvm/libmachvm-preload.so \
		/bin/machvmctl /bin/machvm-run /bin/machvm-map /bin/zero-pager \
		/bin/file-pager /bin/test-pager /bin/netmem-server \
		/share/man/man8/machvmctl.8 /share/man/man1/machvm-run.1 \
		/share/man/man1/zero-pager.1 /share/man/man1/file-pager.1 \
		/share/man/man1/test-pager.1 /share/man/man1/netmem-server.1 \
		/share/man/man3/libmachvm.3 /share/man/man4/machvm.4 \
		/lib/udev/rules.d/60-machvm.rules \
		/lib/systemd/system/netmem-server@.service \
		/share/machvm/examples/modules-load.d/machvm.conf || return 1
	[ -e "$r/include/linux/machvm.h" ] || [ -e "$r/include/machvm.h" ] ||
		{ echo "missing: the uapi header"; return 1; }
	# The benchmarks stay in the tree.
	local b
	for b in "$r"/bin/*bench*; do
		[ ! -e "$b" ] || { echo "a benchmark was installed: $b"; return 1; }
	done
}

soname() {
	readelf -d "$W/root/usr/local/lib/libmachvm.so.$VERSION" |
		grep -F 'Library soname: [libmachvm.so.0]'
}

man_clean() {	# groff warnings on any installed page fail
	local f w rc=0
	for f in "$W"/root/usr/local/share/man/man*/*; do
		w=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l -Tutf8 -Z "$f" 2>&1 >/dev/null)
		[ -z "$w" ] || { echo "$f: $w"; rc=1; }
	done
	return $rc
}

pkgconf() {
	PKG_CONFIG_PATH=$W/root/usr/local/lib/pkgconfig PKG_CONFIG_SYSROOT_DIR=$W/root \
		pkg-config "$@"
}

oot_build() {	# in a scratch directory: nothing of the tree on the paths
	local d=$W/oot
	rm -rf "$d" && mkdir -p "$d"
	cp tests/install/oot-pager.cpp "$d/"
	[ "$(pkgconf --modversion libmachvm)" = "$VERSION" ] ||
		{ echo "pkg-config --modversion: $(pkgconf --modversion libmachvm)"; return 1; }
	# shellcheck disable=SC2046	# pkg-config's words on purpose
	(cd "$d" && g++ -Wall -Wextra -Werror oot-pager.cpp -o oot-pager \
		$(pkgconf --cflags --libs libmachvm)) || return 1
	readelf -d "$d/oot-pager" | grep -F 'Shared library: [libmachvm.so.0]'
}

uninstalled() {
	make -s uninstall DESTDIR="$W/root" || return 1
	local left
	left=$(cd "$W/root" && find . -mindepth 1)
	[ -z "$left" ] || { echo "left behind:"; echo "$left"; return 1; }
}

dkms_build() {	# dkms_build RELEASE
	mok_signing_key=$W/dkms/mok.key mok_certificate=$W/dkms/mok.pub \
		dkms build -m machvm -v "$VERSION" -k "$1" \
		--sourcetree "$W/dkms/src" --dkmstree "$W/dkms/tree" || {
		cat "$W/dkms/tree/machvm/$VERSION/$1/x86_64/log/make.log" 2>/dev/null
		return 1
	}
	local ko=$W/dkms/tree/machvm/$VERSION/$1/x86_64/module/machvm.ko
	[ -f "$ko" ] || ko=$ko.xz
	modinfo "$ko" | grep -E '^(version|vermagic):'
	modinfo -F version "$ko" | grep -qx "$VERSION" &&
		modinfo -F vermagic "$ko" | grep -q "^$1 "
}

dkms_setup() {
	rm -rf "$W/dkms" && mkdir -p "$W/dkms/tree"
	make -s dkms-install DESTDIR="$W/dkms/src" DKMSSRCDIR= || return 1
	# --sourcetree: where dkms finds machvm-VERSION/
	dkms add -m machvm -v "$VERSION" --sourcetree "$W/dkms/src" \
		--dkmstree "$W/dkms/tree"
}

# deb_files PKG PATH...: PKG's .deb lists every PATH.
deb_files() {
	local pkg=$1 deb list f rc=0
	shift
	deb=$(ls "$BUILD"/deb/"${pkg}"_*.deb 2>/dev/null | head -n 1)
	[ -n "$deb" ] || { echo "no $pkg .deb"; return 1; }
	list=$(dpkg -c "$deb" | awk '{ print $6 }' | sed 's|^\./|/|')
	for f in "$@"; do
		grep -qx -- "$f" <<< "$list" || { echo "$pkg: no $f"; rc=1; }
	done
	[ $rc = 0 ] || echo "$list"
	return $rc
}

only_dkms_has_sources() {	# dh_dkms acts on every package unless told
	local d rc=0
	for d in "$BUILD"/deb/*.deb; do
		case $d in */machvm-dkms_*) continue ;; esac
		if dpkg -c "$d" | grep -q ' \./usr/src/'; then
			echo "$d has /usr/src"; rc=1
		fi
	done
	return $rc
}

debs_extract() {
	rm -rf "$W/debroot" && mkdir -p "$W/debroot"
	local d
	for d in "$BUILD"/deb/*.deb; do dpkg-deb -x "$d" "$W/debroot" || return 1; done
	# The packaged library loads and names its SONAME.
	readelf -d "$W"/debroot/usr/lib/*/libmachvm.so."$VERSION" | grep -F '[libmachvm.so.0]' &&
		[ -f "$W/debroot/usr/src/machvm-$VERSION/dkms.conf" ] &&
		grep -q "PACKAGE_VERSION=\"$VERSION\"" "$W/debroot/usr/src/machvm-$VERSION/dkms.conf"
}

lintian_clean() {
	lintian --tag-display-limit 0 "$BUILD"/deb/*.changes > "$W/lintian.log" 2>&1
	cat "$W/lintian.log"
	! grep -q '^E:' "$W/lintian.log"
}

host() {
	local ma
	rm -rf "$W/root" && mkdir -p "$W/root"
	step "make install DESTDIR (module for $REL)" \
		make -s install DESTDIR="$W/root" KERNELRELEASE="$REL"
	step "installed files" installed_list
	step "libmachvm.so SONAME libmachvm.so.0" soname
	step "man pages without groff warnings" man_clean
	step "oot-pager built with pkg-config only" oot_build
	step "make uninstall leaves nothing" uninstalled
	step "make dkms-install, dkms add" dkms_setup
	while read -r rel; do
		step "dkms build $rel" dkms_build "$rel"
	done < "$BUILD/kernels.list"
	# The tree's objects are reused (scripts/deb.sh): a clean build of
	# everything again would double the stage's time.
	step "make deb" make -s deb DEB_REUSE_BUILD=1
	ma=$(dpkg-architecture -q DEB_HOST_MULTIARCH)
	step "machvm-dkms files" deb_files machvm-dkms \
		"/usr/src/machvm-$VERSION/dkms.conf" "/usr/src/machvm-$VERSION/main.c" \
		"/usr/src/machvm-$VERSION/Kbuild" "/usr/src/machvm-$VERSION/compat/probe.sh" \
		/lib/udev/rules.d/60-machvm.rules /usr/share/man/man4/machvm.4.gz
	step "libmachvm0 files" deb_files libmachvm0 \
		"/usr/lib/$ma/libmachvm.so.$VERSION" "/usr/lib/$ma/libmachvm.so.0"
	step "libmachvm-dev files" deb_files libmachvm-dev \
		"/usr/lib/$ma/libmachvm.so" "/usr/lib/$ma/libmachvm.a" \
		"/usr/lib/$ma/pkgconfig/libmachvm.pc" /usr/include/machvm/pager.hpp \
		/usr/share/man/man3/libmachvm.3.gz
	step "machvm-tools files" deb_files machvm-tools \
		/usr/bin/machvmctl /usr/bin/machvm-run /usr/bin/zero-pager \
		/usr/bin/netmem-server /usr/lib/machvm/libmachvm-preload.so \
		/lib/systemd/system/netmem-server@.service \
		/usr/share/man/man8/machvmctl.8.gz /usr/share/man/man1/netmem-server.1.gz
	step "module sources only in machvm-dkms" only_dkms_has_sources
	step "debs extracted into a throwaway root" debs_extract
	step "lintian: no errors" lintian_clean
	# The VM stage boots with what this stage installed: install again.
	rm -rf "$W/root" && mkdir -p "$W/root"
	make -s install-user DESTDIR="$W/root" > "$log" 2>&1 || { F=$((F + 1)); cat "$log"; }
}

vm() {
	local sel=$W/sel env=$W/machvm-install.env r=$W/root/usr/local extra f
	[ -f "$DKMS_KO" ] && [ -x "$W/oot/oot-pager" ] && [ -x "$r/bin/machvmctl" ] || {
		echo "  FAIL vm: the host stage's module, oot-pager or install is missing"
		F=$((F + 1)); return
	}
	rm -rf "$sel" && mkdir -p "$sel"
	cp tests/install/install_test "$BUILD/tests/vm/device_test" "$sel/"
	printf 'VERSION=%s\nKO_SHA256=%s\n' "$VERSION" \
		"$(sha256sum "$DKMS_KO" | cut -d' ' -f1)" > "$env"
	extra="$env:etc/machvm-install.env $W/oot/oot-pager:usr/local/bin/oot-pager"
	extra="$extra $r/lib/libmachvm.so.$VERSION:usr/local/lib/libmachvm.so.0"
	for f in machvmctl zero-pager machvm-run; do
		extra="$extra $r/bin/$f:usr/local/bin/$f"
	done
	extra="$extra $r/lib/machvm/libmachvm-preload.so:usr/local/lib/machvm/libmachvm-preload.so"
	rm -f "$BUILD/vm/install-$REL/counts"
	MVM_KO=$DKMS_KO MVM_EXTRA_FILES=$extra TESTDIR=$sel VMTAG=install- \
		bash scripts/vm.sh check "$REL"
	local p=0 f=1
	[ -s "$BUILD/vm/install-$REL/counts" ] && read -r p f _ < "$BUILD/vm/install-$REL/counts"
	P=$((P + p)) F=$((F + f))
}

case $STAGE in
host) host ;;
vm) vm ;;
*) echo "check.sh: host or vm" >&2; exit 2 ;;
esac
echo "$P $F 0" > "$COUNTS"
[ "$F" -eq 0 ]
