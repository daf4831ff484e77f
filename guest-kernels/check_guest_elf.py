#!/usr/bin/env python3
"""Checks that guest ELFs use integer registers only: the VMM promises no SSE or x87 state
(CR4.OSFXSR may be clear), so one compiler-generated vector move would fault, and with no IDT a
fault is a triple fault. Disassembles with objdump and fails on any SSE/AVX/MMX/x87 use.

Usage: check_guest_elf.py OBJDUMP ELF...
"""

import re
import subprocess
import sys

VECTOR_REGISTER = re.compile(r'%([xyz]mm\d|mm\d|st\b)')
# x87 mnemonics (and fxsave/fxrstor) all start with 'f'; no integer mnemonic does.
FORBIDDEN_MNEMONIC = re.compile(r'^(f[a-z0-9]*|[ls]dmxcsr|emms)$')


def uses_fpu(instruction):
    words = instruction.split()
    # Skip prefixes such as "rep", "lock", "cs", "data16" to reach the mnemonic.
    while words and words[0] in ('rep', 'repz', 'repnz', 'lock', 'cs', 'ds', 'data16', 'notrack'):
        words = words[1:]
    if not words:
        return False
    return bool(FORBIDDEN_MNEMONIC.match(words[0]) or VECTOR_REGISTER.search(' '.join(words[1:])))


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    objdump, elves = argv[1], argv[2:]
    bad = []
    for elf in elves:
        listing = subprocess.run([objdump, '-d', '--no-show-raw-insn', elf], check=True,
                                 capture_output=True, text=True).stdout
        for line in listing.splitlines():
            parts = line.split('\t', 1)
            if len(parts) == 2 and uses_fpu(parts[1]):
                bad.append(f'{elf}: {line.strip()}')
    if bad:
        print('floating-point or vector instructions in a guest:', *bad[:20], sep='\n  ')
        sys.exit(1)
    print(f'{len(elves)} guest(s) use integer registers only')


if __name__ == '__main__':
    main(sys.argv)
