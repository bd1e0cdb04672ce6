//! The allocator's event stream: the fields of kmem:mm_page_alloc_extfrag and the series'
//! tracepoints (patch 40), collected into a bounded log when enabled.

use alloc::collections::VecDeque;

use crate::geometry::Pfn;
use crate::gfp::Gfp;
use crate::migratetype::MigrateType;
use crate::superpageblock::Category;

/// Which pass of the spb walk served an allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pass {
    Pass1,
    Pass2,
    Pass2b,
    Pass2c,
    Pass2d,
    Pass3,
    Pass4,
    Fail,
}

/// One event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// mm_page_alloc_extfrag.
    ExtFrag {
        zone: u8,
        pfn: Pfn,
        alloc_order: u8,
        fallback_order: u8,
        alloc_mt: MigrateType,
        fallback_mt: MigrateType,
        fragmenting: bool,
        change_ownership: bool,
    },
    /// An SPB changed category (spb_pb_taint at SPB level).
    SpbCategory {
        zone: u8,
        spb: u32,
        from: Category,
        to: Category,
        gfp: Gfp,
        order: u8,
    },
    /// spb_alloc_walk: outcome and SPBs visited.
    SpbWalk {
        zone: u8,
        pass: Pass,
        visited: u32,
        order: u8,
        mt: MigrateType,
    },
    /// spb_claim_block_refused.
    SpbClaimRefused {
        zone: u8,
        pfn: Pfn,
        reason: &'static str,
    },
    /// spb_evacuate_for_order_done / defrag summary.
    SpbEvacuate {
        zone: u8,
        spb: u32,
        pages_moved: u64,
        kind: &'static str,
    },
    /// spb_alloc_atomic_relax.
    SpbAtomicRelax { step: u8, gfp: Gfp, order: u8 },
    /// A request refused by spb (patches 26 / 35).
    SpbRefused {
        gfp: Gfp,
        order: u8,
        rule: &'static str,
    },
}

/// A bounded log of events (oldest dropped first), off unless enabled.
#[derive(Clone, Debug, Default)]
pub struct EventLog {
    pub(crate) enabled: bool,
    pub(crate) capacity: usize,
    pub(crate) events: VecDeque<Event>,
    pub(crate) dropped: u64,
}

impl EventLog {
    /// Whether events are recorded.
    pub fn enabled(&self) -> bool {
        self.enabled
    }
    /// Events kept at most (the oldest are dropped beyond).
    pub fn capacity(&self) -> usize {
        self.capacity
    }
    /// The events kept, oldest first.
    pub fn events(&self) -> &VecDeque<Event> {
        &self.events
    }
    /// Events dropped because the log was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
    #[inline]
    pub fn push(&mut self, e: Event) {
        if !self.enabled {
            return;
        }
        if self.events.len() >= self.capacity.max(1) {
            self.events.pop_front();
            self.dropped += 1;
        }
        self.events.push_back(e);
    }
    /// Take all events out.
    pub fn drain(&mut self) -> impl Iterator<Item = Event> + '_ {
        self.events.drain(..)
    }
}
