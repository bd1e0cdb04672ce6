//! The named switches of the spb policy.

macro_rules! switches {
    ($($v:ident => $n:literal, $patch:literal, $doc:literal;)*) => {
        /// One named spb behaviour.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum SpbSwitch { $(#[doc = $doc] $v,)* }
        impl SpbSwitch {
            /// Every switch.
            pub const ALL: &'static [SpbSwitch] = &[$(SpbSwitch::$v,)*];
            /// The command-line name.
            pub fn name(self) -> &'static str { match self { $(SpbSwitch::$v => $n,)* } }
            /// The patch of the series it follows ("spb" for spb's own choices).
            pub fn patch(self) -> &'static str { match self { $(SpbSwitch::$v => $patch,)* } }
            /// One-line description.
            pub fn doc(self) -> &'static str { match self { $(SpbSwitch::$v => $doc,)* } }
            /// From the command-line name.
            pub fn from_name(s: &str) -> Option<SpbSwitch> { SpbSwitch::ALL.iter().copied().find(|w| w.name() == s) }
        }
    };
}

switches! {
    SteerTainted => "steer_tainted", "11", "non-movable allocations go to tainted SPBs first";
    AggressivePack => "aggressive_pack", "19", "on zones of more than 8 SPBs, consume tainted SPBs at any granularity";
    SteerMovableFullest => "steer_movable_fullest", "12", "movable allocations go to the fullest clean SPB";
    ContigEmptiest => "contig_emptiest", "17", "1 GiB contiguous requests start from the emptiest clean or empty SPB";
    Pass2Claim => "pass2_claim", "13/20", "PASS_2: claim a whole free pageblock inside a tainted SPB";
    Pass2bRelabel => "pass2b_relabel", "24", "PASS_2B: relabel a movable pageblock inside a tainted SPB without the 50% rule";
    CrossBorrow => "cross_borrow", "27", "PASS_2C/2D: borrow across migratetypes inside tainted SPBs without relabelling";
    TaintedReserve => "tainted_reserve", "23/39", "movable allocations and compaction targets keep out of a tainted SPB's reserve";
    HintCache => "hint_cache", "31", "PASS_1 hint cache per (zone, order, migratetype)";
    RefuseOptional => "refuse_optional", "26", "refuse fragmenting fallbacks for callers with a cheap fallback";
    RefuseLiteral => "refuse_literal", "26", "use the posted code's literal flag rule (MEMALLOC/NOFAIL not excluded); off by default";
    RefuseBestEffort => "refuse_best_effort", "35", "refuse best-effort high-order requests servable at lower orders";
    AtomicRelax => "atomic_relax", "18", "atomic allocations relax in stages: tainted relabel first, drop NOFRAGMENT last";
    KeepNofragment => "keep_nofragment", "20/36", "keep ALLOC_NOFRAGMENT through the slow path, drop it only before OOM";
    PcpOwnership => "pcp_ownership", "02/03", "per-CPU lists refill by taking whole pageblocks the CPU then owns";
    AdoptPartial => "adopt_partial", "21", "per-CPU refills adopt partially free pageblocks of tainted SPBs";
    NoWatermarkBoost => "no_watermark_boost", "05", "watermark boosting off";
    EvacuateClaimed => "evacuate_claimed", "06", "evacuate movable pages left in a pageblock claimed for non-movable use";
    DefragWorker => "defrag_worker", "15", "per-SPB background defrag of tainted SPBs";
    TargetedEvacuation => "targeted_evacuation", "23", "two-phase targeted evacuation before NOFRAGMENT is dropped";
    DeferredEvacuation => "deferred_evacuation", "25", "deferred evacuation when an allocation is about to taint a clean SPB";
    SlabShrink => "slab_shrink", "28", "slab shrinking driven by SPB pressure, and the last-chance defrag trigger";
    CompactionSpb => "compaction_spb", "16/38", "compaction walks per-SPB free lists and skips tainted SPBs with no movable pages";
    LostFirst => "lost_first", "spb", "non-movable allocations prefer SPBs already lost to reservations or holes";
    StealLast => "steal_last", "spb", "a migration target of spb's own evacuation steals single pages inside a tainted SPB only after every allowed zone was tried without fragmenting (mainline's zone order; spb-next's idea, in spb since 2026-12-04)";
    // spb-next's ideas (docs/spb-next.md): off in `spb`, on in `spb-next`.
    TaintWhenFull => "taint_when_full", "next", "a non-movable request the tainted SPBs cannot hold, with free memory above min, evacuates a little or taints the next SPB instead of reclaiming";
    RefuseFast => "refuse_fast", "next", "a refused optional request fails at once, without reclaim or compaction (its caller has a cheap fallback)";
    CompactFragments => "compact_fragments", "next", "compaction may take targets from partly used movable pageblocks of tainted SPBs, inside the reserve too";
    ContigTargets => "contig_targets", "next", "pages moved by a 1 GiB allocation go to tainted, lost or already failed SPBs first, never to an SPB still to be tried";
    ContigSplit => "contig_split", "next", "a 1 GiB allocation splits a large folio (THP, page cache) it finds no whole migration target for and moves its base pages (the kernel's migrate_pages on -ENOMEM)";
    ContigFit => "contig_fit", "next", "a 1 GiB allocation skips SPBs whose movable pages exceed free memory above min plus reclaimable cache, and stops a zone once its migration targets ran out";
    ContigPinned => "contig_pinned", "next", "a 1 GiB allocation skips a candidate holding a page the embedder reports maybe pinned (the kernel's folio_maybe_dma_pinned) before it migrates anything";
    MovableZoneOrder => "movable_zone_order", "next", "every movable request tries all allowed zones without fragmenting before it steals (mainline's fast-path order)";
    EvacNoSteal => "evac_no_steal", "next", "a migration target of spb's own evacuation never takes a fragmenting fallback (no steal, no claim) in any pass: the evacuation stops when no zone has non-fragmenting movable memory";
    HighorderEvacuate => "highorder_evacuate", "next", "a movable pageblock-order request (THP) that finds no free pageblock evacuates the cheapest movable-only pageblock (in the background for callers that cannot reclaim); implies highorder_supply";
    HighorderSupply => "highorder_supply", "next", "highorder_evacuate's background half alone: a movable pageblock-order request that may not reclaim and finds no free pageblock queues evacuations that keep a small supply of free pageblocks; callers that may reclaim run the slow path as in spb";
    SpareOpportunistic => "spare_opportunistic", "next", "with taint_when_full, an opportunistic request (no reclaim bit, no __GFP_HIGH: SLUB's high-order first try) is never served by tainting a clean SPB: the series' refusals stand and its caller's minimum-order fallback runs";
    MovableBestFit => "movable_best_fit", "next", "a movable request takes the smallest free movable block below a pageblock among clean SPBs and tainted SPBs above their reserve, instead of the smallest block of the first SPB the walk visits";
    WorkerNoReclaim => "worker_no_reclaim", "next", "a migration target of the policy's background workers (defrag, evacuation) never reclaims: when the free lists are dry the worker's move fails and kswapd is woken, so reclaim stays kswapd's and the allocating callers'";
    RefillNoSteal => "refill_no_steal", "next", "a per-CPU refill stops at its first steal (a page taken from another type's pageblock without claiming it): the requesting caller gets that page, the rest of the batch is not stolen to fill a cache";
    DefragDeep => "defrag_deep", "next", "when a fresh SPB is about to be tainted (patch 28's last-chance trigger), the defrag of each tainted SPB holding movable pages runs until it has evacuated every movable pageblock it can, not only until a few pageblocks are free: the room non-movable growth needs next is made before it is needed";
    EvacuateThp => "evacuate_thp", "next", "the evacuations of tainted SPBs (defrag, targeted and taint_when_full's evacuation) also move a movable block of pageblock order (a THP) to a free pageblock elsewhere, so a tainted SPB whose movable pages are THPs can still give a pageblock back to non-movable growth";
    EvacuateReclaimClean => "evacuate_reclaim_clean", "next", "the policy's evacuations reclaim a clean page-cache folio instead of migrating it, as a contiguous allocation does with its range (the kernel's reclaim_clean_pages_from_list): it needs no migration target, so no reclaim for one";
    ContigCleanFirst => "contig_clean_first", "next", "a 1 GiB allocation tries first the SPBs with the fewest pages that need a migration target (movable pages less the clean page cache it drops in place, as the embedder counts it), not the fewest movable pages: fewer targets, so less reclaim for them";
    EvacuateSplit => "evacuate_split", "next", "the policy's evacuations (defrag, claimed blocks, the high-order supply) split a large folio (page cache, shmem) they find no whole migration target for and move its base pages, instead of leaving the pageblock half evacuated (the kernel's migrate_pages on -ENOMEM)";
    KswapdMovableFree => "kswapd_movable_free", "next", "kswapd balances a zone on the free pages not on unmovable or reclaimable free lists (the room kept for non-movable requests, which a movable request takes last or not at all, does not count toward its high watermark), as the watermarks leave the highatomic reserve out; slab is shrunk only while the zone is short of free pages of any kind";
    EvacuateNoReclaim => "evacuate_no_reclaim", "next", "a migration target of an evacuation the policy runs in the allocating caller's context (`taint_when_full`, `highorder_evacuate`) never reclaims, as compaction's targets never do: when the free lists have no target the evacuation stops and the caller's slow path goes on";
    EvacuateSplitFirst => "evacuate_split_first", "next", "the policy's evacuations split a large folio (page cache, shmem) whose whole migration target the free lists cannot give, before any reclaim for it, and move its base pages (whose targets may reclaim as before): reclaim for a large target seldom makes a free block of its order, a base page's target needs no contiguity (implies evacuate_split's splitting)";
    ContigSplitFirst => "contig_split_first", "next", "with contig_split, a 1 GiB allocation splits a large folio (THP, page cache) whose whole migration target the free lists cannot give before it reclaims for that target, and moves its base pages (whose targets reclaim as before)";
    EvacuateAnyOrder => "evacuate_any_order", "next", "with evacuate_split_first, the evacuations' choice of pageblock (the high-order supply's cheapest block, taint_when_full's block) no longer passes over pageblocks holding a folio larger than any free movable block: the folio is split when it finds no whole target";
    ContigFitReserves => "contig_fit_reserves", "next", "with contig_fit, the fit test counts each zone's lowmem reserve (against the migration targets' highest zone) and its free highatomic pageblocks as kept back from the targets, as their watermark test keeps them: a candidate whose movable pages only fit in those is not tried";
    EvacuateKeepBlocks => "evacuate_keep_blocks", "next", "a migration target of the policy's evacuations never splits a free block of pageblock order or more: it takes the smallest fitting free movable block below a pageblock (clean SPBs, tainted ones above their reserve), else the move fails (then evacuate_split splits the folio, or the evacuation stops), so the free pageblocks that THP faults and 1 GiB pages need are not broken to move movable memory out of tainted SPBs";
    PinMigrate => "pin_migrate", "next", "a long-term pin (the embedder's FOLL_LONGTERM) of a movable block in a clean SPB first migrates the block to a page allocated without __GFP_MOVABLE inside a tainted SPB, as the kernel migrates folios out of ZONE_MOVABLE and CMA before it pins them: a pinned page then never keeps a clean SPB from becoming a 1 GiB page; with no room there (no reclaim, no fresh SPB tainted for it) the block is pinned in place";
    EvacuateKeepBand => "evacuate_keep_band", "next", "evacuate_keep_blocks's rule only while the zone holds no more free pageblocks than the high-order supply keeps (the gap between its low and high watermarks): above that band an evacuation's target may split a free pageblock as before, at or below it the free pageblocks are left to THP faults and 1 GiB pages";
    SupplyKeepBlocks => "supply_keep_blocks", "next", "evacuate_keep_blocks's rule for the high-order supply's own evacuations (highorder_supply, highorder_evacuate): an evacuation run to make a free pageblock never splits another one for its targets (it takes fragments or stops), while the evacuations that make room for non-movable growth keep the normal targets";
    BoostMovable => "boost_movable", "next", "with no_watermark_boost, watermark boosting stays on after the fallbacks of movable requests (a movable allocation stealing from another type's pageblock: the kernel's boost, which makes kswapd reclaim to undo fragmentation), and stays off after the claims of non-movable requests, which the series makes on purpose inside tainted SPBs";
    RefillNoTaint => "refill_no_taint", "next", "a per-CPU refill of a non-movable type taints a clean or empty SPB for the caller's own page at most: the rest of the batch comes from tainted (or lost) SPBs, or the refill stops";
    TaintRoomy => "taint_roomy", "next", "when a non-movable request must steal a page in a clean SPB (no pageblock there could be claimed), it steals in the fullest clean SPB with at least a pageblock of free pages, so the following requests find room in the SPB it taints instead of tainting the next";
    SplitBeforeTaint => "split_before_taint", "next", "with taint_when_full, when no pageblock of the tainted SPBs can be evacuated the usual way (each holding a THP or a folio no free block fits), the last step before tainting a clean SPB evacuates one holding a THP: the THP moves to a free pageblock if there is one, else it is split and its base pages move (the kernel's migrate_pages on -ENOMEM)";
    RefillOneTaint => "refill_one_taint", "next", "refill_no_taint's rule, except that the batch's later pages may also come from the one SPB the caller's page came from (a refill taints one SPB at most, and fills from the room it tainted)";
    MovableEmptyFirst => "movable_empty_first", "next", "a movable request that no clean SPB can serve takes an empty SPB before the room of tainted SPBs above their reserve, which is left to non-movable growth";
    EvacuateBeforeEmpty => "evacuate_before_empty", "next", "with taint_when_full, a non-movable request that may reclaim and still has ALLOC_NOFRAGMENT (the fast path, the slow path's first tries) does not take an empty SPB (PASS_3) while a tainted SPB of its zone holds movable pages and the zone is above its min watermark: it fails there, and the slow path's taint_when_full evacuates a pageblock of the tainted SPBs first (an empty SPB only when nothing could move); the zones below it give only their tainted or lost SPBs' room meanwhile";
    DefragUndone => "defrag_undone", "next", "a defrag run of a tainted SPB that holds at least as many movable pages as when its previous run ended plus the pages that run moved (movable allocations took all the room back) does not move them again: it waits the no-progress cooldown, and the synchronous evacuations make the room when non-movable demand needs it";
    DefragThpLast => "defrag_thp_last", "next", "a defrag run of a tainted SPB left without a free pageblock, that found no pageblock to evacuate the usual way (each holds a THP or a folio no free block fits), evacuates one holding a THP, moved whole or split, without evacuate_thp's credit: a tainted SPB keeps a pageblock of room for the requests that cannot evacuate (atomic ones)";
    EvacuateHeadroom => "evacuate_headroom", "next", "with taint_when_full, an evacuation in a zone whose tainted SPBs have not a single free page left evacuates a second pageblock when the first moved pages: the request takes the first, and the second is room for the requests that cannot evacuate (atomic ones), which would otherwise taint a clean or empty SPB";
    DefragStartGate => "defrag_start_gate", "next", "a tainted SPB's defrag run is queued only when its stop test does not already hold, and a run that stops before its first pageblock (the stop test holds again) starts no no-progress cooldown: patch 15's start test (at most one free pageblock) and stop test (three pageblocks' worth of free pages) overlap, and a run started in the overlap stops at once and sets the 5 s cooldown, during which the SPB's free pages can run out with no run to make room";
    PinMakeRoom => "pin_make_room", "next", "with pin_migrate, a long-term pin whose block the pin SPB has no free block for first makes room there, moving out unpinned movable memory (the cheapest movable-only pageblock with no pinned block for a pin of pageblock order, one unpinned block of the pin's order below it) to memory outside the pin SPB, without reclaim: without it the next pin SPB is the fullest clean SPB with a free block, which in a full machine is another SPB for nearly every pinned THP, and the pins spread over every clean SPB";
    ReserveNeedsClean => "reserve_needs_clean", "next", "the tainted SPBs' reserve (movable allocations and compaction targets keep out of it) applies in a zone only while that zone or a zone above it (whose requests fall back into it) holds an SPB it protects, a clean or empty SPB not lost for good: when every such SPB is tainted or lost to reservations or holes no request can taint anything that could become a 1 GiB page, and the reserve only keeps free memory from movable requests";
}

