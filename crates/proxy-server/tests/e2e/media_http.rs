//! End-to-end tests of the media_http front-end.
