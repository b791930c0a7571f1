#!/usr/bin/env python3
"""The synthetic app of the benches: python3 benches/gen_app.py DIR SIZE_MB.

benches/build.sh and benches/cache.sh both generate it here (same seed,
same marker file), so either may generate it and the other reuses it: SIZE_MB in
about 20,000 files under lib/python3.11/site-packages, half compressible
text and half random bytes, half the bytes in 10 large files.
"""
import os, random, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dist_info import write_dist_info
root, size_mb = sys.argv[1], int(sys.argv[2])
rng = random.Random(20261121)
total = size_mb * 1024 * 1024
large_share = total // 2            # half the bytes in 10 large files
small_files = 19_990
small_avg = (total - large_share) // small_files
words = [bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9))) for _ in range(5000)]
def text(n):
    out = bytearray()
    while len(out) < n:
        out += b" ".join(rng.choice(words) for _ in range(12)) + b"\n"
    return bytes(out[:n])
def noise(n):
    return rng.randbytes(n)
lib = os.path.join(root, "library")
# Packages under site-packages, each with pip's dist-info (benches/dist_info.py).
site = os.path.join(lib, "lib", "python3.11", "site-packages")
packages = {}
for i in range(small_files):
    name = f"pkg{i % 40:02d}"
    rel = os.path.join(name, f"mod{i % 7}", f"f{i:05d}.{'py' if i % 2 else 'bin'}")
    os.makedirs(os.path.dirname(os.path.join(site, rel)), exist_ok=True)
    n = max(1, int(rng.expovariate(1 / small_avg)))
    with open(os.path.join(site, rel), "wb") as f:
        f.write(text(n) if i % 2 else noise(n))
    packages.setdefault(name, []).append(rel)
for i in range(10):
    rel = os.path.join(f"pkg{i:02d}", f"large{i}.dat")
    with open(os.path.join(site, rel), "wb") as f:
        chunk = large_share // 10
        f.write(text(chunk) if i % 2 else noise(chunk))
    packages[f"pkg{i:02d}"].append(rel)
for name, files in packages.items():
    write_dist_info(site, name, files)
os.makedirs(os.path.join(root, "workspace"), exist_ok=True)
with open(os.path.join(root, "workspace", "notebook.ipynb"), "w") as f:
    f.write('{"cells": []}\n')
with open(os.path.join(root, "stowage.toml"), "w") as f:
    f.write('base = "scratch"\n[app]\nlibrary = { source = "library", target = "/opt/app" }\n'
            'workspace = { source = "workspace", target = "/home/user/work" }\ncommand = ["/opt/app/run"]\n')
open(os.path.join(root, f".generated-v3-{size_mb}"), "w").close()
