//! The policy seam: everything that differs between `vanilla`, `defrag` and `spb`.
//!
//! The allocator core (fast path, slow path, PCP, compaction, contiguous allocation) calls the
//! hooks of [`Policy`]; a policy decides which free lists a request is served from, whether a
//! fragmenting fallback is allowed, and what background work runs. Adding a policy means adding
//! a variant here and a module beside this one; the core does not change.

pub mod mainline;
pub mod spb;
pub mod spb_switches;
pub mod spb_work;
pub mod spec;

use alloc::string::String;
use alloc::vec::Vec;

use crate::event::EventLog;
use crate::geometry::Pfn;
use crate::gfp::{AllocFlags, Gfp};
use crate::layout::ZoneKind;
use crate::migratetype::MigrateType;
use crate::vmstat::VmStat;
use crate::zone::Zone;

pub use mainline::RmqueueMode;
pub use spb::{SpbSwitch, SpbSwitches};
pub use spec::PolicySpecError;

/// Which policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PolicyKind {
    /// Mainline defaults (vm.defrag_mode = 0).
    Vanilla,
    /// Mainline with vm.defrag_mode = 1.
    Defrag,
    /// The superpageblock series.
    Spb,
}

impl PolicyKind {
    pub const ALL: [PolicyKind; 3] = [PolicyKind::Vanilla, PolicyKind::Defrag, PolicyKind::Spb];
    pub fn name(self) -> &'static str {
        match self {
            PolicyKind::Vanilla => "vanilla",
            PolicyKind::Defrag => "defrag",
            PolicyKind::Spb => "spb",
        }
    }
    pub fn from_name(s: &str) -> Option<PolicyKind> {
        PolicyKind::ALL.iter().copied().find(|p| p.name() == s)
    }
}

/// A policy and its switches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyConfig {
    pub kind: PolicyKind,
    /// spb's behaviours (ignored by the mainline policies).
    pub spb: SpbSwitches,
}

impl PolicyConfig {
    pub fn vanilla() -> Self {
        PolicyConfig {
            kind: PolicyKind::Vanilla,
            spb: SpbSwitches::all_on(),
        }
    }
    pub fn defrag() -> Self {
        PolicyConfig {
            kind: PolicyKind::Defrag,
            spb: SpbSwitches::all_on(),
        }
    }
    pub fn spb() -> Self {
        PolicyConfig {
            kind: PolicyKind::Spb,
            spb: SpbSwitches::all_on(),
        }
    }
    pub fn of(kind: PolicyKind) -> Self {
        PolicyConfig {
            kind,
            spb: SpbSwitches::all_on(),
        }
    }
    /// A display name: the policy, plus `-off:` and the switches turned off.
    pub fn label(&self) -> String {
        let mut s = String::from(self.kind.name());
        if self.kind == PolicyKind::Spb {
            let def = SpbSwitches::all_on();
            let off: Vec<&str> = SpbSwitch::ALL
                .iter()
                .filter(|w| !self.spb.on(**w) && def.on(**w))
                .map(|w| w.name())
                .collect();
            let on: Vec<&str> = SpbSwitch::ALL
                .iter()
                .filter(|w| self.spb.on(**w) && !def.on(**w))
                .map(|w| w.name())
                .collect();
            if !off.is_empty() {
                s.push_str("-off:");
                s.push_str(&off.join(","));
            }
            if !on.is_empty() {
                s.push_str("-on:");
                s.push_str(&on.join(","));
            }
        }
        s
    }
}

/// Mutable context the free-list code records into.
pub struct Ctx<'a> {
    pub vm: &'a mut VmStat,
    pub ev: &'a mut EventLog,
    pub boost_factor: u64,
    /// Watermark boosting disabled (spb patch 05).
    pub no_boost: bool,
    pub zone_id: u8,
    pub now_ns: u64,
}

/// The policy state.
pub enum Policy {
    Mainline { defrag_mode: bool },
    Spb(spb::SpbPolicy),
}

