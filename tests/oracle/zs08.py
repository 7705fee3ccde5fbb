#!/usr/bin/env python3
"""Write a zsync 0.8-style control file (as upstream's Go zsyncmake does) using Python's
hashlib, independently of zsync3: Safe, Strong-Hash-Algorithm, File-Hash: SHA-256.

Usage: zs08.py FILE BLOCKSIZE ALGORITHM(MD4|MD5|SHA-224) URL [HASH_LENGTHS|-] > out.zsync
HASH_LENGTHS "-" omits the header (the reader then assumes rsum 4 and the full digest).
"""
import hashlib, os, struct, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from zsref import md4, rsum

path, bs, alg, url = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
hl = sys.argv[5] if len(sys.argv) > 5 else '-'
data = open(path, 'rb').read()
digest = {'MD4': md4, 'MD5': lambda b: hashlib.md5(b).digest(),
          'SHA-224': lambda b: hashlib.sha224(b).digest()}[alg]
full = len(digest(b''))
seq, rb, cb = (1, 4, full) if hl == '-' else tuple(int(x) for x in hl.split(','))
out = bytearray(b'zsync: 0.8.0\n')
out += b'Filename: %s\n' % os.path.basename(path).encode()
out += b'Blocksize: %d\nLength: %d\n' % (bs, len(data))
out += b'Safe: File-Hash%s\n' % (b',Strong-Hash-Algorithm' if alg == 'MD4' else b'')
if hl != '-':
    out += b'Hash-Lengths: %d,%d,%d\n' % (seq, rb, cb)
out += b'Strong-Hash-Algorithm: %s\n' % alg.encode()
out += b'File-Hash: SHA-256:%s\n' % hashlib.sha256(data).hexdigest().encode()
out += b'URL: %s\n\n' % url.encode()
for off in range(0, len(data), bs):
    blk = data[off:off + bs]
    blk += b'\0' * (bs - len(blk))
    out += struct.pack('>HH', *rsum(blk))[4 - rb:] + digest(blk)[:cb]
sys.stdout.buffer.write(bytes(out))
