//! SMS and email texts from egov-localization ([contract §6](../docs/contract.md#6-message-texts);
//! README "Configuration", `USER_OTP_LOCALIZATION_*`): per state tenant and locale, DIGIT's and
//! mGramSeva's keys and placeholders, cached, served stale while egov-localization is down, the
//! configured texts when a key is missing or egov-localization never answered, and the DLT
//! template id of each locale's text. egov-localization is a wiremock server.

mod common;

use std::time::{Duration, Instant};

use common::stack::{code_in, Stack};
use common::*;
use serde_json::{json, Value};
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SEARCH: &str = "/localization/messages/v1/_search";
const LOGIN_DEFAULT: &str = "Dear Citizen, Your Login OTP is ";

/// An egov-localization answer with `(code, text)` messages.
fn answer(messages: &[(&str, &str)]) -> ResponseTemplate {
    let messages: Vec<Value> = messages
        .iter()
        .map(|(code, text)| json!({"code": code, "message": text, "module": "egov-user"}))
        .collect();
    ResponseTemplate::new(200).set_body_json(json!({ "messages": messages }))
}

/// Answers `locale`'s search of state tenant `pb` with `messages`.
async fn mount_locale(server: &MockServer, locale: &str, messages: &[(&str, &str)]) {
    Mock::given(method("POST"))
        .and(path(SEARCH))
        .and(query_param("tenantId", "pb"))
        .and(query_param("locale", locale))
        .respond_with(answer(messages))
        .mount(server)
        .await;
}

/// A stack whose worker asks `server` for its texts, with `vars` on top.
async fn stack_with(server: &MockServer, vars: &[(&str, &str)]) -> Stack {
    let uri = server.uri();
    let mut all = vec![("USER_OTP_LOCALIZATION_HOST", uri.as_str())];
    all.extend_from_slice(vars);
    Stack::start(&all).await
}

/// A stack whose egov-localization (`server`) takes 5 s to answer any ta_IN search, while the
/// worker waits at most 1.5 s for texts.
async fn with_hanging_ta_in(server: &MockServer) -> Stack {
    Mock::given(method("POST"))
        .and(path(SEARCH))
        .and(query_param("locale", "ta_IN"))
        .respond_with(answer(&[]).set_delay(Duration::from_secs(5)))
        .mount(server)
        .await;
    stack_with(server, &[("USER_OTP_LOCALIZATION_TIMEOUT_MS", "1500")]).await
}

/// Produces a `otp_type` request of `mobile` in tenant `pb.amritsar` and `locale`; returns its
/// `x-request-id`.
async fn produce_in_locale(stack: &Stack, mobile: &str, otp_type: &str, locale: &str) -> String {
    let id = unique_name("req");
    let body = json!({"RequestInfo": {"apiId": "test"},
        "otp": {"mobileNumber": mobile, "tenantId": "pb.amritsar", "type": otp_type,
                "locale": locale}});
    stack
        .produce(
            &format!("pb:{mobile}"),
            body.to_string().as_bytes(),
            Some(&id),
        )
        .await;
    id
}

/// Produces a `otp_type` request of `mobile` in tenant `pb.amritsar` and `locale`, and returns
/// its SMS event.
async fn sms_of(stack: &Stack, mobile: &str, otp_type: &str, locale: &str) -> Value {
    let id = produce_in_locale(stack, mobile, otp_type, locale).await;
    payload_json(&stack.sms_for(&id).await)
}

fn text(sms: &Value) -> String {
    sms["message"].as_str().expect("message").to_owned()
}

