//! hls-rewrite on its own: rewrite a playlist read from stdin so every URI carries an
//! affinity token.
//!
//! `curl -s http://origin/live/cam.m3u8 | cargo run -p proxy-examples --example hls_rewrite -- TOKEN /live/cam.m3u8`

use std::io::Read;

fn main() {
    let mut args = std::env::args().skip(1);
    let token = args.next().unwrap_or_else(|| "example".into());
    let base = args.next().unwrap_or_else(|| "/live/stream.m3u8".into());
    let mut playlist = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut playlist) {
        eprintln!("reading stdin: {e}");
        std::process::exit(1);
    }
    match hls_rewrite::rewrite_bytes(&playlist, hls_rewrite::DEFAULT_TOKEN_PARAM, &token, &base) {
        Ok(out) => print!("{out}"),
        Err(e) => {
            eprintln!("not rewritable: {e}");
            std::process::exit(1);
        }
    }
}
