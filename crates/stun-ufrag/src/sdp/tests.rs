use super::*;
use proptest::prelude::*;
use std::net::IpAddr;

/// SRS 6 answer to a WHIP publish: ICE-lite, BUNDLE, the same credentials in every section,
/// one host candidate per server IP (two here: LAN and docker bridge).
pub(crate) const SRS_ANSWER: &str = "v=0\r\n\
o=SRS/6.0.145(Bee) 107783412304512 2 IN IP4 0.0.0.0\r\n\
s=SRSPublishSession\r\n\
t=0 0\r\n\
a=ice-lite\r\n\
a=group:BUNDLE 0 1\r\n\
a=msid-semantic: WMS live/livestream\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
c=IN IP4 0.0.0.0\r\n\
a=ice-ufrag:2m8u6b05\r\n\
a=ice-pwd:c5i0u0e2o38k2t4i9q0x8m5k0g9d9fyx\r\n\
a=fingerprint:sha-256 7D:3C:1A:5E:0F:7B:54:E0:86:D3:6C:25:59:A0:9D:3B:66:60:0A:13:2D:28:7F:A8:F1:42:01:34:2E:8F:45:C0\r\n\
a=setup:passive\r\n\
a=mid:0\r\n\
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n\
a=recvonly\r\n\
a=rtcp-mux\r\n\
a=rtcp-rsize\r\n\
a=rtpmap:111 opus/48000/2\r\n\
a=rtcp-fb:111 transport-cc\r\n\
a=fmtp:111 minptime=10;useinbandfec=1\r\n\
a=candidate:0 1 udp 2130706431 192.168.3.6 8000 typ host generation 0\r\n\
a=candidate:1 1 udp 2130706431 172.17.0.2 8000 typ host generation 0\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 106\r\n\
c=IN IP4 0.0.0.0\r\n\
a=ice-ufrag:2m8u6b05\r\n\
a=ice-pwd:c5i0u0e2o38k2t4i9q0x8m5k0g9d9fyx\r\n\
a=fingerprint:sha-256 7D:3C:1A:5E:0F:7B:54:E0:86:D3:6C:25:59:A0:9D:3B:66:60:0A:13:2D:28:7F:A8:F1:42:01:34:2E:8F:45:C0\r\n\
a=setup:passive\r\n\
a=mid:1\r\n\
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n\
a=recvonly\r\n\
a=rtcp-mux\r\n\
a=rtcp-rsize\r\n\
a=rtpmap:106 H264/90000\r\n\
a=rtcp-fb:106 transport-cc\r\n\
a=rtcp-fb:106 nack\r\n\
a=rtcp-fb:106 nack pli\r\n\
a=fmtp:106 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n\
a=candidate:0 1 udp 2130706431 192.168.3.6 8000 typ host generation 0\r\n\
a=candidate:1 1 udp 2130706431 172.17.0.2 8000 typ host generation 0\r\n";

