#!/usr/bin/env bash
# Packs the emulated host's initramfs (an uncompressed newc cpio: TCG would only spend boot time
# decompressing it).
#
#   make-initramfs.sh --build DIR --kernel ENTRY --command FILE --output FILE [--add FILE]...
#
# Contents: busybox (static), the kernel modules of the cache ENTRY (see
# fetch-kernel.sh), /init (init.sh), /bin/run-kvm-tests, the command file as /etc/spindle/cmd, and
# the project binaries in /bin with every shared library they need (found with ldd, copied to the
# path ldd names, loader included):
#   BUILD/vmm/spindle, BUILD/tests/kvm/kvm-*, BUILD/tests/kvm-host/kvm-*, and each --add FILE.
# The names of the kvm-* tests go to /etc/spindle/kvm-tests for run-kvm-tests.
set -euo pipefail

die() { echo "kvm-host: $*" >&2; exit 1; }
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

build="" kernel="" command_file="" output=""
extra=()
while [[ $# -gt 0 ]]; do
	case $1 in
	--build) build=$2; shift 2 ;;
	--kernel) kernel=$2; shift 2 ;;
	--command) command_file=$2; shift 2 ;;
	--output) output=$2; shift 2 ;;
	--add) extra+=("$2"); shift 2 ;;
	*) die "make-initramfs.sh: unknown argument $1" ;;
	esac
done
[[ -n $build && -n $kernel && -n $command_file && -n $output ]] ||
	die "usage: make-initramfs.sh --build DIR --kernel ENTRY --command FILE --output FILE [--add FILE]..."

busybox=/bin/busybox
[[ -x $busybox ]] || die "no $busybox (package busybox-static)"
command -v cpio >/dev/null || die "no cpio (package cpio)"

root=$(mktemp -d "${output}.root.XXXXXX")
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,dev,proc,sys,tmp,out,etc/spindle,lib/modules/spindle}

# Copies a file to the same absolute path inside the initramfs, following symlinks.
copyToSamePath() {
	mkdir -p "$root$(dirname "$1")"
	cp -L "$1" "$root$1"
}

# Copies every shared library a binary needs (nothing for a static one).
declare -A copied=()
copyLibraries() {
	local bin=$1 out lib
	# ldd fails on static binaries ("not a dynamic executable"): that is fine.
	out=$(ldd "$bin" 2>&1) || return 0
	if grep -q 'not found' <<<"$out"; then
		die "$bin needs a shared library this machine lacks: $(grep 'not found' <<<"$out" | head -n 1)"
	fi
	# Lines look like "libfmt.so.9 => /lib/x86_64-linux-gnu/libfmt.so.9 (0x...)" or
	# "/lib64/ld-linux-x86-64.so.2 (0x...)"; linux-vdso has no file.
	while read -r lib; do
		[[ -n $lib && -z ${copied[$lib]:-} ]] || continue
		copied[$lib]=1
		copyToSamePath "$lib"
	done < <(sed -n -e 's/^.*=> \(\/[^ ]*\) (0x.*$/\1/p' -e 's/^[[:space:]]*\(\/[^ ]*\) (0x.*$/\1/p' <<<"$out")
}

addBinary() {
	local bin=$1 name
	name=$(basename "$bin")
	[[ $name != busybox && $name != sh ]] || die "$bin: the emulated host needs /bin/$name for itself"
	[[ ! -e $root/bin/$name ]] || die "two binaries named $name"
	cp -L "$bin" "$root/bin/$name"
	copyLibraries "$bin"
}

cp "$busybox" "$root/bin/busybox"
copyLibraries "$busybox"
# /init links the other applets at boot (busybox --install -s), which takes milliseconds there
# and a fork per applet here; it never replaces a file, so the project binaries stay.
ln -s busybox "$root/bin/sh"

while read -r module; do
	cp "$kernel/$module" "$root/lib/modules/spindle/"
done <"$kernel/modules.load"
cp "$kernel/modules.load" "$root/lib/modules/spindle/"

install -m 0755 "$here/init.sh" "$root/init"
install -m 0755 "$here/run-kvm-tests.sh" "$root/bin/run-kvm-tests"
install -m 0644 "$command_file" "$root/etc/spindle/cmd"

# Executables only: Meson puts NAME.p/ object directories next to them.
isExecutable() { [[ -f $1 && -x $1 ]]; }
[[ -d $build ]] || die "no build directory $build"
if isExecutable "$build/vmm/spindle"; then
	addBinary "$build/vmm/spindle"
fi
tests=()
for bin in "$build"/tests/kvm/kvm-* "$build"/tests/kvm-host/kvm-*; do
	isExecutable "$bin" || continue
	addBinary "$bin"
	tests+=("$(basename "$bin")")
done
for bin in "${extra[@]}"; do
	isExecutable "$bin" || die "--add $bin: not an executable file"
	addBinary "$bin"
done
printf '%s\n' "${tests[@]}" | LC_ALL=C sort >"$root/etc/spindle/kvm-tests"

(cd "$root" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$output.partial" ||
	die "cpio failed"
mv "$output.partial" "$output"
