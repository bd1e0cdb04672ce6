mod common;
use common::*;
use spb_alloc::*;

#[test]
fn alloc_free_everything_all_policies() {
    for kind in PolicyKind::ALL {
        let mut a = Allocator::new(&tiny(4), cfg(kind)).unwrap();
        let total = a.free_pages();
        let mut env = NoEnv;
        let mut got = vec![];
        while let Ok(p) = a.alloc(
            AllocRequest::new(0, Gfp::KERNEL).cpu((got.len() % 2) as u16),
            &mut env,
        ) {
            got.push(p);
        }
        assert!(
            got.len() as u64 > total / 2,
            "{:?}: only {} of {} pages",
            kind,
            got.len(),
            total
        );
        let mut s = got.clone();
        s.sort();
        s.dedup();
        assert_eq!(s.len(), got.len(), "a page was handed out twice");
        for p in got {
            a.free(p, 0, 0).unwrap();
        }
        a.drain_all_pcp();
        a.check().unwrap();
        assert_eq!(a.free_pages(), total);
    }
}

#[test]
fn x86_16g_alloc_and_dump() {
    use spb_alloc::layout::*;
    let g = Geometry::X86_64;
    let l = MemoryLayout {
        geometry: g,
        zones: vec![ZoneSpec::plain(
            ZoneKind::Normal,
            PfnRange::new(1 << 20, 5 << 20),
        )],
    };
    let mut a = Allocator::new(
        &l,
        Config {
            check_every: 0,
            ..Config::default()
        },
    )
    .unwrap();
    let mut env = NoEnv;
    for i in 0..10000u32 {
        let gfp = if i % 7 == 0 {
            Gfp::KERNEL
        } else {
            Gfp::HIGHUSER_MOVABLE
        };
        a.alloc(AllocRequest::new((i % 3) as u8, gfp), &mut env)
            .unwrap();
    }
    a.check().unwrap();
    let bi = a.buddyinfo();
    assert!(bi.starts_with("Node 0, zone   Normal "));
    let pti = a.pagetypeinfo();
    assert!(pti.contains("Number of blocks type     Unmovable"));
    assert!(
        a.metadata_bytes_per_page() <= 16.1,
        "{}",
        a.metadata_bytes_per_page()
    );
}

#[test]
fn x86_layout_16g_builds_and_reports() {
    let l = MemoryLayout::x86_64(16 << 30, &X86Options::default()).unwrap();
    let a = Allocator::new(&l, Config::default()).unwrap();
    a.check().unwrap();
    let n = a.zone_by_kind(ZoneKind::Normal).unwrap();
    assert_eq!(a.zones()[n].spbs().len(), 13);
    let bi = a.buddyinfo();
    assert_eq!(bi.lines().count(), 3, "{}", bi);
}
