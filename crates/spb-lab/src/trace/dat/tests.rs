//! A synthetic trace-cmd file writer (v6 and v7, zstd or not) built from the real event formats
//! of the shared from-boot capture (`tests/data/dat/*.format`), and the reader's tests.

use super::*;

const ALLOC_FMT: &str = include_str!("../../../tests/data/dat/mm_page_alloc.format");
const FREE_FMT: &str = include_str!("../../../tests/data/dat/mm_page_free.format");
const ZL_FMT: &str = include_str!("../../../tests/data/dat/mm_page_alloc_zone_locked.format");
const EXTFRAG_FMT: &str = include_str!("../../../tests/data/dat/mm_page_alloc_extfrag.format");
const PRINT_FMT: &str = include_str!("../../../tests/data/dat/print.format");
const HEADER_PAGE: &str = include_str!("../../../tests/data/dat/header_page.txt");
const HEADER_EVENT: &str = include_str!("../../../tests/data/dat/header_event.txt");

pub const ID_ALLOC: u16 = 621;
pub const ID_FREE: u16 = 623;
pub const ID_ZL: u16 = 620;
pub const ID_EXTFRAG: u16 = 618;
pub const ID_PRINT: u16 = 5;
/// GFP_KERNEL on 6.12 (__GFP_IO | __GFP_FS | __GFP_RECLAIM) and GFP_HIGHUSER_MOVABLE|__GFP_COMP.
pub const GFP_KERNEL: u64 = (1 << 6) | (1 << 7) | (1 << 10) | (1 << 11);
pub const GFP_HIGHUSER_MOVABLE_COMP: u64 = GFP_KERNEL | (1 << 20) | (1 << 1) | (1 << 3) | (1 << 18);

fn common(id: u16, pid: i32, len: usize) -> Vec<u8> {
    let mut r = vec![0u8; len];
    r[0..2].copy_from_slice(&id.to_le_bytes());
    r[4..8].copy_from_slice(&pid.to_le_bytes());
    r
}

pub fn rec_alloc(pid: i32, pfn: u64, order: u32, mt: i32, gfp: u64) -> Vec<u8> {
    let mut r = common(ID_ALLOC, pid, 36);
    r[8..16].copy_from_slice(&pfn.to_le_bytes());
    r[16..20].copy_from_slice(&order.to_le_bytes());
    r[24..32].copy_from_slice(&gfp.to_le_bytes());
    r[32..36].copy_from_slice(&mt.to_le_bytes());
    r
}

pub fn rec_free(pid: i32, pfn: u64, order: u32) -> Vec<u8> {
    let mut r = common(ID_FREE, pid, 20);
    r[8..16].copy_from_slice(&pfn.to_le_bytes());
    r[16..20].copy_from_slice(&order.to_le_bytes());
    r
}

pub fn rec_zone_locked(pid: i32, pfn: u64, order: u32, mt: i32, refill: i32) -> Vec<u8> {
    let mut r = common(ID_ZL, pid, 28);
    r[8..16].copy_from_slice(&pfn.to_le_bytes());
    r[16..20].copy_from_slice(&order.to_le_bytes());
    r[20..24].copy_from_slice(&mt.to_le_bytes());
    r[24..28].copy_from_slice(&refill.to_le_bytes());
    r
}

pub fn rec_extfrag(pfn: u64, ao: i32, fo: i32, am: i32, fm: i32, own: i32) -> Vec<u8> {
    let mut r = common(ID_EXTFRAG, 1, 36);
    r[8..16].copy_from_slice(&pfn.to_le_bytes());
    for (i, v) in [ao, fo, am, fm, own].iter().enumerate() {
        r[16 + 4 * i..20 + 4 * i].copy_from_slice(&v.to_le_bytes());
    }
    r
}

pub fn rec_print(text: &str) -> Vec<u8> {
    let mut r = common(ID_PRINT, 1, 16);
    r[8..16].copy_from_slice(&0xffff_ffff_8100_0000u64.to_le_bytes());
    r.extend_from_slice(text.as_bytes());
    r.push(b'\n');
    r.push(0);
    r
}

/// One ring-buffer page under construction.
pub struct Page {
    pub ts: u64,
    data: Vec<u8>,
    missed: Option<Option<u64>>,
}

