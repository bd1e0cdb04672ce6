//! The built-in scenarios, written in the scenario language (`docs/scenarios.md`).

/// A built-in scenario.
pub struct Builtin {
    pub name: &'static str,
    /// One line for `spb scenarios`.
    pub summary: &'static str,
    pub toml: &'static str,
}

/// Look a built-in up.
pub fn get(name: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|b| b.name == name)
}

pub const BUILTINS: &[Builtin] = &[
    Builtin {
        name: "seed-16g",
        summary: "16 GiB i440fx VM (13 Normal SPBs), 480 s: sb-stress + UDP loopback + fork/mmap storms over a memory-filling anon/page-cache mix",
        toml: SEED_16G,
    },
    Builtin {
        name: "syzkaller-256g",
        summary: "256 GiB machine (238 Normal SPBs, 16 GiB firmware-reserved), all memory in use by churning kernel and user allocations, 1 GiB requests",
        toml: SYZKALLER_256G,
    },
    Builtin {
        name: "slab-growth",
        summary: "250 GiB machine, reclaimable slab (dentries) growing from 1.7 GB to 11.7 GB under page-cache and anon pressure",
        toml: SLAB_GROWTH,
    },
    Builtin {
        name: "thp-challenge",
        summary: "16 GiB, mmtests-style: fragment with page cache and build-like churn, then demand THPs (madvise) and 1 GiB pages",
        toml: THP_CHALLENGE,
    },
    Builtin {
        name: "pagecache-churn",
        summary: "16 GiB, streaming large-folio writes and reads keep memory full of page cache (kswapd), with small-file and dentry churn",
        toml: PAGECACHE_CHURN,
    },
];

const SEED_16G: &str = r#"
name = "seed-16g"
description = "The seed's test: a 16 GiB x86_64 VM (i440fx: 3 GiB below 4 GiB, Normal = 13 SPBs) running 480 s of sb-stress (tmpfs mount/create/unmount loops), UDP loopback and fork/mmap storms, over stress-ng-style anonymous memory (vm, mmap, malloc workers and a hog) and page-cache I/O that fill memory with a movable majority."
reference = "series patch 26: 2 tainted Normal SPBs of 13 under spb (boot baseline 1). Stock 6.12 under seed-style stress (shared/qemu run3, q35 16 GiB, 300 s): 11 of 14 Normal regions tainted, 4 x 1 GiB obtained (16 asked)."
duration = "480s"
seed = 1

[machine]
memory = "16G"
layout = "i440fx"
cpus = 2

[vm]
thp_enabled = "always"
thp_defrag = "madvise"

[boot]
unmovable = "40M"
reclaimable = "6M"
freed = 0.3

# long-lived system daemons
[[workload]]
kind = "processes"
name = "system"
count = 24
rss = "8M"
fault_rate = "32M"
threads = 3
churn = 0.05
pipe_rate = "64K"

# stress-ng --vm 2 --vm-method write64: mmap, write, munmap, again
[[workload]]
kind = "processes"
name = "vm"
count = 2
rss = "18%"
cycle = true
hold = "3s"
fault_rate = "1G"
pin = 0.002
pin_time = "1s"

# stress-ng --mmap 2: mmap/munmap churn
[[workload]]
kind = "processes"
name = "mmap"
count = 2
rss = "6%"
churn = 0.025
fault_rate = "512M"
lifetime = "60s"

# stress-ng --malloc 2: small heap churn
[[workload]]
kind = "processes"
name = "malloc"
count = 2
rss = "1%"
churn = 0.15
fault_rate = "256M"
thp = "never"

# a process keeping a large resident set (stress-ng --vm-keep --vm-populate)
[[workload]]
kind = "processes"
name = "hog"
count = 1
rss = "30%"
fault_rate = "2G"

# stress-ng --mmapfork 2: 32 children mapping memory, exiting together
[[workload]]
kind = "processes"
name = "mmapfork"
count = 2
rss = "4M"
children = 32
fork_every = "5s"
child_rss = "2M"
child_lifetime = "1s"
cow = 0.1

# stress-ng --fork 2 --fork-vm: fork storms
[[workload]]
kind = "processes"
name = "fork"
count = 2
rss = "8M"
children = 16
fork_every = "1s"
child_rss = "1M"
child_lifetime = "150ms"
cow = 0.6
pipe_rate = "1M"

# sb-stress: mount a tmpfs, create 200 dirs and 200 files plus an 8 MiB blob, unmount
[[workload]]
kind = "tmpfs"
name = "sb-stress"
workers = 2
dirs = 200
files = 200
file_size = "4K"
blob = "8M"
period = "2s"

# stress-ng --dentry 2: create/stat/unlink storms leave negative dentries behind
[[workload]]
kind = "slab"
name = "dentries"
cache = "dentry"
size = "24M"
grow_to = "160M"
churn = 0.02
in_use = 0.05

