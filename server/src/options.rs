//! What a deploy (`PUT /_elmbox/apps/{name}?...`) says about the app, as
//! [`AppOptions`]: the query parameters, checked one by one, kept in the
//! store with the app so that a restarted server serves it the same way.

use std::collections::HashMap;
use std::time::Duration;

use elmbox::app_name::printable;
use elmbox::durable::RetainLog;
use elmbox::{AppConfig, EventFormat, OnNewCode, SandboxLimits};
use elmbox_outgoing::{AllowedHost, HttpPolicy};
use serde::{Deserialize, Serialize};

/// A CPU deadline per event unless the deploy sets one: an app that loops
/// must not hold its owner thread for ever.
pub const DEFAULT_DEADLINE_MS: u64 = 5_000;

/// How an app is served. `None`: elmbox's default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct AppOptions {
    pub module: Option<String>,
    pub in_port: Option<String>,
    pub out_port: Option<String>,
    /// JSON text, passed to `init` as written.
    pub flags: Option<String>,
    #[serde(default)]
    pub json_events: bool,
    /// HTTP mode: requests are events, responses come back by id.
    #[serde(default)]
    pub http: bool,
    pub max_memory_mb: Option<usize>,
    pub deadline_ms: Option<u64>,
    pub max_event_bytes: Option<usize>,
    /// `false`: evaluate the JavaScript exactly as given, without elmbox's
    /// Elm-aware rewriting ([`AppConfig::optimize`]).
    #[serde(default)]
    pub optimize: Option<bool>,
    /// Where and how the app may send HTTP requests (`allow-http=`, the
    /// `http-*` limits); by default nowhere.
    #[serde(default, skip_serializing_if = "is_default")]
    pub http_policy: HttpPolicy,
    /// How much of the app's history the store keeps (`retain-log=`);
    /// `None`: the server's `--retain-log`.
    #[serde(default, with = "retain_text", skip_serializing_if = "Option::is_none")]
    pub retain_log: Option<RetainLog>,
}

/// A [`RetainLog`] kept as it is written (`all`, or a number).
mod retain_text {
    use elmbox::durable::RetainLog;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(retain: &Option<RetainLog>, to: S) -> Result<S::Ok, S::Error> {
        match retain {
            Some(retain) => to.serialize_str(&retain.to_string()),
            None => to.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(from: D) -> Result<Option<RetainLog>, D::Error> {
        Option::<String>::deserialize(from)?
            .map(|text| text.parse().map_err(serde::de::Error::custom))
            .transpose()
    }
}

fn is_default(policy: &HttpPolicy) -> bool {
    *policy == HttpPolicy::default()
}

/// A deploy: the options, and how a new version takes over.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Deploy {
    pub options: AppOptions,
    /// From `init` (`fresh=true`).
    pub fresh: bool,
    /// From the old version's exported model (`migrate=true`).
    pub migrate: bool,
}

impl Deploy {
    /// Reads a deploy's query parameters; anything unknown or malformed is
    /// refused, naming the parameter.
    pub fn from_query(query: &HashMap<String, String>) -> Result<Deploy, String> {
        let mut deploy = Deploy::default();
        let options = &mut deploy.options;
        for (key, value) in query {
            // Shown as names are: a query may carry anything.
            let (shown_key, shown) = (printable(key), printable(value));
            let bad = |what: &str| format!("query parameter `{shown_key}`: {what}, not `{shown}`");
            let number = || value.parse::<u64>().map_err(|_| bad("a whole number"));
            let flag = || match value.as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(bad("true or false")),
            };
            match key.as_str() {
                "module" => options.module = Some(value.clone()),
                "in-port" => options.in_port = Some(value.clone()),
                "out-port" => options.out_port = Some(value.clone()),
                "flags" => {
                    serde_json::from_str::<serde::de::IgnoredAny>(value)
                        .map_err(|e| bad(&format!("JSON ({e})")))?;
                    options.flags = Some(value.clone());
                }
                "json-events" => options.json_events = flag()?,
                "fresh" => deploy.fresh = flag()?,
                "migrate" => deploy.migrate = flag()?,
                "http" => options.http = flag()?,
                "max-memory-mb" => options.max_memory_mb = Some(number()? as usize),
                "deadline-ms" => options.deadline_ms = Some(number()?),
                "max-event-bytes" => options.max_event_bytes = Some(number()? as usize),
                "optimize" => options.optimize = Some(flag()?),
                "retain-log" => {
                    options.retain_log = Some(value.parse().map_err(|_| {
                        bad("`all`, or how many snapshots to keep the log back to (1 or more)")
                    })?);
                }
                "allow-http" => {
                    options.http_policy.allow = AllowedHost::parse_list(value)
                        .map_err(|e| bad(&format!("HOST[:PORT],... ({e})")))?;
                }
                "http-max-response-bytes" => options.http_policy.max_response_bytes = number()?,
                "http-timeout-ms" => options.http_policy.default_timeout_ms = number()?,
                "http-max-concurrent" => {
                    options.http_policy.max_concurrent =
                        u32::try_from(number()?).map_err(|_| bad("a whole number"))?;
                }
                _ => return Err(format!("unknown query parameter `{shown_key}`")),
            }
        }
        if deploy.fresh && deploy.migrate {
            return Err(
                "`fresh=true` and `migrate=true`: a new version starts from init or from the \
                 old one's model, not both"
                    .into(),
            );
        }
        Ok(deploy)
    }

