//! Count the events of a trace-cmd `.dat` file with the native reader and report the decode
//! speed: `cargo run --release -p spb-lab --example dat_count -- FILE.dat`.
//! (Used for the cross-check against `trace-cmd report` and for BENCHMARKS.md.)
fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: dat_count FILE.dat");
        std::process::exit(2);
    };
    if std::env::args().nth(2).as_deref() == Some("--gfp") {
        // gfp_flags strings as rendered, with counts (to compare with `trace-cmd report`)
        let mut r = spb_lab::trace::dat::DatReader::open(&path).expect("open");
        let mut m = std::collections::BTreeMap::<String, u64>::new();
        while let Ok(Some(l)) = r.next() {
            if let spb_lab::trace::Line::Event(rec) = l {
                if !rec.gfp_text.is_empty() {
                    *m.entry(String::from_utf8_lossy(rec.gfp_text).into_owned())
                        .or_default() += 1;
                }
            }
        }
        for (k, v) in m {
            println!("gfp_flags={k} {v}");
        }
        return;
    }
    let t0 = std::time::Instant::now();
    match spb_lab::trace::dat::count_dat(&path) {
        Ok(m) => {
            let s = t0.elapsed().as_secs_f64();
            let n: u64 = m
                .iter()
                .filter(|(k, _)| !k.starts_with("lost") && *k != "bad_records")
                .map(|(_, v)| *v)
                .sum();
            for (k, v) in &m {
                println!("{k} {v}");
            }
            println!(
                "events {n} in {s:.2} s wall: {:.2} M events/s",
                n as f64 / s / 1e6
            );
        }
        Err(e) => {
            eprintln!("dat_count: {e}");
            std::process::exit(3);
        }
    }
}