# kernel objects of sockets, files, timers (kmalloc churn)
[[workload]]
kind = "slab"
name = "kmalloc"
cache = "kmalloc-256"
size = "24M"
churn = 0.2
in_use = 1.0

# stress-ng --hdd 1 --iomix 1: file I/O through the page cache
[[workload]]
kind = "pagecache"
name = "hdd"
files = 300
file_size = "24M"
write_rate = "48M"
read_rate = "96M"
write_block = "64K"
read_order = 4
lifetime = "90s"

# stress-ng --udp 2 --sock 2 over loopback
[[workload]]
kind = "net"
name = "udp"
flows = 2
rate = 5000
size = "1K"
latency = "2ms"
burst = 16
frag = 0.5
"#;

const SYZKALLER_256G: &str = r#"
name = "syzkaller-256g"
description = "A 256 GiB machine (q35 layout; 16 GiB of it firmware-reserved at the top, so the Normal zone is 4 GiB..242 GiB = 238 SPBs) with all memory in use by churning kernel and user allocations: many short-lived processes and fork storms, socket and file churn, large anonymous and page-cache users, and 1 GiB requests while it runs."
reference = "series cover letter: < 20 of 238 Normal SPBs tainted, 50 x 1 GiB pages obtainable while it runs."
duration = "240s"
seed = 1

[machine]
memory = "256G"
layout = "q35"
firmware_reserved = "6.25%"
cpus = 4

[vm]
thp_enabled = "always"
thp_defrag = "madvise"

[boot]
unmovable = "160M"
reclaimable = "32M"
freed = 0.3

[[workload]]
kind = "processes"
name = "system"
count = 64
rss = "16M"
fault_rate = "64M"
threads = 4
churn = 0.05
pipe_rate = "128K"

# long-running test VMs / big services
[[workload]]
kind = "processes"
name = "big"
count = 6
rss = "9%"
fault_rate = "4G"
churn = 0.01
pin = 0.005
pin_time = "5s"

# fuzzing executors: churning anonymous memory
[[workload]]
kind = "processes"
name = "executors"
count = 16
rss = "0.5%"
vmalloc = "2M"
fault_rate = "1G"
lifetime = "20s"
churn = 0.5

# syz-executor fork storms
[[workload]]
kind = "processes"
name = "forks"
count = 8
rss = "32M"
children = 24
fork_every = "500ms"
child_rss = "4M"
child_lifetime = "300ms"
cow = 0.5
pipe_rate = "1M"

[[workload]]
kind = "tmpfs"
name = "mounts"
workers = 4
dirs = 100
files = 100
file_size = "8K"
blob = "4M"
period = "3s"

[[workload]]
kind = "slab"
name = "dentries"
cache = "dentry"
size = "0.1%"
grow_to = "0.4%"
churn = 0.2
in_use = 0.1

[[workload]]
kind = "slab"
name = "inodes"
cache = "inode_cache"
size = "0.05%"
grow_to = "0.2%"
churn = 0.2
in_use = 0.1

[[workload]]
kind = "slab"
name = "kmalloc"
cache = "kmalloc-512"
size = "0.1%"
churn = 0.5
in_use = 1.0

[[workload]]
kind = "slab"
name = "kmalloc-small"
cache = "kmalloc-64"
size = "0.05%"
churn = 1.0
in_use = 1.0

[[workload]]
kind = "pagecache"
name = "files"
files = 2000
file_size = "32M"
write_rate = "256M"
read_rate = "512M"
write_block = "1M"
read_order = 6
lifetime = "120s"

[[workload]]
kind = "net"
name = "sockets"
flows = 16
rate = 20000
size = "2K"
latency = "2ms"
burst = 16
frag = 0.6

[[workload]]
kind = "hugetlb"
name = "gigantic"
at = ["75%"]
count = 64
hold = "30s"
"#;

const SLAB_GROWTH: &str = r#"
name = "slab-growth"
description = "A ~250 GiB machine whose reclaimable slab (dentries and inodes) grows from about 1.7 GB to 11.7 GB while anonymous memory and page cache keep memory full, so the shrinkers run all along."
reference = "series patch 28: tainted SPBs went from 4 to 16 while slab shrinking was throttled."
duration = "300s"
seed = 1

[machine]
memory = "250G"
layout = "q35"
cpus = 4

[vm]
thp_enabled = "always"
thp_defrag = "madvise"

[boot]
unmovable = "160M"
reclaimable = "32M"

[[workload]]
kind = "processes"
name = "system"
count = 48
rss = "16M"
fault_rate = "64M"
threads = 4
churn = 0.05

[[workload]]
kind = "processes"
name = "services"
count = 8
rss = "8.5%"
fault_rate = "4G"
churn = 0.02

