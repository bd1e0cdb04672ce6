//! The HTML page: one self-contained document (inline CSS, inline SVG, no script).

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::map::{content_class, content_counts, content_name, fmt_t, map_css, row_svg, CONTENTS};
use super::plots::{policy_hex, scenario_plots};
use super::{human_bytes, slug, summary_rows, thousands, Group, ReportError};
use crate::metrics::{BlockContent, RunsDoc, SpbMap};

/// Maps with more rows than this start with only the end-of-run moment unfolded.
const FOLD_ROWS: usize = 48;

/// HTML-escapes text and attribute values.
pub(crate) fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            _ => o.push(c),
        }
    }
    o
}

const CSS: &str = r#"
:root{--fg:#1c2330;--muted:#667085;--line:#e4e7ec;--bg:#f5f6f8;--card:#fff;--accent:#0b5cad;--best:#e3f4e8;--bestfg:#0f5c2e}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;background:var(--bg);color:var(--fg);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue","DejaVu Sans",Arial,sans-serif}
.wrap{max-width:1680px;margin:0 auto;padding:20px 28px 40px}
header.top{display:flex;flex-wrap:wrap;align-items:baseline;gap:6px 24px;margin-bottom:14px}
h1{font-size:21px;font-weight:650;margin:0;letter-spacing:-.01em}
.sub{color:var(--muted);font-size:13px}
nav.toc{font-size:13px}
nav.toc a{margin-right:14px}
a{color:var(--accent);text-decoration:none}
a:hover{text-decoration:underline}
section.scenario{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:16px 22px 20px;margin:0 0 22px;box-shadow:0 1px 2px rgba(16,24,40,.04)}
h2{font-size:18px;font-weight:650;margin:0 0 2px}
h2 code{font:inherit}
.meta{color:var(--muted);font-size:13px;margin:0 0 12px}
h3{font-size:13px;text-transform:uppercase;letter-spacing:.06em;color:var(--muted);font-weight:600;margin:20px 0 8px;padding-bottom:4px;border-bottom:1px solid var(--line)}
h3 .aside{text-transform:none;letter-spacing:0;font-weight:400;float:right}
table.t{border-collapse:collapse;font-size:13px;font-variant-numeric:tabular-nums}
table.t th,table.t td{padding:4px 12px;border-bottom:1px solid var(--line);text-align:right;white-space:nowrap}
table.t th:first-child,table.t td:first-child{text-align:left;padding-left:0}
table.t thead th{font-weight:600;border-bottom:2px solid #cfd4dc;vertical-align:bottom}
table.t tbody tr:hover td,table.t tbody tr:hover th{background:#fafbfc}
table.t tbody th{font-weight:500}
table.t td.best{background:var(--best);color:var(--bestfg);font-weight:650}
table.t .note{color:var(--muted);font-weight:400;font-size:11.5px;margin-left:5px}
table.t td.best .note{color:#3d7a55}
.sw{display:inline-block;width:14px;height:3px;border-radius:2px;vertical-align:middle;margin-right:6px}
.sw.box{width:11px;height:11px;border-radius:2px;border:1px solid rgba(0,0,0,.18)}
.sw.dash{background:repeating-linear-gradient(90deg,#777 0 6px,transparent 6px 10px)}
.legend{display:flex;flex-wrap:wrap;gap:4px 16px;font-size:12.5px;color:#344054;margin:0 0 8px}
.legend span.i{white-space:nowrap}
.plots{display:grid;grid-template-columns:repeat(auto-fill,minmax(380px,1fr));gap:8px 18px}
figure{margin:0}
figcaption{font-size:13px;font-weight:600;margin:4px 0 0 4px}
figcaption .note{font-weight:400;color:var(--muted);margin-left:6px;font-size:12px}
svg.plot{display:block;width:100%;height:auto}
svg.plot text{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",Arial,sans-serif}
.tables{display:flex;flex-wrap:wrap;gap:0 56px;align-items:flex-start}
.tables>div{flex:0 1 auto;min-width:0}
.tables h3 .aside{margin-left:24px}
.files{font-size:12.5px;color:var(--muted);margin-top:6px}
details.moment{margin:6px 0 10px}
details.moment>summary{cursor:pointer;font-size:13px;font-weight:600;padding:3px 0;color:#344054}
details.moment>summary .muted{font-weight:400}
.muted{color:var(--muted)}
.map-grid{display:grid;column-gap:0;row-gap:2px;align-items:center;margin-top:6px;font:10px/10px ui-monospace,"DejaVu Sans Mono",Menlo,Consolas,monospace}
.map-grid .ph{font:12px/1.3 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",Arial,sans-serif;padding:0 0 4px 10px;border-bottom:1px solid var(--line);margin-bottom:3px;min-width:0;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.map-grid .ph b{font-weight:650}
.map-grid .corner{border-bottom:1px solid var(--line);margin-bottom:3px;align-self:stretch;display:flex;align-items:flex-end;padding-bottom:4px}
.map-grid .lbl{color:#475467;padding-right:6px;white-space:nowrap}
.map-grid .cat{padding:0 5px 0 10px;white-space:nowrap;color:var(--muted)}
.map-grid .cat.c-tainted{color:#b2182b}
.map-grid .cat.c-clean{color:#1f6fa8}
.map-grid .cat.c-isolated{color:#007a58}
.map-grid .cat.c-empty{color:#8a94a6}
.map-grid .zs{margin-top:5px}
svg.spb-row{display:block;width:100%;height:10px;min-width:120px}
svg.spb-row path{fill:none;stroke-width:1}
svg.spb-row:hover{outline:1px solid #1c2330;outline-offset:0}
.nomap{color:var(--muted)}
.hint{font-size:12.5px;color:var(--muted);margin:0 0 6px}
details.raw>summary{cursor:pointer;font-size:13px;color:#344054;margin-top:14px}
footer{color:var(--muted);font-size:12.5px;margin-top:8px}
footer dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:6px 0}
footer dt{font-weight:600;color:#475467}
footer dd{margin:0}
"#;

/// The whole page.
pub(crate) fn render_page(
    doc: &RunsDoc,
    groups: &[Group<'_>],
    csv_names: &[String],
    title: &str,
) -> Result<String, ReportError> {
    let mut o = String::with_capacity(1 << 20);
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{CSS}{}</style>\n</head>\n<body>\n<div class=\"wrap\">\n",
        esc(title),
        map_css()
    );
    let policies: BTreeSet<&str> = doc.runs.iter().map(|r| r.policy.as_str()).collect();
    let _ = writeln!(
        o,
        "<header class=\"top\"><h1>{}</h1><span class=\"sub\">{} run{} · {} scenario{} · policies: {}</span></header>",
        esc(title),
        doc.runs.len(),
        plural(doc.runs.len()),
        groups.len(),
        plural(groups.len()),
        esc(&policies.into_iter().collect::<Vec<_>>().join(", "))
    );
    if groups.len() > 1 {
        o.push_str("<nav class=\"toc\">");
        for (i, g) in groups.iter().enumerate() {
            let _ = write!(
                o,
                "<a href=\"#{}\">{}</a>",
                anchor(i, g.scenario),
                esc(g.scenario)
            );
        }
        o.push_str("</nav>\n");
    }
    if groups.is_empty() {
        o.push_str("<p class=\"meta\">No runs.</p>\n");
    }
    for (i, (g, csv)) in groups.iter().zip(csv_names).enumerate() {
        scenario(&mut o, i, g, csv)?;
    }
    footer(&mut o);
    o.push_str("</div>\n</body>\n</html>\n");
    Ok(o)
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn anchor(i: usize, scenario: &str) -> String {
    format!("s{i}-{}", slug(scenario))
}

fn scenario(o: &mut String, idx: usize, g: &Group<'_>, csv: &str) -> Result<(), ReportError> {
    let r0 = g.runs[0];
    let _ = writeln!(
        o,
        "<section class=\"scenario\" id=\"{}\">",
        anchor(idx, g.scenario)
    );
    let kind = if g.runs.iter().any(|r| r.trace.is_some()) {
        "trace replay"
    } else {
        "scenario"
    };
    let _ = writeln!(o, "<h2>{}</h2>", esc(g.scenario));
    let seeds: BTreeSet<u64> = g.runs.iter().map(|r| r.seed).collect();
    let seeds = seeds
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let _ = writeln!(
        o,
        "<p class=\"meta\">{kind} · {} machine · {} s virtual · seed {} · {} run{}</p>",
        human_bytes(r0.memory_bytes),
        fmt_t(r0.virtual_seconds),
        esc(&seeds),
        g.runs.len(),
        plural(g.runs.len())
    );

    // a. Summary, and d. trace stats beside it.
    o.push_str("<div class=\"tables\">\n<div>\n<h3>Summary <span class=\"aside\">Normal zone unless noted · best value highlighted</span></h3>\n");
    summary_table(o, g);
    o.push_str("</div>\n");
    if g.runs.iter().any(|r| r.trace.is_some()) {
        o.push_str("<div>\n");
        trace_table(o, g);
        o.push_str("</div>\n");
    }
    o.push_str("</div>\n");
    bill_table(o, g);

    // b. Plots.
    let _ = writeln!(
        o,
        "<h3>Over time <span class=\"aside\">data: <a href=\"{}\">{}</a></span></h3>",
        esc(csv),
        esc(csv)
    );
    o.push_str("<div class=\"legend\">");
    for (i, l) in g.labels.iter().enumerate() {
        let _ = write!(
            o,
            "<span class=\"i\"><span class=\"sw\" style=\"background:{}\"></span>{}</span>",
            policy_hex(i),
            esc(l)
        );
    }
    o.push_str("<span class=\"i muted\"><span class=\"sw dash\"></span>reference (grey when the same for all runs)</span></div>\n");
    o.push_str("<div class=\"plots\">\n");
    for p in scenario_plots(&g.runs)? {
        let note = if p.note.is_empty() {
            String::new()
        } else {
            format!("<span class=\"note\">{}</span>", esc(&p.note))
        };
        let svg = p.svg.replacen(
            "<svg class=\"plot\" ",
            &format!("<svg class=\"plot\" aria-label=\"{}\" ", esc(p.title)),
            1,
        );
        let _ = write!(
            o,
            "<figure><figcaption>{}{note}</figcaption>\n{svg}</figure>\n",
            esc(p.title)
        );
    }
    o.push_str("</div>\n");

    // c. Maps.
    maps(o, g);

    vmstat_table(o, g);
    o.push_str("</section>\n");
    Ok(())
}

fn col_headers(o: &mut String, g: &Group<'_>, first: &str) {
    let _ = write!(o, "<thead><tr><th>{first}</th>");
    for (i, l) in g.labels.iter().enumerate() {
        let _ = write!(
            o,
            "<th><span class=\"sw\" style=\"background:{}\"></span>{}</th>",
            policy_hex(i),
            esc(l)
        );
    }
    o.push_str("</tr></thead>\n");
}

fn summary_table(o: &mut String, g: &Group<'_>) {
    o.push_str("<table class=\"t summary\">\n");
    col_headers(o, g, "");
    o.push_str("<tbody>\n");
    let mut rows = summary_rows(&g.runs);
    rows.push(super::SummaryRow {
        label: "Events",
        help: "Allocation requests and frees processed",
        better: super::Better::None,
        cells: g
            .runs
            .iter()
            .map(|r| super::Cell {
                text: thousands(r.events),
                note: String::new(),
                key: None,
                tip: String::new(),
            })
            .collect(),
    });
    rows.push(super::SummaryRow {
        label: "Wall time",
        help: "Simulation wall-clock time",
        better: super::Better::None,
        cells: g
            .runs
            .iter()
            .map(|r| super::Cell {
                text: format!("{:.2} s", r.wall_seconds),
                note: String::new(),
                key: None,
                tip: String::new(),
            })
            .collect(),
    });
    for row in &rows {
        let best = row.best();
        let _ = write!(
            o,
            "<tr><th title=\"{}\">{}</th>",
            esc(row.help),
            esc(row.label)
        );
        for (c, b) in row.cells.iter().zip(best) {
            let class = if b { " class=\"best\"" } else { "" };
            let tip = if c.tip.is_empty() {
                String::new()
            } else {
                format!(" title=\"{}\"", esc(&c.tip))
            };
            let note = if c.note.is_empty() {
                String::new()
            } else {
                format!("<span class=\"note\">{}</span>", esc(&c.note))
            };
            let _ = write!(o, "<td{class}{tip}>{}{note}</td>", esc(&c.text));
        }
        o.push_str("</tr>\n");
    }
    o.push_str("</tbody></table>\n");
}

/// The bill (`runs[].cost`) side by side, when some run has one.
fn bill_table(o: &mut String, g: &Group<'_>) {
    let rows = super::bill::bill_rows(&g.runs);
    if rows.is_empty() {
        return;
    }
    o.push_str("<h3>The bill <span class=\"aside\">pages touched · direct work per request in the caller's context · background per virtual second · see docs/metrics.md</span></h3>\n<table class=\"t bill\">\n");
    col_headers(o, g, "");
    o.push_str("<tbody>\n");
    for r in rows {
        let _ = write!(
            o,
            "<tr><th title=\"{}\">{}</th>",
            esc(r.help),
            esc(&r.label)
        );
        for c in &r.cells {
            let _ = write!(o, "<td>{}</td>", esc(c));
        }
        o.push_str("</tr>\n");
    }
    o.push_str("</tbody></table>\n");
}

fn trace_table(o: &mut String, g: &Group<'_>) {
    o.push_str("<h3>Trace replay <span class=\"aside\">replay statistics</span></h3>\n<table class=\"t trace\">\n");
    col_headers(o, g, "");
    o.push_str("<tbody>\n");
    let reasons: BTreeSet<&str> = g
        .runs
        .iter()
        .filter_map(|r| r.trace.as_ref())
        .flat_map(|t| t.skipped.keys().map(String::as_str))
        .collect();
    let mut line = |label: String, f: &dyn Fn(&crate::metrics::TraceStats) -> String| {
        let _ = write!(o, "<tr><th>{}</th>", esc(&label));
        for r in &g.runs {
            let v = r.trace.as_ref().map(f).unwrap_or_else(|| "—".into());
            let _ = write!(o, "<td>{v}</td>");
        }
        o.push_str("</tr>\n");
    };
    line("Trace lines".into(), &|t| thousands(t.lines));
    line("Parsed".into(), &|t| {
        let pct = if t.lines > 0 {
            100.0 * t.parsed as f64 / t.lines as f64
        } else {
            0.0
        };
        format!(
            "{}<span class=\"note\">{pct:.2}%</span>",
            thousands(t.parsed)
        )
    });
    for reason in reasons {
        let reason_owned = reason.to_string();
        line(format!("Skipped: {reason}"), &move |t| {
            thousands(t.skipped.get(&reason_owned).copied().unwrap_or(0))
        });
    }
    line("Frees of unknown pages".into(), &|t| {
        thousands(t.unknown_frees)
    });
    line("Fallback replays".into(), &|t| {
        thousands(t.fallback_replays)
    });
    line("Inferred bulk pages".into(), &|t| {
        thousands(t.inferred_bulk_pages)
    });
    o.push_str("</tbody></table>\n");
}

fn vmstat_table(o: &mut String, g: &Group<'_>) {
    let keys: BTreeSet<&str> = g
        .runs
        .iter()
        .flat_map(|r| r.vmstat.keys().map(String::as_str))
        .collect();
    if keys.is_empty() {
        return;
    }
    let _ = write!(
        o,
        "<details class=\"raw\"><summary>vmstat counters ({})</summary>\n<table class=\"t vmstat\">\n",
        keys.len()
    );
    col_headers(o, g, "counter");
    o.push_str("<tbody>\n");
    for k in keys {
        let _ = write!(o, "<tr><th>{}</th>", esc(k));
        for r in &g.runs {
            match r.vmstat.get(k) {
                Some(v) => {
                    let _ = write!(o, "<td>{}</td>", thousands(*v));
                }
                None => o.push_str("<td>—</td>"),
            }
        }
        o.push_str("</tr>\n");
    }
    o.push_str("</tbody></table></details>\n");
}

/// Per-moment counts of the map, by category base.
fn map_stats(m: &SpbMap) -> String {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    let mut lost = 0;
    for r in &m.rows {
        let base = r.category.split('+').next().unwrap_or("");
        if r.category.contains("tainted") || r.category.contains('+') {
            lost += 1;
        }
        match counts.iter_mut().find(|(k, _)| *k == base) {
            Some(c) => c.1 += 1,
            None => counts.push((base, 1)),
        }
    }
    let order = ["tainted", "clean", "empty", "isolated"];
    counts.sort_by_key(|(k, _)| order.iter().position(|o| o == k).unwrap_or(order.len()));
    let mut parts: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
    parts.push(format!("{lost} lost"));
    parts.join(" · ")
}

fn maps(o: &mut String, g: &Group<'_>) {
    let slots = g.runs.iter().map(|r| r.maps.len()).max().unwrap_or(0);
    if slots == 0 {
        return;
    }
    let bpr = g
        .runs
        .iter()
        .flat_map(|r| {
            r.maps
                .iter()
                .flat_map(|m| m.rows.iter().map(|x| x.blocks.len()))
        })
        .max()
        .unwrap_or(0);
    o.push_str("<h3>Superpageblock map <span class=\"aside\">one row per SPB, one cell per pageblock · hover a row for its counts</span></h3>\n");
    o.push_str("<div class=\"legend\">");
    for c in CONTENTS {
        let _ = write!(
            o,
            "<span class=\"i\"><span class=\"sw box sw-{}\"></span>{} <span class=\"muted\">{}</span></span>",
            content_class(c),
            content_name(c),
            esc(&letter_label(c))
        );
    }
    o.push_str("</div>\n");
    let _ = writeln!(
        o,
        "<p class=\"hint\">Each strip is one 1 GiB superpageblock ({bpr} pageblocks, physical order left to right); \
         maps are shown at {slots} moment{} with the runs side by side.</p>",
        plural(slots)
    );
    let max_rows = g
        .runs
        .iter()
        .flat_map(|r| r.maps.iter().map(|m| m.rows.len()))
        .max()
        .unwrap_or(0);
    for slot in 0..slots {
        // End-aligned: the last map of every run is the end of that run.
        let panels: Vec<Option<&SpbMap>> = g
            .runs
            .iter()
            .map(|r| {
                (slot + r.maps.len())
                    .checked_sub(slots)
                    .and_then(|k| r.maps.get(k))
            })
            .collect();
        let ts: BTreeSet<String> = panels.iter().flatten().map(|m| fmt_t(m.t)).collect();
        let end = slot + 1 == slots;
        let when = if ts.len() == 1 {
            format!("t = {} s", ts.iter().next().unwrap())
        } else {
            "t varies by run".into()
        };
        let open = end || max_rows <= FOLD_ROWS;
        let _ = writeln!(
            o,
            "<details class=\"moment\"{}><summary>{when}{}</summary>",
            if open { " open" } else { "" },
            if end {
                " <span class=\"muted\">· end of run</span>"
            } else {
                ""
            }
        );
        map_grid(o, g, &panels, ts.len() > 1);
        o.push_str("</details>\n");
    }
}

fn letter_label(c: BlockContent) -> String {
    match c.letter() {
        ' ' => String::new(),
        l => l.to_string(),
    }
}

fn map_grid(o: &mut String, g: &Group<'_>, panels: &[Option<&SpbMap>], show_t: bool) {
    let n = panels.len();
    let _ = write!(
        o,
        "<div class=\"map-grid\" style=\"grid-template-columns:max-content repeat({n},max-content minmax(0,1fr))\">\n<div class=\"corner muted\">SPB</div>"
    );
    for (i, p) in panels.iter().enumerate() {
        let stats = match p {
            Some(m) => {
                let t = if show_t {
                    format!("t = {} s · ", fmt_t(m.t))
                } else {
                    String::new()
                };
                format!("{t}{}", map_stats(m))
            }
            None => "no map".into(),
        };
        let _ = write!(
            o,
            "<div class=\"ph map-panel\" style=\"grid-column:span 2\" title=\"{}: {}\"><span class=\"sw\" style=\"background:{}\"></span><b>{}</b> <span class=\"muted\">{}</span></div>",
            esc(&g.labels[i]),
            esc(&stats),
            policy_hex(i),
            esc(&g.labels[i]),
            esc(&stats)
        );
    }
    o.push('\n');
    let rows = panels
        .iter()
        .flatten()
        .map(|m| m.rows.len())
        .max()
        .unwrap_or(0);
    let mut prev_zone: Option<&str> = None;
    for ri in 0..rows {
        let first = panels.iter().flatten().find_map(|m| m.rows.get(ri));
        let zone = first.map(|r| r.zone.as_str()).unwrap_or("");
        let zs = if prev_zone.is_some_and(|z| z != zone) {
            " zs"
        } else {
            ""
        };
        prev_zone = Some(zone);
        let _ = write!(o, "<div class=\"lbl{zs}\">{} #{ri}</div>", esc(zone));
        for p in panels {
            match p.and_then(|m| m.rows.get(ri)) {
                Some(row) => {
                    let base = slug(row.category.split('+').next().unwrap_or(""));
                    let _ = write!(
                        o,
                        "<div class=\"cat c-{base}{zs}\">{}</div>",
                        esc(&row.category)
                    );
                    let title = esc(&format!(
                        "{} #{ri} · pfn {:#x} · {}\n{}",
                        row.zone,
                        row.start_pfn,
                        row.category,
                        content_counts(&row.blocks)
                    ));
                    if zs.is_empty() {
                        row_svg(o, &row.blocks, &title);
                    } else {
                        // The zone gap goes on a wrapper so the strip keeps its height.
                        o.push_str("<div class=\"zs\">");
                        row_svg(o, &row.blocks, &title);
                        o.push_str("</div>");
                    }
                }
                None => {
                    let _ = write!(
                        o,
                        "<div class=\"cat{zs}\"></div><div class=\"nomap{zs}\">—</div>"
                    );
                }
            }
        }
        o.push('\n');
    }
    o.push_str("</div>\n");
}

fn footer(o: &mut String) {
    o.push_str(
        "<footer><dl>\
<dt>SPB</dt><dd>superpageblock: a 1 GiB-aligned group of 512 pageblocks (2 MiB) inside a zone.</dd>\
<dt>tainted</dt><dd>holds a non-movable page (unmovable, reclaimable or highatomic allocation).</dd>\
<dt>pinned / lost</dt><dd>pinned holds a boot-time reservation; lost is tainted, pinned or has a hole: it cannot become a 1 GiB page without freeing kernel memory.</dd>\
<dt>clean / empty</dt><dd>only free and movable pages / all free.</dd>\
<dt>lost floor</dt><dd>max(SPBs pinned or with holes, ⌈(non-movable + reserved pages) / pages per SPB⌉): no placement loses fewer.</dd>\
<dt>1 GiB probe</dt><dd>at the end of the run, allocate as many 1 GiB pages as possible (migrating movable pages, reclaiming clean page cache, shrinking slab; no swap, no OOM kill); the limit is what perfect packing would allow.</dd>\
</dl>Generated by spb-lab. Self-contained page: no script, no network.</footer>\n",
    );
}