/// Chrome offer (WHIP publish after gathering): credentials per section, mDNS host,
/// srflx, TCP active candidates, end-of-candidates.
pub(crate) const CHROME_OFFER: &str = "v=0\r\n\
o=- 4215775240449105457 2 IN IP4 127.0.0.1\r\n\
s=-\r\n\
t=0 0\r\n\
a=group:BUNDLE 0 1\r\n\
a=extmap-allow-mixed\r\n\
a=msid-semantic: WMS 5f0c1b2a-9d3e-4f61-8a7b-2c3d4e5f6a7b\r\n\
m=audio 61665 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126\r\n\
c=IN IP4 203.0.113.7\r\n\
a=rtcp:9 IN IP4 0.0.0.0\r\n\
a=candidate:3885250869 1 udp 2122260223 8a1f4c2e-3b5d-4e6f-9a0b-1c2d3e4f5a6b.local 61665 typ host generation 0 network-id 1 network-cost 10\r\n\
a=candidate:842163049 1 udp 1686052607 203.0.113.7 61665 typ srflx raddr 0.0.0.0 rport 0 generation 0 network-id 1 network-cost 10\r\n\
a=candidate:2999745851 1 tcp 1518280447 8a1f4c2e-3b5d-4e6f-9a0b-1c2d3e4f5a6b.local 9 typ host tcptype active generation 0 network-id 1 network-cost 10\r\n\
a=end-of-candidates\r\n\
a=ice-ufrag:EsAw\r\n\
a=ice-pwd:bP+XJMM09aR8AiX1jdukzR6Y\r\n\
a=ice-options:trickle\r\n\
a=fingerprint:sha-256 0F:74:31:25:CB:A2:13:EC:28:6F:6D:2C:61:FF:5D:C2:BC:B9:DB:3D:98:14:8D:1A:BB:EA:33:0C:A4:60:A8:8E\r\n\
a=setup:actpass\r\n\
a=mid:0\r\n\
a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n\
a=sendonly\r\n\
a=msid:5f0c1b2a-9d3e-4f61-8a7b-2c3d4e5f6a7b 1e2d3c4b-5a69-4788-9a0b-c1d2e3f4a5b6\r\n\
a=rtcp-mux\r\n\
a=rtpmap:111 opus/48000/2\r\n\
a=rtcp-fb:111 transport-cc\r\n\
a=fmtp:111 minptime=10;useinbandfec=1\r\n\
a=ssrc:1394817046 cname:l0kSmRfXNoXDqH3z\r\n\
m=video 61665 UDP/TLS/RTP/SAVPF 96 97 102 103\r\n\
c=IN IP4 203.0.113.7\r\n\
a=rtcp:9 IN IP4 0.0.0.0\r\n\
a=candidate:3885250869 1 udp 2122260223 8a1f4c2e-3b5d-4e6f-9a0b-1c2d3e4f5a6b.local 61665 typ host generation 0 network-id 1 network-cost 10\r\n\
a=candidate:842163049 1 udp 1686052607 203.0.113.7 61665 typ srflx raddr 0.0.0.0 rport 0 generation 0 network-id 1 network-cost 10\r\n\
a=end-of-candidates\r\n\
a=ice-ufrag:EsAw\r\n\
a=ice-pwd:bP+XJMM09aR8AiX1jdukzR6Y\r\n\
a=ice-options:trickle\r\n\
a=fingerprint:sha-256 0F:74:31:25:CB:A2:13:EC:28:6F:6D:2C:61:FF:5D:C2:BC:B9:DB:3D:98:14:8D:1A:BB:EA:33:0C:A4:60:A8:8E\r\n\
a=setup:actpass\r\n\
a=mid:1\r\n\
a=sendonly\r\n\
a=rtcp-mux\r\n\
a=rtcp-rsize\r\n\
a=rtpmap:96 VP8/90000\r\n\
a=rtcp-fb:96 nack pli\r\n\
a=rtpmap:102 H264/90000\r\n\
a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f\r\n\
a=ssrc:2921393120 cname:l0kSmRfXNoXDqH3z\r\n";

/// OBS (libdatachannel) offer: credentials at session level, uppercase `UDP`, LF endings.
pub(crate) const OBS_OFFER: &str = "v=0\n\
o=rtc 2966472306 0 IN IP4 127.0.0.1\n\
s=-\n\
t=0 0\n\
a=group:BUNDLE 0 1\n\
a=group:LS 0 1\n\
a=msid-semantic:WMS *\n\
a=setup:actpass\n\
a=ice-ufrag:k2Zq\n\
a=ice-pwd:9JdQ3hX7v1sYbNwE5tLpR0aC\n\
a=ice-options:ice2,trickle\n\
a=fingerprint:sha-256 A1:B2:C3:D4:E5:F6:07:18:29:3A:4B:5C:6D:7E:8F:90:A1:B2:C3:D4:E5:F6:07:18:29:3A:4B:5C:6D:7E:8F:90\n\
m=audio 50123 UDP/TLS/RTP/SAVPF 111\n\
c=IN IP4 192.168.1.20\n\
a=mid:0\n\
a=sendonly\n\
a=ssrc:1184 cname:obs\n\
a=rtcp-mux\n\
a=rtpmap:111 opus/48000/2\n\
a=fmtp:111 minptime=10;maxaveragebitrate=96000;stereo=1;sprop-stereo=1;useinbandfec=1\n\
a=candidate:1 1 UDP 2122317823 192.168.1.20 50123 typ host\n\
a=candidate:2 1 UDP 2122317567 fd00::1c2b:3a4d 50123 typ host\n\
a=candidate:3 1 UDP 1686110207 203.0.113.5 50123 typ srflx raddr 0.0.0.0 rport 0\n\
a=end-of-candidates\n\
m=video 50123 UDP/TLS/RTP/SAVPF 96\n\
c=IN IP4 192.168.1.20\n\
a=mid:1\n\
a=sendonly\n\
a=ssrc:1185 cname:obs\n\
a=rtcp-mux\n\
a=rtpmap:96 H264/90000\n\
a=rtcp-fb:96 nack\n\
a=rtcp-fb:96 nack pli\n\
a=fmtp:96 profile-level-id=42e01f;packetization-mode=1;level-asymmetry-allowed=1\n";

