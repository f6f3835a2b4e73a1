//! The one place a librdkafka configuration starts from: the brokers, the client's name, and the
//! security settings ([`KafkaSecurity`]), so that no client of the service connects differently
//! from the others.

use rdkafka::ClientConfig;

use crate::config::{KafkaSecurity, KafkaSettings};

/// `bootstrap.servers`, `client.id` = `client_id`, and `settings.security`'s properties.
pub fn client_config(settings: &KafkaSettings, client_id: &str) -> ClientConfig {
    with_security(&settings.bootstrap_servers, &settings.security, client_id)
}

/// The same from the parts (for clients built from a copy of the settings).
pub fn with_security(
    bootstrap_servers: &str,
    security: &KafkaSecurity,
    client_id: &str,
) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap_servers)
        .set("client.id", client_id);
    for (name, value) in security.properties() {
        config.set(name, value);
    }
    config
}

#[cfg(test)]
mod tests {
    use rdkafka::producer::BaseProducer;

    use super::*;
    use crate::config::{SaslCredentials, SaslMechanism, SecurityProtocol};

    /// librdkafka refuses `sasl_ssl` and SCRAM at client creation when it was built without
    /// OpenSSL ("OpenSSL not available at build time"): this fails without rdkafka's `ssl`.
    #[test]
    fn tls_and_scram_are_built_in() {
        for (protocol, mechanism) in [
            (SecurityProtocol::SaslSsl, SaslMechanism::ScramSha512),
            (SecurityProtocol::SaslSsl, SaslMechanism::ScramSha256),
            (SecurityProtocol::SaslPlaintext, SaslMechanism::Plain),
        ] {
            let mut security = KafkaSecurity::plaintext();
            security.protocol = protocol;
            security.sasl = Some(SaslCredentials {
                mechanism,
                username: "user".into(),
                password: "password".into(),
            });
            let created: Result<BaseProducer, _> =
                with_security("127.0.0.1:1", &security, "test").create();
            assert!(
                created.is_ok(),
                "{protocol:?} {mechanism:?}: {:?}",
                created.err()
            );
        }
        let mut tls = KafkaSecurity::plaintext();
        tls.protocol = SecurityProtocol::Ssl;
        let created: Result<BaseProducer, _> = with_security("127.0.0.1:1", &tls, "test").create();
        assert!(created.is_ok(), "ssl: {:?}", created.err());
    }
}
