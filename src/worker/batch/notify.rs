//! The notify step: every SMS, email and dead-letter event of the batch in flight at once, each
//! retried on its own until the broker acknowledges it; then the SMS are marked sent.
//!
//! The SMS event ([contract §4](../../../docs/contract.md#4-sms-event)) and, where the plan has an address, the email event ([§5](../../../docs/contract.md#5-email-event)) carry
//! the request's key and its `x-request-id` header, and `x-otp-code-id` (the code's UUID, by
//! which a scan of the SMS topic finds them: [`SentScan`]). Each delivery's texts come first
//! ([`MessageTexts::for_request`](crate::localization::texts::MessageTexts::for_request):
//! egov-localization's, cached, else the configured ones; a cache miss delays only its own
//! delivery, by at most the localization timeout, well inside the send window, and yields to
//! cancellation). Its SMS expiry counts from then, after the database work and any recovery (egov-notification-sms
//! drops an SMS whose `expiryTime` has passed).

use std::borrow::Cow;
use std::collections::HashSet;
use std::time::{Instant, SystemTime};

use serde::Serialize;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::plan::{Delivery, Plan};
use crate::domain::code::OtpCode;
use crate::domain::decide::SendPlan;
use crate::domain::notification::{EmailEvent, SmsEvent};
use crate::domain::request_event::{request_key, REQUEST_ID_HEADER};
use crate::domain::templates::TypeTemplates;
use crate::domain::unix_time::unix_ms;
use crate::domain::OtpRequest;
use crate::failure::{Classify, FailureKind};
use crate::kafka::ProduceError;
use crate::retry::Cancelled;
use crate::store::RequestKey;
use crate::worker::dead_letter::{self, Verdict};
use crate::worker::incoming::Incoming;
use crate::worker::outgoing::Outgoing;
use crate::worker::pipeline::{Pipeline, Topics};
use crate::worker::retrying::{until_done, until_settled};
use crate::worker::sent_scan::{SentScan, CODE_ID_HEADER, SENT_SCAN_TIMEOUT};

/// Adds one permit to its semaphore when dropped: a delivery's texts are chosen, or it ended
/// without them (cancelled). The announce step runs in the same task, polled after this step
/// (`futures::future::join`), so once it holds every permit each SMS whose texts were chosen
/// has been handed to the producer.
pub(super) struct TextsReady<'a>(pub(super) &'a Semaphore);

impl Drop for TextsReady<'_> {
    fn drop(&mut self) {
        self.0.add_permits(1);
    }
}

impl Pipeline {
    /// Emits the events of `plan` (deliveries and dead letters) and waits for every
    /// acknowledgement. No SMS is handed to the producer after its window's end: `send_by`
    /// (the batch's [`sms_send_window`](super::sms_send_window) from its record step), or for a
    /// recovered request its own from its claim ([`Delivery::send_by`](super::plan::Delivery)).
    ///
    /// # Errors
    /// [`Cancelled`] when `cancel` fires first, or when an SMS is not acknowledged by `send_by`
    /// (its request is then recovered after the pending grace).
    ///
    /// Each delivery adds one permit to `texts_ready` once its texts are chosen (or it gave up),
    /// right before its SMS goes to the producer in the same poll; the announce step waits for
    /// all of them ([`TextsReady`]).
    pub(super) async fn notify(
        &self,
        plan: &Plan<'_>,
        send_by: Instant,
        texts_ready: &Semaphore,
        cancel: &CancellationToken,
    ) -> Result<(), Cancelled> {
        let step_started = unix_ms(SystemTime::now());
        // Each delivery on its own: one whose texts are cached is sent at once, whatever
        // another's first search of egov-localization takes.
        let sends = plan.deliveries.iter().map(|delivery| async move {
            let ready = TextsReady(texts_ready);
            let wording = tokio::select! {
                // The texts first: when they are ready at once (cached, or localization off)
                // the cancellation token is not even looked at.
                biased;
                wording = self.texts.for_request(&delivery.request.request) => wording,
                () = cancel.cancelled() => return vec![Err(Cancelled { attempts: 0 })],
            };
            drop(ready);
            let sms_expires_at = SystemTime::now() + self.sms_expiry;
            let by = delivery.send_by.unwrap_or(send_by);
            let events = self.events_for(delivery, &wording, sms_expires_at);
            futures::future::join_all(
                events
                    .iter()
                    .map(|event| self.deliver(event, delivery.code_id, step_started, by, cancel)),
            )
            .await
        });
        let dead_letter_sends = plan
            .dead_letters
            .iter()
            .map(|(event, verdict)| self.dead_letter(event, verdict, cancel));
        let (sent, dead_lettered) = futures::future::join(
            futures::future::join_all(sends),
            futures::future::join_all(dead_letter_sends),
        )
        .await;
        sent.into_iter().flatten().chain(dead_lettered).collect()
    }

