//! The spb policy's predicates on the shape of a gfp mask. The superpageblock series keys
//! several decisions on it; they are named here so that the policy code and the tests talk
//! about the same thing: [`has_cheap_fallback`] (patch 26, `ALLOC_HIGHORDER_OPTIONAL`) and
//! [`is_best_effort_high_order`] (patch 35).

use crate::gfp::Gfp;

/// Which reading of patch 26's `ALLOC_HIGHORDER_OPTIONAL` rule to apply.
///
/// The commit message and the code disagree: the message says `__GFP_MEMALLOC` and
/// `__GFP_NOFAIL` never get the flag, the posted code excludes neither `__GFP_MEMALLOC` (in
/// either shape) nor `__GFP_NOFAIL` in the NORETRY shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum CheapFallbackRule {
    /// The commit message: the two shapes, but a mask with `__GFP_MEMALLOC` or `__GFP_NOFAIL`
    /// never qualifies (they must succeed even at the cost of tainting a clean SPB).
    #[default]
    Intent,
    /// The code as posted: `(NORETRY && !RETRY_MAYFAIL) || !(DIRECT_RECLAIM | NOMEMALLOC |
    /// NOFAIL)`.
    Literal,
}

/// spb patch 26 ("refuse fragmenting fallback for callers with cheap fallback"): does this
/// request get `ALLOC_HIGHORDER_OPTIONAL`, i.e. may `__rmqueue` refuse it rather than taint a
/// clean superpageblock while a tainted one could absorb it after evacuation?
///
/// Two shapes qualify (computed on the slow path, for any order):
/// 1. an explicit fallback declaration: `__GFP_NORETRY` without `__GFP_RETRY_MAYFAIL` (THP,
///    slab high-order refill, skb page frags);
/// 2. the atomic shape: none of `__GFP_DIRECT_RECLAIM`, `__GFP_NOMEMALLOC`, `__GFP_NOFAIL`
///    (GFP_ATOMIC, GFP_NOWAIT).
///
/// [`CheapFallbackRule::Intent`] additionally rejects any mask with `__GFP_MEMALLOC` or
/// `__GFP_NOFAIL`; [`CheapFallbackRule::Literal`] follows the posted code.
#[inline]
pub const fn has_cheap_fallback(gfp: Gfp, rule: CheapFallbackRule) -> bool {
    let explicit = gfp.intersects(Gfp::NORETRY) && !gfp.intersects(Gfp::RETRY_MAYFAIL);
    let atomic_shape = !gfp.intersects(Gfp(Gfp::DIRECT_RECLAIM.0
        | Gfp::NOMEMALLOC.0
        | Gfp::NOFAIL.0));
    let shape = explicit || atomic_shape;
    match rule {
        CheapFallbackRule::Literal => shape,
        CheapFallbackRule::Intent => shape && !gfp.intersects(Gfp(Gfp::MEMALLOC.0 | Gfp::NOFAIL.0)),
    }
}

/// spb patch 35 ("refuse best-effort high-order allocs servable at lower orders"): a
/// high-order try that has its own order-decrement fallback (kvmalloc's kmalloc attempt,
/// vmalloc's page array, alloc_skb_with_frags), recognised by
/// `order > 0 && __GFP_NOWARN && !__GFP_NOFAIL && !__GFP_DIRECT_RECLAIM`.
///
/// The series refuses such a request (before dropping `ALLOC_NOFRAGMENT`) when the tainted
/// pool could plausibly serve the caller's lower-order retry; that second condition is the
/// caller's, not part of this predicate.
#[inline]
pub const fn is_best_effort_high_order(gfp: Gfp, order: u8) -> bool {
    order > 0
        && gfp.intersects(Gfp::NOWARN)
        && !gfp.intersects(Gfp::NOFAIL)
        && !gfp.intersects(Gfp::DIRECT_RECLAIM)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cheap_fallback_shapes() {
        use CheapFallbackRule::{Intent, Literal};
        let both = |g: Gfp| {
            (
                has_cheap_fallback(g, Intent),
                has_cheap_fallback(g, Literal),
            )
        };
        // Shape 2 (atomic).
        assert_eq!(both(Gfp::ATOMIC), (true, true));
        assert_eq!(both(Gfp::NOWAIT), (true, true));
        assert_eq!(both(Gfp::TRANSHUGE_LIGHT), (false, false)); // NOMEMALLOC, no NORETRY
        assert_eq!(both(Gfp::COMP), (true, true)); // boot-time slab: posted code's problem case
                                                   // Shape 1 (explicit NORETRY).
        assert_eq!(both(Gfp::KERNEL | Gfp::NORETRY), (true, true));
        assert_eq!(
            both(Gfp::KERNEL | Gfp::NORETRY | Gfp::RETRY_MAYFAIL),
            (false, false)
        );
        assert_eq!(both(Gfp::TRANSHUGE | Gfp::NORETRY), (true, true));
        // Neither shape.
        assert_eq!(both(Gfp::KERNEL), (false, false));
        assert_eq!(both(Gfp::HIGHUSER_MOVABLE), (false, false));
        assert_eq!(both(Gfp::ATOMIC | Gfp::NOMEMALLOC), (false, false));
        // Where the two readings differ.
        assert_eq!(both(Gfp::ATOMIC | Gfp::MEMALLOC), (false, true));
        assert_eq!(
            both(Gfp::KERNEL | Gfp::NORETRY | Gfp::MEMALLOC),
            (false, true)
        );
        assert_eq!(
            both(Gfp::KERNEL | Gfp::NORETRY | Gfp::NOFAIL),
            (false, true)
        );
        assert_eq!(both(Gfp::ATOMIC | Gfp::NOFAIL), (false, false));
        assert_eq!(CheapFallbackRule::default(), Intent);
    }

    #[test]
    fn best_effort_rule() {
        let kvmalloc_try = (Gfp::KERNEL | Gfp::NOWARN | Gfp::NORETRY).without(Gfp::DIRECT_RECLAIM);
        assert!(is_best_effort_high_order(kvmalloc_try, 1));
        assert!(!is_best_effort_high_order(kvmalloc_try, 0));
        assert!(!is_best_effort_high_order(kvmalloc_try | Gfp::NOFAIL, 4));
        assert!(!is_best_effort_high_order(
            kvmalloc_try | Gfp::DIRECT_RECLAIM,
            4
        ));
        assert!(!is_best_effort_high_order(Gfp::ATOMIC, 3));
        assert!(is_best_effort_high_order(Gfp::NOWAIT, 3));
        assert!(is_best_effort_high_order(Gfp::TRANSHUGE_LIGHT, 9));
        assert!(!is_best_effort_high_order(Gfp::TRANSHUGE, 9));
    }
}