[[workload]]
kind = "processes"
name = "jobs"
count = 8
rss = "0.5%"
lifetime = "15s"
fault_rate = "1G"
churn = 0.2

[[workload]]
kind = "slab"
name = "dentries"
cache = "dentry"
size = "0.48%"
grow_to = "3.28%"
churn = 0.02
in_use = 0.1

[[workload]]
kind = "slab"
name = "inodes"
cache = "ext4_inode_cache"
size = "0.2%"
grow_to = "1.4%"
churn = 0.02
in_use = 0.1

[[workload]]
kind = "pagecache"
name = "files"
files = 8000
file_size = "32M"
write_rate = "512M"
read_rate = "512M"
write_block = "64K"
read_order = 4
lifetime = "120s"
"#;

const THP_CHALLENGE: &str = r#"
name = "thp-challenge"
description = "mmtests thpchallenge style on 16 GiB: a kernel-build-like churn of short compiler processes and source/object files plus a large streaming read fragment memory with page cache; from 50% of the run a madvised process demands THPs over half of RAM, and 1 GiB pages are requested at 60% and 85%."
reference = "mmtests thpchallenge (vanilla 6.10 vs freelist hygiene: THP fault failure 54% -> 39%; defrag_mode: fallbacks -75%). The series does not report this scenario."
duration = "300s"
seed = 1

[machine]
memory = "16G"
layout = "q35"
cpus = 4

[vm]
thp_enabled = "madvise"
thp_defrag = "madvise"

[[workload]]
kind = "processes"
name = "system"
count = 24
rss = "8M"
fault_rate = "32M"
threads = 3
churn = 0.05

# compilers: short-lived, a few hundred MB each, forked by make
[[workload]]
kind = "processes"
name = "cc"
count = 4
rss = "2.5%"
fault_rate = "1G"
lifetime = "4s"
churn = 0.3
pipe_rate = "2M"
stop = "50%"

[[workload]]
kind = "processes"
name = "make"
count = 2
rss = "16M"
children = 8
fork_every = "500ms"
child_rss = "8M"
child_lifetime = "300ms"
cow = 0.5
stop = "50%"

# sources read, objects written
[[workload]]
kind = "pagecache"
name = "tree"
files = 30000
file_size = "24K"
write_rate = "24M"
read_rate = "96M"
write_block = "4K"
read_order = 2

# the big streaming read that fills the page cache
[[workload]]
kind = "pagecache"
name = "stream"
files = 16
file_size = "1G"
write_rate = "96M"
read_rate = "256M"
write_block = "1M"
read_order = 8
stop = "60%"

[[workload]]
kind = "slab"
name = "dentries"
cache = "dentry"
size = "64M"
grow_to = "256M"
churn = 0.1
in_use = 0.2

# the THP-hungry phase
[[workload]]
kind = "processes"
name = "thp"
count = 2
rss = "22%"
thp = "madvise"
fault_rate = "1G"
start = "50%"
churn = 0.05

[[workload]]
kind = "hugetlb"
name = "gigantic"
at = ["60%", "85%"]
count = 8
hold = "15s"
"#;

const PAGECACHE_CHURN: &str = r#"
name = "pagecache-churn"
description = "16 GiB: dd-style streaming writes and reads of large files (large folios up to order 9) keep memory full of page cache, so kswapd evicts constantly; small-file and dentry churn and a few services run beside it."
reference = "Shape of shared/traces/pagecache (dd + cat of ~6 GiB with bs 4k..2M: folio orders 0, 1, 4, 6, 8, 9). The series does not report this scenario."
duration = "300s"
seed = 1

[machine]
memory = "16G"
layout = "q35"
cpus = 2

[vm]
thp_enabled = "madvise"
thp_defrag = "madvise"

[[workload]]
kind = "processes"
name = "system"
count = 24
rss = "8M"
fault_rate = "32M"
threads = 3
churn = 0.05
pipe_rate = "64K"

[[workload]]
kind = "processes"
name = "services"
count = 4
rss = "5%"
fault_rate = "512M"
churn = 0.05

[[workload]]
kind = "pagecache"
name = "dd-1m"
files = 24
file_size = "1G"
write_rate = "160M"
read_rate = "320M"
write_block = "1M"
read_order = 9

[[workload]]
kind = "pagecache"
name = "dd-64k"
files = 64
file_size = "128M"
write_rate = "64M"
read_rate = "128M"
write_block = "64K"
read_order = 4

[[workload]]
kind = "pagecache"
name = "small-files"
files = 20000
file_size = "16K"
write_rate = "16M"
read_rate = "32M"
write_block = "4K"
read_order = 0
lifetime = "60s"

[[workload]]
kind = "slab"
name = "dentries"
cache = "dentry"
size = "32M"
grow_to = "128M"
churn = 0.2
in_use = 0.1
"#;
