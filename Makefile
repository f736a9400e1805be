# spanalloc: top-level Makefile. `make help` lists the targets.
#
# make                 module (for KERNEL), libspanalloc.so/.a, selftests
# make KERNEL=6.1      ... for another kernel: 6.1, 6.12 (default), debug
# make modules         the module for every supported kernel
# make check           everything, then every test on every kernel (CI)
# make demo            boot a VM, load the module, run a program on it

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
LIB_CFLAGS := -std=c11 -O2 -g -Wall -Wextra -Werror -fPIC -pthread \
	      -fvisibility=hidden -ftls-model=initial-exec -MMD -MP -Iuapi
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
	debug-kernel checkpatch clean help

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

bench: setup
	@scripts/bench

checkpatch: setup
	@scripts/checkpatch

clean:
	rm -rf $(BUILD) Module.symvers modules.order .*.cmd *.o *.ko *.mod*

-include $(LIB_OBJS:.o=.d)
