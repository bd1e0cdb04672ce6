//! Writes the HTML report of the synthetic sample document, for demos and the browser test.
//!
//! `cargo run -p spb-lab --example sample_report -- OUTDIR [SPBS]`
//!
//! Writes OUTDIR/index.html, OUTDIR/timeline-*.csv, OUTDIR/runs.json (the input document) and
//! OUTDIR/report-expect.json (element counts the page must have), then prints the plain-text
//! summary and the terminal map of the first run's end state.
use std::path::PathBuf;

use spb_lab::report::{
    report_expect, sample_doc, sample_doc_with, summary_table, terminal_map, write_report,
    SampleSpec,
};

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().unwrap_or_else(|| "out/sample-report".into()));
    let doc = match args.next() {
        Some(n) => sample_doc_with(&SampleSpec {
            spbs: n.parse().expect("SPBS must be a number"),
            ..SampleSpec::default()
        }),
        None => sample_doc(),
    };
    write_report(&dir, &doc, "spb sample report").expect("write report");
    let expect = serde_json::to_string_pretty(&report_expect(&doc)).unwrap();
    std::fs::write(dir.join("report-expect.json"), expect).expect("write report-expect.json");
    std::fs::write(dir.join("runs.json"), serde_json::to_string(&doc).unwrap())
        .expect("write runs.json");
    print!("{}", summary_table(&doc));
    if let Some(m) = doc.runs.first().and_then(|r| r.maps.last()) {
        print!(
            "{}",
            terminal_map(m, std::io::IsTerminal::is_terminal(&std::io::stdout()))
        );
    }
    eprintln!("wrote {}", dir.join("index.html").display());
}
