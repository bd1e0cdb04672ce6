//! The scenario TOML loader on arbitrary text: never a panic; an error names the file, and its
//! line (when given) is a line of the text; a scenario it accepts has a machine within the
//! documented memory bounds, a positive duration, and a layout that builds or is refused with
//! an error (never a panic).
#![no_main]
use libfuzzer_sys::fuzz_target;
use spb_lab::scenario::{key_line, Scenario, MAX_MEMORY, MIN_MEMORY};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match Scenario::from_toml(&text, "fuzz.toml") {
        Ok(sc) => {
            assert!((MIN_MEMORY..=MAX_MEMORY).contains(&sc.machine.memory));
            assert!(sc.duration_ns > 0);
            let _ = sc.visible_ram();
            if let Err(e) = spb_lab::sim::layout_of(&sc) {
                let _ = e.to_string();
            }
        }
        Err(e) => {
            let s = e.to_string();
            assert!(s.starts_with("fuzz.toml"), "{s}");
            if let Some(l) = e.line {
                assert!(l >= 1 && l <= text.lines().count().max(1) + 1, "line {l} of {}: {s}", text.lines().count());
            }
            if !e.key.is_empty() {
                let _ = key_line(&text, &e.key);
            }
        }
    }
});