/// WHIP PATCH body (RFC 9725 §4.3.1 example shape).
pub(crate) const SDPFRAG: &str = "a=ice-options:trickle ice2\r\n\
a=group:BUNDLE 0 1\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
a=mid:0\r\n\
a=ice-ufrag:EsAw\r\n\
a=ice-pwd:bP+XJMM09aR8AiX1jdukzR6Y\r\n\
a=candidate:1387637174 1 udp 2122260223 192.0.2.1 61764 typ host generation 0 ufrag EsAw network-id 1\r\n\
a=candidate:3471623853 1 udp 2122194687 198.51.100.2 61765 typ host generation 0 ufrag EsAw network-id 2\r\n\
a=candidate:473322822 1 tcp 1518280447 192.0.2.1 9 typ host tcptype active generation 0 ufrag EsAw network-id 1\r\n\
a=end-of-candidates\r\n";

fn public_v4() -> CandidateAddr {
    CandidateAddr::new("203.0.113.10".parse().unwrap(), 18000)
}

#[test]
fn srs_answer_credentials() {
    let c = ice_credentials(SRS_ANSWER).unwrap();
    assert_eq!(c.ufrag, "2m8u6b05");
    assert_eq!(c.pwd, "c5i0u0e2o38k2t4i9q0x8m5k0g9d9fyx");
}

#[test]
fn chrome_offer_credentials_are_media_level() {
    let c = ice_credentials(CHROME_OFFER).unwrap();
    assert_eq!((c.ufrag, c.pwd), ("EsAw", "bP+XJMM09aR8AiX1jdukzR6Y"));
    let all = section_credentials(CHROME_OFFER).unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all[0].section, Section::Session);
    assert_eq!(all[0].ufrag, None);
    assert_eq!(all[1].section, Section::Media(0));
    assert_eq!(all[1].mid, Some("0"));
    assert_eq!(all[2].ufrag, Some("EsAw"));
    assert_eq!(all[2].mid, Some("1"));
}

#[test]
fn obs_offer_credentials_are_session_level() {
    let c = ice_credentials(OBS_OFFER).unwrap();
    assert_eq!((c.ufrag, c.pwd), ("k2Zq", "9JdQ3hX7v1sYbNwE5tLpR0aC"));
    let all = section_credentials(OBS_OFFER).unwrap();
    assert_eq!(all[0].ufrag, Some("k2Zq"));
    assert!(all[1..]
        .iter()
        .all(|s| s.ufrag.is_none() && s.pwd.is_none()));
}

#[test]
fn media_level_wins_over_session_level() {
    let sdp =
        "v=0\r\na=ice-ufrag:sess\r\na=ice-pwd:sesspwd\r\nm=audio 9 X 0\r\na=ice-ufrag:med1\r\n\
               m=video 9 X 0\r\na=ice-ufrag:med2\r\na=ice-pwd:med2pwd\r\n";
    let c = ice_credentials(sdp).unwrap();
    // First section's own ufrag, inherited pwd.
    assert_eq!((c.ufrag, c.pwd), ("med1", "sesspwd"));
}

#[test]
fn credential_errors() {
    assert_eq!(
        ice_credentials("v=0\r\nm=audio 9 X 0\r\n"),
        Err(Error::MissingIceUfrag)
    );
    assert_eq!(
        ice_credentials("v=0\r\na=ice-ufrag:abcd\r\n"),
        Err(Error::MissingIcePwd)
    );
    assert_eq!(
        ice_credentials("v=0\r\na=ice-ufrag:ab:cd\r\na=ice-pwd:x\r\n"),
        Err(Error::BadIceCredential { line: 2 })
    );
    assert_eq!(
        ice_credentials("v=0\r\na=ice-ufrag:\r\n"),
        Err(Error::BadIceCredential { line: 2 })
    );
    let long = format!("v=0\na=ice-ufrag:{}\n", "a".repeat(257));
    assert_eq!(
        ice_credentials(&long),
        Err(Error::BadIceCredential { line: 2 })
    );
    assert_eq!(ice_credentials("hello"), Err(Error::NotSdp));
    // Trailing blanks are tolerated.
    let c = ice_credentials("v=0\r\na=ice-ufrag:abcd \r\na=ice-pwd:efgh\t\r\n").unwrap();
    assert_eq!((c.ufrag, c.pwd), ("abcd", "efgh"));
    // `a=ice-ufragX:` is not `a=ice-ufrag:`.
    assert_eq!(
        ice_credentials("v=0\r\na=ice-ufrag2:abcd\r\na=ice-pwd:efgh\r\n"),
        Err(Error::MissingIceUfrag)
    );
}

