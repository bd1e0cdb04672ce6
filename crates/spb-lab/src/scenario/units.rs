//! Units of the scenario language: sizes (`16G`, `512M`, `20%` of RAM), durations (`480s`,
//! `2m`, `500ms`, `50%` of the run) and rates.

use std::fmt;

/// A size: absolute bytes or a share of the machine's RAM.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Size {
    Bytes(u64),
    /// Percent of RAM (`20%`).
    Percent(f64),
}

impl Size {
    /// Bytes, given the machine's RAM.
    pub fn bytes(self, ram: u64) -> u64 {
        match self {
            Size::Bytes(b) => b,
            Size::Percent(p) => (ram as f64 * p / 100.0) as u64,
        }
    }
    /// 4 KiB pages, given the machine's RAM.
    pub fn pages(self, ram: u64) -> u64 {
        self.bytes(ram) / 4096
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Size::Bytes(b) => f.write_str(&fmt_bytes(b)),
            Size::Percent(p) => write!(f, "{}%", p),
        }
    }
}

/// A duration: absolute nanoseconds or a share of the run (`50%`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Dur {
    Ns(u64),
    Percent(f64),
}

impl Dur {
    /// Nanoseconds, given the run's duration.
    pub fn ns(self, run_ns: u64) -> u64 {
        match self {
            Dur::Ns(n) => n,
            Dur::Percent(p) => (run_ns as f64 * p / 100.0) as u64,
        }
    }
}

/// What [`parse_quantity`] reads: its units (suffix, multiplier; matched case-insensitively
/// when `fold_case`), what a bare number means, and the words of its messages.
struct Quantity {
    units: &'static [(&'static str, f64)],
    fold_case: bool,
    /// What to call it in "expected ..." messages, without and with `%`.
    expected: [&'static str; 2],
    /// "of RAM" / "of the run".
    percent_of: &'static str,
}

const SIZE: Quantity = Quantity {
    units: &[
        ("", 1.0),
        ("b", 1.0),
        ("k", 1024.0),
        ("kb", 1024.0),
        ("kib", 1024.0),
        ("m", 1048576.0),
        ("mb", 1048576.0),
        ("mib", 1048576.0),
        ("g", 1073741824.0),
        ("gb", 1073741824.0),
        ("gib", 1073741824.0),
        ("t", 1099511627776.0),
        ("tb", 1099511627776.0),
        ("tib", 1099511627776.0),
        ("p", 1125899906842624.0),
        ("pb", 1125899906842624.0),
        ("pib", 1125899906842624.0),
    ],
    fold_case: true,
    expected: [
        "a size like 64M, 16G or 1.5T",
        "a size like 64M, 16G, 1.5T or 20% (of RAM)",
    ],
    percent_of: "RAM",
};

const DURATION: Quantity = Quantity {
    units: &[
        ("ns", 1.0),
        ("us", 1e3),
        ("ms", 1e6),
        ("s", 1e9),
        ("", 1e9),
        ("m", 60e9),
        ("min", 60e9),
        ("h", 3600e9),
    ],
    fold_case: false,
    expected: [
        "a duration like 480s, 2m or 500ms",
        "a duration like 480s, 2m, 500ms or 50% (of the run)",
    ],
    percent_of: "the run",
};

enum Parsed {
    /// The value in the quantity's base unit (bytes, ns), rounded, within u64.
    Abs(u64),
    Percent(f64),
}

