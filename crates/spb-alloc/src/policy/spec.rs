//! The run spec of a policy: [`PolicyConfig`]'s `FromStr` and `Display`, the one syntax every
//! command (`run`, `replay`, `dump`, `map`, `sweep`, `soak`) reads and every output writes.
//!
//! ```text
//! spec   = kind [ "-off:" switch { sep switch } ] [ "-on:" switch { sep switch } ]
//! kind   = "vanilla" | "defrag" | "spb" | "spb-next"
//! sep    = "," | "+"
//! ```
//!
//! `-off:` names the switches turned off relative to the kind's default set
//! ([`PolicyKind::default_switches`]: [`SpbSwitches::all_on`](super::SpbSwitches::all_on) for
//! `spb`, [`SpbSwitches::next_on`](super::SpbSwitches::next_on) for `spb-next`), `-on:` the
//! default-off switches turned on (`refuse_literal`; in `spb`, spb-next's switches). The kind is
//! the longest name in the registry that the spec starts with, followed by the end or `-`, so
//! `spb-next-off:a` is `spb-next` without `a`.
//! `Display` writes the canonical form: the kind, then `-off:` and `-on:` with the switches in
//! [`SpbSwitch::ALL`] order, separated by `,` (the label runs, sweeps and ablations put in their
//! JSON), so `spb`, `spb-off:steer_tainted,hint_cache` and `spb-on:refuse_literal`. Parsing
//! `Display`'s output gives the same value back for every kind and every set of named switches.
//! The mainline kinds ignore the switches; a non-default set on them is still written and read
//! back, so the label names the value exactly.
//!
//! A list of specs ([`split_list`], [`parse_list`]) is separated by commas; a comma followed by
//! a switch name continues the spec before it, so `vanilla,spb-off:a,b,defrag` is three specs.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;
use core::str::FromStr;

use super::{PolicyConfig, PolicyKind, SpbSwitch};

/// Why a policy spec did not parse; the message names the spec and what was expected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicySpecError(pub String);

impl fmt::Display for PolicySpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The registry's policy names, for messages: "vanilla, defrag, spb or spb-next".
pub fn kind_names() -> String {
    let v: Vec<&str> = PolicyKind::ALL.iter().map(|k| k.name()).collect();
    match v.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => v.join(""),
    }
}

fn switch_names() -> String {
    let v: Vec<&str> = SpbSwitch::ALL.iter().map(|w| w.name()).collect();
    v.join(", ")
}

/// Parse a switch name (as on the command line).
pub fn parse_switch(s: &str) -> Result<SpbSwitch, PolicySpecError> {
    let t = s.trim();
    SpbSwitch::from_name(t).ok_or_else(|| {
        PolicySpecError(format!(
            "unknown spb switch \"{t}\"; expected one of: {}",
            switch_names()
        ))
    })
}

impl fmt::Display for PolicyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.name())?;
        let def = self.kind.default_switches();
        for (tag, want) in [("-off:", false), ("-on:", true)] {
            let mut first = true;
            for w in SpbSwitch::ALL {
                if self.spb.on(*w) == want && def.on(*w) != want {
                    f.write_str(if first { tag } else { "," })?;
                    f.write_str(w.name())?;
                    first = false;
                }
            }
        }
        Ok(())
    }
}

impl FromStr for PolicyConfig {
    type Err = PolicySpecError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        // the longest registered name that `t` starts with, followed by the end or '-'
        let kind = PolicyKind::ALL
            .iter()
            .copied()
            .filter(|k| {
                let n = k.name();
                t.starts_with(n) && (t.len() == n.len() || t[n.len()..].starts_with('-'))
            })
            .max_by_key(|k| k.name().len())
            .ok_or_else(|| {
                PolicySpecError(format!(
                    "unknown policy \"{t}\"; expected {}, optionally followed by \
                     -off:SWITCH,... and/or -on:SWITCH,... (e.g. spb-off:steer_tainted)",
                    kind_names()
                ))
            })?;
        let name = kind.name();
        let rest = (t.len() > name.len()).then(|| &t[name.len() + 1..]);
        let mut cfg = PolicyConfig::of(kind);
        let Some(rest) = rest else {
            return Ok(cfg);
        };
        // switch names contain no '-', so the sections split at '-'
        for section in rest.split('-') {
            let (on, list) = if let Some(l) = section.strip_prefix("off:") {
                (false, l)
            } else if let Some(l) = section.strip_prefix("on:") {
                (true, l)
            } else {
                return Err(PolicySpecError(format!(
                    "policy \"{t}\": expected -off:SWITCH,... or -on:SWITCH,... after \
                     \"{name}\", got \"-{section}\""
                )));
            };
            let mut n = 0;
            for w in list.split([',', '+']) {
                let w = w.trim();
                if w.is_empty() {
                    continue;
                }
                let sw =
                    parse_switch(w).map_err(|e| PolicySpecError(format!("policy \"{t}\": {e}")))?;
                cfg.spb.set(sw, on);
                n += 1;
            }
            if n == 0 {
                return Err(PolicySpecError(format!(
                    "policy \"{t}\": expected at least one switch name after \"{}\"",
                    if on { "-on:" } else { "-off:" }
                )));
            }
        }
        Ok(cfg)
    }
}

