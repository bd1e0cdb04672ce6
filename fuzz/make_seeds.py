#!/usr/bin/env python3
"""Build the seed corpora in fuzz/seeds/<target>/ from the repo's test data
(crates/spb-alloc/tests/data/*) and, when present, slices of the reference kpageflags dumps
(/work/shared/traces/*/before/kpageflags.zst); trace, scenario and .dat seeds from
crates/spb-lab; the inputs that once crashed a target from fuzz/regressions/<target>/.
Deterministic; run from anywhere."""
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
# trace_parse: mode byte (bit 0: fixed small layout, bit 1: strict), then a trace. Lines from the
# trace-parser test data (crates/spb-lab/tests/data), re-pointed into the fixed layout's
# pfns for the layout modes, plus hand-made bad lines and compressed forms.
lab_data = os.path.join(here, "..", "crates", "spb-lab", "tests", "data")
variants = open(os.path.join(lab_data, "variants.txt"), "rb").read()
excerpt = subprocess.run(["zstd", "-q", "-d", "-c", os.path.join(lab_data, "build-excerpt.txt.zst")],
                         stdout=subprocess.PIPE, check=True).stdout.split(b"\n")[:300]
excerpt = b"\n".join(excerpt) + b"\n"
ctx = b"            bash-1000    [000] .....   "
small = b"".join(ctx + b"%d.%06d: mm_page_alloc: pfn=%#x order=%d migratetype=1 gfp_flags=GFP_KERNEL\n" % (1, i, 0x1000 + 8 * i, i % 4) for i in range(40))
small += b"".join(ctx + b"%d.%06d: mm_page_free: pfn=%#x order=%d\n" % (2, i, 0x1000 + 8 * i, i % 4) for i in range(0, 40, 3))
bad = (ctx + b"3.000000: mm_page_free: pfn=0x1000 order=0\n"            # double free
       + ctx + b"3.000001: mm_page_alloc: pfn=0x1000 order=20 migratetype=1 gfp_flags=GFP_KERNEL\n"
       + ctx + b"3.000002: mm_page_alloc: pfn=0xfffffffffffffff0 order=4 migratetype=1 gfp_flags=GFP_KERNEL\n"
       + ctx + b"3.000003: mm_page_alloc: pfn=0xZZ order=x migratetype=1 gfp_flags=GFP_BOGUS\n"
       + ctx + b"3.000004: mm_page_free: pfn=0x2100 order=0\n"            # in the fixed layout's hole
       + ctx + b"3.000005: mm_page_free: pfn=0x7000 order=9\n"            # uninitialised: a grow
       + b"random text ### 12\n")
for mode in (0, 1, 3):
    put("trace_parse", "small-m%d" % mode, bytes([mode]) + small)
    put("trace_parse", "bad-m%d" % mode, bytes([mode]) + small + bad)
put("trace_parse", "variants", b"\x00" + variants)
put("trace_parse", "excerpt", b"\x00" + excerpt)
put("trace_parse", "excerpt-zstd", b"\x00" + zstd(excerpt))
put("trace_parse", "excerpt-zstd-truncated", b"\x00" + zstd(excerpt)[:-7])
put("trace_parse", "small-gzip", b"\x00" + gzip.compress(small, mtime=0))
put("trace_parse", "small-gzip-truncated", b"\x00" + gzip.compress(small, mtime=0)[:-9])

# scenario_toml: the built-in scenarios (from builtin.rs), the example files and small hand-made ones
builtin = open(os.path.join(here, "..", "crates", "spb-lab", "src", "scenario", "builtin.rs")).read()
for i, body in enumerate(builtin.split('r#"')[1:]):
    put("scenario_toml", "builtin-%d" % i, body.split('"#')[0].encode())
# ... and the example user files (examples/scenarios/*.toml)
examples = os.path.join(here, "..", "examples", "scenarios")
for f in sorted(os.listdir(examples)):
    if f.endswith(".toml"):
        put("scenario_toml", "example-" + f[:-5], open(os.path.join(examples, f), "rb").read())
for name, text in [
    ("minimal", 'name = "x"\n'),
    ("machine", 'name = "x"\nduration = "10s"\nseed = 3\n[machine]\nmemory = "1G"\nlayout = "q35"\ncpus = 4\n'),
    ("dotted", 'name = "x"\nmachine.memory = "4K"\n'),
    ("workloads", 'name = "x"\n[[workload]]\nkind = "processes"\nrss = "10%"\n[[workload]]\nkind = "pagecache"\n'),
    ("unknown-key", 'name = "x"\n[vm]\nthp_enabled = "always"\nbogus = 1\n'),
    ("bad-toml", 'name = "x"\n[machine\n'),
]:
    put("scenario_toml", name, text.encode())
# dat_read: the lab's committed trace-cmd file, and the inputs that once crashed a target
# (fuzz/regressions/<target>/, kept by hand: this script does not make them)
lab_dat = os.path.join(here, "..", "crates", "spb-lab", "tests", "data", "dat", "small_v7.dat")
put("dat_read", "small_v7.dat", open(lab_dat, "rb").read())
regressions = os.path.join(here, "regressions")
for t in sorted(os.listdir(regressions)) if os.path.isdir(regressions) else []:
    for n in sorted(os.listdir(os.path.join(regressions, t))):
        put(t, "regression-" + n, open(os.path.join(regressions, t, n), "rb").read())

print("seeds written to", out)
