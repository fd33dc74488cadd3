use super::*;

fn parsed(raw: &[u8]) -> RequestHead {
    head::parse_request(raw, 4096).unwrap().unwrap()
}

#[test]
fn only_plain_gets_of_live_streams_take_the_raw_path() {
    let raw = |r: &[u8]| matches!(classify(&parsed(r)), First::Raw(_));
    assert!(raw(b"GET /live/cam.flv?k=1 HTTP/1.1\r\nHost: a\r\n\r\n"));
    assert!(raw(b"GET /live/cam.ts HTTP/1.1\r\nHost: a\r\n\r\n"));
    assert!(!raw(b"GET /live/cam.flv HTTP/1.0\r\nHost: a\r\n\r\n"));
    assert!(!raw(b"HEAD /live/cam.flv HTTP/1.1\r\nHost: a\r\n\r\n"));
    assert!(!raw(b"GET /live/cam.m3u8 HTTP/1.1\r\nHost: a\r\n\r\n"));
    assert!(!raw(b"GET /api/v1/versions HTTP/1.1\r\nHost: a\r\n\r\n"));
    assert!(!raw(
        b"GET /live/cam.flv HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n"
    ));
    assert!(!raw(
        b"GET /live/cam.flv HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n"
    ));
    assert!(!raw(
        b"GET http://a/live/cam.flv HTTP/1.1\r\nHost: a\r\n\r\n"
    ));
}

#[test]
fn the_viewer_gets_the_origins_framing_and_cors_without_its_hop_headers() {
    let origin = head::parse_response(
        b"HTTP/1.1 200 OK\r\nContent-Type: video/x-flv\r\nTransfer-Encoding: chunked\r\n\
          Connection: keep-alive, x-hop\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\n\
          Access-Control-Allow-Origin: https://a.example\r\n\r\n",
        4096,
    )
    .unwrap()
    .unwrap();
    let out = response_head(&origin);
    let back = head::parse_response(&out, 4096).unwrap().unwrap();
    let get = |name: &str| {
        back.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    };
    assert_eq!(back.status, 200);
    assert_eq!(get("transfer-encoding").as_deref(), Some("chunked"));
    assert_eq!(get("connection").as_deref(), Some("close"));
    assert_eq!(get("content-type").as_deref(), Some("video/x-flv"));
    assert_eq!(get("x-hop"), None);
    assert_eq!(get("keep-alive"), None);
    // The origin's own CORS wins; the defaults fill in the rest.
    assert_eq!(
        get("access-control-allow-origin").as_deref(),
        Some("https://a.example")
    );
    assert!(get("access-control-expose-headers").is_some());
}

/// A connected loopback pair: (the proxy's end of an origin connection, the origin's).
async fn origin_pair() -> (TcpStream, TcpStream) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_end = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (origin_end, _) = listener.accept().await.unwrap();
    (proxy_end, origin_end)
}

#[tokio::test]
async fn pump_relays_the_head_then_the_origins_bytes_until_it_closes() {
    let (proxy_end, mut origin_end) = origin_pair().await;
    let (mut viewer, mut player) = tokio::io::duplex(1 << 16);
    origin_end.write_all(b"0005\r\nhello\r\n").await.unwrap();
    drop(origin_end);
    let relayed = pump(
        &mut viewer,
        proxy_end,
        b"HTTP/1.1 200 OK\r\n\r\n".to_vec(),
        None,
        Duration::from_secs(10),
    )
    .await;
    assert!(relayed.is_ok(), "{:?}", relayed.err());
    drop(viewer);
    let mut got = Vec::new();
    player.read_to_end(&mut got).await.unwrap();
    // The origin's framing passes unchanged.
    assert_eq!(got, b"HTTP/1.1 200 OK\r\n\r\n0005\r\nhello\r\n");
}

#[tokio::test]
async fn pump_ends_on_a_silent_origin_a_stalled_viewer_and_a_leaving_one() {
    let idle = Duration::from_millis(300);
    // The origin says nothing.
    let (proxy_end, _origin_end) = origin_pair().await;
    let (mut viewer, _player) = tokio::io::duplex(1 << 16);
    let ended = pump(&mut viewer, proxy_end, Vec::new(), None, idle).await;
    assert!(matches!(ended, Err(Ended::OriginIdle)), "{ended:?}");
    // The origin sends more than the viewer (a 64-byte pipe nobody reads) takes.
    let (proxy_end, mut origin_end) = origin_pair().await;
    let (mut viewer, _player) = tokio::io::duplex(64);
    origin_end.write_all(&[7u8; 4096]).await.unwrap();
    let ended = pump(&mut viewer, proxy_end, Vec::new(), None, idle).await;
    assert!(matches!(ended, Err(Ended::ViewerStalled)), "{ended:?}");
    // The viewer goes away while the origin is quiet.
    let (proxy_end, _origin_end) = origin_pair().await;
    let (mut viewer, player) = tokio::io::duplex(1 << 16);
    drop(player);
    let ended = pump(
        &mut viewer,
        proxy_end,
        Vec::new(),
        None,
        Duration::from_secs(10),
    )
    .await;
    assert!(
        matches!(ended, Err(Ended::ViewerClosed | Ended::Io(_))),
        "{ended:?}"
    );
}

#[tokio::test]
async fn a_cut_session_ends_a_flowing_relay_and_every_byte_it_moved_is_counted() {
    let sessions = crate::sessions::Sessions::default();
    let origin_id = lb_core::OriginId::new("o");
    let session = sessions.open(
        Protocol::HttpFlv,
        StreamKey::new(None, "live", "cam").unwrap(),
        origin_id.clone(),
        "127.0.0.1:1".parse().unwrap(),
        PickIntent::Play,
    );
    let (proxy_end, mut origin_end) = origin_pair().await;
    let (mut viewer, mut player) = tokio::io::duplex(1 << 16);
    // The origin keeps sending: the cut must be seen on wake-ups that also move bytes.
    let feeding = tokio::spawn(async move {
        while origin_end.write_all(&[1u8; 1000]).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    let reading = tokio::spawn(async move {
        let mut got = 0usize;
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = player.read(&mut buf).await {
            got += n;
        }
        got
    });
    let relay = pump(
        &mut viewer,
        proxy_end,
        b"HEAD".to_vec(),
        Some(&session),
        Duration::from_secs(10),
    );
    let cutting = async {
        while session
            .traffic()
            .to_client
            .load(std::sync::atomic::Ordering::Relaxed)
            == 0
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(sessions.cut_origin(&origin_id), 1);
        std::future::pending::<()>().await
    };
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        tokio::select! {
            ended = relay => ended,
            () = cutting => unreachable!(),
        }
    })
    .await;
    assert!(matches!(ended, Ok(Err(Ended::Cut))), "{ended:?}");
    drop(viewer);
    feeding.abort();
    let got = reading.await.unwrap();
    assert!(got > 4, "the viewer got the stream before the cut");
    assert_eq!(
        session
            .traffic()
            .to_client
            .load(std::sync::atomic::Ordering::Relaxed),
        got as u64,
        "what the viewer got is what the session counts"
    );
}

#[tokio::test]
async fn replay_gives_the_read_bytes_first() {
    let (a, mut b) = tokio::io::duplex(64);
    b.write_all(b" world").await.unwrap();
    drop(b);
    let mut replay = Replay::new(b"hello".to_vec(), a);
    let mut out = String::new();
    replay.read_to_string(&mut out).await.unwrap();
    assert_eq!(out, "hello world");
}
