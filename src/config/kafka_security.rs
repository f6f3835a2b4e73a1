//! Security of the connections to Kafka: librdkafka's `security.protocol`, SASL and TLS
//! properties, set alike on every client the service makes (the worker's consumer, the producer,
//! the sent-SMS scan, the shim's outcome listener: [`crate::kafka::client_config`]).
//!
//! What is built in (rdkafka's `ssl` feature, OpenSSL): TLS with a CA file and optionally a
//! client certificate (mutual TLS, e.g. Amazon MSK's TLS authentication), SASL `PLAIN`,
//! `SCRAM-SHA-256` and `SCRAM-SHA-512` (e.g. MSK's SASL/SCRAM, Confluent Cloud's `PLAIN`).
//! Not built: `GSSAPI` (Kerberos; needs Cyrus SASL) and `OAUTHBEARER` (needs a token
//! provider); asking for them is a configuration error, not a silent fallback.
//!
//! Spring's names are accepted where DIGIT's services have them: `SPRING_KAFKA_SECURITY_PROTOCOL`,
//! `SPRING_KAFKA_PROPERTIES_SASL_MECHANISM` and `SPRING_KAFKA_PROPERTIES_SASL_JAAS_CONFIG`
//! (its `username="…" password="…"` are read). Java key stores (`*_TRUST_STORE_*`) are not: give
//! the CA as a PEM file.

use std::fmt;
use std::path::PathBuf;

/// librdkafka's `security.protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    /// Parses `plaintext`, `ssl`, `sasl_plaintext` or `sasl_ssl`, in any case (Spring's
    /// examples write `SASL_SSL`).
    pub fn parse(value: &str) -> Option<Self> {
        match value.to_ascii_lowercase().as_str() {
            "plaintext" => Some(Self::Plaintext),
            "ssl" => Some(Self::Ssl),
            "sasl_plaintext" => Some(Self::SaslPlaintext),
            "sasl_ssl" => Some(Self::SaslSsl),
            _ => None,
        }
    }

    /// The librdkafka value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plaintext => "plaintext",
            Self::Ssl => "ssl",
            Self::SaslPlaintext => "sasl_plaintext",
            Self::SaslSsl => "sasl_ssl",
        }
    }

    /// Whether the protocol authenticates with SASL.
    pub fn uses_sasl(self) -> bool {
        matches!(self, Self::SaslPlaintext | Self::SaslSsl)
    }

    /// Whether the protocol runs over TLS.
    pub fn uses_tls(self) -> bool {
        matches!(self, Self::Ssl | Self::SaslSsl)
    }
}

/// librdkafka's `sasl.mechanism`, among those built in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslMechanism {
    Plain,
    ScramSha256,
    ScramSha512,
}

impl SaslMechanism {
    /// Parses `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512` (any case).
    ///
    /// # Errors
    /// Another value; the message says whether it is a mechanism that is not built in.
    pub fn parse(value: &str) -> Result<Self, String> {
        match value.to_ascii_uppercase().as_str() {
            "PLAIN" => Ok(Self::Plain),
            "SCRAM-SHA-256" => Ok(Self::ScramSha256),
            "SCRAM-SHA-512" => Ok(Self::ScramSha512),
            "GSSAPI" | "OAUTHBEARER" => Err(format!(
                "{value} is not built into this service; use PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"
            )),
            _ => Err(format!(
                "{value:?} is not PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"
            )),
        }
    }

    /// The librdkafka value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plain => "PLAIN",
            Self::ScramSha256 => "SCRAM-SHA-256",
            Self::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// SASL credentials. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct SaslCredentials {
    pub mechanism: SaslMechanism,
    pub username: String,
    pub password: String,
}

impl fmt::Debug for SaslCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaslCredentials")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// How every Kafka client of the service connects (README "Configuration", `USER_OTP_KAFKA_*`).
/// `Debug` never shows a password.
#[derive(Clone, PartialEq, Eq)]
pub struct KafkaSecurity {
    pub protocol: SecurityProtocol,
    /// Set exactly when the protocol uses SASL.
    pub sasl: Option<SaslCredentials>,
    /// CA certificates (PEM) the brokers' certificates must chain to; `None`: the system's.
    pub ssl_ca_location: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS.
    pub ssl_certificate_location: Option<PathBuf>,
    /// Its private key (PEM).
    pub ssl_key_location: Option<PathBuf>,
    /// The private key's passphrase.
    pub ssl_key_password: Option<String>,
    /// Whether the broker's certificate must name the broker's host (librdkafka's
    /// `ssl.endpoint.identification.algorithm=https`, its default since 2.0).
    pub ssl_endpoint_identification: bool,
}

impl fmt::Debug for KafkaSecurity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaSecurity")
            .field("protocol", &self.protocol)
            .field("sasl", &self.sasl)
            .field("ssl_ca_location", &self.ssl_ca_location)
            .field("ssl_certificate_location", &self.ssl_certificate_location)
            .field("ssl_key_location", &self.ssl_key_location)
            .field(
                "ssl_key_password",
                &self.ssl_key_password.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "ssl_endpoint_identification",
                &self.ssl_endpoint_identification,
            )
            .finish()
    }
}

