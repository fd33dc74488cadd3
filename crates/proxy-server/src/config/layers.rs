//! Where settings come from (flags, environment, `.env`, the TOML file, the defaults),
//! which of them wins, and the problems found on the way, each naming its source.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Deserialize;

use super::origins::StaticOrigin;
use super::settings::{Setting, SETTINGS};
use lb_core::Origin;

/// The layers a value can come from, most important first. Flags and the file are keyed
/// by setting key, the environment and `.env` by variable.
#[derive(Debug, Default)]
pub struct Layers {
    pub flags: HashMap<String, String>,
    pub env: HashMap<String, String>,
    pub dotenv: HashMap<String, String>,
    pub file: HashMap<String, String>,
    /// The TOML file the `file` layer was read from.
    pub file_path: Option<PathBuf>,
}

/// Where a value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Flag,
    Env,
    DotEnv,
    File,
    Default,
}

impl Layers {
    /// A setting's value (trimmed) and its source. A blank variable counts as unset.
    pub fn get(&self, setting: &Setting) -> (&str, Source) {
        let set = |v: &&String| !v.trim().is_empty();
        let layers = [
            (self.flags.get(setting.key), Source::Flag),
            (self.env.get(setting.env).filter(set), Source::Env),
            (self.dotenv.get(setting.env).filter(set), Source::DotEnv),
            (self.file.get(setting.key), Source::File),
        ];
        layers
            .into_iter()
            .find_map(|(value, source)| Some((value?.trim(), source)))
            .unwrap_or((setting.default, Source::Default))
    }

    /// Parses a setting's value; a bad one is recorded in `problems`, naming the setting,
    /// the value and where the value came from.
    pub fn read<T>(
        &self,
        setting: &Setting,
        parse: impl Fn(&str) -> Result<T, String>,
        problems: &mut Problems,
    ) -> Option<T> {
        let (value, source) = self.get(setting);
        match parse(value) {
            Ok(v) => Some(v),
            Err(why) => {
                let name = self.describe(setting, source);
                problems.push(format!("bad value {value:?} for {name}: {why}"));
                None
            }
        }
    }

    /// `PROXY_IDLE_TIMEOUT (environment)`, `--idle-timeout (command line)`...
    pub fn describe(&self, setting: &Setting, source: Source) -> String {
        match source {
            Source::Flag => format!("--{} (command line)", setting.flag()),
            Source::Env => format!("{} (environment)", setting.env),
            Source::DotEnv => format!("{} (.env)", setting.env),
            Source::File => match &self.file_path {
                Some(path) => format!("{} (config file {})", setting.key, path.display()),
                None => format!("{} (config file)", setting.key),
            },
            Source::Default => format!("{} (built-in default)", setting.key),
        }
    }
}

/// The process environment, as text. A variable that is not UTF-8 is left out; if it is
/// one of ours, that is a problem.
pub fn environment(problems: &mut Problems) -> HashMap<String, String> {
    let mut env = HashMap::new();
    for (key, value) in std::env::vars_os() {
        match (key.into_string(), value.into_string()) {
            (Ok(key), Ok(value)) => {
                env.insert(key, value);
            }
            (Ok(key), Err(_)) if SETTINGS.iter().any(|s| s.env == key) => {
                problems.push(format!("{key} (environment) is not valid UTF-8"));
            }
            _ => {}
        }
    }
    env
}

