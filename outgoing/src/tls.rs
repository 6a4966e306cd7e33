//! TLS for outgoing requests: rustls with its aws-lc-rs provider, the
//! system's root certificates and those of the CA files an operator adds
//! (`--http-ca`), e.g. a company's own CA or, in tests, one made for them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

use crate::error::ClientError;

/// The TLS configuration of the process's client.
pub(crate) fn client_config(
    extra_ca_pem_files: &[PathBuf],
) -> Result<rustls::ClientConfig, ClientError> {
    let roots = root_certificates(extra_ca_pem_files)?;
    // A provider of our own, not the process-wide default, so that
    // nothing else in the process is changed by ours.
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| ClientError::Tls(error.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// The system's root certificates and those of `extra_ca_pem_files`.
fn root_certificates(extra_ca_pem_files: &[PathBuf]) -> Result<rustls::RootCertStore, ClientError> {
    let mut roots = rustls::RootCertStore::empty();
    for path in extra_ca_pem_files {
        for (index, certificate) in read_pem_certificates(path)?.into_iter().enumerate() {
            roots
                .add(certificate)
                .map_err(|error| ClientError::BadCertificate {
                    path: path.clone(),
                    number: index + 1,
                    reason: error.to_string(),
                })?;
        }
    }
    let system = rustls_native_certs::load_native_certs();
    for error in &system.errors {
        tracing::warn!(error = %error, "outgoing HTTP: a system root certificate could not be read");
    }
    let (added, ignored) = roots.add_parsable_certificates(system.certs);
    if ignored > 0 {
        tracing::warn!(
            ignored,
            "outgoing HTTP: system root certificates ignored as invalid"
        );
    }
    tracing::debug!(
        system = added,
        total = roots.len(),
        "outgoing HTTP: root certificates"
    );
    if roots.is_empty() {
        // Plain HTTP still works; every https request fails, saying why.
        tracing::warn!(
            "outgoing HTTP: no root certificates (none in SSL_CERT_FILE, SSL_CERT_DIR or \
             /etc/ssl/certs, and no --http-ca): https requests will fail"
        );
    }
    Ok(roots)
}

fn read_pem_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, ClientError> {
    let pem = std::fs::read(path).map_err(|source| ClientError::ReadCaFile {
        path: path.to_owned(),
        source,
    })?;
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| ClientError::BadPem {
            path: path.to_owned(),
            reason: error.to_string(),
        })?;
    if certificates.is_empty() {
        return Err(ClientError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(certificates)
}
