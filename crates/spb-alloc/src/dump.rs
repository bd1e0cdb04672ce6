//! Text dumps in the kernel's exact layouts: /proc/buddyinfo, /proc/pagetypeinfo, /proc/vmstat,
//! and the superpageblock map (migratetype letters per pageblock, patch 30).

use alloc::string::String;
use core::fmt::Write;

use crate::migratetype::MigrateType;
use crate::Allocator;

/// The cap the kernel applies when counting a free list for pagetypeinfo.
const PAGETYPEINFO_CAP: u64 = 100_000;

impl Allocator {
    /// /proc/buddyinfo.
    pub fn buddyinfo(&self) -> String {
        let mut s = String::new();
        for z in &self.zones {
            let _ = write!(s, "Node {}, zone {:>8} ", z.node, z.kind.name());
            for o in 0..z.geo.nr_orders() {
                let n: u64 = z.nr_free[o].iter().sum();
                let _ = write!(s, "{:>6} ", n);
            }
            s.push('\n');
        }
        s
    }

    /// /proc/pagetypeinfo (CMA and Isolate configured; no page_owner table).
    pub fn pagetypeinfo(&self) -> String {
        let mut s = String::new();
        let g = self.geo;
        let _ = writeln!(s, "Page block order: {}", g.pageblock_order);
        let _ = writeln!(s, "Pages per block:  {}", g.pageblock_pages());
        s.push('\n');
        let _ = write!(s, "{:<43} ", "Free pages count per migrate type at order");
        for o in 0..g.nr_orders() {
            let _ = write!(s, "{:>6} ", o);
        }
        s.push('\n');
        for z in &self.zones {
            for mt in MigrateType::ALL {
                let _ = write!(
                    s,
                    "Node {:>4}, zone {:>8}, type {:>12} ",
                    z.node,
                    z.kind.name(),
                    mt.name()
                );
                for o in 0..g.nr_orders() {
                    let n = z.nr_free[o][mt.idx()];
                    if n > PAGETYPEINFO_CAP {
                        let _ = write!(s, ">{:>6} ", PAGETYPEINFO_CAP);
                    } else {
                        let _ = write!(s, "{:>6} ", n);
                    }
                }
                s.push('\n');
            }
        }
        s.push('\n');
        let _ = write!(s, "{:<23}", "Number of blocks type ");
        for mt in MigrateType::ALL {
            let _ = write!(s, "{:>12} ", mt.name());
        }
        s.push('\n');
        for z in &self.zones {
            let mut counts = [0u64; 6];
            for (i, pb) in z.pageblocks.iter().enumerate() {
                let start = (z.pb_base + i as u64) << g.pageblock_order;
                if start < z.span.start || pb.absent as u64 == g.pageblock_pages() {
                    continue;
                }
                counts[pb.list_type().idx()] += 1;
            }
            let _ = write!(s, "Node {}, zone {:>8} ", z.node, z.kind.name());
            for c in counts {
                let _ = write!(s, "{:>12} ", c);
            }
            s.push('\n');
        }
        s
    }

    /// /proc/vmstat-style lines: the zone state counters first, then the event counters.
    pub fn vmstat_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "nr_free_pages {}", self.free_pages());
        let _ = writeln!(
            s,
            "nr_free_pages_blocks {}",
            self.zones.iter().map(|z| z.free_pages_blocks).sum::<u64>()
        );
        for (n, v) in self.vm.iter() {
            let _ = writeln!(s, "{} {}", n, v);
        }
        s
    }

    /// The migratetype letters of every pageblock, one line per SPB (patch 30's show_mem
    /// letters per SPB): U unmovable, E reclaimable, M movable, H highatomic, I isolated, with
    /// lower case for a block whose content is free; `R` reserved, `.` all free, ` ` hole.
    pub fn spb_letters(&self) -> String {
        let mut s = String::new();
        let g = self.geo;
        for z in &self.zones {
            for (i, spb) in z.spbs.iter().enumerate() {
                let _ = write!(
                    s,
                    "{:>6} {:>4} {:>8} ",
                    z.kind.name(),
                    i,
                    alloc::format!("{:?}", spb.category).to_lowercase()
                );
                let mut pfn = spb.start_pfn;
                while pfn < spb.start_pfn + g.spb_pages() {
                    let c = if pfn < z.span.start || pfn >= z.span.end {
                        ' '
                    } else {
                        let pb = z.pb(pfn);
                        if pb.absent as u64 == g.pageblock_pages() {
                            ' '
                        } else if pb.reserved > 0 {
                            'R'
                        } else if pb.free as u64 == g.pageblock_pages() {
                            '.'
                        } else {
                            pb.list_type().letter()
                        }
                    };
                    s.push(c);
                    pfn += g.pageblock_pages();
                }
                s.push('\n');
            }
        }
        s
    }
}