impl Page {
    pub fn new(ts: u64) -> Page {
        Page {
            ts,
            data: Vec::new(),
            missed: None,
        }
    }
    /// Events were lost before this page (`Some(n)`: the count is stored).
    pub fn missed(mut self, n: Option<u64>) -> Page {
        self.missed = Some(n);
        self
    }
    fn hdr(&mut self, type_len: u32, delta: u32) {
        assert!(delta < (1 << 27));
        self.data
            .extend_from_slice(&(type_len | (delta << 5)).to_le_bytes());
    }
    /// An event `delta` ns after the previous one (deltas >= 2^27 get a time extend).
    pub fn event(&mut self, delta: u64, rec: &[u8]) -> &mut Page {
        let mut d = delta;
        if d >= 1 << 27 {
            self.hdr(30, (d & ((1 << 27) - 1)) as u32);
            self.data
                .extend_from_slice(&((d >> 27) as u32).to_le_bytes());
            d = 0;
        }
        let len = rec.len().div_ceil(4) * 4;
        if len <= 28 * 4 && !rec.is_empty() {
            self.hdr((len / 4) as u32, d as u32);
        } else {
            self.hdr(0, d as u32);
            self.data
                .extend_from_slice(&((rec.len() + 4) as u32).to_le_bytes());
        }
        self.data.extend_from_slice(rec);
        self.data.resize(self.data.len() + (len - rec.len()), 0);
        self
    }
    /// A discarded event (padding with a time delta): `len` bytes after its header, the length
    /// word included (the kernel's `array[0]`).
    pub fn padding(&mut self, delta: u32, len: u32) -> &mut Page {
        assert!(len >= 4 && len.is_multiple_of(4));
        self.hdr(29, delta);
        self.data.extend_from_slice(&len.to_le_bytes());
        self.data.resize(self.data.len() + len as usize - 4, 0);
        self
    }
    /// An absolute timestamp.
    pub fn absolute(&mut self, ts: u64) -> &mut Page {
        self.hdr(31, (ts & ((1 << 27) - 1)) as u32);
        self.data
            .extend_from_slice(&((ts >> 27) as u32).to_le_bytes());
        self
    }
    pub fn bytes(&self, page_size: usize) -> Vec<u8> {
        let mut p = vec![0u8; page_size];
        p[0..8].copy_from_slice(&self.ts.to_le_bytes());
        let mut commit = self.data.len() as u64;
        if let Some(n) = self.missed {
            commit |= 1 << 31;
            if let Some(n) = n {
                commit |= 1 << 30;
                let at = 16 + self.data.len();
                p[at..at + 8].copy_from_slice(&n.to_le_bytes());
            }
        }
        p[8..16].copy_from_slice(&commit.to_le_bytes());
        p[16..16 + self.data.len()].copy_from_slice(&self.data);
        // a trailing null padding event marks the unused rest (as the kernel does)
        p
    }
}

fn header_info() -> Vec<u8> {
    let hp: String = HEADER_PAGE.lines().map(|l| format!("\t{l}\n")).collect();
    let mut v = b"header_page\0".to_vec();
    v.extend_from_slice(&(hp.len() as u64).to_le_bytes());
    v.extend_from_slice(hp.as_bytes());
    v.extend_from_slice(b"header_event\0");
    v.extend_from_slice(&(HEADER_EVENT.len() as u64).to_le_bytes());
    v.extend_from_slice(HEADER_EVENT.as_bytes());
    v
}

fn ftrace_events() -> Vec<u8> {
    let mut v = 1u32.to_le_bytes().to_vec();
    v.extend_from_slice(&(PRINT_FMT.len() as u64).to_le_bytes());
    v.extend_from_slice(PRINT_FMT.as_bytes());
    v
}

fn event_formats() -> Vec<u8> {
    let mut v = 1u32.to_le_bytes().to_vec();
    v.extend_from_slice(b"kmem\0");
    let f = [ALLOC_FMT, FREE_FMT, ZL_FMT, EXTFRAG_FMT];
    v.extend_from_slice(&(f.len() as u32).to_le_bytes());
    for t in f {
        v.extend_from_slice(&(t.len() as u64).to_le_bytes());
        v.extend_from_slice(t.as_bytes());
    }
    v
}