impl Policy {
    pub fn new(cfg: &PolicyConfig) -> Policy {
        match cfg.kind {
            PolicyKind::Vanilla => Policy::Mainline { defrag_mode: false },
            PolicyKind::Defrag => Policy::Mainline { defrag_mode: true },
            PolicyKind::Spb => Policy::Spb(spb::SpbPolicy::new(cfg.spb)),
        }
    }
    /// Free lists per SPB.
    pub fn per_spb_lists(&self) -> bool {
        matches!(self, Policy::Spb(_))
    }
    /// Whether the fast path starts with ALLOC_NOFRAGMENT (alloc_flags_nofragment).
    pub fn fast_nofragment(&self, preferred: ZoneKind, has_dma32: bool) -> bool {
        match self {
            Policy::Mainline { defrag_mode } => {
                *defrag_mode || (preferred == ZoneKind::Normal && has_dma32)
            }
            Policy::Spb(s) => {
                s.sw.on(SpbSwitch::KeepNofragment) || (preferred == ZoneKind::Normal && has_dma32)
            }
        }
    }
    /// Whether the fast path's zonelist walk drops NOFRAGMENT and walks again when nothing was
    /// found (mainline default mode only).
    pub fn drop_nofragment_in_walk(&self) -> bool {
        match self {
            Policy::Mainline { defrag_mode } => !*defrag_mode,
            Policy::Spb(s) => !s.sw.on(SpbSwitch::KeepNofragment),
        }
    }
    /// Whether the slow path keeps NOFRAGMENT until the last resort before OOM.
    pub fn keeps_nofragment(&self) -> bool {
        match self {
            Policy::Mainline { defrag_mode } => *defrag_mode,
            Policy::Spb(s) => s.sw.on(SpbSwitch::KeepNofragment),
        }
    }
    /// kswapd is woken with at least pageblock order and balances on whole free blocks.
    pub fn defrag_mode(&self) -> bool {
        matches!(self, Policy::Mainline { defrag_mode: true })
    }
    /// Watermark boosting disabled.
    pub fn no_boost(&self) -> bool {
        match self {
            Policy::Mainline { .. } => false,
            Policy::Spb(s) => s.sw.on(SpbSwitch::NoWatermarkBoost),
        }
    }
    /// Slow-path flag adjustments on top of gfp_to_alloc_flags.
    pub fn slowpath_flags(&self, gfp: Gfp, order: u8, mut f: AllocFlags) -> AllocFlags {
        if let Policy::Spb(s) = self {
            f = s.slowpath_flags(gfp, order, f);
        }
        f
    }
    /// `__rmqueue` for this policy.
    #[allow(clippy::too_many_arguments)]
    pub fn rmqueue(
        &mut self,
        z: &mut Zone,
        ctx: &mut Ctx,
        order: u8,
        mt: MigrateType,
        flags: AllocFlags,
        mode: &mut RmqueueMode,
        gfp: Gfp,
    ) -> Option<Pfn> {
        match self {
            Policy::Mainline { .. } => mainline::rmqueue(z, ctx, order, mt, flags, mode),
            Policy::Spb(s) => s.rmqueue(z, ctx, order, mt, flags, mode, gfp),
        }
    }
    /// The order in which `alloc_contig` tries aligned ranges of `pages` in zone `z`.
    pub fn contig_candidates(&self, z: &Zone, pages: u64) -> Vec<Pfn> {
        match self {
            Policy::Spb(s) if s.sw.on(SpbSwitch::ContigEmptiest) && pages == z.geo.spb_pages() => {
                spb::contig_candidates(z)
            }
            _ => {
                let mut v = Vec::new();
                let mut s = z.span.start.div_ceil(pages) * pages;
                while s + pages <= z.span.end {
                    v.push(s);
                    s += pages;
                }
                v
            }
        }
    }
    /// Whether compaction may use the pageblock holding `pfn` as a migration source.
    pub fn compaction_source_ok(&self, z: &Zone, pfn: Pfn) -> bool {
        match self {
            Policy::Spb(s) => s.compaction_source_ok(z, pfn),
            _ => true,
        }
    }
    /// Whether compaction may take free pages from the pageblock holding `pfn` as targets.
    pub fn compaction_target_ok(&self, z: &Zone, pfn: Pfn) -> bool {
        match self {
            Policy::Spb(s) => s.compaction_target_ok(z, pfn),
            _ => true,
        }
    }
    /// The spb state, if this is the spb policy.
    pub fn spb(&self) -> Option<&spb::SpbPolicy> {
        match self {
            Policy::Spb(s) => Some(s),
            _ => None,
        }
    }
    pub fn spb_mut(&mut self) -> Option<&mut spb::SpbPolicy> {
        match self {
            Policy::Spb(s) => Some(s),
            _ => None,
        }
    }
}
