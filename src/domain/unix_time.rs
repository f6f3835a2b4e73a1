//! Milliseconds since the Unix epoch, the unit of Kafka timestamps and of egov-notification-sms's
//! `expiryTime`.

use std::time::{SystemTime, UNIX_EPOCH};

/// `time` as milliseconds since 1970-01-01T00:00:00Z; 0 for a time before it, `i64::MAX` past
/// the year 292 million.
pub fn unix_ms(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn unix_ms_counts_from_1970_and_clamps_before_it() {
        assert_eq!(unix_ms(UNIX_EPOCH + Duration::from_millis(1_234)), 1_234);
        assert_eq!(unix_ms(UNIX_EPOCH - Duration::from_secs(1)), 0);
    }
}
