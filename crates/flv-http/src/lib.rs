//! Sans-IO HTTP media requests: classify a request (FLV, TS, HLS playlist, HLS segment,
//! other) and an incremental FLV reader (header, tags, sequence headers, keyframes) that
//! accepts a byte stream split anywhere.
