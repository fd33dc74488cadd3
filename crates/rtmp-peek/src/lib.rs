//! Sans-IO RTMP for proxies: the handshake (simple and digest forms, server and client
//! side), the chunk stream reader and writer, AMF0, and the command messages, enough to
//! learn which app and stream a connection is about and to replay its commands elsewhere.
//!
//! No sockets and no runtime: bytes go in, parsed values and bytes to send come out.
