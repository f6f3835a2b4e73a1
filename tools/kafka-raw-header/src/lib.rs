//! Writing events that rdkafka's safe API cannot express, as a careless or hostile producer
//! would: a header name that is not UTF-8 (rdkafka takes names as `&str`), through librdkafka's
//! own `rd_kafka_produceva`. The only `unsafe` of the workspace lives here, in tooling: the fuzz
//! drill (`tools/bench`) and the integration tests (a dev-dependency of the service) use it; the
//! service itself forbids unsafe code.

use std::ffi::{c_int, c_void, CString};
use std::time::Duration;

use rdkafka::bindings::{
    rd_kafka_error_code, rd_kafka_error_destroy, rd_kafka_produceva, rd_kafka_vtype_t,
    rd_kafka_vu_s__bindgen_ty_1, rd_kafka_vu_s__bindgen_ty_1__bindgen_ty_1,
    rd_kafka_vu_s__bindgen_ty_1__bindgen_ty_2, rd_kafka_vu_t, RD_KAFKA_MSG_F_COPY,
};
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, Producer};

/// Produces one event to `topic` on `bootstrap` with a header of raw name `name` (no NUL byte)
/// and, when given, a readable `x-request-id` header, and waits until the broker has it.
///
/// # Errors
/// When the producer cannot be created, librdkafka refuses the event, or the broker does not
/// acknowledge it within 10 s.
#[allow(unsafe_code)]
pub fn produce_with_raw_header_name(
    bootstrap: &str,
    topic: &str,
    key: &[u8],
    value: &[u8],
    name: &[u8],
    request_id: Option<&str>,
) -> Result<(), String> {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "0")
        .create()
        .map_err(|e| e.to_string())?;
    let topic = CString::new(topic).map_err(|e| e.to_string())?;
    let name = CString::new(name).map_err(|e| e.to_string())?;
    let request_id_name = CString::new("x-request-id").map_err(|e| e.to_string())?;
    let header_value = b"x";
    let memory = |bytes: &[u8]| rd_kafka_vu_s__bindgen_ty_1 {
        mem: rd_kafka_vu_s__bindgen_ty_1__bindgen_ty_1 {
            ptr: bytes.as_ptr() as *mut c_void,
            size: bytes.len(),
        },
    };
    let header = |name: &CString, value: &[u8]| rd_kafka_vu_t {
        vtype: rd_kafka_vtype_t::RD_KAFKA_VTYPE_HEADER,
        u: rd_kafka_vu_s__bindgen_ty_1 {
            header: rd_kafka_vu_s__bindgen_ty_1__bindgen_ty_2 {
                name: name.as_ptr(),
                val: value.as_ptr() as *const c_void,
                size: value.len() as isize,
            },
        },
    };
    let mut fields = vec![
        rd_kafka_vu_t {
            vtype: rd_kafka_vtype_t::RD_KAFKA_VTYPE_TOPIC,
            u: rd_kafka_vu_s__bindgen_ty_1 {
                cstr: topic.as_ptr(),
            },
        },
        rd_kafka_vu_t {
            vtype: rd_kafka_vtype_t::RD_KAFKA_VTYPE_KEY,
            u: memory(key),
        },
        rd_kafka_vu_t {
            vtype: rd_kafka_vtype_t::RD_KAFKA_VTYPE_VALUE,
            u: memory(value),
        },
        header(&name, header_value),
        rd_kafka_vu_t {
            vtype: rd_kafka_vtype_t::RD_KAFKA_VTYPE_MSGFLAGS,
            u: rd_kafka_vu_s__bindgen_ty_1 {
                i: RD_KAFKA_MSG_F_COPY as c_int,
            },
        },
    ];
    if let Some(id) = request_id {
        fields.push(header(&request_id_name, id.as_bytes()));
    }
    // SAFETY: every pointer refers to memory that outlives the call (librdkafka copies the
    // key, value and header because of RD_KAFKA_MSG_F_COPY), names are NUL-terminated, and the
    // returned error, if any, is destroyed exactly once.
    unsafe {
        let error = rd_kafka_produceva(
            producer.client().native_ptr(),
            fields.as_ptr(),
            fields.len(),
        );
        if !error.is_null() {
            let code = rd_kafka_error_code(error);
            rd_kafka_error_destroy(error);
            return Err(format!("rd_kafka_produceva refused the event: {code:?}"));
        }
    }
    producer
        .flush(Duration::from_secs(10))
        .map_err(|e| format!("the broker did not acknowledge the raw event: {e}"))
}
