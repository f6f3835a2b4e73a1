//! The OTP request as DIGIT defines it, free of I/O: parsing a `_send` body (or a request event,
//! which has the same shape), the validation rules of `_send` in their legacy order, the request
//! types, the canonical request event, the pure `decide()` rules, codes and their keyed hashes,
//! message templates and the notification events.

pub mod abuse;
pub mod code;
pub mod decide;
pub mod field_limits;
pub mod keyring;
pub mod masked;
pub mod notification;
pub mod otp_check;
pub mod otp_request;
pub mod otp_type;
pub mod outcome_error;
pub mod outcome_event;
pub mod request_event;
pub mod request_id;
pub mod templates;
pub mod tenant;
pub mod unix_time;
pub mod user;
pub mod validation;

pub use masked::Masked;
pub use otp_request::{OtpRequest, RawOtpRequest, RequestBodyError};
pub use otp_type::OtpType;
pub use request_event::RequestEvent;
pub use user::FoundUser;
pub use validation::{FieldError, ValidationRule};