    /// Records that the SMS of `keys` are acknowledged (`sms_pending` → `sent`).
    ///
    /// # Errors
    /// [`Cancelled`] when `cancel` fires first.
    pub(super) async fn mark_sent(
        &self,
        keys: &[RequestKey],
        cancel: &CancellationToken,
    ) -> Result<(), Cancelled> {
        if keys.is_empty() {
            return Ok(());
        }
        until_done(&self.retry_policy, "mark SMS sent", cancel, || {
            self.store.mark_sent(keys)
        })
        .await
    }

    fn events_for(
        &self,
        delivery: &Delivery<'_>,
        wording: &TypeTemplates,
        sms_expires_at: SystemTime,
    ) -> Vec<Outgoing<'static>> {
        for_delivery(
            &delivery.request.request,
            delivery.request.event.correlation_id(),
            &delivery.code_id,
            &delivery.plan,
            &delivery.code,
            wording,
            &self.topics,
            sms_expires_at,
        )
    }

    /// Writes one SMS or email event until the broker acknowledges it. After a send that timed
    /// out (the broker may have stored it all the same), an SMS is first looked for on the SMS
    /// topic, as crash recovery does ([`SentScan`]): found, it is not sent again.
    ///
    /// A refusal the broker would repeat (too large, invalid) cannot be this request's doing:
    /// every field of an SMS event is bounded by edge validation, by egov-user's own columns or
    /// by the localized text's limit (1,000 characters, each `%s` at most a code: under 16 KB in
    /// all), so it is a topic misconfigured for every SMS (e.g. a tiny
    /// `max.message.bytes`) and is retried, logged at error level, never dead-lettered. An email
    /// event refused that way is dropped with an error log (the SMS went).
    ///
    /// An SMS is retried only until `send_by`: a later attempt could still be delivered after
    /// another run recovered its request and sent a fresh code (two SMS, the first with a dead
    /// code), so the batch stops there and its requests are recovered after the pending grace.
    async fn deliver(
        &self,
        event: &Outgoing<'_>,
        code_id: Uuid,
        since_ms: i64,
        send_by: Instant,
        cancel: &CancellationToken,
    ) -> Result<(), Cancelled> {
        if event.topic != self.topics.sms {
            return self
                .deliver_until_done(event, code_id, since_ms, None, cancel)
                .await;
        }
        match tokio::time::timeout_at(
            send_by.into(),
            self.deliver_until_done(event, code_id, since_ms, Some(send_by), cancel),
        )
        .await
        {
            Ok(done) => done,
            Err(_) => {
                tracing::warn!(
                    %code_id,
                    "SMS not acknowledged within the send window; the batch stops and its requests are recovered after the pending grace"
                );
                Err(Cancelled { attempts: 0 })
            }
        }
    }

    /// [`deliver`](Self::deliver)'s retry loop. With `send_by`, no attempt hands the event to
    /// the producer once it has passed: the attempt waits for ever instead, so the caller's
    /// timer at `send_by` ends the loop (a timer alone would let the first attempt polled after
    /// it enqueue the event).
    async fn deliver_until_done(
        &self,
        event: &Outgoing<'_>,
        code_id: Uuid,
        since_ms: i64,
        send_by: Option<Instant>,
        cancel: &CancellationToken,
    ) -> Result<(), Cancelled> {
        let is_sms = event.topic == self.topics.sms;
        let send = || async move {
            if send_by.is_some_and(|by| Instant::now() >= by) {
                std::future::pending::<()>().await;
            }
            event.send(&self.producer).await
        };
        // The first attempt, on its own: the common case allocates nothing for the retries.
        let maybe_written = match send().await {
            Ok(()) => return Ok(()),
            Err(error) if !is_sms && error.kind() == FailureKind::Poison => {
                tracing::error!(%error, "the broker refused an email event; the SMS went");
                return Ok(());
            }
            Err(error) => {
                tracing::warn!(%error, "producing an event failed; retrying");
                is_sms && error.maybe_written()
            }
        };
        let maybe_written = std::sync::atomic::AtomicBool::new(maybe_written);
        let new_scan = || {
            SentScan::new(
                &self.scan_client,
                &self.topics.sms,
                since_ms,
                HashSet::from([code_id]),
            )
        };
        // Behind a lock only so each attempt can resume the same scan; a scan that reached the
        // end without finding the SMS is replaced, so the next check reads up to the new end.
        let scan = tokio::sync::Mutex::new(new_scan());
        until_done(&self.retry_policy, "produce an event", cancel, || async {
            if maybe_written.load(std::sync::atomic::Ordering::Relaxed) {
                let mut scan = scan.lock().await;
                if scan.run(SENT_SCAN_TIMEOUT).await?.contains(&code_id) {
                    tracing::info!(%code_id, "an SMS whose send timed out was written after all");
                    return Ok(());
                }
                *scan = new_scan();
            }
            let sent = send().await;
            if is_sms && sent.as_ref().is_err_and(ProduceError::maybe_written) {
                maybe_written.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            sent
        })
        .await
    }

    /// Logs and writes the dead letter of `event`, cut to fit `message_max_bytes`; written as a
    /// pointer to the original if the broker still refuses it (see [`dead_letter`]).
    pub(super) async fn dead_letter(
        &self,
        event: &Incoming,
        verdict: &Verdict,
        cancel: &CancellationToken,
    ) -> Result<(), Cancelled> {
        tracing::warn!(
            request_id = ?event.request_id,
            reason = verdict.reason.as_str(),
            detail = ?verdict.detail,
            topic = %event.source.topic,
            partition = event.source.partition,
            offset = event.source.offset,
            "request event dead-lettered"
        );
        let topic = &self.topics.dead_letter;
        let full = dead_letter::build(event, verdict, topic, self.message_max_bytes);
        let sent = until_settled(&self.retry_policy, "produce a dead letter", cancel, || {
            full.send(&self.producer)
        })
        .await?;
        if let Err(error) = sent {
            tracing::warn!(
                %error,
                offset = event.source.offset,
                "the broker refused the dead letter; writing a pointer to the original instead"
            );
            let pointer = dead_letter::pointer(event, verdict, topic);
            until_done(
                &self.retry_policy,
                "produce a dead-letter pointer",
                cancel,
                || pointer.send(&self.producer),
            )
            .await?;
        }
        Ok(())
    }
}

