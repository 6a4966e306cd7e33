//! Errors: why the process's client could not be made ([`ClientError`]),
//! and an error's chain of causes as one line, for the reasons apps' failed
//! requests are logged with.

use std::fmt::Write as _;
use std::path::PathBuf;

/// Why [`OutgoingClient::new`](crate::OutgoingClient::new) failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot read the CA certificate file {}: {source}", path.display())]
    ReadCaFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the CA certificate file {} is not PEM: {reason}", path.display())]
    BadPem { path: PathBuf, reason: String },
    #[error("the CA certificate file {} holds no certificate (no -----BEGIN CERTIFICATE----- block)", path.display())]
    NoCertificate { path: PathBuf },
    #[error("certificate {number} of the CA certificate file {} cannot be a root: {reason}", path.display())]
    BadCertificate {
        path: PathBuf,
        number: usize,
        reason: String,
    },
    #[error("cannot set up TLS: {0}")]
    Tls(String),
    #[error("cannot set up the HTTP client: {}", error_chain(.0))]
    Http(reqwest::Error),
}

/// An error and its sources, `: `-separated, skipping a source whose text
/// its parent already ends with.
pub(crate) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            let _ = write!(text, ": {cause_text}");
        }
        source = cause.source();
    }
    text
}
