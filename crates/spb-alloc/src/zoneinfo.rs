//! Parsing `/proc/zoneinfo` into a [`MemoryLayout`].
//!
//! Only five things per zone are read: the `Node N, zone NAME` header and the `spanned`,
//! `present`, `managed` and `start_pfn:` lines. Everything else (watermarks, vmstat items,
//! pagesets, per-node stats) is skipped, so the parser works across kernel versions.
//!
//! A zoneinfo file does not say *where* inside a zone the holes and reservations are, only how
//! many pages they cover. [`MemoryLayout::from_zoneinfo`] places them with documented
//! heuristics (see there); they are exact in count and plausible in position.
#![warn(missing_docs)]

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::geometry::{Geometry, Pfn};
use crate::layout::{
    carve_bottom, carve_top, free_ranges, LayoutError, MemoryLayout, PfnRange, Reservation,
    ReserveKind, ZoneKind, ZoneSpec, BOUNCE_BUFFER_PAGES, KERNEL_IMAGE_PAGES, LEGACY_HOLE,
    STRUCT_PAGE_BYTES,
};

/// The raw numbers of one zone block of `/proc/zoneinfo`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZoneinfoZone {
    /// NUMA node from the header.
    pub node: u16,
    /// Zone name as printed (`DMA`, `DMA32`, `Normal`, `Movable`, `Device`).
    pub name: String,
    /// The zone kind, `None` for `Device` (ZONE_DEVICE is not managed by the buddy allocator).
    pub kind: Option<ZoneKind>,
    /// 1-based line number of the `Node N, zone NAME` header.
    pub line: usize,
    /// `spanned` pages.
    pub spanned: u64,
    /// `present` pages.
    pub present: u64,
    /// `managed` pages.
    pub managed: u64,
    /// `start_pfn:`; unpopulated zones may not print it (then `None`).
    pub start_pfn: Option<Pfn>,
}

fn err(line: usize, message: impl Into<String>) -> LayoutError {
    LayoutError::new(format!("line {line}"), message)
}

/// Parse the zone blocks of a `/proc/zoneinfo` text, in file order, without interpreting them.
///
/// # Errors
/// A `Node` line that is not `Node <number>, zone <name>`; an unknown zone name (anything but
/// DMA, DMA32, Normal, Movable, Device); a `spanned`/`present`/`managed`/`start_pfn:` line
/// whose value is not a decimal number, or that appears twice in one zone, or outside any
/// zone; a zone without `spanned`, `present` or `managed`; a populated zone without
/// `start_pfn:`; `present > spanned` or `managed > present`; no zone at all.
pub fn parse_zoneinfo(text: &str) -> Result<Vec<ZoneinfoZone>, LayoutError> {
    // a UTF-8 byte order mark is accepted, as TOML and the trace reader accept one
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut zones: Vec<ZoneinfoZone> = Vec::new();
    // Per current zone: which of spanned/present/managed/start_pfn were seen.
    let mut seen = [false; 4];
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let t = raw.trim();
        if let Some(rest) = t.strip_prefix("Node ") {
            if let Some(z) = zones.last() {
                check_zone(z, &seen)?;
            }
            zones.push(parse_header(rest, line)?);
            seen = [false; 4];
            continue;
        }
        let mut it = t.split_whitespace();
        let Some(key) = it.next() else { continue };
        let idx = match key {
            "spanned" => 0,
            "present" => 1,
            "managed" => 2,
            "start_pfn:" => 3,
            _ => continue,
        };
        let Some(z) = zones.last_mut() else {
            return Err(err(
                line,
                format!("`{key}` outside any zone: expected a `Node N, zone NAME` line first"),
            ));
        };
        let value = match (it.next(), it.next()) {
            (Some(v), None) => v.parse::<u64>().ok(),
            _ => None,
        };
        let Some(value) = value else {
            return Err(err(
                line,
                format!("expected `{key}` followed by one decimal number, got `{t}`"),
            ));
        };
        if seen[idx] {
            return Err(err(
                line,
                format!(
                    "`{key}` appears twice in zone {} (header on line {})",
                    z.name, z.line
                ),
            ));
        }
        seen[idx] = true;
        match idx {
            0 => z.spanned = value,
            1 => z.present = value,
            2 => z.managed = value,
            _ => z.start_pfn = Some(value),
        }
    }
    match zones.last() {
        Some(z) => check_zone(z, &seen)?,
        None => {
            return Err(LayoutError::new(
                "line 1",
                "expected at least one `Node N, zone NAME` line",
            ))
        }
    }
    Ok(zones)
}