#[tokio::test]
async fn texts_come_per_state_tenant_and_locale_with_either_placeholder_and_one_search_each() {
    let localization = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(SEARCH))
        .and(query_param("tenantId", "pb"))
        .and(query_param("module", "egov-user,mgramseva-common"))
        .and(query_param("locale", "hi_IN"))
        .respond_with(answer(&[("sms.login.otp.msg", "आपका लॉगिन ओटीपी %s है")]))
        .expect(1)
        .mount(&localization)
        .await;
    mount_locale(
        &localization,
        "pa_IN",
        &[
            (
                "sms.pwd.reset.otp.msg",
                "this one has no place for the code",
            ),
            ("RESET_PASSWORD_OTP", "NalJal ਪਾਸਵਰਡ OTP {otp}"),
            ("email.pwd.reset.otp.sub", "ਪਾਸਵਰਡ"),
        ],
    )
    .await;
    mount_locale(&localization, "en_IN", &[]).await;
    let stack = stack_with(
        &localization,
        &[("USER_OTP_LOCALIZATION_MODULE", "egov-user,mgramseva-common")],
    )
    .await;
    let _worker = stack.spawn_worker();
    for mobile in ["9876500001", "9876500002", "9876500003"] {
        stack.known_citizen(mobile, mobile, None).await;
        let sms = sms_of(&stack, mobile, "login", "hi_IN").await;
        let code = code_in(&text(&sms));
        assert_eq!(text(&sms), format!("आपका लॉगिन ओटीपी {code} है"));
        assert_eq!(sms["locale"], "hi_IN");
    }
    stack
        .known_citizen("9876500004", "9876500004", Some("c@example.org"))
        .await;
    let id = unique_name("req");
    let body = json!({"RequestInfo": {"apiId": "test"},
        "otp": {"mobileNumber": "9876500004", "tenantId": "pb.amritsar",
                "type": "passwordreset", "locale": "pa_IN"}});
    stack
        .produce("pb:9876500004", body.to_string().as_bytes(), Some(&id))
        .await;
    let sms = payload_json(&stack.sms_for(&id).await);
    let code = code_in(&text(&sms));
    assert_eq!(
        text(&sms),
        format!("NalJal ਪਾਸਵਰਡ OTP {code}"),
        "the first key with a place for the code, mGramSeva's {{otp}}"
    );
    let email = wait_for_event(&stack.topics.email, "the email", |m| {
        header(m, "x-request-id").as_deref() == Some(id.as_str())
    })
    .await;
    let email = payload_json(&email);
    assert_eq!(email["email"]["subject"], "ਪਾਸਵਰਡ");
    assert_eq!(
        email["email"]["body"],
        format!("Your OTP for recovering password is {code}."),
        "no localized body: the built-in one"
    );
    let sms = sms_of(&stack, "9876500005", "register", "en_IN").await;
    assert!(
        text(&sms).starts_with("Dear Citizen, Your OTP to complete your mSeva Registration is "),
        "a key egov-localization lacks: the built-in text, {sms}"
    );
    localization.verify().await;
}

#[tokio::test]
async fn egov_localization_down_or_hanging_fails_nothing_and_its_last_texts_are_served_stale() {
    let localization = MockServer::start().await;
    // hi_IN: answered once, then 503 for every search.
    Mock::given(method("POST"))
        .and(path(SEARCH))
        .and(query_param("locale", "hi_IN"))
        .respond_with(answer(&[("sms.login.otp.msg", "पुराना पाठ %s")]))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&localization)
        .await;
    Mock::given(method("POST"))
        .and(path(SEARCH))
        .and(query_param("locale", "hi_IN"))
        .respond_with(ResponseTemplate::new(503))
        .with_priority(2)
        .mount(&localization)
        .await;
    // ta_IN: never answers in time.
    Mock::given(method("POST"))
        .and(path(SEARCH))
        .and(query_param("locale", "ta_IN"))
        .respond_with(
            answer(&[("sms.login.otp.msg", "too late %s")]).set_delay(Duration::from_secs(10)),
        )
        .mount(&localization)
        .await;
    let stack = stack_with(
        &localization,
        &[
            ("USER_OTP_LOCALIZATION_CACHE_TTL_SECONDS", "1"),
            ("USER_OTP_LOCALIZATION_TIMEOUT_MS", "300"),
        ],
    )
    .await;
    let _worker = stack.spawn_worker();
    for mobile in ["9876500011", "9876500012", "9876500013"] {
        stack.known_citizen(mobile, mobile, None).await;
    }
    let first = sms_of(&stack, "9876500011", "login", "hi_IN").await;
    assert!(text(&first).starts_with("पुराना पाठ "), "{first}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let stale = sms_of(&stack, "9876500012", "login", "hi_IN").await;
    assert!(
        text(&stale).starts_with("पुराना पाठ "),
        "past its TTL, with egov-localization answering 503: the last answer, {stale}"
    );
    let started = Instant::now();
    let hanging = sms_of(&stack, "9876500013", "login", "ta_IN").await;
    assert!(
        text(&hanging).starts_with(LOGIN_DEFAULT),
        "no answer within the timeout: the built-in text, {hanging}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the request waited {:?}, not egov-localization's 10 s",
        started.elapsed()
    );
    let searches = localization.received_requests().await.unwrap_or_default();
    let hindi = searches
        .iter()
        .filter(|r| r.url.query().is_some_and(|q| q.contains("locale=hi_IN")))
        .count();
    assert!(
        (2..=3).contains(&hindi),
        "one first search and one background refresh, not one per request: {hindi}"
    );
}

