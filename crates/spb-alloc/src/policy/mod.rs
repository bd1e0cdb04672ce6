//! The policy seam: everything that differs between `vanilla`, `defrag`, `spb` and `spb-next`.
//!
//! The allocator core (fast path, slow path, PCP, compaction, contiguous allocation) calls the
//! hooks of [`Policy`]; a policy decides which free lists a request is served from, whether a
//! fragmenting fallback is allowed, and what background work runs. The core never names a
//! policy: every difference is a hook here, dispatched on [`Policy`].
//!
//! Work that needs the embedder ([`Env`]) and the whole allocator (evacuation, reclaim, the
//! atomic relax sequence) runs through `Core`, the narrow set of operations the core lends a
//! policy; no policy module is an `impl Allocator`.
//!
//! # Adding a policy
//!
//! 1. A module beside this one with its state and decisions.
//! 2. The registry: a [`PolicyKind`] variant (and its name in [`PolicyKind::ALL`] /
//!    [`PolicyKind::name`]), a [`Policy`] variant built in [`Policy::new`].
//! 3. An arm in each hook of [`Policy`] below that should differ from the mainline default.
//!
//! Nothing outside `policy/` changes.

pub mod mainline;
pub mod spb;
pub mod spb_contig;
pub(crate) mod spb_fit;
pub mod spb_gfp;
pub mod spb_highorder;
pub(crate) mod spb_pcp;
pub(crate) mod spb_steal;
pub mod spb_switches;
pub(crate) mod spb_walk;
pub(crate) mod spb_work;
pub mod spec;

use alloc::string::String;
use alloc::vec::Vec;

use crate::env::{Env, ReclaimRequest};
use crate::event::EventLog;
use crate::geometry::{Geometry, Pfn};
use crate::gfp::{AllocFlags, Gfp};
use crate::layout::ZoneKind;
use crate::migratetype::MigrateType;
use crate::vmstat::{VmStat, WalkHistogram};
use crate::zone::{CategoryChange, Zone, ZoneId};
use crate::AllocRequest;

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
    /// Our policy: spb's machinery with spb-next's switches on (docs/spb-next.md).
    SpbNext,
}

impl PolicyKind {
    /// The registry: every policy, in the order the lab runs and reports them.
    pub const ALL: [PolicyKind; 4] = [
        PolicyKind::Vanilla,
        PolicyKind::Defrag,
        PolicyKind::Spb,
        PolicyKind::SpbNext,
    ];
    pub fn name(self) -> &'static str {
        match self {
            PolicyKind::Vanilla => "vanilla",
            PolicyKind::Defrag => "defrag",
            PolicyKind::Spb => "spb",
            PolicyKind::SpbNext => "spb-next",
        }
    }
    /// Whether the policy has named switches ([`SpbSwitch`]): run specs name them, `--spb-off`
    /// and `spb ablate` apply to it.
    pub fn has_switches(self) -> bool {
        matches!(self, PolicyKind::Spb | PolicyKind::SpbNext)
    }
    /// The policy's default switch set (the mainline kinds ignore it).
    pub fn default_switches(self) -> SpbSwitches {
        match self {
            PolicyKind::SpbNext => SpbSwitches::next_on(),
            _ => SpbSwitches::all_on(),
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
    pub fn spb_next() -> Self {
        PolicyConfig::of(PolicyKind::SpbNext)
    }
    pub fn of(kind: PolicyKind) -> Self {
        PolicyConfig {
            kind,
            spb: kind.default_switches(),
        }
    }
    /// A display name: the policy, plus `-off:` and the switches turned off.
    pub fn label(&self) -> String {
        // the run spec's text (spec.rs); switch sets are only named for policies with switches
        if self.kind.has_switches() {
            alloc::string::ToString::to_string(self)
        } else {
            String::from(self.kind.name())
        }
    }
}

/// Mutable context the free-list code records into.
pub struct Ctx<'a> {
    pub(crate) vm: &'a mut VmStat,
    pub(crate) ev: &'a mut EventLog,
    pub(crate) boost_factor: u64,
    /// Which fallbacks raise the watermark boost ([`Policy::boost`]).
    pub(crate) boost: Boost,
    pub(crate) zone_id: u8,
    pub(crate) now_ns: u64,
}