#[test]
fn size_and_line_limits() {
    let big = format!("v=0\r\n{}", "a=x\r\n".repeat(MAX_SDP_LEN / 5));
    assert!(matches!(
        ice_credentials(&big),
        Err(Error::SdpTooLarge { .. })
    ));
    assert!(matches!(
        rewrite_candidates(&big, &public_v4(), TcpCandidates::Drop),
        Err(Error::SdpTooLarge { .. })
    ));
    let many = format!("v=0\n{}", "\n".repeat(MAX_SDP_LINES));
    assert_eq!(
        ice_credentials(&many),
        Err(Error::SdpTooManyLines { max: MAX_SDP_LINES })
    );
    assert!(matches!(
        sdpfrag_ice_credentials(&many),
        Err(Error::SdpTooManyLines { .. })
    ));
    let ok = format!("v=0\n{}", "\n".repeat(MAX_SDP_LINES - 2));
    assert_eq!(ice_credentials(&ok), Err(Error::MissingIceUfrag));
}

#[test]
fn rewrites_srs_answer_exactly() {
    let out = rewrite_candidates(SRS_ANSWER, &public_v4(), TcpCandidates::Drop).unwrap();
    // The second host candidate per section (docker bridge IP) would now be a duplicate.
    let expected = SRS_ANSWER
        .replace(
            "a=candidate:0 1 udp 2130706431 192.168.3.6 8000 typ host generation 0\r\n",
            "a=candidate:0 1 udp 2130706431 203.0.113.10 18000 typ host generation 0\r\n",
        )
        .replace(
            "a=candidate:1 1 udp 2130706431 172.17.0.2 8000 typ host generation 0\r\n",
            "",
        );
    assert_eq!(out, expected);
    assert_eq!(
        ice_credentials(&out).unwrap(),
        ice_credentials(SRS_ANSWER).unwrap()
    );
}

#[test]
fn rewrites_to_ipv6_and_names() {
    let v6 = CandidateAddr::new("2001:db8::10".parse().unwrap(), 8000);
    let out = rewrite_candidates(SRS_ANSWER, &v6, TcpCandidates::Drop).unwrap();
    assert!(
        out.contains("a=candidate:0 1 udp 2130706431 2001:db8::10 8000 typ host generation 0\r\n")
    );
    assert!(!out.contains("[2001"));

    let named = CandidateAddr::named("rtc.example.com", 443);
    let out = rewrite_candidates(SRS_ANSWER, &named, TcpCandidates::Drop).unwrap();
    assert!(out
        .contains("a=candidate:0 1 udp 2130706431 rtc.example.com 443 typ host generation 0\r\n"));

    let from_sock: CandidateAddr = "198.51.100.1:9000"
        .parse::<std::net::SocketAddr>()
        .unwrap()
        .into();
    assert_eq!(
        from_sock.host,
        CandidateHost::Ip(IpAddr::from([198, 51, 100, 1]))
    );
}

#[test]
fn rewrites_chrome_offer_and_handles_every_candidate_kind() {
    let out = rewrite_candidates(CHROME_OFFER, &public_v4(), TcpCandidates::Drop).unwrap();
    // mDNS host candidate rewritten, extensions kept.
    assert!(out.contains(
        "a=candidate:3885250869 1 udp 2122260223 203.0.113.10 18000 typ host generation 0 network-id 1 network-cost 10\r\n"
    ));
    assert!(!out.contains("typ srflx"));
    assert!(!out.contains(" tcp "));
    assert!(!out.contains(".local"));
    assert_eq!(out.matches("a=end-of-candidates\r\n").count(), 2);
    // `c=` and `a=rtcp:` are left alone (only candidate lines change).
    assert!(out.contains("c=IN IP4 203.0.113.7\r\n"));

    let kept = rewrite_candidates(CHROME_OFFER, &public_v4(), TcpCandidates::Keep).unwrap();
    assert!(kept.contains(
        "a=candidate:2999745851 1 tcp 1518280447 8a1f4c2e-3b5d-4e6f-9a0b-1c2d3e4f5a6b.local 9 typ host tcptype active"
    ));

    let tcp = rewrite_candidates(CHROME_OFFER, &public_v4(), TcpCandidates::Rewrite(443)).unwrap();
    // Active candidates keep the discard port.
    assert!(tcp.contains(
        "a=candidate:2999745851 1 tcp 1518280447 203.0.113.10 9 typ host tcptype active"
    ));
}

