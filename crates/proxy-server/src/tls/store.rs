//! The certificates the TLS listeners present, and their reload.
//!
//! A [`CertStore`] holds the default pair (`PROXY_TLS_CERT` / `PROXY_TLS_KEY`) and the
//! pairs chosen by SNI (`[[tls_certs]]` in the TOML file). Every listener's
//! [`rustls::ServerConfig`] resolves through the store at each handshake, so a reload
//! ([`CertStore::reload`]) takes effect for the next handshake while connections already
//! up keep the keys they negotiated. A pair that fails to load keeps its last good
//! certificate, and the reason is logged.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::validity;
use crate::config::TlsFiles;

/// How often the certificate files' modification times are checked.
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// A certificate chain and its key, from two PEM files, for some server names (none: the
/// default pair).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertPair {
    /// SNI names this pair answers (exact, or `*.example.com`); empty for the default.
    pub names: Vec<String>,
    /// The chain, leaf first.
    pub cert: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Why a pair could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file is not the PEM expected.
    #[error("{path}: {reason}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// rustls refuses the key, or the key is not the certificate's.
    #[error("{cert} with {key}: {reason}")]
    Mismatch {
        /// The chain.
        cert: PathBuf,
        /// The key.
        key: PathBuf,
        /// What rustls said.
        reason: String,
    },
}

/// What a file looked like when last loaded (modification time, size, inode): reloading
/// when it changes. The inode catches a file replaced by a rename within the clock's
/// granularity with the same size.
type Stamp = Option<(SystemTime, u64, u64)>;

fn stamp(path: &Path) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let inode = 0;
    Some((meta.modified().ok()?, meta.len(), inode))
}

struct Slot {
    pair: CertPair,
    stamps: (Stamp, Stamp),
}

/// The certificates every TLS listener presents.
#[derive(Debug)]
pub struct CertStore {
    resolver: Arc<Resolver>,
    slots: Mutex<Vec<Slot>>,
    provider: Arc<CryptoProvider>,
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.pair.fmt(f)
    }
}

/// What a reload did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reloaded {
    /// Pairs loaded anew.
    pub loaded: usize,
    /// Pairs that failed and kept their previous certificate.
    pub failed: usize,
}