/// The one parser of sizes and durations: a non-negative integer or decimal, then a unit of `q`
/// or `%` when allowed. A value past 2^64 - 1 base units is an error, never saturated.
fn parse_quantity(s: &str, allow_percent: bool, q: &Quantity) -> Result<Parsed, String> {
    let t = s.trim();
    let expected = q.expected[allow_percent as usize];
    let bad = |why: &str| format!("expected {expected}, got \"{s}\"{why}");
    if let Some(num) = t.strip_suffix('%') {
        if !allow_percent {
            return Err(bad(" (a percentage is not allowed here)"));
        }
        let p: f64 = num.trim().parse().map_err(|_| bad(""))?;
        if !(0.0..=100.0).contains(&p) {
            return Err(format!(
                "expected a percentage between 0% and 100% (of {}), got \"{s}\"",
                q.percent_of
            ));
        }
        return Ok(Parsed::Percent(p));
    }
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    // digits and dots only: no sign, exponent, inf or NaN gets this far
    let v: f64 = num.parse().map_err(|_| bad(""))?;
    let unit_l = unit.trim();
    let key = if q.fold_case {
        unit_l.to_ascii_lowercase()
    } else {
        unit_l.to_string()
    };
    let mul = q
        .units
        .iter()
        .find(|(u, _)| *u == key)
        .map(|(_, m)| *m)
        .ok_or_else(|| bad(&format!(" (unknown unit \"{unit}\")")))?;
    let x = (v * mul).round();
    // 2^64 as f64 is the first value that does not fit
    if !x.is_finite() || x >= 18446744073709551616.0 {
        return Err(bad(" (too large)"));
    }
    Ok(Parsed::Abs(x as u64))
}

/// Parse a size: an integer or decimal followed by an optional unit `K`, `M`, `G`, `T` (binary:
/// KiB, MiB, ...; `KiB`, `KB`, `k` are accepted too), `B` for bytes, or `%` of RAM.
pub fn parse_size(s: &str, allow_percent: bool) -> Result<Size, String> {
    Ok(match parse_quantity(s, allow_percent, &SIZE)? {
        Parsed::Abs(b) => Size::Bytes(b),
        Parsed::Percent(p) => Size::Percent(p),
    })
}

/// Parse a duration: a number followed by `ns`, `us`, `ms`, `s`, `m` (minutes) or `h`, or `%`
/// of the run when allowed. A bare number is seconds.
pub fn parse_dur(s: &str, allow_percent: bool) -> Result<Dur, String> {
    Ok(match parse_quantity(s, allow_percent, &DURATION)? {
        Parsed::Abs(n) => Dur::Ns(n),
        Parsed::Percent(p) => Dur::Percent(p),
    })
}

/// The smallest machine (`machine.memory`, `--memory`) the x86_64 layout builds.
pub const MIN_MEMORY: u64 = 64 << 20;
/// The largest: the lab's object records hold 32-bit pfns, and the highest pfn is RAM plus the
/// PCI hole below 4 GiB (up to 2 GiB), so 16T itself does not fit; 15T does.
pub const MAX_MEMORY: u64 = 15 << 40;
/// The longest virtual run (`duration`, `--duration`): one day of virtual time.
pub const MAX_DURATION_NS: u64 = 86_400 * 1_000_000_000;

/// Parse a machine's RAM size (`--memory`, `machine.memory`, sweep cells): a size from
/// [`MIN_MEMORY`] (64M) to [`MAX_MEMORY`] (15T), both included.
pub fn parse_memory(s: &str) -> Result<u64, String> {
    match parse_size(s, false)? {
        Size::Bytes(b) => check_memory(b).map_err(|e| format!("{e}, got \"{}\"", s.trim())),
        Size::Percent(_) => unreachable!("percentages are refused above"),
    }
}

/// The range check of [`parse_memory`], for sizes that arrive as numbers (TOML integers).
pub fn check_memory(b: u64) -> Result<u64, String> {
    if (MIN_MEMORY..=MAX_MEMORY).contains(&b) {
        Ok(b)
    } else {
        Err("expected a RAM size from 64M to 15T".to_string())
    }
}

