//! The egov-user client against a wiremock egov-user: the exact search sent ([contract §3](../docs/contract.md#3-egov-user-search)), how
//! answers are read, and that outages and garbage are never mistaken for "no such user".
//! No Kafka or PostgreSQL needed.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use user_otp::config::UserServiceSettings;
use user_otp::domain::{OtpRequest, RawOtpRequest};
use user_otp::users::{RetryPolicy, UserClient, UserLookupError};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SEARCH_PATH: &str = "/user/_search";
const CALL_TIMEOUT: Duration = Duration::from_millis(300);

/// Short delays so that the retry tests stay fast.
fn fast_policy() -> RetryPolicy {
    RetryPolicy {
        call_timeout: CALL_TIMEOUT,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
    }
}

fn client_for(host: String) -> UserClient {
    client_with(host, fast_policy())
}

fn client_with(host: String, policy: RetryPolicy) -> UserClient {
    let settings = UserServiceSettings {
        host,
        search_path: SEARCH_PATH.into(),
        call_timeout: policy.call_timeout,
    };
    UserClient::new(&settings, policy).expect("client")
}

fn otp_request(otp: Value) -> OtpRequest {
    RawOtpRequest::from_value(&json!({ "otp": otp }))
        .expect("parses")
        .validate()
        .expect("valid")
}

fn citizen_request() -> OtpRequest {
    otp_request(
        json!({"mobileNumber": "9876543210", "tenantId": "pb.amritsar",
        "type": "login", "userType": "CITIZEN"}),
    )
}

fn user_json() -> Value {
    json!({"id": 123, "uuid": "8f1c-uuid", "userName": "9876543210",
        "mobileNumber": "9876543210", "emailId": "citizen@example.org", "tenantId": "pb",
        "type": "CITIZEN", "active": true, "roles": [{"code": "CITIZEN"}]})
}

fn found_answer() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "responseInfo": {"apiId": null, "status": "200"},
        "user": [user_json()]
    }))
}

/// Any POST to the search path answers `response`.
async fn answering(response: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(SEARCH_PATH))
        .respond_with(response)
        .mount(&server)
        .await;
    server
}

async fn find(
    server: &MockServer,
    request: &OtpRequest,
) -> Result<Option<user_otp::domain::FoundUser>, UserLookupError> {
    client_for(server.uri())
        .find(request, &CancellationToken::new())
        .await
}

async fn requests_made(server: &MockServer) -> usize {
    server.received_requests().await.expect("recording").len()
}

#[tokio::test]
async fn citizen_search_sends_root_tenant_and_user_name() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(SEARCH_PATH))
        .and(header("tenantId", "pb"))
        .and(header("content-type", "application/json"))
        .and(body_json(json!({"tenantId": "pb", "userType": "CITIZEN",
            "userName": "9876543210"})))
        .respond_with(found_answer())
        .expect(1)
        .mount(&server)
        .await;

    let user = find(&server, &citizen_request()).await.expect("answered");
    assert!(user.is_some());
}

#[tokio::test]
async fn citizen_without_user_type_is_searched_as_citizen() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(SEARCH_PATH))
        .and(header("tenantId", "pb"))
        .and(body_json(json!({"tenantId": "pb", "userType": "CITIZEN",
            "userName": "9876543210"})))
        .respond_with(found_answer())
        .expect(1)
        .mount(&server)
        .await;

    let request = otp_request(json!({"mobileNumber": "9876543210", "tenantId": "pb.amritsar"}));
    assert!(find(&server, &request).await.expect("answered").is_some());
}

#[tokio::test]
async fn employee_search_sends_tenant_as_sent_and_mobile_number() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(SEARCH_PATH))
        .and(header("tenantId", "pb.amritsar"))
        .and(header("content-type", "application/json"))
        .and(body_json(
            json!({"tenantId": "pb.amritsar", "userType": "EMPLOYEE",
            "mobileNumber": "9876543210"}),
        ))
        .respond_with(found_answer())
        .expect(1)
        .mount(&server)
        .await;

    let request = otp_request(
        json!({"mobileNumber": "9876543210", "tenantId": "pb.amritsar",
        "type": "passwordreset", "userType": "Employee"}),
    );
    assert!(find(&server, &request).await.expect("answered").is_some());
}

#[tokio::test]
async fn found_user_carries_id_uuid_mobile_and_email() {
    let server = answering(found_answer()).await;

    let user = find(&server, &citizen_request())
        .await
        .expect("answered")
        .expect("found");
    assert_eq!(user.id, Some(123));
    assert_eq!(user.uuid.as_deref(), Some("8f1c-uuid"));
    assert_eq!(user.mobile_number.as_deref(), Some("9876543210"));
    assert_eq!(user.email_id.as_deref(), Some("citizen@example.org"));
}

#[tokio::test]
async fn first_of_several_users_is_returned() {
    let second = json!({"id": 456, "uuid": "second"});
    let server =
        answering(ResponseTemplate::new(200).set_body_json(json!({"user": [user_json(), second]})))
            .await;

    let user = find(&server, &citizen_request())
        .await
        .expect("answered")
        .expect("found");
    assert_eq!(user.id, Some(123));
}

#[tokio::test]
async fn empty_user_array_is_no_user() {
    let server = answering(
        ResponseTemplate::new(200).set_body_json(json!({"responseInfo": {}, "user": []})),
    )
    .await;

    assert_eq!(find(&server, &citizen_request()).await, Ok(None));
}

#[tokio::test]
async fn service_unavailable_twice_then_found_takes_three_requests() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(SEARCH_PATH))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(2)
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(SEARCH_PATH))
        .respond_with(found_answer())
        .expect(1)
        .mount(&server)
        .await;

    let user = find(&server, &citizen_request()).await.expect("answered");
    assert_eq!(user.and_then(|u| u.id), Some(123));
    assert_eq!(requests_made(&server).await, 3);
}

