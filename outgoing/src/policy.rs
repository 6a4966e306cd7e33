//! What one app may do over outgoing HTTP: the hosts it may reach (none
//! unless allowed), how big a response may be, how long a request may
//! take, how many may be in flight at once. Deploy and `run` options
//! read into it; [`crate::OutgoingClient`] enforces it.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use url::{Host, Url};

/// One app's outgoing HTTP policy. An empty JSON object reads back as
/// [`HttpPolicy::default`]: nothing allowed, default limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpPolicy {
    /// The hosts the app may send requests to; empty: none.
    #[serde(default)]
    pub allow: Vec<AllowedHost>,
    /// The largest response body the app may receive, in bytes.
    #[serde(default = "default_max_response_bytes")]
    pub max_response_bytes: u64,
    /// The timeout of a request that sets none of its own, in ms; 0: none.
    #[serde(default = "default_timeout_ms")]
    pub default_timeout_ms: u64,
    /// How many of the app's requests may be in flight at once; 0: none.
    #[serde(default = "default_max_concurrent")]
    pub max_concurrent: u32,
}

fn default_max_response_bytes() -> u64 {
    10 * 1024 * 1024
}

fn default_timeout_ms() -> u64 {
    30_000
}

fn default_max_concurrent() -> u32 {
    16
}

impl Default for HttpPolicy {
    fn default() -> HttpPolicy {
        HttpPolicy {
            allow: Vec::new(),
            max_response_bytes: default_max_response_bytes(),
            default_timeout_ms: default_timeout_ms(),
            max_concurrent: default_max_concurrent(),
        }
    }
}

impl HttpPolicy {
    /// Whether the app may send a request to `url`: an http or https URL
    /// whose host (and port, explicit or the scheme's default) an entry of
    /// [`HttpPolicy::allow`] matches.
    pub fn allows(&self, url: &Url) -> bool {
        if !matches!(url.scheme(), "http" | "https") {
            return false;
        }
        let (Some(host), Some(port)) = (url.host(), url.port_or_known_default()) else {
            return false;
        };
        self.allow
            .iter()
            .any(|allowed| allowed.matches(&host, port))
    }

    /// How long a request whose own timeout is `request_timeout_ms` may
    /// take: its own if it set one (XMLHttpRequest's 0 means none), else
    /// the policy's default; `None`: no limit.
    pub fn timeout(&self, request_timeout_ms: u64) -> Option<Duration> {
        match (request_timeout_ms, self.default_timeout_ms) {
            (0, 0) => None,
            (0, default) => Some(Duration::from_millis(default)),
            (own, _) => Some(Duration::from_millis(own)),
        }
    }
}

/// An entry of the allowlist: `HOST` (any port of that host) or
/// `HOST:PORT` (that port only); an IPv6 address goes in brackets
/// (`[::1]`, `[::1]:8080`). Host names are read as a URL's are (IDNA,
/// lower case), so they compare case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AllowedHost {
    host: Host<String>,
    port: Option<u16>,
}

impl AllowedHost {
    /// The host: a domain (lower case, ASCII), an IPv4 or an IPv6 address.
    pub fn host(&self) -> &Host<String> {
        &self.host
    }

    /// The one port allowed; `None`: any.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// Whether this entry allows `host` on `port`.
    pub fn matches(&self, host: &Host<&str>, port: u16) -> bool {
        let same_host = match (&self.host, host) {
            (Host::Domain(allowed), Host::Domain(asked)) => allowed.eq_ignore_ascii_case(asked),
            (Host::Ipv4(allowed), Host::Ipv4(asked)) => allowed == asked,
            (Host::Ipv6(allowed), Host::Ipv6(asked)) => allowed == asked,
            _ => false,
        };
        same_host && self.port.is_none_or(|allowed| allowed == port)
    }