/// Parse a run's virtual duration (`--duration`, `duration`): more than 0 and at most
/// [`MAX_DURATION_NS`] (24h). Returns nanoseconds.
pub fn parse_duration(s: &str) -> Result<u64, String> {
    match parse_dur(s, false)? {
        Dur::Ns(ns) => check_duration(ns).map_err(|e| format!("{e}, got \"{}\"", s.trim())),
        Dur::Percent(_) => unreachable!("percentages are refused above"),
    }
}

/// The range check of [`parse_duration`].
pub fn check_duration(ns: u64) -> Result<u64, String> {
    if (1..=MAX_DURATION_NS).contains(&ns) {
        Ok(ns)
    } else {
        Err("expected a positive duration of at most 24h".to_string())
    }
}

/// `16 GiB`, `512 MiB`, `12 KiB`.
pub fn fmt_bytes(b: u64) -> String {
    const U: [(&str, u64); 5] = [
        ("P", 1 << 50),
        ("T", 1 << 40),
        ("G", 1 << 30),
        ("M", 1 << 20),
        ("K", 1 << 10),
    ];
    for (n, m) in U {
        if b >= m && b.is_multiple_of((m / 1024).max(1)) {
            let v = b as f64 / m as f64;
            return if v.fract() == 0.0 {
                format!("{}{}", v as u64, n)
            } else {
                format!("{:.2}{}", v, n)
            };
        }
    }
    format!("{}", b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("16G", false).unwrap(), Size::Bytes(16 << 30));
        assert_eq!(parse_size("512MiB", false).unwrap(), Size::Bytes(512 << 20));
        assert_eq!(parse_size("1.5T", false).unwrap(), Size::Bytes(3 << 39));
        assert_eq!(parse_size("4096", false).unwrap(), Size::Bytes(4096));
        assert_eq!(parse_size("20%", true).unwrap(), Size::Percent(20.0));
        assert!(parse_size("20%", false)
            .unwrap_err()
            .contains("not allowed"));
        assert!(parse_size("12Q", true)
            .unwrap_err()
            .contains("unknown unit"));
        assert!(parse_size("abc", true).is_err());
        assert!(parse_size("150%", true).is_err());
        assert_eq!(Size::Percent(50.0).bytes(16 << 30), 8 << 30);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_dur("480s", false).unwrap(), Dur::Ns(480_000_000_000));
        assert_eq!(parse_dur("2m", false).unwrap(), Dur::Ns(120_000_000_000));
        assert_eq!(parse_dur("500ms", false).unwrap(), Dur::Ns(500_000_000));
        assert_eq!(parse_dur("50%", true).unwrap(), Dur::Percent(50.0));
        assert!(parse_dur("5 days", false).is_err());
        assert_eq!(Dur::Percent(50.0).ns(100), 50);
        assert_eq!(fmt_bytes(16 << 30), "16G");
    }

    #[test]
    fn ranges_are_checked_inside_the_parsers() {
        assert_eq!(parse_memory("64M"), Ok(64 << 20));
        assert_eq!(parse_memory("15T"), Ok(15 << 40));
        assert_eq!(parse_memory("15TiB"), Ok(15 << 40));
        for bad in ["63M", "15.001T", "16T", "1P", "0", "20%", "lots", "-1G"] {
            assert!(parse_memory(bad).is_err(), "{bad}");
        }
        assert!(parse_memory("16T").unwrap_err().contains("64M to 15T"));
        assert_eq!(parse_duration("24h"), Ok(MAX_DURATION_NS));
        assert_eq!(parse_duration("1ns"), Ok(1));
        for bad in [
            "0s",
            "24.001h",
            "99999999999999999999s",
            "1e3s",
            "inf",
            "-5s",
            "50%",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        // past u64 nanoseconds: an error, not a saturated value
        assert!(parse_dur("99999999999999999999s", false)
            .unwrap_err()
            .contains("too large"));
        assert!(parse_size("99999999P", false)
            .unwrap_err()
            .contains("too large"));
        assert!(parse_duration("25h").unwrap_err().contains("at most 24h"));
    }
}
