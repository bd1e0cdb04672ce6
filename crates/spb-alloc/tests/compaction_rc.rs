//! Direct compaction reports the best zone's outcome, as `try_to_compact_pages` does
//! (`rc = max(status, rc)`), so the slow path's decisions read Normal's result and not the
//! last zone's (DMA32 here, skipped for a Normal request).

mod common;
use common::*;
use spb_alloc::*;

#[test]
fn a_costly_noretry_request_reclaims_once_after_a_failed_compaction() {
    for kind in PolicyKind::ALL {
        let mut a = Allocator::new(&tiny_two_zone(2), quiet(kind)).unwrap();
        let mut env = TrackEnv::default();
        // DMA32 full (compaction there is skipped); Normal half free in single pages between
        // pinned movable pages (compaction there runs and fails)
        for zi in 0..2 {
            let span = a.zones()[zi].span();
            for p in span.start..span.end {
                a.alloc_at(p, 0, Gfp::HIGHUSER_MOVABLE, p as u32).unwrap();
                env.loc.insert(p as u32, (p, 0));
                env.pinned.insert(p as u32);
            }
            if zi == 1 {
                for p in (span.start..span.end).step_by(2) {
                    a.free(p, 0, 0).unwrap();
                    env.loc.remove(&(p as u32));
                }
            }
        }
        let order = a.geo().costly_order() + 1;
        let gfp = Gfp::HIGHUSER_MOVABLE.with(Gfp::NORETRY).with(Gfp::NOWARN);
        let r = a.alloc(AllocRequest::new(order, gfp), &mut env);
        assert!(r.is_err(), "{kind:?}: nothing can be freed or moved");
        assert!(a.vm().get(Vm::CompactFail) >= 1, "{kind:?}: compaction ran");
        // Normal's compaction ran and failed (COMPLETE or PARTIAL_SKIPPED, not SKIPPED), so
        // the request goes on to one round of direct reclaim and compaction
        assert_eq!(
            a.vm().get(Vm::AllocstallNormal),
            1,
            "{kind:?}: one direct reclaim"
        );
    }
}
