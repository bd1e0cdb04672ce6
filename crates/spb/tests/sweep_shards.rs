//! `spb sweep` on a scheduler (docs/sweep.md): a 4-shard sweep run through `xargs -P 4`, with
//! the shard taken from `I/N`, from a Kubernetes Indexed Job's environment and from a Slurm job
//! array's, merged with `sweep --merge`, equals the unsharded sweep; the sweep's exit codes
//! and value ranges.

use std::path::Path;
use std::process::{Command, Output};

mod common;
use common::{Tmp, SPB};

/// A small grid: 2 policies (one with a switch list, which holds commas) x 3 seeds, 1 GiB, 2
/// virtual seconds.
const GRID: &[&str] = &[
    "sweep",
    "--memory",
    "1G",
    "--duration",
    "2s",
    "--seeds",
    "1..4",
    "--policies",
    "vanilla,spb-off:hint_cache,steer_tainted",
];

/// One policy, 1 GiB, 1 virtual second: one cell per seed.
const ONE_CELL: &[&str] = &[
    "sweep",
    "--memory",
    "1G",
    "--duration",
    "1s",
    "--policies",
    "vanilla",
];

fn spb(args: &[&str], dir: &Path) -> Output {
    Command::new(SPB)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

/// The lines of a sweep output with the wall-clock fields removed (`spb diff`'s rule).
fn lines_without_wall(p: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            spb_lab::diff::strip_timing(&mut v);
            v
        })
        .collect()
}

/// Run the 4 shards through `xargs -P 4 sh -c CMD` (CMD gets the shard index as $1; `@SPB@`
/// stands for the binary and the grid, `@OUT@` for the shard's file), merge
/// them, and return the merged lines and the merge's summary.
fn sharded(t: &Tmp, tag: &str, cmd: &str) -> (Vec<serde_json::Value>, String) {
    let grid = GRID
        .iter()
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let script = cmd
        .replace("@SPB@", &format!("'{SPB}' {grid}"))
        .replace("@OUT@", &format!("{tag}-$1.jsonl"));
    let o = Command::new("sh")
        .arg("-c")
        .arg("printf '0\\n1\\n2\\n3\\n' | xargs -P 4 -I IDX sh -c \"$0\" x IDX")
        .arg(&script)
        .current_dir(&t.0)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let files: Vec<String> = (0..4).map(|i| format!("{tag}-{i}.jsonl")).collect();
    for f in &files {
        assert!(
            std::fs::read_to_string(t.path(f)).unwrap().lines().count() <= 2,
            "{f}: a shard holds its own cells only"
        );
    }
    let merged = format!("{tag}-merged.jsonl");
    let mut args = vec!["sweep", "--merge"];
    args.extend(files.iter().map(|s| s.as_str()));
    args.extend(["--out", &merged]);
    let summary = ok(&spb(&args, &t.0));
    (lines_without_wall(&t.path(&merged)), summary)
}