impl CertStore {
    /// Loads every pair of `files`; any that fails is an error (at start, nothing would
    /// be there to keep).
    pub fn load(files: &TlsFiles) -> Result<Arc<Self>, LoadError> {
        // ring: pure Rust and assembly, built with the C compiler alone (aws-lc-rs wants
        // more of the build machine) under licences cargo-deny already accepts, with
        // AES-GCM and ChaCha20 in assembly. It has no post-quantum key exchange, which
        // rustls now flags as deprecated; live media keys need no decades of secrecy.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut pairs = vec![CertPair {
            names: Vec::new(),
            cert: files.cert.clone(),
            key: files.key.clone(),
        }];
        pairs.extend(files.sni.iter().cloned());
        let mut certs = Certs::default();
        let mut slots = Vec::new();
        for pair in pairs {
            let stamps = (stamp(&pair.cert), stamp(&pair.key));
            let key = load_pair(&pair, &provider)?;
            certs.set(&pair, key);
            slots.push(Slot { pair, stamps });
        }
        Ok(Arc::new(CertStore {
            resolver: Arc::new(Resolver {
                current: RwLock::new(Arc::new(certs)),
            }),
            slots: Mutex::new(slots),
            provider,
        }))
    }

    /// The rustls server configuration for a listener offering `alpn` (most preferred
    /// first), resolving certificates through this store.
    pub fn server_config(&self, alpn: &[&[u8]]) -> Arc<rustls::ServerConfig> {
        let builder = rustls::ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions();
        // The ring provider supports the safe defaults; a failure here would be a build
        // without TLS 1.2 and 1.3 both, which the feature list rules out.
        let builder = match builder {
            Ok(b) => b,
            Err(_) => rustls::ServerConfig::builder(),
        };
        let mut config = builder
            .with_no_client_auth()
            .with_cert_resolver(self.resolver.clone());
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }

    /// Loads every pair again. A pair that fails keeps the certificate it had, and says
    /// why in the log. New handshakes get what is loaded; connections up are untouched.
    pub fn reload(&self) -> Reloaded {
        self.reload_where(|_| true)
    }

    /// Reloads the pairs whose files changed since they were last read (modification time
    /// or size); the file watch calls this.
    pub fn reload_changed(&self) -> Reloaded {
        self.reload_where(|slot| (stamp(&slot.pair.cert), stamp(&slot.pair.key)) != slot.stamps)
    }

    fn reload_where(&self, pick: impl Fn(&Slot) -> bool) -> Reloaded {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let mut outcome = Reloaded::default();
        let mut certs = Certs::clone(&self.resolver.snapshot());
        for slot in slots.iter_mut().filter(|s| pick(s)) {
            // Stamped before reading: a file replaced again while being read is read again.
            slot.stamps = (stamp(&slot.pair.cert), stamp(&slot.pair.key));
            match load_pair(&slot.pair, &self.provider) {
                Ok(key) => {
                    certs.set(&slot.pair, key);
                    outcome.loaded += 1;
                    crate::metrics::tls_reload("ok");
                    tracing::info!(cert = %slot.pair.cert.display(), "TLS certificate loaded; new handshakes get it");
                }
                Err(e) => {
                    outcome.failed += 1;
                    crate::metrics::tls_reload("failed");
                    tracing::error!(
                        "TLS certificate not reloaded, the previous one stays in use: {e}"
                    );
                }
            }
        }
        if outcome.loaded > 0 {
            self.resolver.replace(certs);
        }
        outcome
    }

    /// Reloads on SIGHUP and whenever the files change ([`POLL_INTERVAL`]), until the
    /// process ends.
    pub fn watch(self: &Arc<Self>) {
        let store = self.clone();
        tokio::spawn(async move {
            let mut hangups = hangup_signals();
            let mut poll = tokio::time::interval(POLL_INTERVAL);
            poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let hangup = tokio::select! {
                    _ = poll.tick() => false,
                    () = next_hangup(&mut hangups) => true,
                };
                let store = store.clone();
                // File reads and key parsing stay off the runtime's threads.
                let _ = tokio::task::spawn_blocking(move || {
                    if hangup {
                        let done = store.reload();
                        tracing::info!(
                            loaded = done.loaded,
                            failed = done.failed,
                            "SIGHUP: TLS certificates reloaded"
                        );
                    } else {
                        store.reload_changed();
                    }
                })
                .await;
            }
        });
    }
}

#[cfg(unix)]
type Hangups = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangups = ();

#[cfg(unix)]
fn hangup_signals() -> Hangups {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(
                "cannot watch SIGHUP ({e}): TLS certificates reload when their files change only"
            );
            None
        }
    }
}

#[cfg(not(unix))]
fn hangup_signals() -> Hangups {}

#[cfg(unix)]
async fn next_hangup(hangups: &mut Hangups) {
    match hangups {
        Some(s) => {
            if s.recv().await.is_none() {
                std::future::pending::<()>().await
            }
        }
        None => std::future::pending().await,
    }
}

#[cfg(not(unix))]
async fn next_hangup(_: &mut Hangups) {
    std::future::pending().await
}