    /// Reads a comma-separated list, as in `allow-http=a.com,b.com:8443`.
    /// Spaces around entries and empty entries are ignored, so an empty
    /// list allows nothing.
    pub fn parse_list(list: &str) -> Result<Vec<AllowedHost>, AllowedHostError> {
        list.split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(str::parse)
            .collect()
    }
}

/// Why a string is not `HOST` or `HOST:PORT`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllowedHostError {
    #[error("an allowed host is empty: give HOST or HOST:PORT")]
    Empty,
    #[error("the allowed host `{0}` has a scheme: give HOST or HOST:PORT alone, without http:// or https://")]
    Scheme(String),
    #[error("the allowed host `{0}` has a path, query or fragment: give HOST or HOST:PORT alone")]
    Path(String),
    #[error("the allowed host `{0}` has user info (`@`): give HOST or HOST:PORT alone")]
    UserInfo(String),
    #[error("the allowed host `{0}` has a wildcard: name each host")]
    Wildcard(String),
    #[error("the allowed host `{0}` looks like an IPv6 address: put it in brackets, as in [::1] or [::1]:8080")]
    Ipv6WithoutBrackets(String),
    #[error("the allowed host `{input}` has no host before the port")]
    NoHost { input: String },
    #[error(
        "the allowed host `{input}` has a bad port `{port}`: a port is a number from 1 to 65535"
    )]
    Port { input: String, port: String },
    #[error("the allowed host `{input}` is not a host name or IP address: {reason}")]
    Host { input: String, reason: String },
}

impl FromStr for AllowedHost {
    type Err = AllowedHostError;

    fn from_str(input: &str) -> Result<AllowedHost, AllowedHostError> {
        let owned = || input.to_owned();
        if input.trim().is_empty() {
            return Err(AllowedHostError::Empty);
        }
        if input.contains("://") {
            return Err(AllowedHostError::Scheme(owned()));
        }
        if input.contains(['/', '?', '#']) {
            return Err(AllowedHostError::Path(owned()));
        }
        if input.contains('@') {
            return Err(AllowedHostError::UserInfo(owned()));
        }
        if input.contains('*') {
            return Err(AllowedHostError::Wildcard(owned()));
        }
        let (host, port) = if input.starts_with('[') {
            // `[v6]` or `[v6]:port`: the colons inside the brackets are the address's.
            match input.find(']') {
                Some(end) => match &input[end + 1..] {
                    "" => (&input[..=end], None),
                    rest => match rest.strip_prefix(':') {
                        Some(port) => (&input[..=end], Some(port)),
                        None => {
                            return Err(AllowedHostError::Host {
                                input: owned(),
                                reason: format!("`{rest}` after the IPv6 address"),
                            })
                        }
                    },
                },
                None => {
                    return Err(AllowedHostError::Host {
                        input: owned(),
                        reason: "no `]` closes the IPv6 address".into(),
                    })
                }
            }
        } else {
            match input.split_once(':') {
                Some((_, rest)) if rest.contains(':') => {
                    return Err(AllowedHostError::Ipv6WithoutBrackets(owned()))
                }
                Some((host, port)) => (host, Some(port)),
                None => (input, None),
            }
        };
        if host.is_empty() {
            return Err(AllowedHostError::NoHost { input: owned() });
        }
        let port = match port {
            None => None,
            Some(port) => match port.parse::<u16>() {
                Ok(number) if number > 0 && port.bytes().all(|b| b.is_ascii_digit()) => {
                    Some(number)
                }
                _ => {
                    return Err(AllowedHostError::Port {
                        input: owned(),
                        port: port.to_owned(),
                    })
                }
            },
        };
        // Read as a URL's host is, so that the two compare alike.
        let host = Host::parse(host).map_err(|error| AllowedHostError::Host {
            input: owned(),
            reason: error.to_string(),
        })?;
        Ok(AllowedHost { host, port })
    }
}

impl fmt::Display for AllowedHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `Host` writes an IPv6 address in brackets.
        write!(f, "{}", self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        Ok(())
    }
}

