//! End-to-end tests of the srt front-end.
