//! `--set KEY=VALUE`: edit a scenario's TOML before it is read, so that one value of a built-in
//! scenario (or of a file) can be changed from the command line without copying the file.
//!
//! `KEY` is a top-level key (`duration`), a key of the `machine`, `vm` or `boot` table
//! (`machine.memory`), or `WORKLOAD.KEY` for the `[[workload]]` named `WORKLOAD`
//! (`gigantic.count`; `workload.WORKLOAD.KEY` when the workload's name is also a table's, as
//! a workload named `vm`). `VALUE` is read as a TOML value (`36`, `0.5`, `true`, `["60%"]`,
//! `"8M"`); anything that is not one is taken as a string (`8M`). The edited text is then
//! checked by the scenario reader like any file, so a bad value gets the reader's own error.

/// The tables a two-part key may name before it is taken as a workload's name.
const TABLES: [&str; 3] = ["machine", "vm", "boot"];

/// Apply one `KEY=VALUE` to the scenario's root table. Errors: (key, what was expected).
pub fn apply(root: &mut toml::Table, set: &str) -> Result<(), (String, String)> {
    let Some((path, value)) = set.split_once('=') else {
        return Err((
            set.to_string(),
            "expected KEY=VALUE, e.g. gigantic.count=36 or machine.memory=64G".to_string(),
        ));
    };
    let path = path.trim();
    let value = parse_value(value.trim());
    let parts: Vec<&str> = path.split('.').collect();
    let bad = parts.iter().any(|p| p.is_empty())
        || parts.len() > 3
        || (parts.len() == 3 && parts[0] != "workload");
    if bad {
        return Err((
            path.to_string(),
            "expected KEY, TABLE.KEY (machine, vm, boot), WORKLOAD.KEY or workload.WORKLOAD.KEY"
                .to_string(),
        ));
    }
    if parts.len() == 1 {
        root.insert(path.to_string(), value);
        return Ok(());
    }
    let (head, key) = (parts[parts.len() - 2], parts[parts.len() - 1]);
    if parts.len() == 2 && TABLES.contains(&head) {
        let t = root
            .entry(head.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let toml::Value::Table(t) = t else {
            return Err((
                head.to_string(),
                "is not a table in this scenario".to_string(),
            ));
        };
        t.insert(key.to_string(), value);
        return Ok(());
    }
    let mut names = Vec::new();
    if let Some(toml::Value::Array(ws)) = root.get_mut("workload") {
        for w in ws.iter_mut() {
            let toml::Value::Table(w) = w else { continue };
            match w.get("name") {
                Some(toml::Value::String(n)) if n == head => {
                    w.insert(key.to_string(), value);
                    return Ok(());
                }
                Some(toml::Value::String(n)) => names.push(n.clone()),
                _ => {}
            }
        }
    }
    Err((
        path.to_string(),
        format!(
            "no table or workload named \"{head}\" (tables: {}; workloads: {})",
            TABLES.join(", "),
            if names.is_empty() {
                "none named".to_string()
            } else {
                names.join(", ")
            }
        ),
    ))
}

/// A TOML value if `s` is one, else the string `s`.
fn parse_value(s: &str) -> toml::Value {
    match format!("v = {s}").parse::<toml::Table>() {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(s.to_string())),
        Err(_) => toml::Value::String(s.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use crate::scenario::Scenario;

    const T: &str = r#"
name = "t"
duration = "10s"
[machine]
memory = "1G"
[[workload]]
kind = "hugetlb"
name = "gigantic"
at = ["50%"]
count = 4
"#;

    fn load(sets: &[&str]) -> Result<Scenario, crate::scenario::ScenarioError> {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        Scenario::from_toml_with(T, "t.toml", &sets)
    }

    #[test]
    fn sets_top_level_table_and_workload_keys() {
        let base = load(&[]).unwrap();
        let sc = load(&["gigantic.count=2", "machine.memory=2G", "duration=20s"]).unwrap();
        assert_eq!(sc.machine.memory, 2 << 30);
        assert_eq!(sc.duration_ns, 20_000_000_000);
        assert_ne!(
            format!("{:?}", sc.workloads),
            format!("{:?}", base.workloads)
        );
        assert_eq!(
            sc.name,
            "t [gigantic.count=2, machine.memory=2G, duration=20s]"
        );
    }

    #[test]
    fn bad_sets_name_the_key_and_what_was_expected() {
        let e = load(&["gigantic"]).unwrap_err();
        assert!(e.to_string().contains("expected KEY=VALUE"), "{e}");
        let e = load(&["nosuch.count=1"]).unwrap_err();
        assert!(e.to_string().contains("workloads: gigantic"), "{e}");
        assert_eq!(e.key, "nosuch.count");
        // the reader checks the edited value like any file
        let e = load(&["gigantic.count=-1"]).unwrap_err();
        assert!(e.to_string().contains("count"), "{e}");
        let e = load(&["a.b.c=1"]).unwrap_err();
        assert!(e.to_string().contains("TABLE.KEY"), "{e}");
        assert!(load(&["workload.gigantic.count=1"]).is_ok());
    }
}
