//! Waiting for a consumer group to settle: every worker a member, every partition assigned.
//!
//! The per-pod scaling runs start their workers and wait for this before they write the
//! requests, so no rebalance happens inside the served window (the README, "Per-pod
//! figures": the group's join is not what a scaling run measures). The group is read with the classic protocol's DescribeGroups
//! (librdkafka's `rd_kafka_list_groups`); a member's assignment is the consumer protocol's
//! `ConsumerProtocolAssignment` (version: i16, topics: [name: string, partitions: [i32]],
//! user data: bytes).

use std::time::{Duration, Instant};

use anyhow::bail;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

/// Partitions named by a serialized `ConsumerProtocolAssignment`; `None` when it is cut short.
fn assigned_partitions(assignment: &[u8]) -> Option<usize> {
    let mut at = 0usize;
    let mut take = |n: usize| -> Option<&[u8]> {
        let bytes = assignment.get(at..at.checked_add(n)?)?;
        at += n;
        Some(bytes)
    };
    let i16_at = |b: &[u8]| i16::from_be_bytes([b[0], b[1]]);
    let i32_at = |b: &[u8]| i32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    let _version = take(2)?;
    let topics = i32_at(take(4)?);
    let mut partitions = 0usize;
    for _ in 0..topics.max(0) {
        let name_len = i16_at(take(2)?).max(0) as usize;
        take(name_len)?;
        let count = i32_at(take(4)?).max(0) as usize;
        take(count.checked_mul(4)?)?;
        partitions += count;
    }
    Some(partitions)
}

/// Waits until `group` is `Stable` with `members` members that hold `partitions` partitions
/// between them, each at least one; polled every 100 ms.
///
/// # Errors
/// When that has not happened within `timeout`, or the broker cannot be asked.
pub(crate) async fn wait_settled(
    bootstrap: &str,
    group: &str,
    members: usize,
    partitions: usize,
    timeout: Duration,
) -> anyhow::Result<()> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()?;
    let deadline = Instant::now() + timeout;
    let mut last = String::from("not described yet");
    while Instant::now() < deadline {
        let consumer_ref = &consumer;
        let described = tokio::task::block_in_place(|| {
            consumer_ref.fetch_group_list(Some(group), Duration::from_secs(5))
        });
        if let Ok(list) = described {
            if let Some(info) = list.groups().first() {
                let held: Vec<usize> = info
                    .members()
                    .iter()
                    .map(|m| m.assignment().and_then(assigned_partitions).unwrap_or(0))
                    .collect();
                if info.state() == "Stable"
                    && held.len() == members
                    && held.iter().all(|&p| p > 0)
                    && held.iter().sum::<usize>() == partitions
                {
                    return Ok(());
                }
                last = format!("{} with partitions {held:?}", info.state());
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!(
        "group {group} did not settle with {members} members over {partitions} partitions in \
         {timeout:?} (last seen: {last})"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `ConsumerProtocolAssignment` of `topics` (name, partitions) and 3 bytes of user data.
    fn encode(topics: &[(&str, &[i32])]) -> Vec<u8> {
        let mut out = vec![0, 1];
        out.extend((topics.len() as i32).to_be_bytes());
        for (name, partitions) in topics {
            out.extend((name.len() as i16).to_be_bytes());
            out.extend(name.as_bytes());
            out.extend((partitions.len() as i32).to_be_bytes());
            for p in *partitions {
                out.extend(p.to_be_bytes());
            }
        }
        out.extend(3i32.to_be_bytes());
        out.extend([1, 2, 3]);
        out
    }

    #[test]
    fn counts_the_partitions_of_an_assignment() {
        assert_eq!(assigned_partitions(&encode(&[("t", &[0, 6, 11])])), Some(3));
        assert_eq!(
            assigned_partitions(&encode(&[("a", &[1]), ("b", &[2, 3])])),
            Some(3)
        );
        assert_eq!(assigned_partitions(&encode(&[])), Some(0));
    }

    #[test]
    fn a_cut_assignment_is_none() {
        let full = encode(&[("topic", &[0, 1])]);
        assert_eq!(assigned_partitions(&full[..full.len() - 9]), None);
        assert_eq!(assigned_partitions(&[0]), None);
    }
}