fn parse_header(rest: &str, line: usize) -> Result<ZoneinfoZone, LayoutError> {
    let bad = || {
        err(
            line,
            format!("expected `Node <number>, zone <name>`, got `Node {rest}`"),
        )
    };
    let (node, zone) = rest.split_once(',').ok_or_else(bad)?;
    let node: u16 = node.trim().parse().map_err(|_| bad())?;
    let mut it = zone.split_whitespace();
    if it.next() != Some("zone") {
        return Err(bad());
    }
    let name = it.next().ok_or_else(bad)?;
    if it.next().is_some() {
        return Err(bad());
    }
    let kind = match ZoneKind::from_name(name) {
        Some(k) => Some(k),
        None if name == "Device" => None,
        None => {
            return Err(err(
                line,
                format!(
                    "unknown zone name `{name}`: expected DMA, DMA32, Normal, Movable or Device"
                ),
            ))
        }
    };
    Ok(ZoneinfoZone {
        node,
        name: name.into(),
        kind,
        line,
        spanned: 0,
        present: 0,
        managed: 0,
        start_pfn: None,
    })
}

fn check_zone(z: &ZoneinfoZone, seen: &[bool; 4]) -> Result<(), LayoutError> {
    for (i, key) in ["spanned", "present", "managed"].iter().enumerate() {
        if !seen[i] {
            return Err(err(
                z.line,
                format!(
                    "zone {} has no `{key}` line: expected one in its block",
                    z.name
                ),
            ));
        }
    }
    if z.present > 0 && z.start_pfn.is_none() {
        return Err(err(
            z.line,
            format!(
                "populated zone {} has no `start_pfn:` line: expected one in its block",
                z.name
            ),
        ));
    }
    if z.present > z.spanned {
        return Err(err(
            z.line,
            format!(
                "zone {}: expected present ({}) <= spanned ({})",
                z.name, z.present, z.spanned
            ),
        ));
    }
    if z.managed > z.present {
        return Err(err(
            z.line,
            format!(
                "zone {}: expected managed ({}) <= present ({})",
                z.name, z.managed, z.present
            ),
        ));
    }
    if let Some(s) = z.start_pfn {
        match s.checked_add(z.spanned) {
            None => {
                return Err(err(
                    z.line,
                    format!("zone {}: start_pfn + spanned overflows", z.name),
                ))
            }
            Some(end) if end > ZONEINFO_MAX_PFN => {
                return Err(err(
                    z.line,
                    format!(
                        "zone {}: spans up to pfn {end:#x}; expected zones below pfn {ZONEINFO_MAX_PFN:#x} (16 TiB of 4 KiB pages, the most the model holds)",
                        z.name
                    ),
                ))
            }
            Some(_) => {}
        }
    }
    if z.spanned > ZONEINFO_MAX_PFN {
        return Err(err(
            z.line,
            format!(
                "zone {}: spanned {} pages; expected at most {ZONEINFO_MAX_PFN} (16 TiB of 4 KiB pages, the most the model holds)",
                z.name, z.spanned
            ),
        ));
    }
    Ok(())
}

/// The end of the highest zone a zoneinfo may describe: 2^32 pfns (16 TiB of 4 KiB pages; the
/// lab's records hold 32-bit pfns). Past it a zoneinfo is bad input, before anything is built.
pub const ZONEINFO_MAX_PFN: u64 = 1 << 32;

