#!/usr/bin/env python3
"""(Copied from shared/bench/make-synth.py.) Deterministic synthetic pair: synth-old.bin (given, random) -> synth-new.bin with
scattered edits. Usage: make-synth.py OLD NEW [seed]"""
import random, sys
old_path, new_path = sys.argv[1], sys.argv[2]
seed = int(sys.argv[3]) if len(sys.argv) > 3 else 20250101
rng = random.Random(seed)
data = open(old_path, 'rb').read()
n = len(data)
# 2000 scattered edits: 1/3 overwrite, 1/3 insert, 1/3 delete, each 1..16384 bytes
edits = []
for _ in range(2000):
    pos = rng.randrange(0, n)
    kind = rng.choice(('over', 'ins', 'del'))
    ln = rng.randint(1, 16384)
    edits.append((pos, kind, ln))
# plus one 64 MiB region replaced by fresh random data, and one 32 MiB region moved to the end
big_pos = n // 3
edits.append((big_pos, 'over', 64 << 20))
edits.sort()
out = open(new_path, 'wb')
cur = 0
moved = None
mv_start, mv_len = (2 * n) // 3, 32 << 20
for pos, kind, ln in edits:
    if pos < cur:
        continue
    if mv_start >= cur and mv_start < pos and moved is None:
        out.write(data[cur:mv_start]); moved = data[mv_start:mv_start + mv_len]; cur = mv_start + mv_len
        if pos < cur:
            continue
    out.write(data[cur:pos])
    if kind == 'over':
        out.write(rng.randbytes(ln)); cur = min(n, pos + ln)
    elif kind == 'ins':
        out.write(rng.randbytes(ln)); cur = pos
    else:
        cur = min(n, pos + ln)
out.write(data[cur:])
if moved is not None:
    out.write(moved)
out.close()
