//! The starting state from a `/proc/kpageflags` (+ `/proc/kpagecount`) dump: which pages were in
//! use when the trace started, with what mobility, and the pageblock labels.
//!
//! Mobility from the flags: BUDDY → free; LRU/ANON/SWAPBACKED/... → movable; SLAB → unmovable,
//! or reclaimable when its pageblock is labelled Reclaimable; PGTABLE → unmovable; RESERVED →
//! already reserved in the layout (a RESERVED page in memory the layout calls managed is kept as
//! unmovable kernel memory); flags 0 inside managed memory (vmalloc, kernel stacks, the trace ring
//! buffer, per-CPU-list pages) → unmovable kernel memory; flags 0 inside memory the layout calls
//! uninitialised (zoneinfo's `managed` count tells how much is initialised) → not present yet.
//! Compound pages (COMPOUND_HEAD + TAILs of a power-of-two length, naturally aligned) become one
//! block of that order; everything else is order 0.
//!
//! The per-pfn working state is the replay's one encoding (`pfnmap`, the decode pass's
//! shadow): state bytes (`S_HEAD | order`, `S_TAIL`, `S_RESERVED`, ...) and flags bytes (the
//! migratetype bits, `F_SLAB`).
//!
//! Pageblock labels: kpageflags has none. With the snapshot's `pagetypeinfo` ("Number of blocks
//! type"), each zone gets exactly the kernel's number of Unmovable and Reclaimable pageblocks:
//! the pageblocks holding the most non-movable pages are labelled non-movable, and among them the
//! ones with the most slab pages Reclaimable. Without it, a pageblock is Unmovable when
//! non-movable pages outnumber movable ones.

use std::collections::BTreeMap;
use std::path::Path;

use spb_alloc::layout::MemoryLayout;
use spb_alloc::MigrateType;

use super::pfnmap::{
    mt_bits, mt_of, shadow_for, F_COMPOUND, F_SLAB, S_FREE, S_HEAD, S_RESERVED, S_TAIL,
};
use super::ReplayError;
use crate::kpageflags::{classify, kpf, KpageReader, PageClass};

/// The prefill: blocks in use and pageblock labels.
#[derive(Clone, Debug, Default)]
pub struct PrefillPlan {
    /// `(pfn, order, migratetype)` of every block in use.
    pub blocks: Vec<(u64, u8, MigrateType)>,
    /// `(first pfn of a pageblock, migratetype)` for pageblocks not labelled Movable.
    pub pageblock_types: Vec<(u64, u8)>,
    /// Pages by class (`movable`, `slab`, `pgtable`, `kernel`, `reserved_in_managed`, ...).
    pub pages: BTreeMap<String, u64>,
}

/// "Number of blocks type" of a pagetypeinfo file: zone name → type name → count.
pub fn parse_block_counts(text: &str) -> BTreeMap<String, BTreeMap<String, u64>> {
    let mut out = BTreeMap::new();
    let mut header: Option<Vec<String>> = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("Number of blocks type") {
            header = Some(rest.split_whitespace().map(|s| s.to_string()).collect());
            continue;
        }
        let Some(h) = &header else { continue };
        let t = line.trim_start();
        if !t.starts_with("Node") {
            if t.is_empty() {
                continue;
            }
            header = None;
            continue;
        }
        // Node 0, zone   Normal   305  1425 ...
        let Some(zpos) = t.find("zone") else { continue };
        let rest: Vec<&str> = t[zpos + 4..].split_whitespace().collect();
        if rest.is_empty() {
            continue;
        }
        let zone = rest[0].to_string();
        let mut m = BTreeMap::new();
        for (name, v) in h.iter().zip(rest[1..].iter()) {
            if let Ok(n) = v.parse::<u64>() {
                m.insert(name.clone(), n);
            }
        }
        out.insert(zone, m);
    }
    out
}

/// The sibling kpagecount dump of a kpageflags dump (`kpageflags.zst` → `kpagecount.zst`).
pub fn sibling_count_path(flags: &Path) -> Option<std::path::PathBuf> {
    let name = flags.file_name()?.to_str()?;
    if !name.contains("kpageflags") {
        return None;
    }
    let p = flags.with_file_name(name.replace("kpageflags", "kpagecount"));
    p.exists().then_some(p)
}