#[tokio::test]
async fn with_dlt_ids_a_localized_text_goes_only_with_its_own_template_id() {
    let localization = MockServer::start().await;
    mount_locale(
        &localization,
        "hi_IN",
        &[("sms.login.otp.msg", "हिंदी पाठ %s")],
    )
    .await;
    mount_locale(&localization, "ta_IN", &[("sms.login.otp.msg", "தமிழ் %s")]).await;
    let stack = stack_with(
        &localization,
        &[
            ("USER_OTP_DLT_TEMPLATE_ID_LOGIN", "1007000000000000001"),
            (
                "USER_OTP_DLT_TEMPLATE_IDS_BY_LOCALE_LOGIN",
                "hi_IN=1007000000000000002",
            ),
        ],
    )
    .await;
    let _worker = stack.spawn_worker();
    for mobile in ["9876500021", "9876500022"] {
        stack.known_citizen(mobile, mobile, None).await;
    }
    let hindi = sms_of(&stack, "9876500021", "login", "hi_IN").await;
    assert!(text(&hindi).starts_with("हिंदी पाठ "), "{hindi}");
    assert_eq!(hindi["templateId"], "1007000000000000002");
    let tamil = sms_of(&stack, "9876500022", "login", "ta_IN").await;
    assert!(
        text(&tamil).starts_with(LOGIN_DEFAULT),
        "no DLT id for ta_IN: the registered default text, {tamil}"
    );
    assert_eq!(tamil["templateId"], "1007000000000000001");
}

#[tokio::test]
async fn a_first_search_that_hangs_delays_only_its_own_request() {
    use rdkafka::Message;
    let localization = MockServer::start().await;
    mount_locale(&localization, "en_IN", &[]).await;
    let stack = with_hanging_ta_in(&localization).await;
    // Twenty en_IN requests, one ta_IN request, one more en_IN request, all on the topic before
    // the worker starts, so that the ta_IN request and the en_IN one behind it are fetched and
    // served in one batch.
    let mobiles: Vec<String> = (0..22).map(|i| format!("98765001{i:02}")).collect();
    let ids: Vec<String> = mobiles.iter().map(|_| unique_name("req")).collect();
    for (i, (mobile, id)) in mobiles.iter().zip(&ids).enumerate() {
        stack.known_citizen(mobile, mobile, None).await;
        let locale = if i == 20 { "ta_IN" } else { "en_IN" };
        let body = json!({"RequestInfo": {"apiId": "test"},
            "otp": {"mobileNumber": mobile, "tenantId": "pb.amritsar", "type": "login",
                    "locale": locale}});
        stack
            .produce(
                &format!("pb:{mobile}"),
                body.to_string().as_bytes(),
                Some(id),
            )
            .await;
    }
    let _worker = stack.spawn_worker();
    let timestamp =
        |m: &rdkafka::message::OwnedMessage| m.timestamp().to_millis().expect("a timestamp");
    let slow_sms = stack.sms_for(&ids[20]).await;
    let fast_sms = stack.sms_for(&ids[21]).await;
    let gap = timestamp(&slow_sms) - timestamp(&fast_sms);
    assert!(
        gap >= 1000,
        "the last en_IN SMS went {gap} ms before the ta_IN one, whose search waited 1,500 ms"
    );
    assert!(text(&payload_json(&slow_sms)).starts_with(LOGIN_DEFAULT));
}

/// The outcome event of a request is handed over after its SMS, even when the SMS waited for its
/// texts: a `sent` on the outcome topic means the SMS went first (fails when the announce step
/// does not wait for the notify step's texts).
#[tokio::test]
async fn an_outcome_event_never_precedes_the_sms_waiting_for_its_texts() {
    use rdkafka::Message;
    let localization = MockServer::start().await;
    let stack = with_hanging_ta_in(&localization).await;
    let mobile = "9876500299";
    stack.known_citizen(mobile, mobile, None).await;
    let id = produce_in_locale(&stack, mobile, "login", "ta_IN").await;
    let _worker = stack.spawn_worker();
    let sms = stack.sms_for(&id).await;
    let outcome = wait_for_event(&stack.topics.outcome, &id, |m| {
        header(m, "x-request-id").as_deref() == Some(id.as_str())
    })
    .await;
    assert_eq!(payload_json(&outcome)["outcome"], "sent");
    let timestamp =
        |m: &rdkafka::message::OwnedMessage| m.timestamp().to_millis().expect("a timestamp");
    assert!(
        timestamp(&outcome) >= timestamp(&sms),
        "the outcome event went {} ms before its SMS",
        timestamp(&sms) - timestamp(&outcome)
    );
}