/// Split a comma-separated list of specs (and, for `spb replay`, other column names such as
/// `real`) into the specs, without parsing them: a piece that starts with a switch name
/// continues the spec before it. Empty pieces are dropped.
pub fn split_list(s: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for piece in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        // `a,b-on:c` splits into `a`, `b-on:c`: the head before any '-' names a switch
        let head = piece.split('-').next().unwrap_or(piece);
        let continues = SpbSwitch::from_name(head).is_some()
            && out
                .last()
                .is_some_and(|l| l.contains("-off:") || l.contains("-on:"));
        match out.last_mut() {
            Some(last) if continues => {
                last.push(',');
                last.push_str(piece);
            }
            _ => out.push(piece.to_string()),
        }
    }
    out
}

/// Parse a comma-separated list of specs (see [`split_list`]).
pub fn parse_list(s: &str) -> Result<Vec<PolicyConfig>, PolicySpecError> {
    let v: Vec<PolicyConfig> = split_list(s)
        .iter()
        .map(|p| p.parse())
        .collect::<Result<_, _>>()?;
    if v.is_empty() {
        return Err(PolicySpecError(format!(
            "expected at least one policy ({}), got \"{s}\"",
            kind_names()
        )));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::super::SpbSwitches;
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn what_users_type_today() {
        let p = |s: &str| s.parse::<PolicyConfig>().unwrap();
        assert_eq!(p("vanilla"), PolicyConfig::vanilla());
        assert_eq!(p("defrag"), PolicyConfig::defrag());
        assert_eq!(p(" spb "), PolicyConfig::spb());
        let two = SpbSwitches::all_on()
            .without(SpbSwitch::SteerTainted)
            .without(SpbSwitch::HintCache);
        // sweep's old syntax (`+`) and the label syntax (`,`)
        assert_eq!(p("spb-off:steer_tainted+hint_cache").spb, two);
        assert_eq!(p("spb-off:hint_cache,steer_tainted").spb, two);
        assert_eq!(
            p("spb-off:hint_cache,steer_tainted").to_string(),
            "spb-off:steer_tainted,hint_cache"
        );
        let lit = p("spb-on:refuse_literal");
        assert!(lit.spb.on(SpbSwitch::RefuseLiteral));
        assert_eq!(lit.to_string(), "spb-on:refuse_literal");
        assert_eq!(lit.to_string(), lit.label());
        assert_eq!(PolicyConfig::spb().to_string(), "spb");
        // spb-next: its own default set, its name contains '-'
        assert_eq!(p("spb-next"), PolicyConfig::spb_next());
        assert_eq!(PolicyConfig::spb_next().to_string(), "spb-next");
        let n = p("spb-next-off:taint_when_full,hint_cache");
        assert_eq!(n.kind, PolicyKind::SpbNext);
        assert_eq!(
            n.spb,
            SpbSwitches::next_on()
                .without(SpbSwitch::TaintWhenFull)
                .without(SpbSwitch::HintCache)
        );
        assert_eq!(n.to_string(), "spb-next-off:hint_cache,taint_when_full");
        // in spb the ideas of spb-next are default-off switches
        let s = p("spb-on:taint_when_full");
        assert_eq!(s.kind, PolicyKind::Spb);
        assert!(s.spb.on(SpbSwitch::TaintWhenFull));
        assert_eq!(s.to_string(), "spb-on:taint_when_full");
        assert_eq!(
            parse_list("vanilla,spb,spb-next-off:refuse_fast,compact_fragments").unwrap()[2],
            p("spb-next-off:compact_fragments,refuse_fast")
        );
    }

    #[test]
    fn bad_specs_name_the_problem() {
        let e = |s: &str| s.parse::<PolicyConfig>().unwrap_err().0;
        assert!(e("bogus").contains("unknown policy \"bogus\""));
        assert!(e("spb-off:nope").contains("unknown spb switch \"nope\""));
        assert!(e("spb-off:nope").contains("steer_tainted"));
        assert!(e("spb-off:").contains("at least one switch"));
        assert!(e("spb-x:hint_cache").contains("-off:SWITCH"));
        assert!(e("").contains("unknown policy"));
        assert!(e("spbx").contains("unknown policy"));
        assert!(e("spb-nextx").contains("-off:SWITCH"));
        assert!(e("bogus").contains("spb-next"));
    }

    #[test]
    fn lists() {
        assert_eq!(
            split_list("vanilla, spb-off:a_b,steer_tainted,hint_cache,defrag,,real"),
            [
                "vanilla",
                "spb-off:a_b,steer_tainted,hint_cache",
                "defrag",
                "real"
            ]
        );
        let v = parse_list("vanilla,spb-off:steer_tainted,hint_cache,spb").unwrap();
        assert_eq!(v.len(), 3);
        assert_eq!(v[1].to_string(), "spb-off:steer_tainted,hint_cache");
        // a switch name on its own is not a policy
        assert!(parse_list("spb,hint_cache").is_err());
        assert!(parse_list(" , ").is_err());
    }

    fn any_config() -> impl Strategy<Value = PolicyConfig> {
        (0..PolicyKind::ALL.len(), any::<u128>()).prop_map(move |(k, bits)| PolicyConfig {
            kind: PolicyKind::ALL[k],
            spb: SpbSwitches::from_bits(bits),
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        /// Display parses back to the same value, for every kind and every set of named
        /// switches; the label is the same text; a list of labels parses back too.
        #[test]
        fn display_parses_back(a in any_config(), b in any_config()) {
            let s = a.to_string();
            prop_assert_eq!(s.parse::<PolicyConfig>().unwrap(), a.clone());
            if a.kind.has_switches() || a.spb == a.kind.default_switches() {
                prop_assert_eq!(&s, &a.label());
            }
            let l = parse_list(&format!("{a},{b}")).unwrap();
            prop_assert_eq!(l, alloc::vec![a, b]);
        }
    }
}