impl TryFrom<String> for AllowedHost {
    type Error = AllowedHostError;

    fn try_from(text: String) -> Result<AllowedHost, AllowedHostError> {
        text.parse()
    }
}

impl From<AllowedHost> for String {
    fn from(allowed: AllowedHost) -> String {
        allowed.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(text: &str) -> AllowedHost {
        text.parse()
            .unwrap_or_else(|error| panic!("{text}: {error}"))
    }

    fn policy(list: &str) -> HttpPolicy {
        HttpPolicy {
            allow: AllowedHost::parse_list(list).unwrap(),
            ..HttpPolicy::default()
        }
    }

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn hosts_read_back_as_written() {
        for text in [
            "example.com",
            "example.com:8443",
            "127.0.0.1",
            "127.0.0.1:8080",
            "[::1]",
            "[::1]:8080",
            "localhost",
            "xn--bcher-kva.example",
        ] {
            let host = allowed(text);
            assert_eq!(host.to_string(), text);
            assert_eq!(host.to_string().parse::<AllowedHost>().unwrap(), host);
        }
        // Read as a URL reads its host: lower case, IDNA, shortest IPv6.
        assert_eq!(
            allowed("API.Example.COM:443").to_string(),
            "api.example.com:443"
        );
        assert_eq!(
            allowed("bücher.example").to_string(),
            "xn--bcher-kva.example"
        );
        assert_eq!(allowed("[0:0::1]:80").to_string(), "[::1]:80");
        assert_eq!(allowed("example.com:80").port(), Some(80));
        assert_eq!(allowed("example.com").port(), None);
    }

    #[test]
    fn bad_hosts_say_what_is_wrong() {
        let cases: &[(&str, &str)] = &[
            ("", "empty"),
            ("  ", "empty"),
            ("https://example.com", "scheme"),
            ("example.com/api", "path"),
            ("example.com?x", "path"),
            ("user@example.com", "user info"),
            ("*.example.com", "wildcard"),
            ("::1", "brackets"),
            ("::1:8080", "brackets"),
            (":8080", "no host"),
            ("example.com:", "bad port ``"),
            ("example.com:0", "bad port `0`"),
            ("example.com:65536", "bad port `65536`"),
            ("example.com:+80", "bad port `+80`"),
            ("example.com:http", "bad port `http`"),
            ("[::1]:x", "bad port `x`"),
            ("[::1", "no `]`"),
            ("[::1]x", "`x` after"),
            ("[nonsense]", "not a host name"),
            ("exa mple.com", "not a host name"),
            ("exa<mple.com", "not a host name"),
        ];
        for (text, expected) in cases {
            let error = text.parse::<AllowedHost>().unwrap_err().to_string();
            assert!(error.contains(expected), "{text:?}: {error}");
            if !text.trim().is_empty() {
                assert!(error.contains(&format!("`{text}`")), "{text:?}: {error}");
            }
        }
    }

    #[test]
    fn lists_read_comma_separated() {
        let list = AllowedHost::parse_list(" a.com , b.com:8443,,[::1]:9 ,").unwrap();
        let texts: Vec<String> = list.iter().map(ToString::to_string).collect();
        assert_eq!(texts, ["a.com", "b.com:8443", "[::1]:9"]);
        assert_eq!(AllowedHost::parse_list("").unwrap(), vec![]);
        let error = AllowedHost::parse_list("a.com,http://b.com").unwrap_err();
        assert_eq!(error, AllowedHostError::Scheme("http://b.com".into()));
    }

    #[test]
    fn nothing_is_allowed_by_default() {
        let policy = HttpPolicy::default();
        assert!(!policy.allows(&url("http://127.0.0.1/")));
        assert!(!policy.allows(&url("https://example.com/")));
    }

    #[test]
    fn a_host_without_port_allows_every_port() {
        let policy = policy("Example.com");
        assert!(policy.allows(&url("http://example.com/")));
        assert!(policy.allows(&url("https://EXAMPLE.COM/x")));
        assert!(policy.allows(&url("http://example.com:8080/")));
        assert!(!policy.allows(&url("http://api.example.com/")));
        assert!(!policy.allows(&url("http://example.com.evil.test/")));
        assert!(!policy.allows(&url("http://evil.test/?example.com")));
        assert!(!policy.allows(&url("http://example.com@evil.test/")));
    }

    #[test]
    fn a_host_with_port_allows_that_port_only() {
        let policy = policy("example.com:443,plain.test:80,alt.test:8080");
        assert!(policy.allows(&url("https://example.com/")));
        assert!(policy.allows(&url("https://example.com:443/")));
        assert!(policy.allows(&url("http://example.com:443/")));
        assert!(!policy.allows(&url("http://example.com/")));
        assert!(!policy.allows(&url("https://example.com:8443/")));
        assert!(policy.allows(&url("http://plain.test/")));
        assert!(!policy.allows(&url("https://plain.test/")));
        assert!(policy.allows(&url("http://alt.test:8080/")));
        assert!(!policy.allows(&url("http://alt.test/")));
    }

    #[test]
    fn addresses_match_as_addresses() {
        let policy = policy("127.0.0.1:8080,[::1]");
        assert!(policy.allows(&url("http://127.0.0.1:8080/")));
        assert!(!policy.allows(&url("http://127.0.0.1:8081/")));
        assert!(!policy.allows(&url("http://localhost:8080/")));
        assert!(policy.allows(&url("http://[::1]:1234/")));
        assert!(policy.allows(&url("http://[0:0:0:0:0:0:0:1]/")));
        assert!(!policy.allows(&url("http://[::2]/")));
    }

    #[test]
    fn only_http_and_https_are_allowed() {
        let policy = policy("example.com");
        assert!(!policy.allows(&url("ftp://example.com/")));
        assert!(!policy.allows(&url("ws://example.com/")));
        assert!(!policy.allows(&url("file:///etc/passwd")));
    }

    #[test]
    fn an_empty_object_reads_as_the_defaults() {
        let read: HttpPolicy = serde_json::from_str("{}").unwrap();
        assert_eq!(read, HttpPolicy::default());
        assert_eq!(read.max_response_bytes, 10 * 1024 * 1024);
        assert_eq!(read.default_timeout_ms, 30_000);
        assert_eq!(read.max_concurrent, 16);
        assert!(read.allow.is_empty());
    }

    #[test]
    fn policies_round_trip_through_json() {
        let policy = HttpPolicy {
            allow: AllowedHost::parse_list("a.com,b.com:8443,[::1]:9").unwrap(),
            max_response_bytes: 1000,
            default_timeout_ms: 5,
            max_concurrent: 2,
        };
        let json = serde_json::to_value(&policy).unwrap();
        assert_eq!(
            json["allow"],
            serde_json::json!(["a.com", "b.com:8443", "[::1]:9"])
        );
        assert_eq!(serde_json::from_value::<HttpPolicy>(json).unwrap(), policy);
        let error = serde_json::from_str::<HttpPolicy>(r#"{"allow":["a.com:99999"]}"#)
            .unwrap_err()
            .to_string();
        assert!(error.contains("bad port `99999`"), "{error}");
    }

    #[test]
    fn a_request_timeout_wins_over_the_default() {
        let policy = HttpPolicy::default();
        assert_eq!(policy.timeout(0), Some(Duration::from_secs(30)));
        assert_eq!(policy.timeout(100_000), Some(Duration::from_secs(100)));
        assert_eq!(policy.timeout(5), Some(Duration::from_millis(5)));
        let no_default = HttpPolicy {
            default_timeout_ms: 0,
            ..policy
        };
        assert_eq!(no_default.timeout(0), None);
        assert_eq!(no_default.timeout(7), Some(Duration::from_millis(7)));
    }
}
