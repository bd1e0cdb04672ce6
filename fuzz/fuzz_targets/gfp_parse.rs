//! spb_alloc::gfp::parse never panics; whatever it accepts re-prints (with both flag tables)
//! to a string that parses back to the same mask; and every mask's printed form parses back.
#![no_main]
use libfuzzer_sys::fuzz_target;
use spb_alloc::gfp::{parse, FlagOrder, Gfp};

fn round_trip(g: Gfp) {
    for order in [FlagOrder::Modern, FlagOrder::Legacy] {
        let s = g.fmt_trace(order).to_string();
        assert_eq!(parse(&s), Ok(g), "{:?} printed with {:?} as {:?}", g, order, s);
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        match parse(s) {
            Ok(g) => round_trip(g),
            Err(e) => {
                // the error names a token of the input at its byte offset
                assert!(e.position <= s.len(), "{:?} for {:?}", e, s);
                assert!(s[e.position..].starts_with(e.token.as_str()), "{:?} for {:?}", e, s);
                let _ = e.to_string();
            }
        }
    }
    if data.len() >= 4 {
        round_trip(Gfp(u32::from_le_bytes([data[0], data[1], data[2], data[3]])));
    }
});
