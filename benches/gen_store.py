#!/usr/bin/env python3
"""Writes a synthetic stowage store for benches/prune.sh: sparse blobs (no disk used) and content records naming them.

    gen_store.py STORE TOTAL_GIB [BLOBS]

Blob sizes vary from a few KiB to tens of MiB around TOTAL_GIB/BLOBS, like
configs and layers; each blob's atime (its last use; mtime the same) is spread over 30
days, and each has a content record, as a build leaves them. Prune reads
only metadata, so sparse files time it as real ones would.
"""
import hashlib
import os
import random
import shutil
import sys
import time

store, total_gib = sys.argv[1], float(sys.argv[2])
count = int(sys.argv[3]) if len(sys.argv) > 3 else 4000
shutil.rmtree(store, ignore_errors=True)
blobs = os.path.join(store, "blobs", "sha256")
records = os.path.join(store, "meta", "contents")
for folder in (blobs, records, os.path.join(store, "tmp")):
    os.makedirs(folder)
rng = random.Random(26)
weights = [rng.lognormvariate(0, 1.2) for _ in range(count)]
scale = total_gib * (1 << 30) / sum(weights)
now = time.time()
for n, weight in enumerate(weights):
    hexname = hashlib.sha256(f"blob {n}".encode()).hexdigest()
    size = max(512, int(weight * scale))
    path = os.path.join(blobs, hexname)
    with open(path, "wb") as blob:
        blob.truncate(size)
    used = now - rng.uniform(0, 30 * 86400)
    os.utime(path, (used, used))
    key = hashlib.sha256(f"key {n}".encode()).hexdigest()
    with open(os.path.join(records, key + ".json"), "w") as record:
        record.write(f'{{"digest":"sha256:{hexname}","size":{size}}}')
