#!/usr/bin/env bash
# Instruction counts of the allocator fast path under callgrind (issue 7, item 2).
#
#   crates/spb-alloc/benches/icount.sh [MACHINE] [N] [ALLOCATORS]
#
# MACHINE 16g (default) or 1t; N measured ops per scenario (default 20000, after N warm-up ops);
# ALLOCATORS a space-separated list (default "vanilla defrag spb bsa"). Prints a markdown table of
# instructions per op (Ir / N). Needs valgrind; deterministic, so it shows regressions that wall
# clock timing on a shared machine hides. See BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/../../.."
M=${1:-16g}
N=${2:-20000}
ALLOCS=${3:-"vanilla defrag spb bsa"}
command -v valgrind >/dev/null || { echo "valgrind not found (apt-get install valgrind)" >&2; exit 1; }
BIN=$(cargo bench -p spb-alloc --bench icount --no-run 2>&1 | sed -n 's/.*Executable .*(\(.*icount-[0-9a-f]*\)).*/\1/p' | tail -1)
[ -x "$BIN" ] || { echo "could not find the icount bench binary" >&2; exit 1; }
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
printf '| %s instructions/op (N=%s) |' "$M" "$N"
for a in $ALLOCS; do printf ' %s |' "$a"; done
printf '\n|---|'
for a in $ALLOCS; do printf -- '---:|'; done
printf '\n'
for sc in "order0_pairs pcp" "order0_pairs nopcp" "order0_movable_pairs pcp" "order0_movable_pairs nopcp" "order9_pairs pcp" "order9_pairs nopcp" "mixed pcp" "refill nopcp"; do
    set -- $sc
    printf '| %s_%s |' "$1" "$2"
    for a in $ALLOCS; do
        f="$OUT/cg.$a.$1.$2"
        valgrind --tool=callgrind --collect-atstart=no --toggle-collect=icount_measured \
            --callgrind-out-file="$f" "$BIN" "$M" "$a" "$1" "$2" "$N" >/dev/null 2>&1
        ir=$(sed -n 's/^totals: *\([0-9]*\).*/\1/p' "$f")
        awk -v ir="$ir" -v n="$N" 'BEGIN { printf " %.0f |", ir / n }'
    done
    printf '\n'
done
