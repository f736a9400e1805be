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

# Without the kernel's tree: DKMS cleans for kernels whose headers are gone.
clean:
	rm -rf generated Module.symvers modules.order *.ko *.mod *.mod.c *.o \
		.*.cmd module/*.o module/.*.cmd .tmp_versions

.PHONY: all clean
