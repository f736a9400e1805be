# spanalloc: top-level Makefile. `make help` lists the targets.
#
# make                 module (for KERNEL), libspanalloc.so/.a, selftests
# make KERNEL=6.1      ... for another kernel: 6.1, 6.12 (default), debug
# make modules         the module for every supported kernel
# make check           everything, then every test on every kernel (CI)
# make demo            boot a VM, load the module, run a program on it
# make install         library, headers, spanalloc.pc, spanstat, man pages,
#                      module source for DKMS, udev rule, modules-load.d
#                      (PREFIX=/usr/local, DESTDIR=; see README "Install")
# make uninstall       removes what make install put there
# make deb             the Debian packages, in build/deb/ (debian/)
# make fuzz            the fuzzer on the debug kernel (FUZZ_KERNEL, FUZZ_OPS, ...)
# make trinity         trinity against the device on the debug kernel
# make coverage        module/'s gcov coverage: debug selftests, then fuzz

KERNEL  ?= 6.12
KERNELS := 6.1 6.12 debug
BUILD   := build
CC      ?= gcc
# The one version of everything (module, library, .pc, Debian packages).
VERSION := $(shell cat VERSION)
# The library's soname is libspanalloc.so.$(SOVERSION): bump it when the
# library's ABI (userlib/spanalloc.h, the exported malloc names) breaks.
SOVERSION := 1

# ---- libspanalloc -----------------------------------------------------------
LIB_CFLAGS := -std=gnu11 -O2 -g -Wall -Wextra -Werror -fPIC -pthread \
	      -fvisibility=hidden -ftls-model=initial-exec -MMD -MP -Iuapi \
	      $(EXTRA_CFLAGS)
