//! The superpageblock map: SVG strips for the HTML page and letters for the terminal.

use std::fmt::Write as _;

use crate::metrics::{BlockContent, SpbMap};

/// All contents, in legend order.
pub(crate) const CONTENTS: [BlockContent; 8] = [
    BlockContent::Free,
    BlockContent::Movable,
    BlockContent::Reclaimable,
    BlockContent::Unmovable,
    BlockContent::HighAtomic,
    BlockContent::Isolated,
    BlockContent::Reserved,
    BlockContent::Hole,
];

/// Index of `c` in [`CONTENTS`].
pub(crate) fn content_idx(c: BlockContent) -> usize {
    match c {
        BlockContent::Free => 0,
        BlockContent::Movable => 1,
        BlockContent::Reclaimable => 2,
        BlockContent::Unmovable => 3,
        BlockContent::HighAtomic => 4,
        BlockContent::Isolated => 5,
        BlockContent::Reserved => 6,
        BlockContent::Hole => 7,
    }
}

/// CSS class suffix of a content (short: the map is the bulk of the page).
pub(crate) fn content_class(c: BlockContent) -> char {
    ['f', 'm', 'e', 'u', 'h', 'i', 'r', 'x'][content_idx(c)]
}

/// Map colours. Built on the Okabe–Ito colour-blind-safe palette: the calm majority (free,
/// movable) is light, unmovable is a dark red that stands out by lightness as well as hue for
/// every kind of colour vision, reserved is near-black, holes are white (no memory).
pub(crate) fn content_color(c: BlockContent) -> &'static str {
    match c {
        BlockContent::Free => "#e9e9e9",
        BlockContent::Movable => "#9fcbe9",
        BlockContent::Reclaimable => "#e69f00",
        BlockContent::Unmovable => "#b2182b",
        BlockContent::HighAtomic => "#cc79a7",
        BlockContent::Isolated => "#009e73",
        BlockContent::Reserved => "#333333",
        BlockContent::Hole => "#ffffff",
    }
}

pub(crate) fn content_name(c: BlockContent) -> &'static str {
    match c {
        BlockContent::Free => "free",
        BlockContent::Movable => "movable",
        BlockContent::Reclaimable => "reclaimable",
        BlockContent::Unmovable => "unmovable",
        BlockContent::HighAtomic => "highatomic",
        BlockContent::Isolated => "isolated",
        BlockContent::Reserved => "reserved",
        BlockContent::Hole => "hole",
    }
}

/// CSS rules for the map classes.
pub(crate) fn map_css() -> String {
    let mut s = String::new();
    for c in CONTENTS {
        let k = content_class(c);
        let col = content_color(c);
        let _ = write!(
            s,
            ".b{k}{{fill:{col}}}.k{k}{{stroke:{col}}}.sw-{k}{{background:{col}}}"
        );
    }
    s
}

/// Order in which contents are painted: the calm majority first, unmovable last (on top).
const PAINT_ORDER: [BlockContent; 8] = [
    BlockContent::Free,
    BlockContent::Movable,
    BlockContent::Hole,
    BlockContent::Isolated,
    BlockContent::Reclaimable,
    BlockContent::HighAtomic,
    BlockContent::Reserved,
    BlockContent::Unmovable,
];

/// Contents whose runs are widened by half a pageblock on each side so that a single pageblock
/// stays visible when 512 of them share a few hundred pixels.
fn emphasized(c: BlockContent) -> bool {
    matches!(
        c,
        BlockContent::Unmovable
            | BlockContent::Reclaimable
            | BlockContent::HighAtomic
            | BlockContent::Reserved
    )
}

