//! `--check-config`: what a valid configuration amounts to, setting by setting with where
//! each value came from, and its static origins; secrets masked, so that the report can
//! be pasted into a ticket.

use std::fmt::Write as _;

use super::layers::{Layers, Source};
use super::{Config, SETTINGS, VERSION};

/// What the command line asks the binary to do.
#[derive(Debug)]
pub enum Invocation {
    /// Run with this configuration (boxed: it is large, the report is not).
    Run(Box<Config>),
    /// Only report on the configuration, which is valid: the report, for stdout.
    Check(String),
}

/// What a masked secret reads as.
const MASK: &str = "***";

/// Settings whose whole value is secret.
const SECRETS: &[&str] = &[
    "system_api_token",
    "redis_password",
    "fleet_secret",
    "fleet_secret_previous",
];

/// A URL with the password in its user info (`redis://user:pass@host`) masked; any other
/// text as it is.
pub fn mask_url_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return url.to_owned();
    };
    let user = match userinfo.split_once(':') {
        Some((user, _password)) => format!("{user}:{MASK}"),
        // `redis://secret@host`: Redis URLs take a lone user info as the password.
        None if !userinfo.is_empty() => MASK.to_owned(),
        None => String::new(),
    };
    format!("{scheme}://{user}@{host}{path}")
}

/// A setting's value as the report shows it.
fn shown(key: &str, value: &str) -> String {
    if value.is_empty() {
        return String::new();
    }
    if SECRETS.contains(&key) {
        return MASK.to_owned();
    }
    if key == "redis_url" {
        return mask_url_password(value);
    }
    value.to_owned()
}

/// The report on a valid configuration: one line per setting (`key = "value"`, where it
/// came from), then the static origins as `[[origins]]` tables.
pub fn report(layers: &Layers, config: &Config) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# proxy-server {VERSION}: the configuration is valid.");
    let _ = writeln!(
        out,
        "# Effective settings, each with where its value came from; secrets shown as {MASK}."
    );
    for setting in SETTINGS {
        let (value, source) = layers.get(setting);
        let from = match source {
            Source::Default => "default".to_owned(),
            _ => layers.describe(setting, source),
        };
        let _ = writeln!(
            out,
            "{} = {:?}  # {from}",
            setting.key,
            shown(setting.key, value)
        );
    }
    if config.static_origins.is_empty() {
        let _ = writeln!(
            out,
            "# No static origin: streams wait for an origin to register through the System API."
        );
    }
    for (origin, draining) in &config.static_origins {
        let _ = writeln!(out, "\n[[origins]]\nname = {:?}", origin.id.to_string());
        for (leg, endpoints) in [
            ("rtmp", &origin.rtmp),
            ("http", &origin.http),
            ("api", &origin.api),
            ("srt", &origin.srt),
            ("rtc", &origin.rtc),
        ] {
            if !endpoints.is_empty() {
                let list: Vec<String> = endpoints
                    .iter()
                    .map(|e| format!("{:?}", e.to_string()))
                    .collect();
                let _ = writeln!(out, "{leg} = [{}]", list.join(", "));
            }
        }
        let _ = writeln!(out, "weight = {}", origin.weight);
        if let Some(n) = origin.max_streams {
            let _ = writeln!(out, "max_streams = {n}");
        }
        if let Some(n) = origin.max_connections {
            let _ = writeln!(out, "max_connections = {n}");
        }
        let _ = writeln!(out, "draining = {draining}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_passwords_are_masked() {
        assert_eq!(
            mask_url_password("redis://user:s3cret@redis.internal:6380/2"),
            "redis://user:***@redis.internal:6380/2"
        );
        assert_eq!(
            mask_url_password("rediss://:s3cret@10.0.0.9"),
            "rediss://:***@10.0.0.9"
        );
        assert_eq!(
            mask_url_password("redis://s3cret@10.0.0.9"),
            "redis://***@10.0.0.9"
        );
        assert_eq!(
            mask_url_password("redis://10.0.0.9:6379/0?x=a@b"),
            "redis://10.0.0.9:6379/0?x=a@b"
        );
        assert_eq!(mask_url_password("not a url"), "not a url");
    }

    #[test]
    fn secrets_are_masked() {
        assert_eq!(shown("system_api_token", "abc"), MASK);
        assert_eq!(shown("redis_password", "abc"), MASK);
        assert_eq!(shown("redis_password", ""), "");
        assert_eq!(shown("rtmp_server", "1935"), "1935");
    }
}
