#!/usr/bin/env python3
"""Build the seed corpora in fuzz/seeds/<target>/ from the repo's test data
(crates/spb-alloc/tests/data/*) and, when present, slices of the reference kpageflags dumps
(/work/shared/traces/*/before/kpageflags.zst). Deterministic; run from anywhere."""
import gzip, os, random, shutil, struct, subprocess, sys

here = os.path.dirname(os.path.abspath(__file__))
data = os.path.join(here, "..", "crates", "spb-alloc", "tests", "data")
out = os.path.join(here, "seeds")
shared = "/work/shared/traces"

def put(target, name, blob):
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(blob)

shutil.rmtree(out, ignore_errors=True)
rng = random.Random(8)

# gfp_parse: every gfp string of the reference traces, plus edge spellings
for i, line in enumerate(open(os.path.join(data, "gfp_strings.txt"))):
    line = line.strip()
    if line and not line.startswith("#"):
        put("gfp_parse", "trace-%02d" % i, line.encode())
for i, s in enumerate(["none", "0x0", "0xffffffff", "GFP_DMA|__GFP_DMA32", "__GFP_NOLOCKDEP", "GFP_KERNEL||__GFP_COMP", "none|GFP_KERNEL", "0x"]):
    put("gfp_parse", "edge-%02d" % i, s.encode())

# zoneinfo: the repo's captured zoneinfo files (and the reference traces' when present)
for n in sorted(os.listdir(data)):
    if n.startswith("zoneinfo"):
        put("zoneinfo", n, open(os.path.join(data, n), "rb").read())
if os.path.isdir(shared):
    for t in sorted(os.listdir(shared)):
        for when in ("before", "after"):
            p = os.path.join(shared, t, when, "zoneinfo")
            if os.path.exists(p):
                put("zoneinfo", "%s-%s" % (t, when), open(p, "rb").read())

# alloc_ops: a header per (layout, policy) and random operation bytes
for layout in range(6):
    for policy in range(3):
        body = bytes(rng.randrange(256) for _ in range(600))
        put("alloc_ops", "l%d-p%d" % (layout, policy), bytes([layout, policy]) + body)

# kpageflags: mode byte (bit 0: with kpagecount, bit 1: census, bit 7: census with layout),
# then plain / gzip / zstd dumps
def zstd(blob):
    return subprocess.run(["zstd", "-q", "-c", "-3"], input=blob, stdout=subprocess.PIPE, check=True).stdout

def slice_of(path, pfn, n):
    raw = subprocess.run(["zstd", "-q", "-d", "-c", path], stdout=subprocess.PIPE, check=True).stdout
    return raw[8 * pfn: 8 * (pfn + n)]

words = [1 << 10, 1 << 10, (1 << 5) | (1 << 12), 1 << 7, 1 << 20, 0, 1 << 32, (1 << 15) | (1 << 22)] * 32
flags = b"".join(struct.pack("<Q", w) for w in words)
counts = b"".join(struct.pack("<Q", rng.randrange(3)) for _ in words)
if os.path.isdir(shared):
    f = os.path.join(shared, "build", "before", "kpageflags.zst")
    c = os.path.join(shared, "build", "before", "kpagecount.zst")
    if os.path.exists(f) and os.path.exists(c):
        flags = slice_of(f, 0x100000 - 64, 256)
        counts = slice_of(c, 0x100000 - 64, 256)
split = struct.pack("<H", len(flags))
put("kpageflags", "plain", b"\x00" + flags)
put("kpageflags", "plain-census", b"\x02" + flags)
put("kpageflags", "plain-census-layout", b"\x82" + flags)
put("kpageflags", "gzip", b"\x00" + gzip.compress(flags, mtime=0))
put("kpageflags", "zstd", b"\x00" + zstd(flags))
put("kpageflags", "zstd-census", b"\x1a" + zstd(flags))
put("kpageflags", "plain-with-count", b"\x01" + split + flags + counts)
put("kpageflags", "truncated", b"\x00" + flags[:-3])
put("kpageflags", "zstd-truncated", b"\x00" + zstd(flags)[:-5])
print("seeds written to", out)