/// `.env` in the working directory, if there is one.
pub fn dotenv_file() -> anyhow::Result<HashMap<String, String>> {
    match std::fs::read_to_string(".env") {
        Ok(text) => Ok(super::parse::dotenv(&text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(HashMap::new()),
        Err(e) => Err(e).context("reading .env"),
    }
}

/// What the TOML file says.
#[derive(Debug, Default)]
pub struct ConfigFile {
    /// Settings at the top level, by key, as text.
    pub settings: HashMap<String, String>,
    /// Origins in `[[origins]]`, with whether each starts draining.
    pub origins: Vec<(Origin, bool)>,
    /// Certificate pairs by server name, `[[tls_certs]]`.
    pub tls_certs: Vec<crate::tls::CertPair>,
}

/// A `[[tls_certs]]` entry: a certificate pair presented to clients asking for one of
/// `names` (SNI), relative paths from the config file's directory.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SniCert {
    names: Vec<String>,
    cert: std::path::PathBuf,
    key: std::path::PathBuf,
}

/// Reads the TOML file. A file that cannot be read or parsed is an error at once; unknown
/// keys, values of the wrong type and bad origins are `problems`.
pub fn read_file(path: &Path, problems: &mut Problems) -> anyhow::Result<ConfigFile> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config file {}", path.display()))?;
    let mut table: toml::Table = text
        .parse()
        .with_context(|| format!("parsing config file {}", path.display()))?;
    let mut origins = Vec::new();
    if let Some(value) = table.remove("origins") {
        match Vec::<StaticOrigin>::deserialize(value) {
            Ok(list) => {
                for origin in list {
                    let draining = origin.draining;
                    match origin.into_origin() {
                        Ok(o) => origins.push((o, draining)),
                        Err(e) => {
                            problems.push(format!("[[origins]] in {}: {e:#}", path.display()))
                        }
                    }
                }
            }
            Err(e) => problems.push(format!("[[origins]] in {}: {e}", path.display())),
        }
    }
    let mut tls_certs = Vec::new();
    if let Some(value) = table.remove("tls_certs") {
        let base = path.parent().unwrap_or(Path::new("."));
        match Vec::<SniCert>::deserialize(value) {
            Ok(list) => {
                for entry in list {
                    if entry.names.is_empty() || entry.names.iter().any(|n| n.trim().is_empty()) {
                        problems.push(format!(
                            "[[tls_certs]] in {}: every entry needs `names`, none empty",
                            path.display()
                        ));
                        continue;
                    }
                    tls_certs.push(crate::tls::CertPair {
                        names: entry.names,
                        cert: base.join(entry.cert),
                        key: base.join(entry.key),
                    });
                }
            }
            Err(e) => problems.push(format!("[[tls_certs]] in {}: {e}", path.display())),
        }
    }
    let mut settings = HashMap::new();
    for (key, value) in table {
        if !SETTINGS.iter().any(|s| s.key == key) {
            let hint = closest_key(&key)
                .map(|k| format!(" (did you mean `{k}`?)"))
                .unwrap_or_default();
            problems.push(format!(
                "unknown key `{key}` in config file {}{hint}",
                path.display()
            ));
            continue;
        }
        let text = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Boolean(b) => if b { "on" } else { "off" }.to_owned(),
            toml::Value::Float(f) => f.to_string(),
            other => {
                problems.push(format!(
                    "key `{key}` in config file {} must be a string, number or boolean, not {}",
                    path.display(),
                    other.type_str()
                ));
                continue;
            }
        };
        settings.insert(key, text);
    }
    Ok(ConfigFile {
        settings,
        origins,
        tls_certs,
    })
}

/// The setting key nearest to a misspelt one, if any is near (at most two edits, or
/// three for long keys).
fn closest_key(key: &str) -> Option<&'static str> {
    let limit = 2 + usize::from(key.len() > 12);
    SETTINGS
        .iter()
        .map(|s| (edit_distance(key, s.key), s.key))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map(|(_, k)| k)
}

/// Levenshtein distance, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

/// Everything wrong with a configuration, reported together so that one run shows an
/// operator every line to fix.
#[derive(Debug, Default)]
pub struct Problems(Vec<String>);

impl Problems {
    pub fn push(&mut self, problem: String) {
        self.0.push(problem);
    }

    /// `value` if nothing was wrong; otherwise every problem, as one error.
    pub fn finish<T>(self, value: Option<T>) -> anyhow::Result<T> {
        match value {
            Some(v) if self.0.is_empty() => Ok(v),
            _ => Err(anyhow::Error::msg(self.to_string())),
        }
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            [] => f.write_str("invalid configuration"),
            [one] => f.write_str(one),
            many => {
                write!(f, "{} problems:", many.len())?;
                many.iter().try_for_each(|p| write!(f, "\n  {p}"))
            }
        }
    }
}
