//! A service for apps to call ([`Upstream`]): a small HTTP/1.1 server on
//! loopback, plain or TLS (with a CA made for the test), that counts the
//! connections it accepts and keeps every request it reads, so a test can
//! tell whether an app's request reached it, how often, and with what.
//!
//! Blocking, a thread per connection, one request per connection
//! (`Connection: close`): simple enough to trust in a test of the client.
//!
//!   /echo            200, JSON {"method", "path", "headers" ([name, value],
//!                    names lower-cased), "body"}
//!   /status/N        status N, body "status N"
//!   /slow?ms=M       200 "slept M" after M ms
//!   /big?bytes=N     200, N bytes of `x`
//!   /redirect?to=U   302 to U
//!   /hold            waits until [`Upstream::release`], then 200 "released"
//!   anything else    404

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

/// One request as the upstream read it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    /// Names lower-cased, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct Shared {
    connections: AtomicU64,
    seen: Mutex<Vec<Seen>>,
    released: Mutex<bool>,
    release: Condvar,
}

/// A running upstream; it stops with the test process.
pub struct Upstream {
    pub port: u16,
    scheme: &'static str,
    shared: Arc<Shared>,
}

/// A CA made for one test, and the server certificate it signed.
pub struct TestCa {
    /// The CA's certificate as a PEM file, for `--http-ca`.
    pub ca_file: PathBuf,
    server: Arc<rustls::ServerConfig>,
}

impl TestCa {
    /// A new CA, written to `dir/ca.pem`, and a certificate for
    /// `localhost` and `127.0.0.1` signed by it.
    pub fn new(dir: &Path) -> TestCa {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
        };
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "elmbox tests' CA");
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let server_key = KeyPair::generate().unwrap();
        let server_params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        let server_cert = server_params.signed_by(&server_key, &issuer).unwrap();
        std::fs::create_dir_all(dir).unwrap();
        let ca_file = dir.join("ca.pem");
        std::fs::write(&ca_file, ca_cert.pem()).unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![server_cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(server_key.serialize_der().into()),
            )
            .unwrap();
        TestCa {
            ca_file,
            server: Arc::new(server),
        }
    }
}

impl Upstream {
    /// Plain HTTP on a free loopback port.
    pub fn start() -> Upstream {
        Upstream::listen(None)
    }

    /// HTTPS with the certificate `ca` signed.
    pub fn start_tls(ca: &TestCa) -> Upstream {
        Upstream::listen(Some(ca.server.clone()))
    }

    fn listen(tls: Option<Arc<rustls::ServerConfig>>) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared::default());
        let scheme = if tls.is_some() { "https" } else { "http" };
        let accepting = shared.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                accepting.connections.fetch_add(1, Ordering::SeqCst);
                let (shared, tls) = (accepting.clone(), tls.clone());
                std::thread::spawn(move || {
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
                    match tls {
                        None => serve(stream, &shared),
                        Some(config) => {
                            let Ok(session) = rustls::ServerConnection::new(config) else {
                                return;
                            };
                            serve(rustls::StreamOwned::new(session, stream), &shared)
                        }
                    }
                });
            }
        });
        Upstream {
            port,
            scheme,
            shared,
        }
    }

    /// `http://127.0.0.1:PORT{path}` (or https).
    pub fn url(&self, path: &str) -> String {
        format!("{}://127.0.0.1:{}{path}", self.scheme, self.port)
    }

    /// `127.0.0.1:PORT`, as `allow-http` takes it.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// The requests read so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }

    /// Waits up to 20 s until `count` requests were read; returns them.
    pub fn wait_for(&self, count: usize) -> Vec<Seen> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let seen = self.seen();
            if seen.len() >= count {
                return seen;
            }
            assert!(
                Instant::now() < deadline,
                "the upstream saw {} request(s), not {count}: {seen:?}",
                seen.len()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Lets every `/hold` request, waiting or to come, answer.
    pub fn release(&self) {
        *self.shared.released.lock().unwrap() = true;
        self.shared.release.notify_all();
    }
}

fn serve(mut stream: impl Read + Write, shared: &Shared) {
    let Some(seen) = read_request(&mut stream) else {
        return;
    };
    shared.seen.lock().unwrap().push(seen.clone());
    let (path, query) = seen.path.split_once('?').unwrap_or((&seen.path, ""));
    let param = |name: &str| {
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
            .unwrap_or("")
            .to_string()
    };
    let (status, headers, body): (u16, Vec<(&str, String)>, Vec<u8>) = match path {
        "/echo" => {
            let echo = json!({
                "method": seen.method,
                "path": seen.path,
                "headers": seen.headers,
                "body": String::from_utf8_lossy(&seen.body),
            });
            (
                200,
                vec![("Content-Type", "application/json".into())],
                echo.to_string().into_bytes(),
            )
        }
        "/slow" => {
            let ms = param("ms").parse().unwrap_or(0);
            std::thread::sleep(Duration::from_millis(ms));
            (200, vec![], format!("slept {ms}").into_bytes())
        }
        "/big" => {
            let bytes = param("bytes").parse().unwrap_or(0);
            (200, vec![], vec![b'x'; bytes])
        }
        "/redirect" => (302, vec![("Location", param("to"))], Vec::new()),
        "/hold" => {
            let mut released = shared.released.lock().unwrap();
            while !*released {
                released = shared.release.wait(released).unwrap();
            }
            (200, vec![], b"released".to_vec())
        }
        _ => match path.strip_prefix("/status/").and_then(|s| s.parse().ok()) {
            Some(status) => (status, vec![], format!("status {status}").into_bytes()),
            None => (404, vec![], b"no such path".to_vec()),
        },
    };
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    let _ = stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(&body))
        .and_then(|()| stream.flush());
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        302 => "Found",
        404 => "Not Found",
        _ => "Whatever",
    }
}

fn read_request(stream: &mut impl Read) -> Option<Seen> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_string(), parts.next()?.to_string());
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).ok()?;
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        headers.push((name.trim().to_lowercase(), value.trim().to_string()));
    }
    let length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Seen {
        method,
        path,
        headers,
        body,
    })
}