/// Appends one map row as an inline SVG strip.
///
/// The strip is `viewBox="0 0 2n 1"` (two units per pageblock) stretched to the cell: a
/// background rect in the most common content, then for every other content one `<path>` whose
/// sub-paths are the run-length-merged runs of that content (`M x .5h w`, then relative
/// `m dx 0h w`, stroked one unit high), so a strip costs a few bytes per run, not per pageblock.
/// Runs of non-movable and reserved pageblocks are drawn half a pageblock wider on each side and
/// painted last (unmovable on top): one unmovable pageblock among 512 must not vanish.
pub(crate) fn row_svg(out: &mut String, blocks: &[BlockContent], title: &str) {
    let n = blocks.len().max(1);
    let mut counts = [0usize; 8];
    for &b in blocks {
        counts[content_idx(b)] += 1;
    }
    let bg = (0..8)
        .max_by_key(|&i| (counts[i], std::cmp::Reverse(i)))
        .unwrap_or(0);
    // Per content: path data and the x (in half pageblocks) where its last sub-path ended.
    let mut paths: [String; 8] = Default::default();
    let mut ends: [Option<i64>; 8] = [None; 8];
    let mut i = 0;
    while i < blocks.len() {
        let c = content_idx(blocks[i]);
        let mut j = i + 1;
        while j < blocks.len() && content_idx(blocks[j]) == c {
            j += 1;
        }
        if c != bg {
            let pad = emphasized(CONTENTS[c]) as i64;
            let (x, w) = (2 * i as i64 - pad, 2 * (j - i) as i64 + 2 * pad);
            let p = &mut paths[c];
            match ends[c] {
                None => {
                    let _ = write!(p, "M{x} .5h{w}");
                }
                Some(e) => {
                    let _ = write!(p, "m{} 0h{w}", x - e);
                }
            }
            ends[c] = Some(x + w);
        }
        i = j;
    }
    let _ = write!(
        out,
        "<svg class=\"spb-row\" viewBox=\"0 0 {} 1\" preserveAspectRatio=\"none\"><title>{title}</title>\
         <rect class=\"b{}\" width=\"{}\" height=\"1\"/>",
        2 * n,
        content_class(CONTENTS[bg]),
        2 * n
    );
    for c in PAINT_ORDER {
        let d = &paths[content_idx(c)];
        if !d.is_empty() {
            let _ = write!(out, "<path class=\"k{}\" d=\"{d}\"/>", content_class(c));
        }
    }
    out.push_str("</svg>");
}

/// Counts of each content in `blocks`, as `"U 12 · M 400 · . 100"` (non-zero only, legend order
/// with the non-movable kinds first).
pub(crate) fn content_counts(blocks: &[BlockContent]) -> String {
    let mut counts = [0usize; 8];
    for &b in blocks {
        counts[content_idx(b)] += 1;
    }
    let order = [
        BlockContent::Unmovable,
        BlockContent::Reserved,
        BlockContent::HighAtomic,
        BlockContent::Reclaimable,
        BlockContent::Isolated,
        BlockContent::Movable,
        BlockContent::Free,
        BlockContent::Hole,
    ];
    order
        .iter()
        .filter(|&&c| counts[content_idx(c)] > 0)
        .map(|&c| format!("{} {}", content_name(c), counts[content_idx(c)]))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Terminal line width [`terminal_map`] aims for.
pub const TERMINAL_WIDTH: usize = 128;

/// How bad a content is for a 1 GiB allocation, used to pick one letter for a group of
/// pageblocks: unmovable > reserved > highatomic > reclaimable > isolated > movable > hole >
/// free.
pub fn worst_rank(c: BlockContent) -> u8 {
    match c {
        BlockContent::Unmovable => 7,
        BlockContent::Reserved => 6,
        BlockContent::HighAtomic => 5,
        BlockContent::Reclaimable => 4,
        BlockContent::Isolated => 3,
        BlockContent::Movable => 2,
        BlockContent::Hole => 1,
        BlockContent::Free => 0,
    }
}

/// The smallest power of two `N` such that `blocks` pageblocks, `N` per character, fit in
/// `columns` characters (at least 1).
pub fn group_size(blocks: usize, columns: usize) -> usize {
    let columns = columns.max(1);
    let mut n = 1;
    while blocks.div_ceil(n) > columns {
        n *= 2;
    }
    n
}

fn ansi(c: BlockContent) -> &'static str {
    match c {
        BlockContent::Unmovable => "\x1b[1;31m",
        BlockContent::Reserved => "\x1b[1;37;40m",
        BlockContent::HighAtomic => "\x1b[35m",
        BlockContent::Reclaimable => "\x1b[33m",
        BlockContent::Isolated => "\x1b[32m",
        BlockContent::Movable => "\x1b[34m",
        BlockContent::Hole => "",
        BlockContent::Free => "\x1b[2m",
    }
}