#[test]
fn passive_tcp_rewrite_uses_the_tcp_port() {
    let sdp = "v=0\r\nm=audio 9 X 0\r\n\
               a=candidate:1 1 tcp 1 10.0.0.1 8000 typ host tcptype passive\r\n\
               a=candidate:2 1 udp 1 10.0.0.1 8000 typ host\r\n\
               a=candidate:3 1 udp 1 10.0.0.1 8000 typ relay raddr 1.2.3.4 rport 5\r\n\
               a=candidate:4 1 sctp 1 10.0.0.1 8000 typ host\r\n\
               a=candidate:5 1 udp 1 10.0.0.1 8000 typ weird\r\n\
               a=candidate:6 2 udp 1 10.0.0.1 8001 typ host\r\n";
    let out = rewrite_candidates(sdp, &public_v4(), TcpCandidates::Rewrite(443)).unwrap();
    assert_eq!(
        out,
        "v=0\r\nm=audio 9 X 0\r\n\
         a=candidate:1 1 tcp 1 203.0.113.10 443 typ host tcptype passive\r\n\
         a=candidate:2 1 udp 1 203.0.113.10 18000 typ host\r\n\
         a=candidate:6 2 udp 1 203.0.113.10 18000 typ host\r\n"
    );
}

#[test]
fn line_endings_and_missing_final_newline_are_preserved() {
    let out = rewrite_candidates(OBS_OFFER, &public_v4(), TcpCandidates::Drop).unwrap();
    assert!(!out.contains('\r'));
    assert!(out.contains("a=candidate:1 1 UDP 2122317823 203.0.113.10 18000 typ host\n"));
    // The IPv6 host candidate collapses into the first one.
    assert!(!out.contains("fd00::"));
    assert_eq!(out.matches("a=candidate:").count(), 1);

    let sdp = "v=0\r\na=x\na=candidate:0 1 udp 1 10.0.0.1 5 typ host";
    let out = rewrite_candidates(sdp, &public_v4(), TcpCandidates::Drop).unwrap();
    assert_eq!(
        out,
        "v=0\r\na=x\na=candidate:0 1 udp 1 203.0.113.10 18000 typ host"
    );
}

#[test]
fn malformed_candidate_is_an_error_with_its_line() {
    let sdp = "v=0\r\ns=-\r\na=candidate:0 1 udp 1 10.0.0.1\r\n";
    assert_eq!(
        rewrite_candidates(sdp, &public_v4(), TcpCandidates::Drop),
        Err(Error::BadCandidate { line: 3 })
    );
}

#[test]
fn origin_candidates_are_listed() {
    let cands = candidates(SRS_ANSWER).unwrap();
    assert_eq!(cands.len(), 4);
    assert_eq!(cands[0].0, Section::Media(0));
    assert_eq!(
        cands[0].1.socket_addr(),
        Some("192.168.3.6:8000".parse().unwrap())
    );
    assert_eq!(cands[3].0, Section::Media(1));
}

#[test]
fn sdpfrag_credentials_and_rewrite() {
    let c = sdpfrag_ice_credentials(SDPFRAG).unwrap().unwrap();
    assert_eq!((c.ufrag, c.pwd), ("EsAw", "bP+XJMM09aR8AiX1jdukzR6Y"));
    // A full-SDP reader refuses a fragment.
    assert_eq!(ice_credentials(SDPFRAG), Err(Error::NotSdp));

    let out = rewrite_sdpfrag_candidates(SDPFRAG, &public_v4(), TcpCandidates::Drop).unwrap();
    assert_eq!(
        out,
        "a=ice-options:trickle ice2\r\n\
         a=group:BUNDLE 0 1\r\n\
         m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
         a=mid:0\r\n\
         a=ice-ufrag:EsAw\r\n\
         a=ice-pwd:bP+XJMM09aR8AiX1jdukzR6Y\r\n\
         a=candidate:1387637174 1 udp 2122260223 203.0.113.10 18000 typ host generation 0 ufrag EsAw network-id 1\r\n\
         a=end-of-candidates\r\n"
    );

    let only_candidates = "a=mid:0\r\na=candidate:1 1 udp 1 192.0.2.1 5 typ host\r\n";
    assert_eq!(sdpfrag_ice_credentials(only_candidates), Ok(None));
    assert_eq!(
        sdpfrag_ice_credentials("a=ice-pwd:abcdefgh\r\n"),
        Err(Error::MissingIceUfrag)
    );
    // Session-level credentials in a fragment signal an ICE restart.
    let restart = "a=ice-ufrag:new1\r\na=ice-pwd:newpassword\r\nm=audio 9 X 0\r\na=mid:0\r\n";
    let c = sdpfrag_ice_credentials(restart).unwrap().unwrap();
    assert_eq!(c.ufrag, "new1");
}