# gnu11: C11 and, on x86-64, GNU C's %fs address space for the bins (internal.h).
# EXTRA_CFLAGS: more flags for the library (debian/rules: Debian's hardening).
LIB_SRCS   := $(wildcard userlib/*.c)
LIB_OBJS   := $(LIB_SRCS:userlib/%.c=$(BUILD)/userlib/%.o)
# libspanalloc.a keeps only the prefixed API: no malloc overrides, and
# none of glibc's other malloc names (override.c, glibc.c).
# libspanalloc-malloc.a has them all: a program linked with it, static or
# not, gets spanalloc as its malloc.
LIB_OVERRIDE := $(BUILD)/userlib/override.o $(BUILD)/userlib/glibc.o
LIB_A_OBJS := $(filter-out $(LIB_OVERRIDE),$(LIB_OBJS))
# libspanalloc.so.$(VERSION) with soname libspanalloc.so.$(SOVERSION), and
# the two symlinks (build/userlib/libspanalloc.so is what LD_PRELOAD uses).
LIB_SO_FILE := libspanalloc.so.$(VERSION)
LIB_SONAME  := libspanalloc.so.$(SOVERSION)
LIB_SO_REAL := $(BUILD)/userlib/$(LIB_SO_FILE)
LIB_SO     := $(BUILD)/userlib/libspanalloc.so
LIB_A      := $(BUILD)/userlib/libspanalloc.a
LIB_MALLOC_A := $(BUILD)/userlib/libspanalloc-malloc.a

# ---- selftests ---------------------------------------------------------------
# The kselftest harness headers come from Debian's linux-source-6.12.
KSFT_SRC   := /usr/src/linux-source-6.12.tar.xz
KSFT_DIR   := $(BUILD)/ksft
TEST_CFLAGS := -std=gnu11 -O2 -g -Wall -Wextra -Werror -Wno-clobbered -pthread \
	       -isystem $(KSFT_DIR) -I$(BUILD)/include -Iuserlib -Iuapi
TEST_SRCS  := $(wildcard selftests/*.c)
TEST_BINS  := $(TEST_SRCS:selftests/%.c=$(BUILD)/selftests/%)
# How each test links the library (every other test: libspanalloc.a):
# none (it finds libspanalloc.so at run time, or runs another allocator),
# libspanalloc-malloc.a, or libspanalloc-malloc.a into a static binary.
TEST_NOLIB  := malloc_dlopen malloc_stress
TEST_MALLOC := malloc_glibc
TEST_STATIC := malloc_static

.PHONY: all module modules userlib selftests check demo bench setup \
	debug-kernel checkpatch clean help install uninstall deb fuzz trinity \
	coverage

all: module userlib selftests

help:
	@sed -n '1,/^$$/p' Makefile

setup:
	@scripts/setup

module: setup
	@scripts/build-module $(KERNEL)

modules: setup
	@for k in $(KERNELS); do \
		[ $$k != debug ] || scripts/build-debug-kernel || exit 1; \
		scripts/build-module $$k || exit 1; \
	done

debug-kernel: setup
	@scripts/build-debug-kernel

userlib: $(LIB_SO) $(LIB_A) $(LIB_MALLOC_A)

$(BUILD)/userlib/%.o: userlib/%.c | $(BUILD)/userlib
	$(CC) $(LIB_CFLAGS) -c $< -o $@

# -z nodelete: an allocator is never unmapped; dlclose() would leave the
# thread-exit destructor pointing into nothing.
$(LIB_SO_REAL): $(LIB_OBJS)
	$(CC) $(LDFLAGS) -shared -pthread -Wl,-z,defs -Wl,-z,nodelete \
		-Wl,-soname,$(LIB_SONAME) -o $@ $^

$(LIB_SO): $(LIB_SO_REAL)
	ln -sfn $(LIB_SO_FILE) $(BUILD)/userlib/$(LIB_SONAME)
	ln -sfn $(LIB_SONAME) $@

# span_version() and the ABI mismatch line carry VERSION.
$(BUILD)/userlib/version.o: LIB_CFLAGS += -DSPANALLOC_VERSION='"$(VERSION)"'
$(BUILD)/userlib/version.o: VERSION

$(LIB_A): $(LIB_A_OBJS)
	rm -f $@ && ar rcs $@ $^

$(LIB_MALLOC_A): $(LIB_OBJS)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/userlib $(BUILD)/selftests $(BUILD)/include/linux:
	mkdir -p $@

$(BUILD)/include/linux/spanalloc.h: uapi/spanalloc.h uapi/spanalloc_classes.h \
		| $(BUILD)/include/linux
	cp uapi/spanalloc.h uapi/spanalloc_classes.h $(BUILD)/include/linux/

$(KSFT_DIR)/kselftest_harness.h:
	@[ -f $(KSFT_SRC) ] || scripts/setup
	mkdir -p $(KSFT_DIR)
	tar -xJf $(KSFT_SRC) -C $(KSFT_DIR) --strip-components=4 \
		linux-source-6.12/tools/testing/selftests/kselftest_harness.h \
		linux-source-6.12/tools/testing/selftests/kselftest.h \
		linux-source-6.12/tools/testing/selftests/lib.mk
	touch $@

selftests: $(TEST_BINS)

$(BUILD)/selftests/%: selftests/%.c $(LIB_A) $(LIB_MALLOC_A) \
		$(KSFT_DIR)/kselftest_harness.h \
		$(BUILD)/include/linux/spanalloc.h | $(BUILD)/selftests
	$(CC) $(TEST_CFLAGS) $< -o $@ $(call test_link,$*)

test_link = $(if $(filter $1,$(TEST_NOLIB)),-ldl,\
	$(if $(filter $1,$(TEST_MALLOC)),$(LIB_MALLOC_A),\
	$(if $(filter $1,$(TEST_STATIC)),-static $(LIB_MALLOC_A),$(LIB_A))))

check: setup
	@scripts/check

DEMO_BIN := $(BUILD)/demo/spandemo

$(DEMO_BIN): scripts/demo/spandemo.c $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -O2 -Wall -Wextra -Werror -pthread -Iuserlib $< -o $@ $(LIB_A)

demo: module userlib $(DEMO_BIN)
	@echo "== booting $(KERNEL) under QEMU (TCG), loading spanalloc.ko"
	@scripts/vm-run --kernel $(KERNEL) -- scripts/demo/guest

# The fuzzer (selftests/spanalloc_fuzz.c, scripts/fuzz) in one VM boot.
# FUZZ_SEED, FUZZ_PROCS, FUZZ_THREADS, FUZZ_OPS, FUZZ_FAULT_OPS, FUZZ_KILLS,
# FUZZ_TIME go to scripts/fuzz; FUZZ_KERNEL (debug) picks the kernel.
FUZZ_KERNEL  ?= debug
FUZZ_TIMEOUT ?= 21600
FUZZ_VARS    := FUZZ_SEED FUZZ_PROCS FUZZ_THREADS FUZZ_OPS FUZZ_FAULT_OPS \
		FUZZ_KILLS FUZZ_TIME SPANALLOC_GCOV_DIR

fuzz: setup userlib selftests
	@[ $(FUZZ_KERNEL) != debug ] || scripts/build-debug-kernel
	@scripts/build-module $(FUZZ_KERNEL)
	@scripts/vm-run --kernel $(FUZZ_KERNEL) --mem 1536M \
		--timeout $(FUZZ_TIMEOUT) $(foreach v,$(FUZZ_VARS),$(if $($(v)),--env $(v)=$($(v)))) \
		-- scripts/fuzz

# Line and branch coverage of module/ (gcov, debug kernel): scripts/check's
# debug part (selftests, KUnit, fault injection; the --numa 2 boot), then
# `make fuzz`'s run, each one's counters collected in the guest
# (scripts/gcov-collect); scripts/coverage reports after check, after fuzz
# and both together, each in $(COVERAGE_DIR)/report-*/ (summary.txt,
# uncovered.txt, untaken.txt). Fails if check or fuzz failed.
COVERAGE_DIR := $(BUILD)/coverage

coverage: setup
	@rm -rf $(COVERAGE_DIR) && mkdir -p $(COVERAGE_DIR)
	@st=0; \
	CHECK_RESULTS=$(CURDIR)/$(COVERAGE_DIR)/check scripts/check debug || st=1; \
	$(MAKE) -s fuzz SPANALLOC_GCOV_DIR=$(CURDIR)/$(COVERAGE_DIR)/fuzz/gcov || st=1; \
	c=$(COVERAGE_DIR)/check; f=$(COVERAGE_DIR)/fuzz/gcov; \
	echo; echo "== coverage after check"; \
	scripts/coverage -o $(COVERAGE_DIR)/report-check -l "after check" \
		$$c/debug/gcov $$c/debug-numa/gcov || st=1; \
	echo; echo "== coverage after fuzz"; \
	scripts/coverage -o $(COVERAGE_DIR)/report-fuzz -l "after fuzz" $$f || st=1; \
	echo; echo "== coverage, check and fuzz combined"; \
	scripts/coverage -o $(COVERAGE_DIR)/report-all -l "check + fuzz" \
		$$c/debug/gcov $$c/debug-numa/gcov $$f || st=1; \
	exit $$st

# Trinity as nobody with the device as its victim file (scripts/trinity):
# TRINITY_SYSCALLS, TRINITY_CHILDREN, TRINITY_SEED.
TRINITY_VARS := TRINITY_SYSCALLS TRINITY_CHILDREN TRINITY_SEED

trinity: setup
	@[ $(FUZZ_KERNEL) != debug ] || scripts/build-debug-kernel
	@scripts/build-module $(FUZZ_KERNEL)
	@scripts/vm-run --kernel $(FUZZ_KERNEL) --mem 1536M \
		--timeout $(FUZZ_TIMEOUT) $(foreach v,$(TRINITY_VARS),$(if $($(v)),--env $(v)=$($(v)))) \
		-- scripts/trinity

bench: setup
	@scripts/bench

checkpatch: setup
	@scripts/checkpatch

# ---- install -------------------------------------------------------------
# GNU-style directories; each can be set on the command line. With the
# default PREFIX=/usr/local the udev rule and the modules-load.d entry go to
# /usr/local/lib/{udev/rules.d,modules-load.d}, which udev and systemd read;
# the module source goes to $(PREFIX)/src/spanalloc-$(VERSION), which DKMS
# reads from /usr/src only (PREFIX=/usr), or takes as a path (README).
PREFIX         ?= /usr/local
LIBDIR         ?= $(PREFIX)/lib
INCLUDEDIR     ?= $(PREFIX)/include
SBINDIR        ?= $(PREFIX)/sbin
MANDIR         ?= $(PREFIX)/share/man
PKGCONFIGDIR   ?= $(LIBDIR)/pkgconfig
UDEVRULESDIR   ?= $(PREFIX)/lib/udev/rules.d
MODULESLOADDIR ?= $(PREFIX)/lib/modules-load.d
DKMSSRCDIR     ?= $(PREFIX)/src
DKMS_TREE      := $(DKMSSRCDIR)/spanalloc-$(VERSION)
INSTALL        ?= install
D              := $(DESTDIR)
MAN_PAGES      := man/spanalloc.7 man/libspanalloc.3 man/spanstat.8
# The module's source tree as DKMS builds it: Kbuild and everything it reads.
MODULE_SRCS    := $(wildcard module/*.c module/*.h) uapi/spanalloc.h \
		  uapi/spanalloc_classes.h

install: userlib
	$(INSTALL) -d $(D)$(LIBDIR) $(D)$(INCLUDEDIR)/linux $(D)$(PKGCONFIGDIR) \
		$(D)$(SBINDIR) $(D)$(MANDIR)/man3 $(D)$(MANDIR)/man7 \
		$(D)$(MANDIR)/man8 $(D)$(UDEVRULESDIR) $(D)$(MODULESLOADDIR) \
		$(D)$(DKMS_TREE)/module $(D)$(DKMS_TREE)/uapi $(D)$(DKMS_TREE)/scripts
	$(INSTALL) -m 0644 $(LIB_SO_REAL) $(D)$(LIBDIR)/$(LIB_SO_FILE)
	ln -sfn $(LIB_SO_FILE) $(D)$(LIBDIR)/$(LIB_SONAME)
	ln -sfn $(LIB_SONAME) $(D)$(LIBDIR)/libspanalloc.so
	$(INSTALL) -m 0644 $(LIB_A) $(LIB_MALLOC_A) $(D)$(LIBDIR)/
	$(INSTALL) -m 0644 userlib/spanalloc.h $(D)$(INCLUDEDIR)/spanalloc.h
	$(INSTALL) -m 0644 uapi/spanalloc.h uapi/spanalloc_classes.h \
		$(D)$(INCLUDEDIR)/linux/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' \
		-e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' -e 's|@VERSION@|$(VERSION)|' \
		dist/spanalloc.pc.in > $(D)$(PKGCONFIGDIR)/spanalloc.pc
	sed -e "s|^class_bytes=$$|class_bytes='$$(scripts/spanstat --class-bytes)'|" \
		-e "s|^version=$$|version='$(VERSION)'|" \
		scripts/spanstat > $(D)$(SBINDIR)/spanstat
	chmod 0755 $(D)$(SBINDIR)/spanstat
	for m in $(MAN_PAGES); do \
		sed 's/@VERSION@/$(VERSION)/' $$m > \
			$(D)$(MANDIR)/man$${m##*.}/$${m#man/} || exit 1; \
	done
	$(INSTALL) -m 0644 dist/60-spanalloc.rules $(D)$(UDEVRULESDIR)/
	$(INSTALL) -m 0644 dist/spanalloc-modules-load.conf \
		$(D)$(MODULESLOADDIR)/spanalloc.conf
	$(INSTALL) -m 0644 Kbuild VERSION $(D)$(DKMS_TREE)/
	$(INSTALL) -m 0644 dist/dkms.mk $(D)$(DKMS_TREE)/Makefile
	sed 's/#MODULE_VERSION#/$(VERSION)/' dist/dkms.conf > $(D)$(DKMS_TREE)/dkms.conf
	$(INSTALL) -m 0644 $(filter module/%,$(MODULE_SRCS)) $(D)$(DKMS_TREE)/module/
	$(INSTALL) -m 0644 $(filter uapi/%,$(MODULE_SRCS)) $(D)$(DKMS_TREE)/uapi/
	$(INSTALL) -m 0755 scripts/kconftest $(D)$(DKMS_TREE)/scripts/
	@[ -n "$(DESTDIR)" ] || [ "$$(id -u)" != 0 ] || ldconfig

uninstall:
	rm -f $(D)$(LIBDIR)/$(LIB_SO_FILE) $(D)$(LIBDIR)/$(LIB_SONAME) \
		$(D)$(LIBDIR)/libspanalloc.so $(D)$(LIBDIR)/libspanalloc.a \
		$(D)$(LIBDIR)/libspanalloc-malloc.a $(D)$(INCLUDEDIR)/spanalloc.h \
		$(D)$(INCLUDEDIR)/linux/spanalloc.h \
		$(D)$(INCLUDEDIR)/linux/spanalloc_classes.h \
		$(D)$(PKGCONFIGDIR)/spanalloc.pc $(D)$(SBINDIR)/spanstat \
		$(D)$(MANDIR)/man7/spanalloc.7 $(D)$(MANDIR)/man3/libspanalloc.3 \
		$(D)$(MANDIR)/man8/spanstat.8 $(D)$(UDEVRULESDIR)/60-spanalloc.rules \
		$(D)$(MODULESLOADDIR)/spanalloc.conf
	rm -rf $(D)$(DKMS_TREE)
	-rmdir $(D)$(INCLUDEDIR)/linux 2>/dev/null
	@[ -n "$(DESTDIR)" ] || [ "$$(id -u)" != 0 ] || ldconfig

# ---- Debian packages -------------------------------------------------------
# dpkg-buildpackage on a copy of the source in build/deb/ (it writes the
# .deb files next to the source folder), then lintian on the result.
deb: setup
	@scripts/make-deb

clean:
	rm -rf $(BUILD) Module.symvers modules.order .*.cmd *.o *.ko *.mod*

-include $(LIB_OBJS:.o=.d)
