//! The per-client limit of `_send` (`USER_OTP_CLIENT_LIMIT_PER_MINUTE`, off by default: DIGIT
//! puts a gateway in front that limits first). A client is its address: the TCP peer, or, behind
//! a gateway, the right-most address of `USER_OTP_CLIENT_ADDRESS_HEADER` (e.g.
//! `X-Forwarded-For`), the one the trusted gateway appended; the left-most is whatever the
//! client wrote and is never trusted. Over the limit: 429 in the legacy envelope with
//! `Retry-After`. `_validate` is not limited here: egov-user is its one caller, and the guess
//! budget limits it per identity.
//!
//! IPv6 clients count per /64. A header value that cannot be read as an address falls back to
//! the TCP peer (the gateway, so such requests share one bucket).
//!
//! The counting is governor's GCRA (a burst of the limit, refilled evenly over a minute), per
//! process: with N HTTP instances a client gets up to N times the limit.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::http::HeaderMap;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Checks between two sweeps of idle clients from the limiter's memory.
const SWEEP_EVERY: u64 = 4096;

/// The limiter and where the client address comes from.
pub struct ClientLimit {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    clock: DefaultClock,
    address_header: Option<String>,
    checks: AtomicU64,
}

impl ClientLimit {
    /// `None` when `per_minute` is 0 (off).
    pub fn new(per_minute: u32, address_header: Option<String>) -> Option<Self> {
        let per_minute = NonZeroU32::new(per_minute)?;
        Some(Self {
            limiter: RateLimiter::keyed(Quota::per_minute(per_minute)),
            clock: DefaultClock::default(),
            address_header,
            checks: AtomicU64::new(0),
        })
    }

    /// The client of a request from `peer` with `headers` (see the module documentation).
    pub fn client(&self, peer: Option<SocketAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        let forwarded = self.address_header.as_deref().and_then(|name| {
            headers
                .get_all(name)
                .iter()
                .filter_map(|value| value.to_str().ok())
                .flat_map(|value| value.split(','))
                .next_back()
                .and_then(parse_address)
        });
        forwarded.or(peer.map(|peer| peer.ip())).map(bucket)
    }

    /// `Err(retry after)` when `client` is over the limit. A request whose client is unknown
    /// is not limited.
    pub fn check(&self, client: Option<IpAddr>) -> Result<(), Duration> {
        let Some(client) = client else {
            return Ok(());
        };
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.limiter.retain_recent();
        }
        self.limiter
            .check_key(&client)
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }
}

/// The bucket an address counts in: itself for IPv4, its /64 for IPv6 (one subscriber or host
/// usually holds a whole /64, so counting single IPv6 addresses would give it 2^64 budgets).
fn bucket(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mask = !0u128 << 64;
                IpAddr::V6(std::net::Ipv6Addr::from(u128::from(v6) & mask))
            }
        },
    }
}

/// An address as gateways write it: `203.0.113.7`, `2001:db8::1`, `[2001:db8::1]:443`,
/// `203.0.113.7:5000`.
fn parse_address(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    text.parse::<IpAddr>()
        .ok()
        .or_else(|| text.parse::<SocketAddr>().ok().map(|a| a.ip()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_str(value).expect("ascii"),
        );
        headers
    }

    #[test]
    fn the_right_most_forwarded_address_is_the_client() {
        let limit = ClientLimit::new(5, Some("x-forwarded-for".into())).expect("on");
        let peer: SocketAddr = "10.0.0.1:40000".parse().expect("addr");
        let forged = headers("1.2.3.4, 198.51.100.9");
        assert_eq!(
            limit.client(Some(peer), &forged),
            Some("198.51.100.9".parse().expect("ip"))
        );
        assert_eq!(limit.client(Some(peer), &HeaderMap::new()), Some(peer.ip()));
        assert_eq!(
            limit.client(Some(peer), &headers("[2001:db8::1]:443")),
            Some("2001:db8::".parse().expect("ip")),
            "IPv6 counts per /64"
        );
        assert_eq!(
            limit.client(Some(peer), &headers("2001:db8::1:2:3:4")),
            limit.client(Some(peer), &headers("2001:db8::5:6:7:8")),
        );
        assert_ne!(
            limit.client(Some(peer), &headers("2001:db8:0:1::1")),
            limit.client(Some(peer), &headers("2001:db8:0:2::1")),
        );
    }

    #[test]
    fn without_a_header_setting_the_peer_is_the_client() {
        let limit = ClientLimit::new(5, None).expect("on");
        let peer: SocketAddr = "10.0.0.1:40000".parse().expect("addr");
        assert_eq!(
            limit.client(Some(peer), &headers("1.2.3.4")),
            Some(peer.ip())
        );
    }

    #[test]
    fn a_client_over_the_limit_is_told_when_to_retry_and_others_are_not_affected() {
        let limit = ClientLimit::new(3, None).expect("on");
        let a = Some("192.0.2.1".parse().expect("ip"));
        let b = Some("192.0.2.2".parse().expect("ip"));
        for _ in 0..3 {
            assert_eq!(limit.check(a), Ok(()));
        }
        let retry = limit.check(a).expect_err("over");
        assert!(
            retry > Duration::ZERO && retry <= Duration::from_secs(20),
            "{retry:?}"
        );
        assert_eq!(limit.check(b), Ok(()));
        assert!(ClientLimit::new(0, None).is_none());
    }
}
