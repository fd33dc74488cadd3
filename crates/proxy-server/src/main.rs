//! The `proxy-server` binary: configuration from flags, environment, `.env` and a TOML
//! file; logs to stderr (`RUST_LOG`); then [`proxy_server::run`]. `--check-config` stops
//! after the configuration, `--version` names the commit too.

use std::process::ExitCode;

use proxy_server::config::Invocation;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let config = match proxy_server::config::load_invocation(std::env::args()) {
        Ok(Invocation::Run(config)) => *config,
        Ok(Invocation::Check(report)) => {
            print!("{report}");
            return ExitCode::SUCCESS;
        }
        Err(e) => match e.downcast::<clap::Error>() {
            Ok(clap_error) => clap_error.exit(),
            Err(e) => {
                eprintln!("proxy-server: configuration error: {e:#}");
                return ExitCode::from(2);
            }
        },
    };
    init_logs(&config);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("proxy-server: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(proxy_server::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr, filtered by `log_filter` (else `RUST_LOG`, else `info`), with a handle
/// that lets a configuration reload change the filter.
fn init_logs(config: &proxy_server::Config) {
    let filter = EnvFilter::try_new(proxy_server::log_filter_of(config))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let (filter, handle) = tracing_subscriber::reload::Layer::new(filter);
    tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
        )
        .init();
    proxy_server::set_log_reloader(move |spec| {
        let filter = EnvFilter::try_new(spec).map_err(|e| e.to_string())?;
        handle.reload(filter).map_err(|e| e.to_string())
    });
}
