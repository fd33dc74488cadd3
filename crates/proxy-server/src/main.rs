//! The `proxy-server` binary: configuration from flags, environment, `.env` and a TOML
//! file; logs to stderr (`RUST_LOG`); then [`proxy_server::run`]. `--check-config` stops
//! after the configuration, `--version` names the commit too.

use std::process::ExitCode;

use proxy_server::config::Invocation;

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
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
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