const RESET: &str = "\x1b[0m";

/// The superpageblock map as text, one line per SPB, with the kernel's migratetype letters
/// ([`BlockContent::letter`]: `U` unmovable, `E` reclaimable, `M` movable, `H` highatomic,
/// `I` isolated, `R` reserved, `.` free, blank for a hole).
///
/// Two header lines starting with `#` come first: the moment and the scale, then the legend.
/// Each SPB line is `<zone> <index> <category> |<cells>|`, where index is the SPB's position in
/// the map (physical order) and category is [`crate::metrics::SpbRow::category`].
///
/// A 1 GiB SPB has 512 pageblocks, too many for one terminal line, so each character stands for
/// a group of `N` consecutive pageblocks, `N` the smallest power of two that keeps a line within
/// [`TERMINAL_WIDTH`] (128) columns — 8 for 512 pageblocks (16 MiB per character, 64
/// characters). A group shows its *worst* content by [`worst_rank`] (unmovable > reserved >
/// highatomic > reclaimable > isolated > movable > hole > free), so a single unmovable pageblock
/// is never hidden. With `color`, letters are coloured with ANSI escapes (unmovable bold red,
/// reserved inverted, highatomic magenta, reclaimable yellow, isolated green, movable blue, free
/// dim); the text is the same either way.
pub fn terminal_map(map: &SpbMap, color: bool) -> String {
    let zw = map
        .rows
        .iter()
        .map(|r| r.zone.chars().count())
        .max()
        .unwrap_or(0)
        .max(4);
    let iw = map.rows.len().saturating_sub(1).to_string().len();
    let cw = map
        .rows
        .iter()
        .map(|r| r.category.chars().count())
        .max()
        .unwrap_or(0);
    let max_blocks = map.rows.iter().map(|r| r.blocks.len()).max().unwrap_or(0);
    let prefix = zw + 1 + iw + 1 + cw + 1;
    let n = group_size(
        max_blocks,
        TERMINAL_WIDTH.saturating_sub(prefix + 2).max(16),
    );
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# SPB map at t={}s: {} SPBs, 1 char = {n} pageblock{} (worst content of the group shown)",
        fmt_t(map.t),
        map.rows.len(),
        if n == 1 { "" } else { "s" }
    );
    out.push('#');
    for c in [
        BlockContent::Unmovable,
        BlockContent::Reserved,
        BlockContent::HighAtomic,
        BlockContent::Reclaimable,
        BlockContent::Isolated,
        BlockContent::Movable,
        BlockContent::Free,
    ] {
        out.push(' ');
        push_letter(&mut out, c, color);
        let _ = write!(out, " {}", content_name(c));
    }
    out.push_str("  (blank) hole\n");
    for (i, row) in map.rows.iter().enumerate() {
        let _ = write!(out, "{:<zw$} {:>iw$} {:<cw$} |", row.zone, i, row.category);
        let mut cur: Option<&str> = None;
        for group in row.blocks.chunks(n) {
            let worst = group
                .iter()
                .copied()
                .max_by_key(|&c| worst_rank(c))
                .unwrap_or(BlockContent::Hole);
            if color {
                let code = ansi(worst);
                if cur != Some(code) {
                    if cur.is_some_and(|c| !c.is_empty()) {
                        out.push_str(RESET);
                    }
                    out.push_str(code);
                    cur = Some(code);
                }
            }
            out.push(worst.letter());
        }
        if color && cur.is_some_and(|c| !c.is_empty()) {
            out.push_str(RESET);
        }
        out.push_str("|\n");
    }
    out
}

fn push_letter(out: &mut String, c: BlockContent, color: bool) {
    if color && !ansi(c).is_empty() {
        out.push_str(ansi(c));
        out.push(c.letter());
        out.push_str(RESET);
    } else {
        out.push(c.letter());
    }
}

/// A time in seconds without needless decimals.
pub(crate) fn fmt_t(t: f64) -> String {
    if (t - t.round()).abs() < 1e-9 {
        format!("{}", t.round() as i64)
    } else {
        format!("{t:.1}")
    }
}
