//! Sans-IO WebRTC routing helpers: STUN parsing and MESSAGE-INTEGRITY / FINGERPRINT
//! verification, RFC 7983 first-byte demultiplexing, SDP `ice-ufrag`/`ice-pwd` reading and
//! `a=candidate` rewriting.
