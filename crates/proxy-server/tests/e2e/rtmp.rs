//! End-to-end tests of the rtmp front-end.
