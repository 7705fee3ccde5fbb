#!/usr/bin/env python3
"""Batch driver for the differential tests: one Python process answers many cases.

Usage: batch.py make DIR     — for each DIR/<case>/input with DIR/<case>/args (JSON:
                                {"b": B, "f": NAME, "u": [URL...]}), write DIR/<case>/expected.zsync
       batch.py ranges DIR   — for each DIR/<case>/{t.zsync,seed}, write DIR/<case>/expected.json
"""
import json, os, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zsref, zsranges_model as M

mode, root = sys.argv[1], sys.argv[2]
for case in sorted(os.listdir(root)):
    d = os.path.join(root, case)
    if mode == 'make':
        data = open(os.path.join(d, 'input'), 'rb').read()
        a = json.load(open(os.path.join(d, 'args')))
        hl = zsref.hash_lengths_zsync3(len(data), a['b'])
        out = zsref.make(data, a['b'], hl, a['f'], None, a['u'], None)
        open(os.path.join(d, 'expected.zsync'), 'wb').write(out)
    else:
        zs = open(os.path.join(d, 't.zsync'), 'rb').read()
        seed = open(os.path.join(d, 'seed'), 'rb').read()
        open(os.path.join(d, 'expected.json'), 'w').write(M.ranges(M.parse(zs), seed))