impl MemoryLayout {
    /// Build a layout from a real `/proc/zoneinfo` (any kernel from about 4.x on).
    ///
    /// Zones with `present 0` and the `Device` zone are omitted. The model is UMA: a second
    /// populated zone of the same kind (another NUMA node) is an error. For every other zone:
    ///
    /// - **span**: `[start_pfn, start_pfn + spanned)`.
    /// - **holes** (`spanned − present` pages): at the end of the span. That is right for the
    ///   x86 DMA32 zone, whose PCI hole is its top, and for zones that end where RAM ends.
    ///   Exception: a DMA zone whose span covers [`LEGACY_HOLE`] and whose hole count is exactly
    ///   its size gets the hole there (640 KiB .. 1 MiB; real x86 machines: start_pfn 1,
    ///   spanned 4095, present 3998).
    /// - **not managed** (`present − managed` = gap). The highest populated zone holds the
    ///   memmap: estimate = (present pages of all zones) × 64 / page size, capped at the gap.
    ///   A gap is *plausible as boot reservations* when it is at most
    ///   `memmap estimate + present/32 + KERNEL_IMAGE_PAGES`. Then:
    ///   the memmap estimate at the very top of the zone's present memory (`Memmap`), the rest
    ///   (`Other`: the kernel image if KASLR put it there, page tables, percpu areas, ...)
    ///   placed by zone:
    ///   - DMA: at the bottom (x86 reserves all RAM below 1 MiB; real: pfns 1..0x9f).
    ///   - DMA32 with a gap of at least [`BOUNCE_BUFFER_PAGES`]: that many pages of
    ///     `BounceBuffers` at the top of its RAM (swiotlb is allocated top-down below 4 GiB;
    ///     real q35: gap 16 384, in 1G–2G), any rest `Other` just below.
    ///   - DMA32 with a smaller gap: at the bottom, from 16 MiB: no swiotlb, so the gap is the
    ///     kernel image at its default load address (real Firecracker 24 GiB: gap 9 528,
    ///     kpageflags shows it reserved at pfns 0x1000..0x3c66).
    ///   - Normal, Movable: at the top, just below the memmap. Real q35 8 GiB: Normal gap
    ///     45 780 = 32 765 memmap + 13 015 other; the measured top region holds 36 226
    ///     reserved pages and the KASLR'd image 9 554 elsewhere, which a zoneinfo cannot
    ///     locate, so the model pins one Normal SPB where the machine pins two.
    /// - A larger gap means **deferred struct-page init** (e.g. the `deferred_init=lazy` traces:
    ///   Normal present 5 505 024, managed 917 504). Then only the memmap estimate is reserved
    ///   (top), and the rest of the gap is `uninit`, directly below it. The kernel grows a
    ///   zone bottom-up, so the managed part stays at the bottom and a replayer can hand the
    ///   `uninit` range over when the trace shows order-10 frees of never-seen pfns there. (The
    ///   real after-snapshot of the anon-thp trace shows exactly the top 458 752 pfns never
    ///   initialised.)
    ///
    /// # Errors
    /// Everything [`parse_zoneinfo`] rejects, plus: no populated zone, two populated zones of
    /// the same kind, zones out of order or overlapping, an invalid geometry. Errors name the
    /// line of the zone's `Node` header.
    pub fn from_zoneinfo(text: &str, geometry: Geometry) -> Result<MemoryLayout, LayoutError> {
        geometry
            .validate()
            .map_err(|e| LayoutError::new("geometry", e.0))?;
        let raw = parse_zoneinfo(text)?;
        let populated: Vec<&ZoneinfoZone> = raw
            .iter()
            .filter(|z| z.present > 0 && z.kind.is_some())
            .collect();
        if populated.is_empty() {
            return Err(LayoutError::new(
                "line 1",
                "expected at least one zone with present pages",
            ));
        }
        let total_present: u64 = populated
            .iter()
            .fold(0u64, |a, z| a.saturating_add(z.present));
        let memmap_total = total_present.saturating_mul(STRUCT_PAGE_BYTES) / geometry.page_size();
        let mut zones: Vec<ZoneSpec> = Vec::new();
        let mut lines: Vec<usize> = Vec::new();
        for (i, z) in populated.iter().enumerate() {
            let kind = z.kind.unwrap_or(ZoneKind::Normal);
            if let Some(prev) = zones.last() {
                if prev.kind >= kind {
                    return Err(err(
                        z.line,
                        format!("zone {} after zone {}: expected one populated zone of each kind, in index order (the model is UMA)", z.name, prev.kind.name()),
                    ));
                }
            }
            let start = z.start_pfn.unwrap_or(0);
            let span = PfnRange::new(start, start + z.spanned);
            let mut spec = ZoneSpec::plain(kind, span);
            spec.node = z.node;
            let hole_pages = z.spanned - z.present;
            if hole_pages > 0 {
                if kind == ZoneKind::Dma
                    && hole_pages == LEGACY_HOLE.len()
                    && span.start <= LEGACY_HOLE.start
                    && LEGACY_HOLE.end <= span.end
                {
                    spec.holes.push(LEGACY_HOLE);
                } else {
                    spec.holes
                        .push(PfnRange::new(span.end - hole_pages, span.end));
                }
            }
            let gap = z.present - z.managed;
            let top = i + 1 == populated.len();
            let memmap_est = if top { memmap_total } else { 0 };
            let plausible = memmap_est + z.present / 32 + KERNEL_IMAGE_PAGES;
            let memmap = gap.min(memmap_est);
            let (other, uninit) = if gap <= plausible {
                (gap - memmap, 0)
            } else {
                (0, gap - memmap)
            };
            let mut free = free_ranges(span, &spec.holes);
            let push = |spec: &mut ZoneSpec, rs: Vec<PfnRange>, kind: ReserveKind| {
                spec.reserved
                    .extend(rs.into_iter().map(|range| Reservation { range, kind }));
            };
            push(&mut spec, carve_top(&mut free, memmap), ReserveKind::Memmap);
            match kind {
                ZoneKind::Dma => push(
                    &mut spec,
                    carve_bottom(&mut free, other),
                    ReserveKind::Other,
                ),
                ZoneKind::Dma32 if other >= BOUNCE_BUFFER_PAGES => {
                    push(
                        &mut spec,
                        carve_top(&mut free, BOUNCE_BUFFER_PAGES),
                        ReserveKind::BounceBuffers,
                    );
                    push(
                        &mut spec,
                        carve_top(&mut free, other - BOUNCE_BUFFER_PAGES),
                        ReserveKind::Other,
                    );
                }
                ZoneKind::Dma32 => push(
                    &mut spec,
                    carve_bottom(&mut free, other),
                    ReserveKind::Other,
                ),
                _ => push(&mut spec, carve_top(&mut free, other), ReserveKind::Other),
            }
            let mut u = carve_top(&mut free, uninit);
            u.reverse();
            spec.uninit = u;
            spec.reserved.sort_by_key(|r| r.range);
            zones.push(spec);
            lines.push(z.line);
        }
        let layout = MemoryLayout { geometry, zones };
        if let Err(e) = layout.validate() {
            // Name the header line of the zone the problem is in, if it is a zone problem.
            let line = layout
                .zones
                .iter()
                .zip(&lines)
                .find(|(z, _)| e.place == format!("zone {}", z.kind.name()))
                .map(|(_, l)| *l);
            return Err(match line {
                Some(l) => err(l, format!("zone {}: {}", &e.place[5..], e.message)),
                None => e,
            });
        }
        Ok(layout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINI: &str = "Node 0, zone      DMA
  pages free     3840
        spanned  4095
        present  3998
        managed  3840
  start_pfn:           1
Node 0, zone    DMA32
        spanned  1044480
        present  520159
        managed  503775
        protection: (0, 1, 2)
  start_pfn:           4096
Node 0, zone   Normal
        spanned  1572864
        present  1572864
        managed  1527084
  start_pfn:           1048576
Node 0, zone  Movable
        spanned  0
        present  0
        managed  0
Node 0, zone   Device
        spanned  0
        present  0
        managed  0
";

    #[test]
    fn mini_q35_8g() {
        let l = MemoryLayout::from_zoneinfo(MINI, Geometry::X86_64).unwrap();
        assert_eq!(l.zones.len(), 3);
        let dma = &l.zones[0];
        assert_eq!(dma.holes, alloc::vec![LEGACY_HOLE]);
        assert_eq!(dma.reserved[0].range, PfnRange::new(1, 0x9f));
        assert_eq!(dma.managed_pages(), 3840);
        let n = l.zone(ZoneKind::Normal).unwrap();
        assert_eq!(n.spb_count(&l.geometry), 6);
        assert_eq!(n.managed_pages(), 1527084);
        assert!(n.uninit.is_empty());
        assert_eq!(n.reserved.last().unwrap().kind, ReserveKind::Memmap);
        assert_eq!(n.reserved.last().unwrap().range.end, n.span.end);
        let d32 = l.zone(ZoneKind::Dma32).unwrap();
        assert_eq!(d32.reserved.len(), 1);
        assert_eq!(d32.reserved[0].kind, ReserveKind::BounceBuffers);
        assert_eq!(d32.reserved[0].range.end, 4096 + 520159);
        for z in &l.zones {
            assert_eq!(
                z.present_pages() + z.holes.iter().map(|h| h.len()).sum::<u64>(),
                z.spanned_pages()
            );
        }
    }

    fn expect_err(text: &str, line: usize, what: &str) {
        let e = MemoryLayout::from_zoneinfo(text, Geometry::X86_64).unwrap_err();
        assert_eq!(e.place, format!("line {line}"), "{e}");
        assert!(e.message.contains(what), "{e}");
    }

    #[test]
    fn errors_name_line_and_expectation() {
        expect_err("", 1, "at least one");
        expect_err(
            "Node 0, zone HighMem\n spanned 1\n present 1\n managed 1\n start_pfn: 0\n",
            1,
            "unknown zone name",
        );
        expect_err("Node x, zone DMA\n", 1, "Node <number>");
        expect_err("Node 0, zone DMA\n spanned 12ab\n", 2, "decimal");
        expect_err("Node 0, zone DMA\n spanned\n", 2, "decimal");
        expect_err(
            "Node 0, zone DMA\n spanned 10\n present 5\n start_pfn: 0\n",
            1,
            "managed",
        );
        expect_err(
            "Node 0, zone DMA\n spanned 10\n present 5\n managed 5\n",
            1,
            "start_pfn",
        );
        expect_err(
            "Node 0, zone DMA\n spanned 10\n present 11\n managed 5\n start_pfn: 0\n",
            1,
            "present (11) <= spanned",
        );
        expect_err("Node 0, zone DMA\n spanned 10\n spanned 10\n", 3, "twice");
        expect_err(" spanned 10\n", 1, "outside any zone");
        expect_err(
            "Node 0, zone DMA\n spanned 0\n present 0\n managed 0\n",
            1,
            "present pages",
        );
        // Overlapping zones.
        expect_err(
            "Node 0, zone DMA\n spanned 10\n present 10\n managed 10\n start_pfn: 0\nNode 0, zone Normal\n spanned 10\n present 10\n managed 10\n start_pfn: 5\n",
            6,
            "overlap",
        );
        // Second node.
        expect_err(
            "Node 0, zone Normal\n spanned 10\n present 10\n managed 10\n start_pfn: 0\nNode 1, zone Normal\n spanned 10\n present 10\n managed 10\n start_pfn: 100\n",
            6,
            "UMA",
        );
        expect_err("Node 0, zone DMA\n spanned 18446744073709551615\n present 0\n managed 0\n start_pfn: 5\n", 1, "overflows");
    }

    #[test]
    fn deferred_init_becomes_uninit() {
        let t = "Node 0, zone Normal\n spanned 5505024\n present 5505024\n managed 917504\n start_pfn: 1048576\n";
        let l = MemoryLayout::from_zoneinfo(t, Geometry::X86_64).unwrap();
        let z = &l.zones[0];
        assert_eq!(z.managed_pages(), 917504);
        assert_eq!(z.reserved_pages(), 5505024 / 64);
        let u: u64 = z.uninit.iter().map(|r| r.len()).sum();
        assert_eq!(u, 5505024 - 917504 - 5505024 / 64);
        assert_eq!(z.uninit[0].start, 1048576 + 917504);
    }
}
