//! RTMP front-end (PROXY_RTMP_SERVER).

use std::sync::Arc;

use crate::Context;

/// Binds the listener, if configured, and serves it until shutdown.
pub async fn start(ctx: Arc<Context>) -> anyhow::Result<()> {
    let _ = ctx;
    Ok(())
}
