//! Leftovers of earlier runs on the local broker and PostgreSQL, reported and removed.
//!
//! Every integration test and every benchmark round makes its own topics and database. The
//! benchmark removes its own after each round; the tests leave theirs (a failed test's topics
//! are evidence). On a developer's machine they pile up: 6,740 partitions and 498 databases
//! after a few days here, and a broker with that many partitions took 84 s to start and served
//! the same benchmark with a p99 latency several times higher. `user-otp-bench clean`
//! (`scripts/bench clean`) deletes exactly the names the tests and the benchmark make:
//! topics `otp-{request,sms,email,dlq}-<32 hex>`, `bench_<12 hex>.*`, `bench.passthrough_<12 hex>`;
//! databases `test_<32 hex>`, `bench_<12 hex>`; and the per-pod part's cgroups under
//! `<cpu hierarchy>/user-otp-bench/` a killed run left ([`crate::cgroup::remove_leftovers`]).

use serde_json::json;

use crate::env::Local;
use crate::kafka_io;
use crate::report::Figures;
use crate::stack;

fn hex_of_len(text: &str, len: usize) -> bool {
    text.len() == len && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A topic an integration test or a benchmark round made.
fn leftover_topic(name: &str) -> bool {
    let test = ["otp-request-", "otp-sms-", "otp-email-", "otp-dlq-"]
        .iter()
        .any(|prefix| {
            name.strip_prefix(prefix)
                .is_some_and(|id| hex_of_len(id, 32))
        });
    let bench = name
        .strip_prefix("bench_")
        .and_then(|rest| rest.split_once('.'))
        .is_some_and(|(id, _)| hex_of_len(id, 12));
    let passthrough = name
        .strip_prefix("bench.passthrough_")
        .is_some_and(|id| hex_of_len(id, 12));
    test || bench || passthrough
}

/// A database an integration test or a benchmark round made.
fn leftover_database(name: &str) -> bool {
    name.strip_prefix("test_")
        .is_some_and(|id| hex_of_len(id, 32))
        || name
            .strip_prefix("bench_")
            .is_some_and(|id| hex_of_len(id, 12))
}

async fn databases(local: &Local) -> anyhow::Result<Vec<String>> {
    let db = stack::connect(local, &local.pg_db).await?;
    Ok(db
        .query("SELECT datname FROM pg_database", &[])
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect())
}

/// Deletes the leftovers and says how many there were.
///
/// # Errors
/// When the broker or PostgreSQL cannot be reached, or refuses a deletion.
pub(crate) async fn run(local: &Local) -> anyhow::Result<()> {
    let topics: Vec<String> = kafka_io::topics(&local.kafka)?
        .into_iter()
        .map(|(name, _)| name)
        .filter(|name| leftover_topic(name))
        .collect();
    for chunk in topics.chunks(200) {
        let names: Vec<&str> = chunk.iter().map(String::as_str).collect();
        kafka_io::delete_topics(&local.kafka, &names).await?;
    }
    let names: Vec<String> = databases(local)
        .await?
        .into_iter()
        .filter(|name| leftover_database(name))
        .collect();
    let db = stack::connect(local, &local.pg_db).await?;
    for name in &names {
        db.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await?;
    }
    println!(
        "deleted {} topics and {} databases left by earlier test and benchmark runs",
        topics.len(),
        names.len()
    );
    let (cgroups, busy) = crate::cgroup::remove_leftovers();
    println!("removed {cgroups} cgroups left by earlier per-pod runs");
    if busy > 0 {
        println!(
            "{busy} user-otp-bench cgroups still hold a process (a killed run's service): \
             stop it, then run clean again"
        );
    }
    Ok(())
}

/// Notes the broker's and PostgreSQL's state in the environment (partitions, leftovers) and how
/// busy the box was in the second before the benchmark started; warns when either would skew
/// the figures.
///
/// # Errors
/// When the broker or PostgreSQL cannot be reached.
pub(crate) async fn broker_state(local: &Local, figures: &mut Figures) -> anyhow::Result<()> {
    let topics = kafka_io::topics(&local.kafka)?;
    let partitions: usize = topics.iter().map(|(_, p)| p).sum();
    let leftover_topics = topics.iter().filter(|(n, _)| leftover_topic(n)).count();
    let leftover_databases = databases(local)
        .await?
        .iter()
        .filter(|n| leftover_database(n))
        .count();
    figures.note("broker_partitions", json!(partitions));
    figures.note("leftover_topics", json!(leftover_topics));
    figures.note("leftover_databases", json!(leftover_databases));
    if partitions > 500 || leftover_databases > 50 {
        eprintln!(
            "WARNING: the broker has {partitions} partitions and PostgreSQL {leftover_databases} \
             leftover databases from earlier runs; figures will be lower and noisier. \
             Run `scripts/bench clean` first."
        );
    }
    let busy = crate::cpu::box_busy_over(std::time::Duration::from_secs(1)).await;
    figures.note(
        "box_busy_before_pct",
        json!(busy.map(|b| (b * 1000.0).round() / 10.0)),
    );
    if busy.is_some_and(|b| b > 0.2) {
        eprintln!(
            "WARNING: the box was {:.0}% busy before the benchmark started; something else is \
             running",
            busy.unwrap_or(0.0) * 100.0
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_names_tests_and_the_benchmark_make_are_leftovers() {
        assert!(leftover_topic("otp-sms-0123456789abcdef0123456789abcdef"));
        assert!(leftover_topic("bench_0123456789ab.request"));
        assert!(leftover_topic("bench.passthrough_0123456789ab"));
        assert!(!leftover_topic("egov.core.otp"));
        assert!(!leftover_topic("otp-sms-mine"));
        assert!(!leftover_topic("__consumer_offsets"));
        assert!(leftover_database("test_0123456789abcdef0123456789abcdef"));
        assert!(leftover_database("bench_0123456789ab"));
        assert!(!leftover_database("user_otp"));
        assert!(!leftover_database("test_mine"));
    }
}
