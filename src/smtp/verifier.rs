//! A rustls server-certificate verifier that records instead of judging.
//!
//! DANE (RFC 7672) decides trust from TLSA records, not from the WebPKI, and
//! that judgement is made elsewhere in the crate from the chain captured
//! here. The probe must therefore complete handshakes with servers whose
//! certificates are self-signed, expired or name-mismatched. What it must
//! *not* do is skip the handshake signature checks: those prove the server
//! holds the private key of the leaf it presented, and without them any
//! on-path party (or a lying server) could replay someone else's
//! certificate and we would record a chain that proves nothing.

use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// Accepts any presented certificate chain, remembers it, and verifies the
/// handshake signatures with the provider's algorithms.
///
/// Exists because the DANE judgement needs the exact chain as presented
/// (leaf first) while the handshake still needs proof of key possession.
/// Create one per connection: it keeps the last chain it was shown.
#[derive(Debug)]
pub struct RecordingVerifier {
    provider: Arc<CryptoProvider>,
    chain: Mutex<Option<Vec<Vec<u8>>>>,
}

impl RecordingVerifier {
    /// Creates a verifier that checks handshake signatures with
    /// `provider.signature_verification_algorithms`.
    pub fn new(provider: Arc<CryptoProvider>) -> Self {
        RecordingVerifier {
            provider,
            chain: Mutex::new(None),
        }
    }

    /// The DER chain presented by the server (leaf first), if the handshake
    /// got as far as the Certificate message. Does not imply the handshake
    /// succeeded.
    pub fn chain(&self) -> Option<Vec<Vec<u8>>> {
        match self.chain.lock() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let chain: Vec<Vec<u8>> = std::iter::once(end_entity)
            .chain(intermediates.iter())
            .map(|c| c.as_ref().to_vec())
            .collect();
        match self.chain.lock() {
            Ok(mut guard) => *guard = Some(chain),
            Err(poisoned) => *poisoned.into_inner() = Some(chain),
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_chain_leaf_first_and_accepts() {
        let v = RecordingVerifier::new(Arc::new(rustls::crypto::ring::default_provider()));
        assert_eq!(v.chain(), None);
        let leaf = CertificateDer::from(vec![1u8, 2, 3]);
        let inter = CertificateDer::from(vec![4u8, 5]);
        let name = ServerName::try_from("mx.example.com").unwrap();
        v.verify_server_cert(&leaf, &[inter], &name, &[], UnixTime::now())
            .unwrap();
        assert_eq!(v.chain(), Some(vec![vec![1, 2, 3], vec![4, 5]]));
        assert!(!v.supported_verify_schemes().is_empty());
    }
}