/// Build the prefill from a dump, in the replay's per-pfn encoding (`pfnmap`): the
/// layout's initial state (managed pages `S_FREE`, reservations `S_RESERVED`), every page in
/// use marked with its migratetype (and `F_SLAB`), compound pages formed into blocks.
/// `block_counts` are the snapshot's pagetypeinfo block counts, if known.
pub fn plan_prefill(
    flags_path: &Path,
    count_path: Option<&Path>,
    layout: &MemoryLayout,
    block_counts: Option<&BTreeMap<String, BTreeMap<String, u64>>>,
    max_order: u8,
) -> Result<PrefillPlan, ReplayError> {
    let mut state = shadow_for(layout);
    let end = state.len();
    let mut flags = vec![0u8; end];
    let kerr = |e: crate::kpageflags::KpageError| match e.kind {
        crate::kpageflags::KpageErrorKind::Open => ReplayError::Io(e.to_string()),
        _ => ReplayError::Input(e.to_string()),
    };
    let mut r = KpageReader::open(flags_path, count_path).map_err(kerr)?;
    let mut plan = PrefillPlan::default();
    let add = |k: &str, plan: &mut PrefillPlan| *plan.pages.entry(k.to_string()).or_default() += 1;
    let mut covered = 0usize;
    while let Some(e) = r.next_entry().map_err(kerr)? {
        let i = e.pfn as usize;
        if i >= end {
            covered = end;
            break;
        }
        covered = i + 1;
        // reservations stay S_RESERVED (they count for the pageblock labels); uninitialised
        // memory and holes hold nothing
        if state[i] != S_FREE {
            continue;
        }
        let (name, mt, slab) = match classify(e.flags, e.count.unwrap_or(0)) {
            PageClass::Free | PageClass::Hole => {
                add("free", &mut plan);
                continue;
            }
            PageClass::Movable | PageClass::HugeTlb => ("movable", MigrateType::Movable, false),
            PageClass::Slab { .. } => ("slab", MigrateType::Unmovable, true),
            PageClass::PageTable => ("pgtable", MigrateType::Unmovable, false),
            PageClass::Reserved => ("reserved_in_managed", MigrateType::Unmovable, false),
            PageClass::KernelOther | PageClass::Uninit | PageClass::Offline => {
                ("kernel", MigrateType::Unmovable, false)
            }
        };
        add(name, &mut plan);
        let head = kpf::has(e.flags, kpf::COMPOUND_HEAD);
        state[i] = if !head && kpf::has(e.flags, kpf::COMPOUND_TAIL) {
            S_TAIL
        } else {
            S_HEAD
        };
        flags[i] =
            mt_bits(mt as u8) | if slab { F_SLAB } else { 0 } | if head { F_COMPOUND } else { 0 };
    }
    if covered < end {
        // /proc/kpageflags has one entry per pfn up to max_pfn, the end of the last zone
        return Err(ReplayError::Input(format!(
            "{}: {covered} entries ({} bytes), but the zoneinfo's zones end at pfn {end:#x}: expected one 8-byte entry per pfn up to there (a truncated dump, or the zoneinfo of another machine?)",
            flags_path.display(),
            covered * 8
        )));
    }
    let in_use = |s: u8| s == S_TAIL || s & S_HEAD != 0;
    // pageblock labels
    let pbo = layout.geometry.pageblock_order as u32;
    let pbp = 1usize << pbo;
    let mut labels: BTreeMap<u64, u8> = BTreeMap::new();
    for z in &layout.zones {
        let first = z.span.start as usize / pbp;
        let last = (z.span.end as usize).div_ceil(pbp).min(end.div_ceil(pbp));
        // (nonmovable, slab, movable, pb index)
        let mut cand: Vec<(u64, u64, u64, usize)> = Vec::new();
        for pb in first..last {
            let (mut nm, mut slab, mut mv) = (0u64, 0u64, 0u64);
            let lo = (pb * pbp).max(z.span.start as usize);
            let hi = ((pb + 1) * pbp).min(end).min(z.span.end as usize);
            for p in lo..hi {
                let s = state[p];
                if s == S_RESERVED {
                    // the memmap stand-in of a deferred-init zone is uninitialised memory
                    if z.uninit.is_empty() {
                        nm += 1;
                    }
                } else if in_use(s) {
                    if mt_of(flags[p]) == MigrateType::Movable as u8 {
                        mv += 1;
                    } else {
                        nm += 1;
                        slab += (flags[p] & F_SLAB != 0) as u64;
                    }
                }
            }
            if nm > 0 {
                cand.push((nm, slab, mv, pb));
            }
        }
        let counts = block_counts.and_then(|b| b.get(z.kind.name()));
        match counts {
            Some(m) => {
                let nu = m.get("Unmovable").copied().unwrap_or(0) as usize;
                let nr = m.get("Reclaimable").copied().unwrap_or(0) as usize;
                cand.sort_by(|a, b| b.0.cmp(&a.0).then(a.3.cmp(&b.3)));
                cand.truncate(nu + nr);
                let mut by_slab = cand.clone();
                by_slab.sort_by(|a, b| b.1.cmp(&a.1).then(a.3.cmp(&b.3)));
                for (k, c) in by_slab.iter().enumerate() {
                    let mt = if k < nr && c.1 > 0 {
                        MigrateType::Reclaimable
                    } else {
                        MigrateType::Unmovable
                    };
                    labels.insert((c.3 as u64) << pbo, mt as u8);
                }
            }
            None => {
                for c in &cand {
                    if c.0 > c.2 {
                        labels.insert((c.3 as u64) << pbo, MigrateType::Unmovable as u8);
                    }
                }
            }
        }
    }
    plan.pageblock_types = labels.iter().map(|(&p, &m)| (p, m)).collect();
    // blocks: compound heads with their tails, everything else in use as order 0
    let block_mt = |f: u8, pfn: usize| -> MigrateType {
        if mt_of(f) == MigrateType::Movable as u8 {
            MigrateType::Movable
        } else if f & F_SLAB != 0
            && labels.get(&(((pfn as u64) >> pbo) << pbo))
                == Some(&(MigrateType::Reclaimable as u8))
        {
            MigrateType::Reclaimable
        } else {
            MigrateType::Unmovable
        }
    };
    let mut i = 0usize;
    while i < end {
        let s = state[i];
        if !in_use(s) {
            i += 1;
            continue;
        }
        if s & S_HEAD != 0 && flags[i] & F_COMPOUND != 0 {
            let mut j = i + 1;
            while j < end && state[j] == S_TAIL && j - i < (1 << max_order) + 1 {
                j += 1;
            }
            let len = j - i;
            if len > 1 && len.is_power_of_two() && i.is_multiple_of(len) && len <= 1 << max_order {
                let order = len.trailing_zeros() as u8;
                state[i] = S_HEAD | order;
                plan.blocks.push((i as u64, order, block_mt(flags[i], i)));
                i = j;
                continue;
            }
        }
        state[i] = S_HEAD;
        plan.blocks.push((i as u64, 0, block_mt(flags[i], i)));
        i += 1;
    }
    Ok(plan)
}