fn cmdlines() -> Vec<u8> {
    let t = b"1 init\n154 trace-cmd\n189 sleep\n";
    let mut v = (t.len() as u64).to_le_bytes().to_vec();
    v.extend_from_slice(t);
    v
}

/// A version 7 file: `cpus[i]` = the pages of CPU i; `zstd` compresses the metadata sections and
/// the CPU data (chunks of `chunk_pages` pages).
pub fn write_v7(cpus: &[Vec<Page>], zstd_on: bool, chunk_pages: usize) -> Vec<u8> {
    const PS: usize = 4096;
    let mut f = MAGIC.to_vec();
    f.extend_from_slice(b"7\0");
    f.push(0);
    f.push(8);
    f.extend_from_slice(&(PS as u32).to_le_bytes());
    f.extend_from_slice(if zstd_on {
        b"zstd\x001.5.4\0"
    } else {
        b"none\0\0"
    });
    let opt_ptr = f.len();
    f.extend_from_slice(&0u64.to_le_bytes());
    let section = |f: &mut Vec<u8>, id: u16, body: &[u8], compress: bool| -> u64 {
        let off = f.len() as u64;
        f.extend_from_slice(&id.to_le_bytes());
        f.extend_from_slice(&(compress as u16).to_le_bytes());
        f.extend_from_slice(&0u32.to_le_bytes());
        let content = if compress {
            let c = zstd::bulk::compress(body, 3).unwrap();
            let mut v = (c.len() as u32).to_le_bytes().to_vec();
            v.extend_from_slice(&(body.len() as u32).to_le_bytes());
            v.extend_from_slice(&c);
            v
        } else {
            body.to_vec()
        };
        f.extend_from_slice(&(content.len() as u64).to_le_bytes());
        f.extend_from_slice(&content);
        off
    };
    let hi = section(&mut f, 16, &header_info(), zstd_on);
    let fe = section(&mut f, 17, &ftrace_events(), zstd_on);
    let ef = section(&mut f, 18, &event_formats(), zstd_on);
    let cl = section(&mut f, 21, &cmdlines(), zstd_on);
    // flyrecord section header, then page-aligned CPU data
    let fly = f.len() as u64;
    f.extend_from_slice(&3u16.to_le_bytes());
    f.extend_from_slice(&(zstd_on as u16).to_le_bytes());
    f.extend_from_slice(&0u32.to_le_bytes());
    let fly_size_at = f.len();
    f.extend_from_slice(&0u64.to_le_bytes());
    let mut cpu_data = Vec::new();
    for pages in cpus {
        f.resize(f.len().div_ceil(PS) * PS, 0);
        let off = f.len() as u64;
        let raw: Vec<u8> = pages.iter().flat_map(|p| p.bytes(PS)).collect();
        if zstd_on && !raw.is_empty() {
            let chunks: Vec<&[u8]> = raw.chunks(chunk_pages * PS).collect();
            f.extend_from_slice(&(chunks.len() as u32).to_le_bytes());
            for ch in chunks {
                let c = zstd::bulk::compress(ch, 3).unwrap();
                f.extend_from_slice(&(c.len() as u32).to_le_bytes());
                f.extend_from_slice(&(ch.len() as u32).to_le_bytes());
                f.extend_from_slice(&c);
            }
        } else {
            f.extend_from_slice(&raw);
        }
        cpu_data.push((off, f.len() as u64 - off));
    }
    let fly_size = f.len() as u64 - fly - 16;
    f[fly_size_at..fly_size_at + 8].copy_from_slice(&fly_size.to_le_bytes());
    // options section
    let mut o = Vec::new();
    let mut opt = |id: u16, data: &[u8]| {
        o.extend_from_slice(&id.to_le_bytes());
        o.extend_from_slice(&(data.len() as u32).to_le_bytes());
        o.extend_from_slice(data);
    };
    opt(16, &hi.to_le_bytes());
    opt(17, &fe.to_le_bytes());
    opt(18, &ef.to_le_bytes());
    opt(21, &cl.to_le_bytes());
    opt(8, &(cpus.len() as u32).to_le_bytes());
    let mut b = fly.to_le_bytes().to_vec();
    b.extend_from_slice(b"run\0local\0");
    b.extend_from_slice(&(PS as u32).to_le_bytes());
    b.extend_from_slice(&(cpus.len() as u32).to_le_bytes());
    for (i, (off, size)) in cpu_data.iter().enumerate() {
        b.extend_from_slice(&(i as u32).to_le_bytes());
        b.extend_from_slice(&off.to_le_bytes());
        b.extend_from_slice(&size.to_le_bytes());
    }
    opt(3, &b);
    opt(0, &0u64.to_le_bytes());
    let os = section(&mut f, 0, &o, false);
    f[opt_ptr..opt_ptr + 8].copy_from_slice(&os.to_le_bytes());
    f
}

