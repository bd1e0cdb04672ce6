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

/// Parse a size: an integer or decimal followed by an optional unit `K`, `M`, `G`, `T` (binary:
/// KiB, MiB, ...; `KiB`, `KB`, `k` are accepted too), `B` for bytes, or `%` of RAM.
pub fn parse_size(s: &str, allow_percent: bool) -> Result<Size, String> {
    let t = s.trim();
    let expected = if allow_percent {
        "a size like 64M, 16G, 1.5T or 20% (of RAM)"
    } else {
        "a size like 64M, 16G or 1.5T"
    };
    if let Some(num) = t.strip_suffix('%') {
        if !allow_percent {
            return Err(format!(
                "expected {expected}, got \"{s}\" (a percentage is not allowed here)"
            ));
        }
        let p: f64 = num
            .trim()
            .parse()
            .map_err(|_| format!("expected {expected}, got \"{s}\""))?;
        if !(0.0..=100.0).contains(&p) {
            return Err(format!(
                "expected a percentage between 0% and 100%, got \"{s}\""
            ));
        }
        return Ok(Size::Percent(p));
    }
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let v: f64 = num
        .parse()
        .map_err(|_| format!("expected {expected}, got \"{s}\""))?;
    let mul: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        "p" | "pb" | "pib" => 1 << 50,
        _ => {
            return Err(format!(
                "expected {expected}, got \"{s}\" (unknown unit \"{unit}\")"
            ))
        }
    };
    if !v.is_finite() || v < 0.0 {
        return Err(format!("expected {expected}, got \"{s}\""));
    }
    Ok(Size::Bytes((v * mul as f64).round() as u64))
}

/// Parse a duration: a number followed by `ns`, `us`, `ms`, `s`, `m` (minutes) or `h`, or `%`
/// of the run when allowed.
pub fn parse_dur(s: &str, allow_percent: bool) -> Result<Dur, String> {
    let t = s.trim();
    let expected = if allow_percent {
        "a duration like 480s, 2m, 500ms or 50% (of the run)"
    } else {
        "a duration like 480s, 2m or 500ms"
    };
    if let Some(num) = t.strip_suffix('%') {
        if !allow_percent {
            return Err(format!(
                "expected {expected}, got \"{s}\" (a percentage is not allowed here)"
            ));
        }
        let p: f64 = num
            .trim()
            .parse()
            .map_err(|_| format!("expected {expected}, got \"{s}\""))?;
        if !(0.0..=100.0).contains(&p) {
            return Err(format!(
                "expected a percentage between 0% and 100%, got \"{s}\""
            ));
        }
        return Ok(Dur::Percent(p));
    }
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let v: f64 = num
        .parse()
        .map_err(|_| format!("expected {expected}, got \"{s}\""))?;
    let mul: f64 = match unit.trim() {
        "ns" => 1.0,
        "us" => 1e3,
        "ms" => 1e6,
        "s" | "" => 1e9,
        "m" | "min" => 60e9,
        "h" => 3600e9,
        _ => {
            return Err(format!(
                "expected {expected}, got \"{s}\" (unknown unit \"{unit}\")"
            ))
        }
    };
    if !v.is_finite() || v < 0.0 {
        return Err(format!("expected {expected}, got \"{s}\""));
    }
    Ok(Dur::Ns((v * mul).round() as u64))
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
        if b >= m && b % (m / 1024).max(1) == 0 {
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
}
