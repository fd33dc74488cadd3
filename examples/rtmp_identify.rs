//! rtmp-peek without tokio: a blocking RTMP server that tells which stream each client
//! wants, then refuses it politely. Useful as a model for embedding the sans-IO session in
//! any I/O loop.
//!
//! `cargo run -p proxy-examples --example rtmp_identify -- 127.0.0.1:1935`, then
//! `ffmpeg -re -i clip.flv -c copy -f flv rtmp://127.0.0.1:1935/live/cam?token=1`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use rtmp_peek::{ServerConfig, ServerEvent, ServerSession};

fn identify(mut stream: TcpStream) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut session = ServerSession::new(ServerConfig::default());
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        if let Err(e) = session.feed(&buf[..n]) {
            eprintln!("protocol error: {e}");
            return Ok(());
        }
        stream.write_all(&session.take_output())?;
        while let Some(event) = session.poll_event() {
            if let ServerEvent::Identified(id) = event {
                println!(
                    "{:?} tcUrl={} app={} stream={}",
                    id.kind, id.tc_url, id.app, id.stream
                );
                let _ = session.fail("this example only identifies streams");
                stream.write_all(&session.take_output())?;
                return Ok(());
            }
        }
    }
}

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:1935".into());
    let listener = TcpListener::bind(&addr)?;
    println!("listening on {addr}");
    for stream in listener.incoming() {
        if let Err(e) = stream.and_then(identify) {
            eprintln!("connection: {e}");
        }
    }
    Ok(())
}
