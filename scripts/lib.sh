#!/bin/bash
# scripts/lib.sh - owns the mapping from a kernel NAME to the files that belong to it:
# the release string, the bootable image, the kbuild dir for external modules and
# the path of our module built for it. Shared by scripts/* (source it) and the
# Makefile (execute it: `scripts/lib.sh kernel_build_dir 6.12`).
#
# NAME is one of
#   6.1    newest installed Debian generic kernel /boot/vmlinuz-6.1.0-N-amd64
#   6.12   newest installed Debian generic kernel /boot/vmlinuz-6.12.X+deb12-amd64
#   debug  the 6.12 debug kernel built by scripts/build-debug-kernel (cached)
#   PATH   a bzImage/vmlinuz file
# Errors are one line on stderr saying what is missing and how to get it; the
# functions then return 1.

SPANALLOC_CACHE=${SPANALLOC_CACHE:-/var/cache/spanalloc}
SPANALLOC_REPO=${SPANALLOC_REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}

lib_die() {
	echo "${0##*/}: $*" >&2
	return 1
}

# newest_boot_release REGEX: newest release R with /boot/vmlinuz-R matching ^REGEX$
newest_boot_release() {
	local f rels=()
	for f in /boot/vmlinuz-*; do
		[[ -e $f ]] || continue
		f=${f#/boot/vmlinuz-}
		[[ $f =~ ^$1$ ]] && rels+=("$f")
	done
	((${#rels[@]})) || return 1
	printf '%s\n' "${rels[@]}" | sort -V | tail -n 1
}

# debug_kernel_dir: the current debug kernel cache dir (holds src/ and build/)
debug_kernel_dir() {
	local d=$SPANALLOC_CACHE/debug-kernel
	if [[ ! -f $d/build/.spanalloc-complete || ! -f $d/build/arch/x86/boot/bzImage ]]; then
		lib_die "debug kernel not built (no $d/build/arch/x86/boot/bzImage): run scripts/build-debug-kernel"
		return 1
	fi
	readlink -f "$d"
}

# image_release FILE: the release string stored in an x86 bzImage header
image_release() {
	local off
	[[ $(dd if="$1" bs=1 skip=514 count=4 status=none 2>/dev/null) == HdrS ]] || return 1
	# boot protocol: 16-bit pointer at 0x20e, +0x200, to "RELEASE (builder) #..."
	off=$(od -An -tu2 -j 526 -N 2 "$1" 2>/dev/null | tr -d ' ') || return 1
	[[ $off =~ ^[0-9]+$ ]] || return 1
	dd if="$1" bs=1 skip=$((off + 512)) count=128 status=none | tr '\0' '\n' |
		head -n 1 | cut -d' ' -f1
}

kernel_release() {
	local name=${1:?usage: kernel_release 6.1|6.12|debug|PATH} rel d
	case $name in
	6.1)
		rel=$(newest_boot_release '6\.1\.0-[0-9]+-amd64') ||
			{ lib_die "kernel 6.1 not installed (no /boot/vmlinuz-6.1.0-*-amd64): run scripts/setup"; return 1; }
		;;
	6.12)
		rel=$(newest_boot_release '6\.12\.[0-9]+\+deb12-amd64') ||
			{ lib_die "kernel 6.12 not installed (no /boot/vmlinuz-6.12.*+deb12-amd64): run scripts/setup"; return 1; }
		;;
	debug)
		d=$(debug_kernel_dir) || return 1
		rel=$(cat "$d/build/include/config/kernel.release") ||
			{ lib_die "debug kernel build in $d is incomplete: run scripts/build-debug-kernel"; return 1; }
		;;
	*)
		[[ -f $name ]] || { lib_die "kernel '$name': no such file (want 6.1, 6.12, debug or a bzImage path)"; return 1; }
		rel=$(image_release "$name") || rel=
		[[ -n $rel ]] || { lib_die "kernel '$name': not an x86 bzImage (no release string in its header)"; return 1; }
		;;
	esac
	echo "$rel"
}

kernel_image() {
	local name=${1:?usage: kernel_image 6.1|6.12|debug|PATH} rel
	case $name in
	6.1 | 6.12)
		rel=$(kernel_release "$name") || return 1
		echo "/boot/vmlinuz-$rel"
		;;
	debug)
		rel=$(debug_kernel_dir) || return 1
		echo "$rel/build/arch/x86/boot/bzImage"
		;;
	*)
		kernel_release "$name" >/dev/null || return 1
		readlink -f "$name"
		;;
	esac
}

kernel_build_dir() {
	local name=${1:?usage: kernel_build_dir 6.1|6.12|debug|PATH} rel d
	case $name in
	debug)
		d=$(debug_kernel_dir) || return 1
		echo "$d/build"
		return 0
		;;
	6.1 | 6.12) ;;
	*)
		# a bzImage inside a kernel build tree: O=/arch/x86/boot/bzImage
		d=$(readlink -f "$name")
		d=${d%/arch/x86/boot/bzImage}
		if [[ $d != "$(readlink -f "$name")" && -f $d/Makefile && -f $d/include/config/kernel.release ]]; then
			echo "$d"
			return 0
		fi
		;;
	esac
	rel=$(kernel_release "$name") || return 1
	d=/lib/modules/$rel/build
	if [[ ! -f $d/Makefile ]]; then
		if [[ $name == 6.1 || $name == 6.12 ]]; then
			lib_die "headers for $rel missing (no $d): run scripts/setup"
		else
			lib_die "no kbuild dir for kernel '$name' ($rel): install linux-headers-$rel"
		fi
		return 1
	fi
	echo "$d"
}

module_path() {
	local rel
	rel=$(kernel_release "${1:?usage: module_path 6.1|6.12|debug|PATH}") || return 1
	echo "$SPANALLOC_REPO/build/$rel/spanalloc.ko"
}

# Executed rather than sourced: run one of the functions above.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
	set -euo pipefail
	case ${1:-} in
	kernel_release | kernel_image | kernel_build_dir | module_path | debug_kernel_dir)
		"$@"
		;;
	*)
		echo "usage: $0 {kernel_release|kernel_image|kernel_build_dir|module_path|debug_kernel_dir} NAME" >&2
		exit 2
		;;
	esac
fi
