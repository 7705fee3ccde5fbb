#!/usr/bin/env python3
"""Deterministic *stress* pair for the zsync benchmark: highly repetitive data, the worst case
for block matchers (thousands of target blocks with the same checksums, long zero runs in
the seed that weak-match every zero block of the target at every position).

Usage: make-stress.py OLD NEW [seed]      (~200 MiB old, ~216 MiB new)

old (200 MiB):                              new (what changes):
  40 MiB zeros                                a 1-byte marker in the middle (zero runs misaligned)
  24 MiB random R1                            50 small overwrites/inserts/deletes
  32 MiB of one 4 KiB random unit U1 x 8192   every 97th copy is another unit U2; 1000 bytes
                                              inserted halfway (the rest shifted off block grid)
  24 MiB of one 57-byte text line repeated    7 bytes inserted at the start; one word changed
                                              every ~1 MiB
  32 MiB "sparse image": zeros with a 512-    the chunks moved by 12305 bytes
         byte random chunk every MiB
  16 MiB random R2                            unchanged
  32 MiB zeros                                unchanged, then 16 MiB of new random data appended
"""
import random
import sys

MiB = 1 << 20
old_path, new_path = sys.argv[1], sys.argv[2]
rng = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 20250505)

U1 = rng.randbytes(4096)
U2 = rng.randbytes(4096)
LINE = b"The quick brown fox jumps over the lazy dog; 0123456789.\n"  # 57 bytes
assert len(LINE) == 57
R1 = rng.randbytes(24 * MiB)
R2 = rng.randbytes(16 * MiB)


def repeat_to(unit, size):
    return (unit * (size // len(unit) + 1))[:size]


def sparse(size, shift):
    buf = bytearray(size)
    crng = random.Random(4242)  # same chunks in old and new, only their positions move
    for pos in range(0, size - 512 - shift, MiB):
        buf[pos + shift:pos + shift + 512] = crng.randbytes(512)
    return bytes(buf)


def edit(data, n_edits):
    data = bytearray(data)
    for _ in range(n_edits):
        pos = rng.randrange(len(data))
        ln = rng.randint(1, 4096)
        kind = rng.choice(("over", "ins", "del"))
        if kind == "over":
            data[pos:pos + ln] = rng.randbytes(min(ln, len(data) - pos))
        elif kind == "ins":
            data[pos:pos] = rng.randbytes(ln)
        else:
            del data[pos:pos + ln]
    return bytes(data)


with open(old_path, "wb") as f:
    f.write(bytes(40 * MiB))
    f.write(R1)
    f.write(U1 * 8192)
    f.write(repeat_to(LINE, 24 * MiB))
    f.write(sparse(32 * MiB, 0))
    f.write(R2)
    f.write(bytes(32 * MiB))

with open(new_path, "wb") as f:
    f.write(bytes(20 * MiB) + b"\x01" + bytes(20 * MiB))
    f.write(edit(R1, 50))
    units = [U2 if i % 97 == 96 else U1 for i in range(8192)]
    f.write(b"".join(units[:4096]) + rng.randbytes(1000) + b"".join(units[4096:]))
    text = bytearray(b"INSERT!" + repeat_to(LINE, 24 * MiB))
    for pos in range(0, len(text) - 64, MiB):
        i = text.find(b"lazy", pos)
        text[i:i + 4] = b"LAZY"
    f.write(bytes(text))
    f.write(sparse(32 * MiB, 12305))
    f.write(R2)
    f.write(bytes(32 * MiB))
    f.write(rng.randbytes(16 * MiB))
