"""Writes a static x86-64 ELF that exits 0 at the path given: a command the start check can follow on scratch."""
import os
import struct
import sys

code = bytes([0xB8, 60, 0, 0, 0, 0x31, 0xFF, 0x0F, 0x05])  # mov eax, 60; xor edi, edi; syscall
base, start = 0x400000, 64 + 56
elf = b"\x7fELF\x02\x01\x01" + bytes(9)
elf += struct.pack("<HHIQQQIHHHHHH", 2, 0x3E, 1, base + start, 64, 0, 0, 64, 56, 1, 0, 0, 0)
elf += struct.pack("<IIQQQQQQ", 1, 5, 0, base, base, start + len(code), start + len(code), 0x1000)
with open(sys.argv[1], "wb") as f:
    f.write(elf + code)
os.chmod(sys.argv[1], 0o755)
