//! Shrinking a failing operation sequence: violation classes and delta debugging.

use super::{ops::*, soak::*};

/// The shape of a violation message: digits and hex numbers blanked, so that the same bug at
/// another pfn compares equal.
pub fn violation_class(msg: &str) -> String {
    let mut out = String::new();
    let mut last_digit = false;
    for w in msg.split_inclusive(|c: char| !c.is_ascii_alphanumeric()) {
        let core = w.trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
        let is_num = !core.is_empty()
            && (core.chars().all(|c| c.is_ascii_digit())
                || (core.starts_with("0x") && core[2..].chars().all(|c| c.is_ascii_hexdigit())));
        if is_num {
            if !last_digit {
                out.push('N');
            }
            out.push_str(&w[core.len()..]);
        } else {
            out.push_str(w);
        }
        last_digit = is_num;
    }
    out
}

/// Delta-debug `ops` down to a short sequence that still produces a violation of the same
/// class (checking every `check_every` operations while searching). Slow for long inputs, but
/// each replay is cheap in release builds.
pub fn minimize(
    o: &SoakOptions,
    epoch: u64,
    env_seed: u64,
    ops: &[Op],
    check_every: u64,
) -> Vec<Op> {
    let Err((i, e)) = replay(o, epoch, env_seed, ops, check_every, false) else {
        return ops.to_vec();
    };
    let class = violation_class(&e);
    let fails = |v: &[Op]| matches!(replay(o, epoch, env_seed, v, check_every, false), Err((_, e)) if violation_class(&e) == class);
    let mut cur: Vec<Op> = ops[..=i].to_vec();
    let mut chunk = cur.len().div_ceil(2).max(1);
    loop {
        let mut removed = false;
        let mut start = 0;
        while start < cur.len() {
            let end = (start + chunk).min(cur.len());
            let mut cand = Vec::with_capacity(cur.len() - (end - start));
            cand.extend_from_slice(&cur[..start]);
            cand.extend_from_slice(&cur[end..]);
            if !cand.is_empty() && fails(&cand) {
                cur = cand;
                removed = true;
            } else {
                start = end;
            }
        }
        if chunk == 1 && !removed {
            break;
        }
        if !removed {
            chunk = chunk.div_ceil(2);
        }
    }
    // cut what follows the first failure with a check after every operation
    if let Err((i, _)) = replay(o, epoch, env_seed, &cur, 1, false) {
        cur.truncate(i + 1);
    }
    cur
}