/// The SMS event, and the email event when the plan has an address, for one delivery. Both
/// carry `x-request-id` (`correlation_id`: the caller's id, else the request id) and
/// `x-otp-code-id` (the code's UUID, by which a scan of the SMS topic finds them).
#[allow(clippy::too_many_arguments)]
fn for_delivery(
    request: &OtpRequest,
    correlation_id: &str,
    code_id: &Uuid,
    plan: &SendPlan,
    code: &OtpCode,
    wording: &TypeTemplates,
    topics: &Topics,
    sms_expires_at: SystemTime,
) -> Vec<Outgoing<'static>> {
    let key: Cow<'static, [u8]> = Cow::Owned(request_key(request).into_bytes());
    let headers = vec![
        (
            Cow::Borrowed(REQUEST_ID_HEADER),
            Some(Cow::Owned(correlation_id.as_bytes().to_vec())),
        ),
        (
            Cow::Borrowed(CODE_ID_HEADER),
            Some(Cow::Owned(code_id.to_string().into_bytes())),
        ),
    ];
    let sms = SmsEvent::new(
        plan.sms_to.clone(),
        wording.sms_text(code),
        unix_ms(sms_expires_at),
        wording.dlt_template_id.clone(),
        Some(request.locale().to_owned()),
        Some(request.tenant_id.clone()),
    );
    let mut events = vec![Outgoing {
        topic: topics.sms.clone(),
        key: Some(key.clone()),
        payload: Some(Cow::Owned(to_json(&sms))),
        headers: headers.clone(),
    }];
    if let (Some(address), Some((subject, body))) = (plan.email_to.as_deref(), wording.email(code))
    {
        events.push(Outgoing {
            topic: topics.email.clone(),
            key: Some(key),
            payload: Some(Cow::Owned(to_json(&EmailEvent::new(
                address, subject, body,
            )))),
            headers,
        });
    }
    events
}

/// Serialises an event made only of strings, numbers and booleans (cannot fail).
fn to_json<T: Serialize>(event: &T) -> Vec<u8> {
    serde_json::to_vec(event).unwrap_or_else(|error| {
        tracing::error!(%error, "cannot serialise an outgoing event");
        Vec::new()
    })
}
