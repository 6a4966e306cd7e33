//! Migration: a new version of an app started from the old version's
//! model rather than from a replay of its history. The old version is sent
//! `null` on its incoming port [`EXPORT_PORT`] and answers, in that event,
//! with a value on its outgoing port [`EXPORTED_PORT`]; the new version's
//! `init` gets [`migrated_flags`] of it.

/// The incoming port a migration sends `null` to.
pub const EXPORT_PORT: &str = "elmboxExport";
/// The outgoing port the old version sends its exported model on.
pub const EXPORTED_PORT: &str = "elmboxExported";

/// The flags the new version's `init` gets: `{"migrated": VALUE, "flags":
/// FLAGS}`, both JSON texts (FLAGS: the deploy's own flags, or `null`).
pub fn migrated_flags(value: &str, flags: Option<&str>) -> String {
    format!(
        r#"{{"migrated":{value},"flags":{}}}"#,
        flags.unwrap_or("null")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_the_value_and_the_flags() {
        let wrapped = migrated_flags(r#"{"count":3}"#, None);
        let read: serde_json::Value = serde_json::from_str(&wrapped).unwrap();
        assert_eq!(
            read,
            serde_json::json!({"migrated": {"count": 3}, "flags": null})
        );
        let wrapped = migrated_flags("7", Some(r#"{"start":1}"#));
        let read: serde_json::Value = serde_json::from_str(&wrapped).unwrap();
        assert_eq!(
            read,
            serde_json::json!({"migrated": 7, "flags": {"start": 1}})
        );
    }
}
