//! What happened to a set of requests, read back from PostgreSQL and the topics: nothing lost,
//! nothing sent twice.

use std::collections::{HashMap, HashSet};

use crate::kafka_io;
use crate::stack::Stack;

#[derive(Debug, Default, Clone, serde::Serialize)]
pub(crate) struct Audit {
    /// Requests written to the request topic.
    pub sent: usize,
    /// Requests with a final outcome in PostgreSQL.
    pub outcomes: usize,
    /// Requests with neither a final outcome nor a dead letter.
    pub lost: usize,
    /// SMS events beyond the first for one request id.
    pub duplicate_sms: usize,
    pub dead_lettered: usize,
    pub sms: usize,
    /// Timestamps (ms since the epoch) of the first and last SMS event for these requests:
    /// the window in which they were served.
    pub first_sms_ms: Option<i64>,
    pub last_sms_ms: Option<i64>,
}

pub(crate) async fn audit(stack: &Stack, request_ids: &[String]) -> anyhow::Result<Audit> {
    // Outcomes are keyed by the worker's request id: `caller:` + the x-request-id header.
    let stored: Vec<String> = request_ids
        .iter()
        .map(|id| format!("caller:{id}"))
        .collect();
    let rows = stack
        .db
        .query(
            "SELECT substr(request_id, 8) FROM otp_request_outcome
             WHERE request_id = ANY($1) AND outcome <> 'sms_pending'",
            &[&stored],
        )
        .await?;
    let finished: HashSet<String> = rows.iter().map(|r| r.get(0)).collect();
    let dead: HashSet<String> = kafka_io::read_all(&stack.local.kafka, &stack.dead_letter_topic)
        .await?
        .into_iter()
        .filter_map(|r| r.request_id)
        .collect();
    let sms = kafka_io::read_all(&stack.local.kafka, &stack.sms_topic).await?;
    let mut per_request: HashMap<String, usize> = HashMap::new();
    for record in &sms {
        if let Some(id) = &record.request_id {
            *per_request.entry(id.clone()).or_default() += 1;
        }
    }
    let wanted: HashSet<&String> = request_ids.iter().collect();
    let served = || {
        sms.iter()
            .filter(|r| r.request_id.as_ref().is_some_and(|id| wanted.contains(id)))
            .map(|r| r.timestamp_ms)
    };
    Ok(Audit {
        sent: request_ids.len(),
        outcomes: finished.len(),
        lost: request_ids
            .iter()
            .filter(|id| !finished.contains(*id) && !dead.contains(*id))
            .count(),
        duplicate_sms: per_request
            .iter()
            .filter(|(id, _)| wanted.contains(id))
            .map(|(_, n)| n.saturating_sub(1))
            .sum(),
        dead_lettered: dead.len(),
        sms: sms.len(),
        first_sms_ms: served().min(),
        last_sms_ms: served().max(),
    })
}
