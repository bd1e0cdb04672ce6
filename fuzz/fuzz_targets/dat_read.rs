//! The trace-cmd `.dat` reader on arbitrary bytes: never a panic; every error names the file.
//! The input is written to a file (the reader works on files) and read to the end, at most
//! 1 000 000 items.
#![no_main]
use libfuzzer_sys::fuzz_target;
use spb_lab::trace::dat::DatReader;

fuzz_target!(|data: &[u8]| {
    let p = std::env::temp_dir().join(format!("spb-fuzz-{}.dat", std::process::id()));
    if std::fs::write(&p, data).is_err() {
        return;
    }
    let name = p.display().to_string();
    match DatReader::open(&p) {
        Err(e) => assert!(e.to_string().starts_with(&name), "{e}"),
        Ok(mut r) => {
            for _ in 0..1_000_000 {
                match r.next() {
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(e) => {
                        assert!(e.to_string().starts_with(&name), "{e}");
                        if !e.record_only {
                            break;
                        }
                    }
                }
            }
        }
    }
});