fn candidate_line() -> impl Strategy<Value = String> {
    (
        0u32..1000,
        1u16..3,
        prop_oneof![Just("udp"), Just("UDP"), Just("tcp")],
        any::<u32>(),
        prop_oneof![
            any::<[u8; 4]>().prop_map(|o| IpAddr::from(o).to_string()),
            any::<[u8; 16]>().prop_map(|o| IpAddr::from(o).to_string()),
            "[a-f0-9]{8}\\.local".prop_map(|s| s),
        ],
        any::<u16>(),
        prop_oneof![Just("host"), Just("srflx"), Just("relay"), Just("prflx")],
        prop_oneof![Just(""), Just(" generation 0"), Just(" tcptype passive")],
    )
        .prop_map(|(f, comp, tr, prio, addr, port, ty, ext)| {
            format!("a=candidate:{f} {comp} {tr} {prio} {addr} {port} typ {ty}{ext}")
        })
}

fn other_line() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]=[ -~]{0,40}",
        Just("a=end-of-candidates".to_owned()),
        Just("m=video 9 UDP/TLS/RTP/SAVPF 96".to_owned()),
        Just("a=ice-ufrag:abcd".to_owned()),
        Just("c=IN IP4 10.0.0.1".to_owned()),
        "[^\r\n]{0,30}",
    ]
    .prop_filter("not a candidate", |l| !l.starts_with("a=candidate:"))
}

proptest! {
    #[test]
    fn rewrite_leaves_non_candidate_lines_untouched(
        lines in proptest::collection::vec(
            prop_oneof![candidate_line(), other_line()],
            0..40,
        ),
        crlf in any::<bool>(),
        tcp in prop_oneof![
            Just(TcpCandidates::Drop),
            Just(TcpCandidates::Keep),
            Just(TcpCandidates::Rewrite(443)),
        ],
    ) {
        let eol = if crlf { "\r\n" } else { "\n" };
        let mut sdp = String::from("v=0");
        sdp.push_str(eol);
        for l in &lines {
            sdp.push_str(l);
            sdp.push_str(eol);
        }
        let out = rewrite_candidates(&sdp, &public_v4(), tcp).unwrap();
        let keep = |s: &str| -> Vec<String> {
            s.split_inclusive('\n')
                .filter(|l| !l.starts_with("a=candidate:"))
                .map(str::to_owned)
                .collect()
        };
        prop_assert_eq!(keep(&out), keep(&sdp));
        for l in out.split_inclusive('\n').filter(|l| l.starts_with("a=candidate:")) {
            prop_assert!(l.ends_with(eol));
            let c = Candidate::parse(l.trim_end()).unwrap();
            if c.transport == Transport::Udp {
                prop_assert_eq!(c.kind, CandidateType::Host);
                prop_assert_eq!(c.address, "203.0.113.10");
                prop_assert_eq!(c.port, 18000);
            }
        }
    }

    #[test]
    fn arbitrary_text_never_panics(s in "[ -~\r\n\t]{0,400}", t in any::<String>()) {
        for body in [&s, &t] {
            let _ = ice_credentials(body);
            let _ = sdpfrag_ice_credentials(body);
            let _ = section_credentials(body);
            let _ = candidates(body);
            let _ = rewrite_candidates(body, &public_v4(), TcpCandidates::Keep);
            let _ = rewrite_sdpfrag_candidates(body, &public_v4(), TcpCandidates::Rewrite(1));
            let _ = Candidate::parse(body);
        }
    }

    #[test]
    fn arbitrary_candidate_tails_never_panic(tail in "[ -~]{0,80}") {
        let _ = Candidate::parse(&format!("a=candidate:{tail}"));
        let _ = rewrite_sdpfrag_candidates(&format!("a=candidate:{tail}\r\n"), &public_v4(), TcpCandidates::Drop);
    }
}