impl KafkaSecurity {
    /// Plain TCP, no authentication (librdkafka's defaults; the local broker's).
    pub fn plaintext() -> Self {
        Self {
            protocol: SecurityProtocol::Plaintext,
            sasl: None,
            ssl_ca_location: None,
            ssl_certificate_location: None,
            ssl_key_location: None,
            ssl_key_password: None,
            ssl_endpoint_identification: true,
        }
    }

    /// The librdkafka properties, as `(name, value)`: `security.protocol` always, the SASL ones
    /// with SASL, the TLS ones with TLS.
    pub fn properties(&self) -> Vec<(&'static str, String)> {
        let mut properties = vec![("security.protocol", self.protocol.as_str().to_owned())];
        if let Some(sasl) = &self.sasl {
            properties.push(("sasl.mechanism", sasl.mechanism.as_str().to_owned()));
            properties.push(("sasl.username", sasl.username.clone()));
            properties.push(("sasl.password", sasl.password.clone()));
        }
        if self.protocol.uses_tls() {
            let path = |p: &PathBuf| p.to_string_lossy().into_owned();
            if let Some(ca) = &self.ssl_ca_location {
                properties.push(("ssl.ca.location", path(ca)));
            }
            if let Some(certificate) = &self.ssl_certificate_location {
                properties.push(("ssl.certificate.location", path(certificate)));
            }
            if let Some(key) = &self.ssl_key_location {
                properties.push(("ssl.key.location", path(key)));
            }
            if let Some(password) = &self.ssl_key_password {
                properties.push(("ssl.key.password", password.clone()));
            }
            properties.push((
                "ssl.endpoint.identification.algorithm",
                if self.ssl_endpoint_identification {
                    "https"
                } else {
                    "none"
                }
                .to_owned(),
            ));
        }
        properties
    }
}

/// The `username` and `password` of a Java JAAS line such as
/// `org.apache.kafka.common.security.scram.ScramLoginModule required username="u" password="p";`
/// (values in double quotes, `\"` and `\\` escaped).
pub(super) fn jaas_credentials(jaas: &str) -> Option<(String, String)> {
    Some((
        jaas_option(jaas, "username")?,
        jaas_option(jaas, "password")?,
    ))
}

fn jaas_option(jaas: &str, name: &str) -> Option<String> {
    let mut rest = jaas;
    loop {
        let at = rest.find(name)?;
        let before = rest[..at].chars().next_back();
        let after = rest[at + name.len()..].trim_start();
        rest = &rest[at + name.len()..];
        if before.is_some_and(|c| !c.is_whitespace()) {
            continue;
        }
        let Some(quoted) = after.strip_prefix('=').map(str::trim_start) else {
            continue;
        };
        let mut chars = quoted.strip_prefix('"')?.chars();
        let mut value = String::new();
        loop {
            match chars.next()? {
                '"' => return Some(value),
                '\\' => value.push(chars.next()?),
                c => value.push(c),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jaas_lines_give_their_username_and_password() {
        let line = r#"org.apache.kafka.common.security.scram.ScramLoginModule required username="egov-otp" password="p\"w d";"#;
        assert_eq!(
            jaas_credentials(line),
            Some(("egov-otp".into(), "p\"w d".into()))
        );
        assert_eq!(
            jaas_credentials(r#"x required password="p" username="u";"#),
            Some(("u".into(), "p".into())),
            "in any order"
        );
        assert_eq!(
            jaas_credentials(r#"x required myusername="a" username="u" password="p";"#),
            Some(("u".into(), "p".into())),
            "a name that only ends in `username` is not it"
        );
        assert_eq!(jaas_credentials(r#"x required username="u";"#), None);
        assert_eq!(
            jaas_credentials(r#"x required username=u password="p";"#),
            None
        );
    }

    #[test]
    fn properties_carry_sasl_and_tls_only_when_the_protocol_uses_them() {
        let mut security = KafkaSecurity::plaintext();
        security.ssl_ca_location = Some("/ca.pem".into());
        assert_eq!(
            security.properties(),
            vec![("security.protocol", "plaintext".to_owned())]
        );
        security.protocol = SecurityProtocol::SaslSsl;
        security.sasl = Some(SaslCredentials {
            mechanism: SaslMechanism::ScramSha512,
            username: "u".into(),
            password: "secret".into(),
        });
        let properties = security.properties();
        assert!(properties.contains(&("sasl.mechanism", "SCRAM-SHA-512".into())));
        assert!(properties.contains(&("ssl.ca.location", "/ca.pem".into())));
        assert!(properties.contains(&("ssl.endpoint.identification.algorithm", "https".into())));
        assert!(!format!("{security:?}").contains("secret"));
    }

    #[test]
    fn mechanisms_not_built_in_are_named_as_such() {
        assert_eq!(
            SaslMechanism::parse("scram-sha-256"),
            Ok(SaslMechanism::ScramSha256)
        );
        assert!(SaslMechanism::parse("GSSAPI")
            .expect_err("not built")
            .contains("not built"));
        assert!(SecurityProtocol::parse("SASL_SSL").is_some_and(SecurityProtocol::uses_tls));
    }
}
