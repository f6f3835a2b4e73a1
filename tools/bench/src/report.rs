//! The benchmark's figures. A run of `scripts/bench` repeats every measurement `--runs` times
//! (rounds); each figure is reported as the median of its rounds with the lowest and highest
//! value, so a before/after comparison can tell a change from the machine's noise. The
//! environment (versions, the box, the broker's state) is reported once.
//!
//! Output: a table on stdout, and with `--json FILE` one object
//! `{"environment": {…}, "runs": N, "figures": {"name": {"median", "min", "max", "values": […]}}}`.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::env::Local;
use crate::stack;

/// The figures of one round, by name (units in the name: `_rps`, `_ms`, `_mb`, `_us_per_req`).
pub(crate) type Round = BTreeMap<String, f64>;

/// Every round of one benchmark run and its environment.
pub(crate) struct Figures {
    environment: Map<String, Value>,
    rounds: Vec<Round>,
}

/// The median, lowest and highest of `values` (sorted in place); `None` when empty.
pub(crate) fn spread(values: &mut [f64]) -> Option<(f64, f64, f64)> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let median = match n {
        0 => return None,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    };
    Some((median, values[0], values[n - 1]))
}

/// Rounds `value` to `digits` decimals (figures are printed without false precision).
fn round_to(value: f64, digits: i32) -> f64 {
    let factor = 10f64.powi(digits);
    (value * factor).round() / factor
}

/// Decimals worth printing for a figure of this size.
fn digits_for(value: f64) -> i32 {
    match value.abs() {
        v if v >= 100.0 => 0,
        v if v >= 10.0 => 1,
        v if v >= 1.0 => 2,
        _ => 3,
    }
}

impl Figures {
    /// The environment: mode, cores, memory, CPU model, Kafka, librdkafka, PostgreSQL and rustc
    /// versions.
    pub(crate) async fn new(quick: bool, local: &Local) -> anyhow::Result<Self> {
        let mut environment = Map::new();
        environment.insert("mode".into(), json!(if quick { "quick" } else { "full" }));
        environment.insert(
            "cores".into(),
            json!(std::thread::available_parallelism().map_or(0, usize::from)),
        );
        environment.insert(
            "memory_gib".into(),
            json!(memory_gib().map(|g| round_to(g, 1))),
        );
        environment.insert("cpu".into(), json!(cpu_model()));
        environment.insert(
            "kafka_version".into(),
            json!(std::env::var("KAFKA_VERSION").ok()),
        );
        environment.insert(
            "librdkafka_version".into(),
            json!(rdkafka::util::get_rdkafka_version().1),
        );
        let pg = stack::connect(local, &local.pg_db).await?;
        let version: String = pg.query_one("SHOW server_version", &[]).await?.get(0);
        environment.insert("postgres_version".into(), json!(version));
        environment.insert(
            "rustc_version".into(),
            json!(command_output("rustc", &["--version"])),
        );
        environment.insert(
            "service_binary".into(),
            json!(local.service_binary.display().to_string()),
        );
        environment.insert(
            "service_malloc_arena_max".into(),
            json!(crate::env::service_malloc_arena_max()),
        );
        Ok(Self {
            environment,
            rounds: Vec::new(),
        })
    }

    /// Records an environment fact (a string or number reported once).
    pub(crate) fn note(&mut self, key: &str, value: Value) {
        self.environment.insert(key.into(), value);
    }

    /// Adds one round's figures.
    pub(crate) fn push(&mut self, round: Round) {
        self.rounds.push(round);
    }

    /// Every figure's name, in order, with its values over the rounds that have it.
    fn columns(&self) -> BTreeMap<&str, Vec<f64>> {
        let mut columns: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
        for round in &self.rounds {
            for (name, value) in round {
                if value.is_finite() {
                    columns.entry(name).or_default().push(*value);
                }
            }
        }
        columns
    }

    /// The table: environment first, then each figure's median and range over the rounds
    /// (names padded to the longest).
    pub(crate) fn print(&self) {
        let columns = self.columns();
        let width = columns
            .keys()
            .map(|name| name.len())
            .chain(self.environment.keys().map(String::len))
            .max()
            .unwrap_or(0)
            .max(36);
        for (key, value) in &self.environment {
            println!("{key:<width$} {value}");
        }
        println!();
        println!(
            "{:<width$} {:>12} {:>12} {:>12}  rounds",
            "figure", "median", "min", "max"
        );
        for (name, mut values) in columns {
            let Some((median, min, max)) = spread(&mut values) else {
                continue;
            };
            let d = digits_for(median);
            let f = |v: f64| format!("{:.*}", d.max(0) as usize, round_to(v, d));
            println!(
                "{name:<width$} {:>12} {:>12} {:>12}  {}",
                f(median),
                f(min),
                f(max),
                values.len()
            );
        }
    }

    /// The JSON object described in the module doc.
    pub(crate) fn write_json(&self, path: &std::path::Path) -> anyhow::Result<()> {
        let mut figures = Map::new();
        for (name, mut values) in self.columns() {
            let original = values.clone();
            if let Some((median, min, max)) = spread(&mut values) {
                let d = digits_for(median) + 1;
                figures.insert(
                    name.to_owned(),
                    json!({"median": round_to(median, d), "min": round_to(min, d),
                           "max": round_to(max, d),
                           "values": original.iter().map(|v| round_to(*v, d)).collect::<Vec<_>>()}),
                );
            }
        }
        let document = json!({"environment": self.environment, "runs": self.rounds.len(),
                              "figures": figures});
        std::fs::write(path, serde_json::to_string_pretty(&document)? + "\n")?;
        Ok(())
    }
}

fn memory_gib() -> Option<f64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kb: f64 = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb / 1024.0 / 1024.0)
}

fn cpu_model() -> Option<String> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let line = cpuinfo.lines().find(|l| l.starts_with("model name"))?;
    Some(line.split_once(':')?.1.trim().to_owned())
}

fn command_output(program: &str, args: &[&str]) -> Option<String> {
    let output = std::process::Command::new(program)
        .args(args)
        .output()
        .ok()?;
    Some(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_is_median_min_max() {
        assert_eq!(spread(&mut [3.0, 1.0, 2.0]), Some((2.0, 1.0, 3.0)));
        assert_eq!(spread(&mut [4.0, 1.0, 2.0, 3.0]), Some((2.5, 1.0, 4.0)));
        assert_eq!(spread(&mut []), None);
    }
}
