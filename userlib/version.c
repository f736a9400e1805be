/*
 * version.c: the library's version (the repository's VERSION file, which
 * the Makefile passes as SPANALLOC_VERSION) and the one line it says when
 * /dev/spanalloc speaks another ABI than the one it was built for.
 */
#include "../uapi/spanalloc.h"
#include "internal.h"
#include "prim.h"

#ifndef SPANALLOC_VERSION
#error "SPANALLOC_VERSION is not defined: the Makefile passes it from VERSION"
#endif

SPAN_API const char *span_version(void)
{
	return SPANALLOC_VERSION;
}

/* Decimal digits of @v into @buf (at least 11 bytes), no allocation. */
static const char *abi_digits(char *buf, unsigned int v)
{
	char *p = buf + 10;

	*p = 0;
	do
		*--p = (char)('0' + v % 10);
	while (v /= 10);
	return p;
}

/*
 * The module answered SPANALLOC_IOC_INFO with another abi_version: say so
 * once, on stderr, with plain write(2); the caller then does what it did
 * before (the mmap backend, or none when the kernel backend is forced).
 */
void _span_abi_mismatch(unsigned int module_abi)
{
	static int said;
	char got[11], want[11];

	if (__atomic_exchange_n(&said, 1, __ATOMIC_RELAXED))
		return;
	_span_write_str(2, "spanalloc: /dev/spanalloc has ABI version ");
	_span_write_str(2, abi_digits(got, module_abi));
	_span_write_str(2, ", libspanalloc " SPANALLOC_VERSION " needs ");
	_span_write_str(2, abi_digits(want, SPANALLOC_ABI_VERSION));
	_span_write_str(2, ": not using the kernel backend "
			"(install a module and library of one version)\n");
}