#[tokio::test]
async fn too_many_requests_and_server_errors_are_retried() {
    let server = MockServer::start().await;
    for status in [429, 500, 502, 504] {
        Mock::given(method("POST"))
            .and(path(SEARCH_PATH))
            .respond_with(ResponseTemplate::new(status))
            .up_to_n_times(1)
            .expect(1)
            .mount(&server)
            .await;
    }
    Mock::given(method("POST"))
        .and(path(SEARCH_PATH))
        .respond_with(found_answer())
        .mount(&server)
        .await;

    assert!(find(&server, &citizen_request())
        .await
        .expect("answered")
        .is_some());
    assert_eq!(requests_made(&server).await, 5);
}

#[tokio::test]
async fn answer_slower_than_the_call_timeout_is_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(SEARCH_PATH))
        .respond_with(found_answer().set_delay(CALL_TIMEOUT * 5))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(SEARCH_PATH))
        .respond_with(found_answer())
        .expect(1)
        .mount(&server)
        .await;

    let started = Instant::now();
    let user = find(&server, &citizen_request()).await.expect("answered");
    assert!(user.is_some());
    // The slow attempt was abandoned at the call timeout, not waited out.
    assert!(
        started.elapsed() < CALL_TIMEOUT * 4,
        "{:?}",
        started.elapsed()
    );
    assert_eq!(requests_made(&server).await, 2);
}

#[tokio::test]
async fn connection_refused_until_cancelled_is_cancelled_never_no_user() {
    // A port that was just free: nothing listens there.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    drop(listener);
    let client = client_for(format!("http://127.0.0.1:{port}"));
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        trigger.cancel();
    });

    let started = Instant::now();
    let result = client.find(&citizen_request(), &cancel).await;
    assert_eq!(result, Err(UserLookupError::Cancelled));
    assert!(!UserLookupError::Cancelled.is_permanent());
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(250) && elapsed < Duration::from_secs(2),
        "kept retrying until cancelled, then stopped promptly: {elapsed:?}"
    );
}

#[tokio::test]
async fn cancellation_interrupts_a_slow_attempt() {
    let server = answering(found_answer().set_delay(Duration::from_secs(30))).await;
    // A call timeout far beyond the cancellation: only cancellation can end this attempt.
    let policy = RetryPolicy {
        call_timeout: Duration::from_secs(20),
        ..fast_policy()
    };
    let client = client_with(server.uri(), policy);
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        trigger.cancel();
    });

    let started = Instant::now();
    let result = client.find(&citizen_request(), &cancel).await;
    assert_eq!(result, Err(UserLookupError::Cancelled));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(requests_made(&server).await, 1);
}

#[tokio::test]
async fn bad_request_is_rejected_after_one_request() {
    let server = answering(
        ResponseTemplate::new(400).set_body_json(json!({"Errors": [{"code": "INVALID"}]})),
    )
    .await;

    let result = find(&server, &citizen_request()).await;
    assert_eq!(result, Err(UserLookupError::Rejected { status: 400 }));
    assert!(UserLookupError::Rejected { status: 400 }.is_permanent());
    assert_eq!(requests_made(&server).await, 1);
}

#[tokio::test]
async fn a_redirect_is_not_followed_and_retried_as_a_configuration_outage() {
    // A proxy in front of egov-user redirecting to a login page answers every search this way:
    // never a verdict on the request (it would dead-letter all traffic), never followed.
    let server = answering(
        ResponseTemplate::new(307).insert_header("location", "http://127.0.0.1:9/elsewhere"),
    )
    .await;
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        trigger.cancel();
    });
    let result = client_for(server.uri())
        .find(&citizen_request(), &cancel)
        .await;
    assert_eq!(result, Err(UserLookupError::Cancelled));
    assert!(requests_made(&server).await >= 2, "retried");
}

/// A 2xx answer of the wrong shape: a `MalformedAnswer` after one request, never `Ok(None)`.
async fn assert_malformed(answer: ResponseTemplate) -> String {
    let server = answering(answer).await;
    let result = find(&server, &citizen_request()).await;
    assert_eq!(
        requests_made(&server).await,
        1,
        "malformed answers are not retried"
    );
    match result {
        Err(error @ UserLookupError::MalformedAnswer(_)) => {
            assert!(error.is_permanent());
            let message = error.to_string();
            assert!(!message.contains("9876543210"), "{message}");
            message
        }
        other => panic!("expected MalformedAnswer, got {other:?}"),
    }
}

#[tokio::test]
async fn user_member_not_an_array_is_malformed() {
    let message =
        assert_malformed(ResponseTemplate::new(200).set_body_json(json!({"user": "nope"}))).await;
    assert!(
        message.contains("`user` is a string, not an array"),
        "{message}"
    );
}

#[tokio::test]
async fn empty_object_is_malformed() {
    let message = assert_malformed(ResponseTemplate::new(200).set_body_json(json!({}))).await;
    assert!(message.contains("no `user` member"), "{message}");
}

#[tokio::test]
async fn non_json_body_is_malformed() {
    let message = assert_malformed(
        ResponseTemplate::new(200).set_body_string("<html>9876543210 upstream error</html>"),
    )
    .await;
    assert!(message.contains("not JSON"), "{message}");
}

#[tokio::test]
async fn user_entry_of_the_wrong_type_is_malformed() {
    assert_malformed(ResponseTemplate::new(200).set_body_json(json!({"user": ["9876543210"]})))
        .await;
    assert_malformed(
        ResponseTemplate::new(200)
            .set_body_json(json!({"user": [{"id": "9876543210", "uuid": "x"}]})),
    )
    .await;
}