/// Which sub-pageblock fallbacks raise the watermark boost (`boost_watermark`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Boost {
    /// Every one (mainline).
    All,
    /// None (spb patch 05, `no_watermark_boost`).
    Off,
    /// Only those of movable requests (spb-next `boost_movable`, with `no_watermark_boost`).
    MovableOnly,
}

/// The policy state.
// One per allocator, asked on every allocation: a box would add an indirection to the hot path
// to save bytes in a value that exists once.
#[allow(clippy::large_enum_variant)]
pub enum Policy {
    Mainline { defrag_mode: bool },
    Spb(spb::SpbPolicy),
}

impl Policy {
    pub fn new(cfg: &PolicyConfig) -> Policy {
        match cfg.kind {
            PolicyKind::Vanilla => Policy::Mainline { defrag_mode: false },
            PolicyKind::Defrag => Policy::Mainline { defrag_mode: true },
            PolicyKind::Spb | PolicyKind::SpbNext => Policy::Spb(spb::SpbPolicy::new(cfg.spb)),
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
    /// found (mainline default mode only; spb-next `movable_zone_order`: movable requests).
    pub fn drop_nofragment_in_walk(&self, mt: MigrateType) -> bool {
        match self {
            Policy::Mainline { defrag_mode } => !*defrag_mode,
            Policy::Spb(s) => spb_steal::drop_in_walk(s.sw, mt),
        }
    }
    /// Whether the zonelist walk tries the zones below the one it just tried with
    /// `AllocFlags::NO_TAINT` (their tainted or lost SPBs only): spb-next
    /// `evacuate_before_empty` refused to taint an SPB there so that the slow path evacuates a
    /// tainted SPB of that zone, and a lower zone's clean or empty SPB is not to be tainted
    /// instead. Clears the request.
    pub fn lower_zones_no_taint(&mut self) -> bool {
        match self {
            Policy::Mainline { .. } => false,
            Policy::Spb(s) => core::mem::take(&mut s.evacuate_first),
        }
    }
    /// Whether the slow path keeps NOFRAGMENT until the last resort before OOM.
    pub fn keeps_nofragment(&self) -> bool {
        match self {
            Policy::Mainline { defrag_mode } => *defrag_mode,
            Policy::Spb(s) => s.sw.on(SpbSwitch::KeepNofragment),
        }
    }
    /// Whether a migration target of the policy's own background workers may reclaim when the
    /// free lists are dry (spb-next `worker_no_reclaim`: no).
    pub fn worker_targets_may_reclaim(&self) -> bool {
        match self {
            Policy::Mainline { .. } => true,
            Policy::Spb(s) => !s.sw.on(SpbSwitch::WorkerNoReclaim),
        }
    }
    /// Whether a migration target of an evacuation run in the allocating caller's context may
    /// reclaim when the free lists are dry (spb-next `evacuate_no_reclaim`: no).
    pub fn caller_evacuation_targets_may_reclaim(&self) -> bool {
        match self {
            Policy::Mainline { .. } => true,
            Policy::Spb(s) => !s.sw.on(SpbSwitch::EvacuateNoReclaim),
        }
    }
    /// Whether the migration target of a large folio (order above 0) moved for `who` may
    /// reclaim when the free lists are dry. spb-next `evacuate_split_first` and
    /// `contig_split_first`: no, the mover splits the folio first and its base pages' targets
    /// reclaim as any other.
    pub(crate) fn large_target_may_reclaim(&self, who: crate::contig::TargetFor) -> bool {
        use crate::contig::TargetFor;
        match self {
            Policy::Mainline { .. } => true,
            Policy::Spb(s) => match who {
                TargetFor::Evacuation => !s.sw.on(SpbSwitch::EvacuateSplitFirst),
                TargetFor::LongtermPin => false,
                TargetFor::Contig => {
                    !(s.sw.on(SpbSwitch::ContigSplitFirst) && s.sw.on(SpbSwitch::ContigSplit))
                }
            },
        }
    }
    /// spb-next `kswapd_movable_free`: kswapd leaves the pages on non-movable free lists out of
    /// a zone's free pages when it balances.
    pub fn kswapd_movable_free(&self) -> bool {
        match self {
            Policy::Mainline { .. } => false,
            Policy::Spb(s) => s.sw.on(SpbSwitch::KswapdMovableFree),
        }
    }
    /// kswapd is woken with at least pageblock order and balances on whole free blocks.
    pub fn defrag_mode(&self) -> bool {
        matches!(self, Policy::Mainline { defrag_mode: true })
    }
    /// Which fallbacks raise the watermark boost: all in mainline; none with spb's
    /// `no_watermark_boost`, or only movable requests' with spb-next's `boost_movable` too.
    pub fn boost(&self) -> Boost {
        match self {
            Policy::Spb(s) if s.sw.on(SpbSwitch::NoWatermarkBoost) => {
                if s.sw.on(SpbSwitch::BoostMovable) {
                    Boost::MovableOnly
                } else {
                    Boost::Off
                }
            }
            _ => Boost::All,
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
    /// The order in which `alloc_contig` tries aligned ranges of `pages` in zone `z`; `clean`
    /// is the clean page cache per range when the plan asked the embedder for it (else empty).
    pub fn contig_candidates(&self, zi: ZoneId, z: &Zone, pages: u64, clean: &[u64]) -> Vec<Pfn> {
        match self {
            Policy::Spb(s) if s.sw.on(SpbSwitch::ContigEmptiest) && pages == z.geo.spb_pages() => {
                s.contig_order(zi, z, spb::contig_candidates(z, clean))
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
    /// How `alloc_contig` handles the candidates of a request of `pages` in zone `z`
    /// (spb-next `contig_split`, `contig_fit`: policy/spb_contig.rs); the default for every
    /// other policy and size.
    #[inline]
    pub(crate) fn contig_plan(&self, z: &Zone, pages: u64) -> spb_contig::ContigPlan {
        match self {
            Policy::Spb(s) => spb_contig::plan(s.sw, z, pages),
            _ => spb_contig::ContigPlan::default(),
        }
    }
    /// `alloc_contig` is about to try the ranges `rest` of zone `zi` (the first one now): the
    /// policy may steer the pages it migrates away from the others (spb-next).
    pub(crate) fn contig_trying(&mut self, zi: ZoneId, z: &Zone, pages: u64, rest: &[Pfn]) {
        if let Policy::Spb(s) = self {
            s.contig_trying(zi, z, pages, rest);
        }
    }
    /// The range at `start` of zone `zi` was tried: `ok` whether it was obtained.
    pub(crate) fn contig_tried(&mut self, zi: ZoneId, z: &Zone, pages: u64, start: Pfn, ok: bool) {
        if let Policy::Spb(s) = self {
            s.contig_tried(zi, z, pages, start, ok);
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
    /// Whether compaction may take targets from some pageblock of the SPB `si` (false: none of
    /// its pageblocks passes [`Policy::compaction_target_ok`], so the free-list search skips
    /// its lists).
    pub fn compaction_spb_ok(&self, z: &Zone, si: usize) -> bool {
        match self {
            Policy::Spb(s) => s.compaction_spb_ok(z, si),
            _ => true,
        }
    }
    /// Whether a long-term pin of the allocated block at `pfn` of zone `zi` should first move
    /// the block (spb-next `pin_migrate`): a pin there would keep a region that can still
    /// become a 1 GiB page from becoming one.
    pub fn pin_should_migrate(&self, zi: ZoneId, z: &Zone, pfn: Pfn) -> bool {
        match self {
            Policy::Spb(s) => s.pin_should_migrate(zi, z, pfn),
            _ => false,
        }
    }
    /// spb-next `pin_make_room`: [`spb::SpbPolicy::pin_room_spb`] (None for other policies).
    pub(crate) fn pin_room_spb(&self, zi: ZoneId, z: &Zone, order: u8, from: u32) -> Option<u32> {
        match self {
            Policy::Spb(s) => s.pin_room_spb(zi, z, order, from),
            _ => None,
        }
    }
    /// The spb state, if this is the spb policy: read-only inspection for tests and the lab.
    /// The core never calls it (it goes through the hooks below).
    pub fn spb(&self) -> Option<&spb::SpbPolicy> {
        match self {
            Policy::Spb(s) => Some(s),
            _ => None,
        }
    }
    fn spb_mut(&mut self) -> Option<&mut spb::SpbPolicy> {
        match self {
            Policy::Spb(s) => Some(s),
            _ => None,
        }
    }
    /// Exclude SPB `spb` of zone `zi` from every walk (None: no exclusion); returns the
    /// exclusion before, to be put back.
    pub(crate) fn exclude(&mut self, e: Option<(u8, u32)>) -> Option<(u8, u32)> {
        match self {
            Policy::Spb(s) => core::mem::replace(&mut s.excluded, e),
            _ => None,
        }
    }

    /// The allocator was built over `zones`: build per-zone policy state.
    pub(crate) fn init_zones(&mut self, zones: &[Zone]) {
        if let Policy::Spb(s) = self {
            s.init_zones(zones);
        }
    }
    /// Zone `zi` grew (hot-add): refresh its policy state.
    pub(crate) fn rebuild_zone(&mut self, zi: ZoneId, z: &Zone) {
        if let Policy::Spb(s) = self {
            s.rebuild_zone(zi, z);
        }
    }
    /// Before a per-CPU list refill from the buddy lists: fill up to `n` entries from sources of
    /// the policy's own (spb: pageblocks the CPU owns, patches 02/21). Returns how many entries
    /// the generic refill need not take: those added, or `n` when the policy ended the refill
    /// early (spb-next `refill_no_steal`).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub(crate) fn pcp_refill_owned(
        &mut self,
        z: &mut Zone,
        ctx: &mut Ctx,
        cpu: usize,
        order: u8,
        mt: MigrateType,
        flags: AllocFlags,
        gfp: Gfp,
        n: u64,
    ) -> u64 {
        match self {
            Policy::Mainline { .. } => 0,
            Policy::Spb(s) => s.pcp_refill_owned(z, ctx, cpu, order, mt, flags, gfp, n),
        }
    }
    /// Whether [`Policy::after_alloc`] has anything to do for an allocation at `pfn` with no
    /// category change (the cheap test of the inlined common case).
    #[inline(always)]
    pub(crate) fn after_alloc_needed(&self, z: &Zone, pfn: Pfn) -> bool {
        match self {
            Policy::Mainline { .. } => false,
            Policy::Spb(s) => s.after_alloc_needed(z, pfn, &[]),
        }
    }
    /// After a successful allocation of the block at `pfn`, with the SPB category changes it
    /// caused.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub(crate) fn after_alloc(
        &mut self,
        z: &mut Zone,
        ctx: &mut Ctx,
        pfn: Pfn,
        order: u8,
        mt: MigrateType,
        gfp: Gfp,
        changes: &[CategoryChange],
    ) {
        if let Policy::Spb(s) = self {
            s.after_alloc(z, ctx, pfn, order, mt, gfp, changes);
        }
    }
    /// The histogram of SPBs visited per allocation walk (None for policies that do not walk
    /// SPBs).
    pub fn walks(&self) -> Option<&WalkHistogram> {
        self.spb().map(|s| &s.walks)
    }
    /// Policy-level invariants over the allocator's zones.
    pub(crate) fn check(&self, zones: &[Zone]) -> Result<(), crate::check::InvariantViolation> {
        match self {
            Policy::Mainline { .. } => Ok(()),
            Policy::Spb(s) => s.check(zones),
        }
    }

    /// Staged relaxation for callers that cannot reclaim. Mainline: none, they fail; spb
    /// relaxes in stages (patch 18).
    pub(crate) fn atomic_relax<C: Core>(
        c: &mut C,
        req: AllocRequest,
        flags: &mut AllocFlags,
        step: &mut u8,
    ) -> RelaxDecision {
        match c.policy() {
            Policy::Mainline { .. } => RelaxDecision::Fail,
            Policy::Spb(_) => spb_work::atomic_relax(c, req, flags, step),
        }
    }
    /// At slow-path entry, after the first freelist attempt: the policy may adjust the flags
    /// (and do bounded work) so the slow path need not reclaim for a placement shortage.
    /// Called until None; the slow path retries the freelists after each Some(Retry) and fails
    /// the request on Some(Refuse). Mainline and spb: None (spb-next: `taint_when_full`,
    /// `refuse_fast`).
    pub(crate) fn slowpath_entry<C: Core>(
        c: &mut C,
        req: AllocRequest,
        flags: &mut AllocFlags,
        step: &mut u8,
        env: &mut dyn Env,
    ) -> Option<DropDecision> {
        match c.policy() {
            Policy::Mainline { .. } => None,
            Policy::Spb(_) => spb_work::slowpath_entry(c, req, flags, step, env),
        }
    }
    /// The last step before the slow path drops ALLOC_NOFRAGMENT. Mainline drops it; spb may
    /// evacuate first (patch 23).
    pub(crate) fn before_drop_nofragment<C: Core>(
        c: &mut C,
        req: AllocRequest,
        tried: &mut bool,
        env: &mut dyn Env,
    ) -> DropDecision {
        match c.policy() {
            Policy::Mainline { .. } => DropDecision::Drop,
            Policy::Spb(_) => spb_work::before_drop_nofragment(c, req, tried, env),
        }
    }
    /// The policy's own background work, run at the end of [`crate::Allocator::background`].
    pub(crate) fn background<C: Core>(c: &mut C, env: &mut dyn Env) {
        match c.policy() {
            Policy::Mainline { .. } => {}
            Policy::Spb(_) => spb_work::background(c, env),
        }
    }
}

/// What the slow path does before dropping ALLOC_NOFRAGMENT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropDecision {
    /// Something was freed up: retry with NOFRAGMENT still set.
    Retry,
    /// Drop NOFRAGMENT and retry.
    Drop,
    /// Fail the request: the caller has a cheaper fallback.
    Refuse,
}

/// The atomic relax sequence's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RelaxDecision {
    Retry,
    Refuse,
    Fail,
}

/// The operations the allocator core lends a policy for work that spans zones or needs the
/// embedder (implemented by [`crate::Allocator`]). A policy reaches its own state through
/// [`Core::policy_mut`]; everything else it may do to the allocator is listed here.
pub(crate) trait Core {
    fn geo(&self) -> Geometry;
    fn zones(&self) -> &[Zone];
    fn policy(&self) -> &Policy;
    fn policy_mut(&mut self) -> &mut Policy;
    /// The zones to read and the policy to update, at once.
    fn zones_and_policy_mut(&mut self) -> (&[Zone], &mut Policy);
    fn vm(&mut self) -> &mut VmStat;
    fn events(&mut self) -> &mut EventLog;
    /// Virtual time (ns).
    fn now_ns(&self) -> u64;
    /// Pages migrated so far, for any reason.
    fn pages_migrated(&self) -> u64;
    /// Migrate the movable allocated block at `pfn` of zone `zi` elsewhere through the Env;
    /// a target may reclaim one batch in the caller's context
    /// ([`crate::contig::EVACUATE_TARGET_RECLAIM_ROUNDS`]). None: no target memory; Some(moved).
    fn migrate_out(&mut self, zi: ZoneId, pfn: Pfn, env: &mut dyn Env) -> Option<bool>;
    /// Ask the Env to reclaim, and free what it hands back to the buddy lists.
    fn reclaim(&mut self, req: ReclaimRequest, env: &mut dyn Env);
    /// Reclaim the movable allocated block at `pfn` of zone `zi` instead of migrating it, if
    /// the embedder says it is clean page cache (`Env::reclaim_clean`); the block is freed.
    fn reclaim_clean(&mut self, zi: ZoneId, pfn: Pfn, env: &mut dyn Env) -> bool;
    /// Split the movable allocated block at `pfn` of zone `zi` (order above 0) into base
    /// pages, if the embedder splits its folio (`Env::split`). Returns whether it did.
    fn split_allocated(&mut self, zi: ZoneId, pfn: Pfn, env: &mut dyn Env) -> bool;
}