/// A version 6 file (top-level buffer, uncompressed).
pub fn write_v6(cpus: &[Vec<Page>]) -> Vec<u8> {
    const PS: usize = 4096;
    let mut f = MAGIC.to_vec();
    f.extend_from_slice(b"6\0");
    f.push(0);
    f.push(8);
    f.extend_from_slice(&(PS as u32).to_le_bytes());
    f.extend_from_slice(&header_info());
    f.extend_from_slice(&ftrace_events());
    f.extend_from_slice(&event_formats());
    f.extend_from_slice(&0u32.to_le_bytes()); // kallsyms
    f.extend_from_slice(&0u32.to_le_bytes()); // printk
    f.extend_from_slice(&cmdlines());
    f.extend_from_slice(&(cpus.len() as u32).to_le_bytes());
    f.extend_from_slice(b"options  \0");
    f.extend_from_slice(&0u16.to_le_bytes());
    f.extend_from_slice(b"flyrecord\0");
    let table = f.len();
    f.resize(table + 16 * cpus.len(), 0);
    for (i, pages) in cpus.iter().enumerate() {
        f.resize(f.len().div_ceil(PS) * PS, 0);
        let off = f.len() as u64;
        for p in pages {
            f.extend_from_slice(&p.bytes(PS));
        }
        let size = f.len() as u64 - off;
        f[table + 16 * i..table + 16 * i + 8].copy_from_slice(&off.to_le_bytes());
        f[table + 16 * i + 8..table + 16 * i + 16].copy_from_slice(&size.to_le_bytes());
    }
    f
}

/// Two CPUs, interleaved timestamps, a time extend, padding, a lost-events page, a marker.
pub fn sample_cpus() -> Vec<Vec<Page>> {
    let mut c0p0 = Page::new(6_000_000_000);
    c0p0.event(10, &rec_zone_locked(154, 0x109c70, 3, 0, 1))
        .event(5, &rec_alloc(154, 0x109c70, 0, 0, GFP_KERNEL))
        .padding(7, 8)
        .event(1_000, &rec_print("PHASE stress_start"))
        .event(200_000_000, &rec_free(154, 0x109c70, 0));
    let mut c0p1 = Page::new(6_300_000_000).missed(Some(42));
    c0p1.event(
        0,
        &rec_alloc(189, 0x1053d4, 9, 1, GFP_HIGHUSER_MOVABLE_COMP),
    )
    .event(3, &rec_extfrag(0x1053d4, 0, 9, 0, 1, 1));
    let mut c1p0 = Page::new(6_000_000_007);
    c1p0.event(
        0,
        &rec_alloc(189, 0x200000, 0, 1, GFP_HIGHUSER_MOVABLE_COMP),
    )
    .absolute(6_250_000_000)
    .event(0, &rec_free(189, 0x200000, 0))
    .event(50_000_000, &rec_alloc(1, u64::MAX, 2, 0, GFP_KERNEL));
    vec![vec![c0p0, c0p1], vec![c1p0]]
}

