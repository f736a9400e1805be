# Makefile of the spanalloc module source as DKMS builds it (installed as
# /usr/src/spanalloc-VERSION/Makefile; the repository's is dist/dkms.mk).
# Kbuild reads the file Kbuild, not this one.
#
#   make [KVER=RELEASE] [KDIR=/lib/modules/RELEASE/build]
#
# scripts/kconftest finds the kernel's interfaces first (module/compat.h),
# by compiling test units against KDIR, never by version number.
KVER ?= $(shell uname -r)
KDIR ?= /lib/modules/$(KVER)/build

all:
	mkdir -p generated
	bash scripts/kconftest $(KDIR) generated/spanalloc_conftest.h
	$(MAKE) -C $(KDIR) M=$(CURDIR) modules

clean:
	rm -rf generated
	$(MAKE) -C $(KDIR) M=$(CURDIR) clean

.PHONY: all clean