/// The switches that are spb-next's own ideas and on in `spb-next` (off in `spb`).
pub const NEXT_SWITCHES: &[SpbSwitch] = &[
    SpbSwitch::TaintWhenFull,
    SpbSwitch::RefuseFast,
    SpbSwitch::ContigSplit,
    SpbSwitch::ContigFit,
    SpbSwitch::ContigPinned,
    SpbSwitch::HighorderSupply,
    SpbSwitch::CompactFragments,
    SpbSwitch::HighorderEvacuate,
    SpbSwitch::WorkerNoReclaim,
    SpbSwitch::EvacuateThp,
    SpbSwitch::ContigCleanFirst,
    SpbSwitch::KswapdMovableFree,
    SpbSwitch::EvacuateSplitFirst,
    SpbSwitch::EvacuateNoReclaim,
    SpbSwitch::ContigFitReserves,
    SpbSwitch::PinMigrate,
    SpbSwitch::SplitBeforeTaint,
    SpbSwitch::MovableEmptyFirst,
    SpbSwitch::RefillOneTaint,
    SpbSwitch::EvacuateBeforeEmpty,
    SpbSwitch::ReserveNeedsClean,
];
/// spb-next's ideas that did not help where measured (docs/spb-next.md): off in both
/// policies, available with `-on:`.
pub const NEXT_OFF_SWITCHES: &[SpbSwitch] = &[
    SpbSwitch::ContigTargets,
    SpbSwitch::MovableZoneOrder,
    SpbSwitch::EvacNoSteal,
    SpbSwitch::MovableBestFit,
    SpbSwitch::SpareOpportunistic,
    SpbSwitch::RefillNoSteal,
    SpbSwitch::EvacuateSplit,
    SpbSwitch::DefragDeep,
    SpbSwitch::EvacuateReclaimClean,
    SpbSwitch::ContigSplitFirst,
    SpbSwitch::EvacuateAnyOrder,
    SpbSwitch::EvacuateKeepBlocks,
    SpbSwitch::EvacuateKeepBand,
    SpbSwitch::SupplyKeepBlocks,
    SpbSwitch::BoostMovable,
    SpbSwitch::RefillNoTaint,
    SpbSwitch::TaintRoomy,
    SpbSwitch::DefragUndone,
    SpbSwitch::DefragThpLast,
    SpbSwitch::EvacuateHeadroom,
    SpbSwitch::DefragStartGate,
    SpbSwitch::PinMakeRoom,
];