fn tmp(name: &str, bytes: &[u8]) -> PathBuf {
    let d = std::env::temp_dir().join(format!("spb-dat-test-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    let p = d.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// All lines as text: `ts cpu name event`.
fn lines_of(path: &Path) -> Vec<String> {
    let mut r = DatReader::open(path).unwrap();
    let mut out = Vec::new();
    while let Some(l) = r.next().unwrap() {
        out.push(match l {
            Line::Event(rec) => format!(
                "{} {} {} {} {:?} {}",
                rec.ts_ns,
                rec.cpu,
                String::from_utf8_lossy(rec.comm),
                rec.name,
                rec.event,
                String::from_utf8_lossy(rec.gfp_text)
            ),
            Line::Lost { cpu, events } => format!("lost {cpu:?} {events:?}"),
            Line::Skipped(s) => format!("skipped {s}"),
        });
    }
    out
}

fn expected() -> Vec<String> {
    vec![
        "6000000007 1 sleep mm_page_alloc Alloc { pfn: Some(2097152), order: 0, migratetype: 1, gfp: GfpId(0) } GFP_HIGHUSER_MOVABLE|__GFP_COMP".to_string(),
        "6000000010 0 trace-cmd mm_page_alloc_zone_locked ZoneLocked { pfn: 1088624, order: 3, migratetype: 0, percpu_refill: true } ".to_string(),
        "6000000015 0 trace-cmd mm_page_alloc Alloc { pfn: Some(1088624), order: 0, migratetype: 0, gfp: GfpId(1) } GFP_KERNEL".to_string(),
        "6000001022 0 init print Marker(\"PHASE stress_start\") ".to_string(),
        "6200001022 0 trace-cmd mm_page_free Free { pfn: 1088624, order: 0 } ".to_string(),
        "6250000000 1 sleep mm_page_free Free { pfn: 2097152, order: 0 } ".to_string(),
        "lost Some(0) Some(42)".to_string(),
        "6300000000 0 sleep mm_page_alloc Alloc { pfn: Some(1070036), order: 9, migratetype: 1, gfp: GfpId(0) } GFP_HIGHUSER_MOVABLE|__GFP_COMP".to_string(),
        "6300000003 0 init mm_page_alloc_extfrag ExtFrag { pfn: 1070036, alloc_order: 0, fallback_order: 9, pageblock_order: 9, alloc_migratetype: 0, fallback_migratetype: 1, fragmenting: false, change_ownership: true } ".to_string(),
        "6300000000 1 init mm_page_alloc Alloc { pfn: None, order: 2, migratetype: 0, gfp: GfpId(1) } GFP_KERNEL".to_string(),
    ]
}

#[test]
fn v7_zstd_v7_plain_and_v6_read_the_same_events() {
    let cpus = sample_cpus();
    let want = expected();
    for (name, bytes) in [
        ("z.dat", write_v7(&cpus, true, 1)),
        ("n.dat", write_v7(&cpus, false, 1)),
        ("six.dat", write_v6(&cpus)),
    ] {
        let p = tmp(name, &bytes);
        let got = lines_of(&p);
        // the CPU-1 failed allocation at 6.3 s ties with CPU 0's page; lowest CPU first
        assert_eq!(got.len(), want.len(), "{name}: {got:#?}");
        let mut g = got.clone();
        let mut w = want.clone();
        g.sort();
        w.sort();
        assert_eq!(g, w, "{name}");
        // merged order: timestamps never go backwards among events
        let ts: Vec<u64> = got
            .iter()
            .filter(|l| !l.starts_with("lost"))
            .map(|l| l.split(' ').next().unwrap().parse().unwrap())
            .collect();
        assert!(ts.windows(2).all(|w| w[0] <= w[1]), "{name}: {ts:?}");
    }
}

#[test]
fn metadata_is_read() {
    let p = tmp("meta.dat", &write_v7(&sample_cpus(), true, 2));
    let d = DatFile::open(&p).unwrap();
    assert_eq!(d.version, 7);
    assert_eq!(d.compression, "zstd");
    assert_eq!(d.buffers.len(), 1);
    assert_eq!(d.buffers[0].name, "run");
    assert!(d.buffers[0].compressed);
    assert_eq!(d.events.len(), 5);
    assert_eq!(d.cmdlines.get(&154).map(|c| &**c), Some(&b"trace-cmd"[..]));
    let c = count_dat(&p).unwrap();
    assert_eq!(c["mm_page_alloc"], 4);
    assert_eq!(c["lost_events"], 42);
}

#[test]
fn committed_small_file_reads() {
    // tests/data/dat/small_v7.dat: written by `write_v7(&sample_cpus(), true, 1)` and checked
    // with `trace-cmd report` 3.1.6 (see docs/replay.md)
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/dat/small_v7.dat");
    let bytes = std::fs::read(&p).unwrap();
    assert_eq!(
        bytes,
        write_v7(&sample_cpus(), true, 1),
        "the writer still makes the committed file"
    );
    let mut got = lines_of(&p);
    let mut want = expected();
    got.sort();
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn corrupt_files_are_errors_naming_file_and_offset() {
    let good = write_v7(&sample_cpus(), true, 1);
    // bad magic
    let p = tmp("bad1.dat", b"\x17\x08\x44tracinX7\0");
    let e = DatReader::open(&p).unwrap_err();
    assert!(
        e.to_string().contains("bad1.dat") && e.to_string().contains("magic"),
        "{e}"
    );
    // version 5
    let mut b = good.clone();
    b[10] = b'5';
    let e = DatReader::open(tmp("bad2.dat", &b)).unwrap_err();
    assert!(e.to_string().contains("expected 6 or 7"), "{e}");
    // every truncation: an error or fewer events, never a panic
    for cut in (0..good.len()).step_by(97) {
        let p = tmp("cut.dat", &good[..cut]);
        if let Ok(mut r) = DatReader::open(&p) {
            loop {
                match r.next() {
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(e) => {
                        assert!(e.to_string().contains("cut.dat"), "{e}");
                        if !e.record_only {
                            break;
                        }
                    }
                }
            }
        }
    }
    // a page whose commit size exceeds the page
    let mut pages = sample_cpus();
    pages.truncate(1);
    let mut b = write_v7(&pages, false, 1);
    let d = DatFile::open(tmp("ok.dat", &b)).unwrap();
    let off = d.buffers[0].cpus[0].1 as usize;
    b[off + 8..off + 16].copy_from_slice(&5000u64.to_le_bytes());
    let mut r = DatReader::open(tmp("bad3.dat", &b));
    let e = match &mut r {
        Err(e) => e.clone(),
        Ok(r) => loop {
            match r.next() {
                Err(e) => break e,
                Ok(None) => panic!("no error"),
                Ok(_) => {}
            }
        },
    };
    assert!(e.to_string().contains("commit size 5000"), "{e}");
    assert!(e.to_string().contains(&format!("offset {off}")), "{e}");
}

/// A CPU data table whose sizes add up past 2^64 (found by the `dat_read` fuzz target: the
/// buffer choice summed them and overflowed): an error naming the file and the CPU, not a
/// panic.
#[test]
fn cpu_data_sizes_past_two_to_the_64_are_an_error() {
    let good = write_v6(&sample_cpus());
    let d = DatFile::open(tmp("sizes-ok.dat", &good)).unwrap();
    assert!(d.buffers[0].cpus.len() >= 2, "two CPUs");
    let mut b = good.clone();
    for &(_, off, size) in &d.buffers[0].cpus {
        // the table entry: offset then size, both little-endian u64
        let entry = [off.to_le_bytes(), size.to_le_bytes()].concat();
        let at = b
            .windows(16)
            .position(|w| w == entry.as_slice())
            .expect("the CPU table entry is in the file");
        b[at + 8..at + 16].copy_from_slice(&(u64::MAX - 8).to_le_bytes());
    }
    let d = DatFile::open(tmp("sizes-bad.dat", &b)).unwrap();
    assert_eq!(d.buffers[0].data_bytes(), u64::MAX, "saturated");
    let e = DatReader::open(tmp("sizes-bad.dat", &b)).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("sizes-bad.dat") && msg.contains("CPU 0") && msg.contains("past"),
        "{msg}"
    );
}

/// Regenerates tests/data/dat/small_v7.dat: `SPB_WRITE_DAT=1 cargo test -p spb-lab
/// write_committed_dat -- --ignored`.
#[test]
#[ignore]
fn write_committed_dat() {
    if std::env::var("SPB_WRITE_DAT").is_ok() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/dat/small_v7.dat");
        std::fs::write(p, write_v7(&sample_cpus(), true, 1)).unwrap();
    }
}
