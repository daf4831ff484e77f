#!/usr/bin/env bash
# Fetches the emulated host's kernel into a cache and prints the cache entry's directory.
#
#   fetch-kernel.sh CACHE_DIR [TIMEOUT_SECONDS]
#
# The kernel is Debian's own: the image package that linux-image-amd64 depends on (apt is asked
# for it, nothing is pinned), fetched with `apt-get download` and unpacked with `dpkg -x` into a
# scratch directory; it is never installed as this machine's kernel. Only vmlinuz and the modules
# /dev/kvm needs (kvm-amd and what it depends on: kvm, ccp, irqbypass) are kept, in
#   CACHE_DIR/PACKAGE_VERSION/{vmlinuz, vmlinux, *.ko, modules.load, version}
# (vmlinux: vmlinuz unpacked once, because it boots seconds faster under TCG).
# modules.load lists the modules in load order. A complete entry is reused without any download.
set -euo pipefail

die() { echo "kvm-host: $*" >&2; exit 1; }

[[ $# -ge 1 && $# -le 2 ]] || die "usage: fetch-kernel.sh CACHE_DIR [TIMEOUT_SECONDS]"
cache=$1
timeout_s=${2:-600}
mkdir -p "$cache"

# The image package linux-image-amd64 depends on, and its candidate version ("" when apt does not
# know, e.g. a container whose package lists were never downloaded).
askApt() {
	local depends pkg ver
	# One query answers both in the usual case: "Depends: linux-image-6.1.0-56-amd64 (= 6.1.192-2)".
	depends=$(apt-cache show --no-all-versions linux-image-amd64 2>/dev/null |
		sed -n 's/^Depends: \(linux-image-[^ ,]*\)\( (= \([^)]*\))\)\{0,1\}.*$/\1 \3/p' | head -n 1) || true
	read -r pkg ver <<<"$depends" || true
	[[ -n $pkg ]] || return 1
	if [[ -z $ver ]]; then
		ver=$(apt-cache show --no-all-versions "$pkg" 2>/dev/null | sed -n 's/^Version: //p' | head -n 1) || true
		[[ -n $ver ]] || return 1
	fi
	echo "$pkg $ver"
}

# The newest complete entry already in the cache, if any.
newestCached() {
	local entry
	entry=$(find "$cache" -mindepth 2 -maxdepth 2 -name complete -printf '%T@ %h\n' 2>/dev/null |
		sort -n | tail -n 1 | cut -d' ' -f2-)
	[[ -n $entry ]] && echo "$entry"
}

aptUpdate() {
	local sudo=()
	[[ $(id -u) -eq 0 ]] || sudo=(sudo)
	echo "kvm-host: apt-get update (to find Debian's kernel package)" >&2
	timeout "$timeout_s" "${sudo[@]}" apt-get update -qq >&2 || die "apt-get update failed (no network?)"
}

updated=0
if ! answer=$(askApt); then
	# apt does not know the kernel package: a cached kernel is good enough, no network needed.
	if entry=$(newestCached); then
		echo "$entry"
		exit 0
	fi
	aptUpdate
	updated=1
	answer=$(askApt) || die "apt does not know which image package linux-image-amd64 depends on"
fi
read -r pkg ver <<<"$answer"
entry=$cache/${pkg}_$ver
if [[ -f $entry/complete ]]; then
	echo "$entry"
	exit 0
fi

scratch=$(mktemp -d "$cache/.fetch.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
download() {
	# Run as root from a directory _apt may not enter: say so instead of warning about it.
	(cd "$scratch" && timeout "$timeout_s" apt-get download -qq \
		-o APT::Sandbox::User=root -o Acquire::Retries=1 -o Acquire::http::Timeout=20 \
		"$pkg=$ver" >&2)
}
echo "kvm-host: downloading $pkg $ver (about 70 MB, once)" >&2
if ! download; then
	# The lists may name a version the mirror no longer has; fresh lists fix that.
	[[ $updated -eq 0 ]] || die "cannot download $pkg $ver (no network?)"
	aptUpdate
	answer=$(askApt) || die "apt does not know which image package linux-image-amd64 depends on"
	read -r pkg ver <<<"$answer"
	entry=$cache/${pkg}_$ver
	download || die "cannot download $pkg $ver (no network?)"
fi
deb=$(find "$scratch" -maxdepth 1 -name '*.deb' | head -n 1)
[[ -n $deb ]] || die "apt-get download left no .deb for $pkg"
dpkg -x "$deb" "$scratch/root" || die "dpkg -x $deb failed"

kver=${pkg#linux-image-}
vmlinuz=$scratch/root/boot/vmlinuz-$kver
moddir=$scratch/root/lib/modules/$kver
[[ -f $vmlinuz ]] || die "$pkg has no boot/vmlinuz-$kver"
[[ -d $moddir ]] || die "$pkg has no lib/modules/$kver"

stage=$scratch/entry
mkdir -p "$stage"
cp "$vmlinuz" "$stage/vmlinuz"

# QEMU can boot the uncompressed ELF kernel directly (PVH entry, CONFIG_PVH), which skips the
# XZ decompression that takes seconds under TCG. vmlinuz stays the fallback when this fails.
extractVmlinux() {
	local offset
	command -v xz >/dev/null || return 1
	offset=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$vmlinuz" | head -n 1 | cut -d: -f1) || return 1
	[[ -n $offset ]] || return 1
	tail -c "+$((offset + 1))" "$vmlinuz" | xz -dc >"$stage/vmlinux" 2>/dev/null || true
	[[ $(head -c 4 "$stage/vmlinux" | od -An -tx1 | tr -d ' \n') == 7f454c46 ]]
}
if ! extractVmlinux; then
	rm -f "$stage/vmlinux"
	echo "kvm-host: could not unpack vmlinux from vmlinuz; booting vmlinuz (slower)" >&2
fi

# The module file for a module name (names use '_' where file names may use '-').
moduleFile() {
	local pattern=${1//[-_]/[-_]}
	find "$moddir/kernel" -name "$pattern.ko" -print -quit
}
# A module's dependencies, from the depends= field of its .modinfo section (no depmod, no kmod).
moduleDepends() {
	tr '\0' '\n' <"$1" | sed -n 's/^depends=//p' | head -n 1 | tr ',' ' '
}
declare -A seen=()
order=()
# Depth-first: dependencies first, so the list is a valid insmod order.
addModule() {
	local name=${1//-/_} file dep
	[[ -z ${seen[$name]:-} ]] || return 0
	seen[$name]=1
	file=$(moduleFile "$name")
	[[ -n $file ]] || die "$pkg has no module $name"
	for dep in $(moduleDepends "$file"); do
		addModule "$dep"
	done
	cp "$file" "$stage/"
	order+=("$(basename "$file")")
}
addModule kvm_amd
printf '%s\n' "${order[@]}" >"$stage/modules.load"
echo "$pkg $ver" >"$stage/version"
touch "$stage/complete"

rm -rf "$entry"
mv "$stage" "$entry"
echo "kvm-host: cached $pkg $ver in $entry ($(du -sh "$entry" | cut -f1))" >&2
echo "$entry"
