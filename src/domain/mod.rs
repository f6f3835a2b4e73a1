//! The OTP request as DIGIT defines it, free of I/O: parsing a `_send` body (or a request event,
//! which has the same shape), the validation rules of `_send` in their legacy order, the request
//! types, and the canonical event the shim puts on the request topic.

pub mod otp_request;
pub mod otp_type;
pub mod request_event;
pub mod tenant;
pub mod validation;

pub use otp_request::{OtpRequest, RawOtpRequest, RequestBodyError};
pub use otp_type::OtpType;
pub use request_event::RequestEvent;
pub use validation::{FieldError, ValidationRule};