#[test]
fn four_shards_through_xargs_merge_to_the_unsharded_sweep() {
    let t = Tmp::new("xargs");
    let mut args = GRID.to_vec();
    args.extend(["--out", "whole.jsonl"]);
    ok(&spb(&args, &t.0));
    let whole = lines_without_wall(&t.path("whole.jsonl"));
    assert_eq!(whole.len(), 6);
    assert_eq!(
        whole[3]["cell"]["policy"], "spb-off:steer_tainted,hint_cache",
        "the cell holds the canonical run spec"
    );
    let whole_summary = ok(&spb(&["sweep", "--merge", "whole.jsonl"], &t.0));
    assert!(whole_summary.contains("spb-off:steer_tainted,hint_cache"));

    let ways = [
        // --shard I/N, one cell at a time
        ("plain", "@SPB@ --shard $1/4 --jobs 1 --out @OUT@"),
        // a Kubernetes Indexed Job: JOB_COMPLETION_INDEX, N from SPB_SHARDS
        (
            "k8s",
            "JOB_COMPLETION_INDEX=$1 SPB_SHARDS=4 @SPB@ --shard env --out @OUT@",
        ),
        // a Slurm job array --array=1-4
        (
            "slurm",
            "SLURM_ARRAY_TASK_ID=$(($1 + 1)) SLURM_ARRAY_TASK_MIN=1 SLURM_ARRAY_TASK_COUNT=4 \
             @SPB@ --shard env --out @OUT@",
        ),
    ];
    for (tag, cmd) in ways {
        let (lines, summary) = sharded(&t, tag, cmd);
        assert_eq!(lines, whole, "{tag}");
        assert_eq!(summary, whole_summary, "{tag}");
    }
    // the same check through the command users run
    let o = spb(&["diff", "whole.jsonl", "plain-merged.jsonl"], &t.0);
    assert!(
        ok(&o).contains("6 of 6 paired runs equal without timings"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}

fn fails(args: &[&str], code: i32, needle: &str) {
    let t = Tmp::new("bad");
    let o = spb(args, &t.0);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(code), "{args:?}: {err}");
    assert!(err.contains(needle), "{args:?}: {err}");
}

#[test]
fn sweep_exits_as_run_would() {
    // invalid cells are refused before any cell runs, with run's exit codes
    fails(
        &["sweep", "--policies", "bogus"],
        2,
        "unknown policy \"bogus\"",
    );
    fails(&["sweep", "--memory", "1M"], 2, "64M to 15T");
    fails(&["sweep", "--memory", "16T"], 2, "64M to 15T");
    fails(
        &["sweep", "--duration", "99999999999999999999s"],
        2,
        "too large",
    );
    fails(&["sweep", "--duration", "25h"], 2, "at most 24h");
    fails(&["sweep", "--scenarios", "no-such"], 2, "no such built-in");
    fails(
        &["sweep", "--scenarios", "/nonexistent/x.toml"],
        4,
        "/nonexistent/x.toml",
    );
    fails(
        &["sweep", "--seeds", "1..18446744073709551615"],
        2,
        "--shard",
    );
    fails(&["sweep", "--seeds", "1..1"], 2, "A < B");
    fails(&["sweep", "--shard", "env"], 2, "JOB_COMPLETION_INDEX");
    fails(&["sweep", "--merge", "/"], 4, "is a directory");
}

#[test]
fn a_huge_seed_range_is_not_expanded() {
    let t = Tmp::new("huge");
    let start = std::time::Instant::now();
    let mut args = ONE_CELL.to_vec();
    args.extend(["--seeds", "1..100000000", "--shard", "99999998/100000000"]);
    let out = ok(&spb(&args, &t.0));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1);
    assert!(lines[0].contains("\"seed\":99999999"), "{}", lines[0]);
    assert!(start.elapsed().as_secs() < 60);
}

/// examples/sweep/slurm.sbatch, run as 4 array tasks (--array=1-4) on this machine with the
/// variables Slurm sets, merges to the unsharded sweep.
#[test]
fn the_slurm_recipe_runs() {
    let t = Tmp::new("sbatch");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/sweep/slurm.sbatch");
    let grid = GRID[1..].join(" ");
    for id in 1..=4 {
        let o = Command::new("bash")
            .arg(&script)
            .env("SPB", SPB)
            .env("OUT", "res")
            .env("GRID", &grid)
            .env("SLURM_ARRAY_TASK_ID", id.to_string())
            .env("SLURM_ARRAY_TASK_MIN", "1")
            .env("SLURM_ARRAY_TASK_COUNT", "4")
            .current_dir(&t.0)
            .output()
            .unwrap();
        ok(&o);
    }
    let mut args = GRID.to_vec();
    args.extend(["--out", "whole.jsonl"]);
    ok(&spb(&args, &t.0));
    let files: Vec<String> = (1..=4).map(|i| format!("res/shard-{i}.jsonl")).collect();
    let mut m = vec!["sweep", "--merge"];
    m.extend(files.iter().map(|s| s.as_str()));
    m.extend(["--out", "merged.jsonl"]);
    ok(&spb(&m, &t.0));
    assert_eq!(
        lines_without_wall(&t.path("merged.jsonl")),
        lines_without_wall(&t.path("whole.jsonl"))
    );
}

/// The cells bar is drawn on a terminal (a pty from `script`, when the machine has it) and is
/// silent when the output is a pipe.
#[test]
fn progress_only_on_a_terminal() {
    let t = Tmp::new("progress");
    let mut args = ONE_CELL.to_vec();
    args.extend(["--seeds", "1..3"]);
    let o = spb(&args, &t.0);
    ok(&o);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("cells [") && !err.contains("ETA"), "{err}");
    let has_script = Command::new("script").arg("--version").output().is_ok();
    if has_script {
        let cmd = format!("'{SPB}' {}", args.join(" "));
        let o = Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .current_dir(&t.0)
            .output()
            .unwrap();
        let tty = String::from_utf8_lossy(&o.stdout);
        assert!(tty.contains("cells [") && tty.contains("ETA"), "{tty}");
    }
}