/// Reads and checks one pair.
fn load_pair(pair: &CertPair, provider: &CryptoProvider) -> Result<Arc<CertifiedKey>, LoadError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| LoadError::Read {
            path: path.to_owned(),
            source,
        })
    };
    let cert_pem = read(&pair.cert)?;
    let key_pem = read(&pair.key)?;
    let pem_error = |path: &Path, reason: String| LoadError::Pem {
        path: path.to_owned(),
        reason,
    };
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(&pair.cert, format!("not a PEM certificate chain: {e}")))?;
    if chain.is_empty() {
        return Err(pem_error(&pair.cert, "no CERTIFICATE block".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        pem_error(
            &pair.key,
            format!("not a PEM private key (PKCS#8, RSA or EC): {e}"),
        )
    })?;
    let certified =
        CertifiedKey::from_der(chain, key, provider).map_err(|e| LoadError::Mismatch {
            cert: pair.cert.clone(),
            key: pair.key.clone(),
            reason: e.to_string(),
        })?;
    // An expired certificate still loads (the operator may have nothing better), but
    // every client will refuse it: say so loudly, with the date.
    if let Some(leaf) = certified.cert.first() {
        match validity::check(leaf, SystemTime::now()) {
            validity::State::Valid | validity::State::Unknown => {}
            validity::State::Expired(when) => tracing::error!(
                cert = %pair.cert.display(),
                "TLS certificate expired on {when}: clients will refuse it"
            ),
            validity::State::NotYetValid(when) => tracing::error!(
                cert = %pair.cert.display(),
                "TLS certificate is not valid before {when}: clients will refuse it"
            ),
        }
    }
    Ok(Arc::new(certified))
}

/// The certificates in force: the default and those by server name.
#[derive(Debug, Clone, Default)]
struct Certs {
    default: Option<Arc<CertifiedKey>>,
    by_name: HashMap<String, Arc<CertifiedKey>>,
}

impl Certs {
    fn set(&mut self, pair: &CertPair, key: Arc<CertifiedKey>) {
        if pair.names.is_empty() {
            self.default = Some(key);
        } else {
            for name in &pair.names {
                self.by_name.insert(name.to_ascii_lowercase(), key.clone());
            }
        }
    }

    fn pick(&self, server_name: Option<&str>) -> Option<Arc<CertifiedKey>> {
        if let Some(name) = server_name {
            let name = name.to_ascii_lowercase();
            if let Some(key) = self.by_name.get(&name) {
                return Some(key.clone());
            }
            if let Some((_, parent)) = name.split_once('.') {
                if let Some(key) = self.by_name.get(&format!("*.{parent}")) {
                    return Some(key.clone());
                }
            }
        }
        self.default.clone()
    }
}

/// Picks the certificate at each handshake from what is loaded now.
#[derive(Debug)]
struct Resolver {
    current: RwLock<Arc<Certs>>,
}

impl Resolver {
    fn snapshot(&self) -> Arc<Certs> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn replace(&self, certs: Certs) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(certs);
    }
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.snapshot().pick(hello.server_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Arc<CertifiedKey> {
        // No certificate is needed to test the choice: an empty chain is never sent here.
        struct NoKey;
        impl std::fmt::Debug for NoKey {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("NoKey")
            }
        }
        impl rustls::sign::SigningKey for NoKey {
            fn choose_scheme(
                &self,
                _: &[rustls::SignatureScheme],
            ) -> Option<Box<dyn rustls::sign::Signer>> {
                None
            }
            fn algorithm(&self) -> rustls::SignatureAlgorithm {
                rustls::SignatureAlgorithm::ED25519
            }
        }
        Arc::new(CertifiedKey::new(Vec::new(), Arc::new(NoKey)))
    }

    #[test]
    fn sni_picks_exact_then_wildcard_then_default() {
        let (default, exact, wild) = (key(), key(), key());
        let mut certs = Certs::default();
        let pair = |names: &[&str]| CertPair {
            names: names.iter().map(|s| s.to_string()).collect(),
            cert: PathBuf::new(),
            key: PathBuf::new(),
        };
        certs.set(&pair(&[]), default.clone());
        certs.set(&pair(&["Live.Example.com"]), exact.clone());
        certs.set(&pair(&["*.example.com"]), wild.clone());
        let is = |got: Option<Arc<CertifiedKey>>, want: &Arc<CertifiedKey>| {
            Arc::ptr_eq(&got.unwrap(), want)
        };
        assert!(is(certs.pick(Some("live.example.com")), &exact));
        assert!(is(certs.pick(Some("cdn.example.com")), &wild));
        assert!(is(certs.pick(Some("a.b.example.com")), &default));
        assert!(is(certs.pick(Some("other.org")), &default));
        assert!(is(certs.pick(None), &default));
    }
}
