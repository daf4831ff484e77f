#!/usr/bin/env python3
"""Copy qemu-system-x86_64 into a binary whose TCG advertises the SVM pause filter.

    patch-qemu.py SOURCE DESTINATION

kvm_amd intercepts PAUSE only when CPUID 0x8000000A EDX advertises the pause filter (bit 10,
and bit 12 for its threshold); otherwise it runs every VM with PAUSE passed through, and no PAUSE
exit can ever be observed in the emulated host. QEMU 7.2's TCG honours the PAUSE intercept
(helper_pause checks SVM_EXIT_PAUSE) but leaves both bits out of its TCG SVM feature mask, so
`-cpu ...,+pause-filter` is dropped with a warning. The mask is one 64-bit word of QEMU's
FeatureWordInfo table, right after the entry's CPUID description
    { .eax = 0x8000000A, .needs_ecx = false, .ecx = 0, .reg = R_EDX }
so the copy has that word or'ed with both bits.

The pattern must match exactly once; anything else (another QEMU build, a layout change) makes
the script refuse with exit status 2 and leave no destination file, and the caller then runs the
stock QEMU without PAUSE exits.
"""
import os
import struct
import sys

PAUSE_FILTER = 1 << 10
PF_THRESHOLD = 1 << 12
SVM_NPT = 1 << 0
R_EDX = 2

# struct { uint32_t eax; bool needs_ecx (padded to 4); uint32_t ecx; int reg; } of FEAT_SVM
CPUID_KEY = struct.pack('<IIII', 0x8000000A, 0, 0, R_EDX)


def find_tcg_svm_mask(image):
    """Offsets of words after CPUID_KEY that look like TCG_SVM_FEATURES (NPT set, 32-bit)."""
    hits = []
    at = image.find(CPUID_KEY)
    while at != -1:
        offset = at + len(CPUID_KEY)
        if offset + 8 <= len(image):
            (mask,) = struct.unpack_from('<Q', image, offset)
            if mask & SVM_NPT and mask < (1 << 32):
                hits.append((offset, mask))
        at = image.find(CPUID_KEY, at + 1)
    return hits


def main(argv):
    if len(argv) != 3:
        print('usage: patch-qemu.py SOURCE DESTINATION', file=sys.stderr)
        return 1
    source, destination = argv[1], argv[2]
    with open(source, 'rb') as f:
        image = bytearray(f.read())
    hits = find_tcg_svm_mask(image)
    if len(hits) != 1:
        print(f'patch-qemu: {source}: expected exactly one TCG SVM feature mask, found '
              f'{len(hits)} ({", ".join(f"{o:#x}" for o, _ in hits) or "none"}); '
              'not patching', file=sys.stderr)
        return 2
    offset, mask = hits[0]
    patched = mask | PAUSE_FILTER | PF_THRESHOLD
    struct.pack_into('<Q', image, offset, patched)
    # Write next to the destination and rename, so a crash never leaves a half-written binary.
    partial = destination + '.partial'
    with open(partial, 'wb') as f:
        f.write(image)
    os.chmod(partial, 0o755)
    os.replace(partial, destination)
    print(f'patch-qemu: {destination}: TCG SVM features at {offset:#x}: {mask:#x} -> {patched:#x}')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