    /// How a new version of the app takes over.
    pub fn how(&self) -> OnNewCode {
        match (self.fresh, self.migrate) {
            (true, _) => OnNewCode::Fresh,
            (_, true) => OnNewCode::Migrate,
            _ => OnNewCode::Replay,
        }
    }
}

impl AppOptions {
    /// The configuration to load the app's JavaScript with.
    pub fn config(&self, name: &str) -> AppConfig {
        let defaults = AppConfig::default();
        AppConfig {
            name: name.to_string(),
            module: self.module.clone().unwrap_or(defaults.module),
            in_port: self.in_port.clone().unwrap_or(defaults.in_port),
            out_port: self.out_port.clone().unwrap_or(defaults.out_port),
            flags: self.flags.clone(),
            // In HTTP mode each request arrives as a JSON value.
            event_format: if self.json_events || self.http {
                EventFormat::Json
            } else {
                EventFormat::Text
            },
            optimize: self.optimize.unwrap_or(defaults.optimize),
            ..defaults
        }
    }

    /// The options that a module made by `elmbox build` fixed when it was
    /// built, if any were given.
    pub fn fixed_by_build(&self) -> Vec<&'static str> {
        [
            ("module", self.module.is_some()),
            ("in-port", self.in_port.is_some()),
            ("out-port", self.out_port.is_some()),
            ("flags", self.flags.is_some()),
            ("json-events", self.json_events),
            ("optimize", self.optimize.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect()
    }

    /// The sandbox's limits.
    pub fn limits(&self) -> SandboxLimits {
        let defaults = SandboxLimits::default();
        SandboxLimits {
            max_memory_bytes: self.max_memory_mb.map(|mb| mb << 20),
            deadline: Some(Duration::from_millis(
                self.deadline_ms.unwrap_or(DEFAULT_DEADLINE_MS),
            )),
            max_event_bytes: self.max_event_bytes.unwrap_or(defaults.max_event_bytes),
            ..defaults
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn reads_every_parameter_and_refuses_what_it_does_not_know() {
        let deploy = Deploy::from_query(&query(&[
            ("module", "Api.Main"),
            ("flags", r#"{"b":1,"a":2}"#),
            ("json-events", "true"),
            ("deadline-ms", "250"),
            ("max-event-bytes", "100"),
            ("fresh", "true"),
            ("allow-http", "api.example.com,127.0.0.1:8080"),
            ("http-timeout-ms", "2000"),
            ("retain-log", "2"),
        ]))
        .unwrap();
        assert!(deploy.fresh);
        assert_eq!(deploy.options.retain_log, Some("2".parse().unwrap()));
        let allowed: Vec<String> = deploy
            .options
            .http_policy
            .allow
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(allowed, ["api.example.com", "127.0.0.1:8080"]);
        assert_eq!(deploy.options.http_policy.default_timeout_ms, 2000);
        assert_eq!(deploy.options.http_policy.max_concurrent, 16);
        let config = deploy.options.config("shop");
        assert_eq!(config.module, "Api.Main");
        assert_eq!(config.flags.as_deref(), Some(r#"{"b":1,"a":2}"#));
        assert_eq!(config.event_format, EventFormat::Json);
        let limits = deploy.options.limits();
        assert_eq!(limits.deadline, Some(Duration::from_millis(250)));
        assert_eq!(limits.max_event_bytes, 100);
        assert_eq!(
            deploy.options.fixed_by_build(),
            ["module", "flags", "json-events"]
        );

        for (pairs, says) in [
            (vec![("colour", "red")], "unknown query parameter `colour`"),
            (
                vec![("deadline-ms", "soon")],
                "`deadline-ms`: a whole number",
            ),
            (vec![("json-events", "yes")], "`json-events`: true or false"),
            (vec![("fresh", "true"), ("migrate", "true")], "not both"),
            (
                vec![("retain-log", "0")],
                "`retain-log`: `all`, or how many snapshots",
            ),
            (vec![("flags", "{oops")], "`flags`: JSON"),
            (
                vec![("allow-http", "https://a.com/x")],
                "`allow-http`: HOST[:PORT],...",
            ),
            (
                vec![("in\u{1b}[2J", "x")],
                "unknown query parameter `in\\u{1b}[2J`",
            ),
            (
                vec![("fresh", "\u{202e}yes")],
                "`fresh`: true or false, not `\\u{202e}yes`",
            ),
        ] {
            let err = Deploy::from_query(&query(&pairs)).unwrap_err();
            assert!(err.contains(says), "{err}");
        }
    }

    #[test]
    fn kept_options_read_back_as_they_were() {
        let options = AppOptions {
            in_port: Some("requests".into()),
            max_memory_mb: Some(32),
            http_policy: HttpPolicy {
                allow: AllowedHost::parse_list("a.example:81").unwrap(),
                ..HttpPolicy::default()
            },
            retain_log: Some("3".parse().unwrap()),
            ..AppOptions::default()
        };
        let kept = serde_json::to_string(&options).unwrap();
        assert!(kept.contains(r#""retain-log":"3""#), "{kept}");
        assert_eq!(serde_json::from_str::<AppOptions>(&kept).unwrap(), options);
        // Kept by an older elmbox, without it: the server's default.
        let older = kept.replace(r#","retain-log":"3""#, "");
        assert_eq!(
            serde_json::from_str::<AppOptions>(&older)
                .unwrap()
                .retain_log,
            None
        );
        // Without a deadline of its own, an app gets the server's.
        assert_eq!(
            options.limits().deadline,
            Some(Duration::from_millis(DEFAULT_DEADLINE_MS))
        );
    }
}
