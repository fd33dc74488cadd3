//! End-to-end tests of the webrtc front-end.