/// A set of switches (bit i = switch i on).
///
/// # Invariants
///
/// Only the bits of named switches ([`SpbSwitches::named`]) are ever set: every constructor
/// masks, so two sets that switch the same behaviours compare equal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SpbSwitches(u128);

// Every switch has a bit in the set.
const _: () = assert!(SpbSwitch::ALL.len() <= u128::BITS as usize);

impl SpbSwitches {
    /// `spb`'s default set: every switch of the series and of spb's own choices, except
    /// `refuse_literal` and spb-next's ideas ([`NEXT_SWITCHES`]).
    pub fn all_on() -> Self {
        let mut s = SpbSwitches(0);
        for w in SpbSwitch::ALL {
            s.set(*w, true);
        }
        s.set(SpbSwitch::RefuseLiteral, false);
        for w in NEXT_SWITCHES.iter().chain(NEXT_OFF_SWITCHES) {
            s.set(*w, false);
        }
        s
    }
    /// `spb-next`'s default set: spb's plus spb-next's ideas.
    pub fn next_on() -> Self {
        let mut s = Self::all_on();
        for w in NEXT_SWITCHES {
            s.set(*w, true);
        }
        s
    }
    /// Every named switch (the mask of meaningful bits).
    pub fn named() -> Self {
        SpbSwitches(SpbSwitch::ALL.iter().fold(0, |m, w| m | 1 << *w as u8))
    }
    /// The set whose bit i switches switch i on; bits that name no switch are dropped.
    pub fn from_bits(bits: u128) -> Self {
        SpbSwitches(bits & Self::named().0)
    }
    /// The set as bits (bit i = switch i on).
    pub fn bits(self) -> u128 {
        self.0
    }
    #[inline(always)]
    pub fn on(self, w: SpbSwitch) -> bool {
        self.0 & (1 << w as u8) != 0
    }
    pub fn set(&mut self, w: SpbSwitch, v: bool) {
        if v {
            self.0 |= 1 << w as u8;
        } else {
            self.0 &= !(1 << w as u8);
        }
    }
    pub fn without(mut self, w: SpbSwitch) -> Self {
        self.set(w, false);
        self
    }
    pub fn with(mut self, w: SpbSwitch) -> Self {
        self.set(w, true);
        self
    }
}
