//! Rejection reasons, with libsrt's numbers.
//!
//! libsrt has two numberings and both matter to a proxy. The *reason* is what
//! `srt_getrejectreason()` returns and what `srt_setrejectreason()` takes: `SRT_REJ_*`
//! (0..=16, `srt.h`), `SRT_REJX_*` server codes (1000 + an HTTP-like status,
//! `access_control.h`), and user codes from 2000 (`SRT_REJC_USERDEFINED`). On the wire the
//! handshake type is `URQ_FAILURE_TYPES (1000) + reason` (`URQFailure()` in
//! `srtcore/handshake.h`): `SRT_REJ_UNSECURE` travels as 1011 and `SRT_REJX_FORBIDDEN`
//! (1403) as 2403.

/// Why a connection is refused (a libsrt reject reason, not the wire value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// `SRT_REJ_UNKNOWN` (0).
    Unknown,
    /// `SRT_REJ_SYSTEM` (1).
    System,
    /// `SRT_REJ_PEER` (2).
    Peer,
    /// `SRT_REJ_RESOURCE` (3).
    Resource,
    /// `SRT_REJ_ROGUE` (4): incorrect data in the handshake.
    Rogue,
    /// `SRT_REJ_BACKLOG` (5).
    Backlog,
    /// `SRT_REJ_IPE` (6): internal program error.
    Ipe,
    /// `SRT_REJ_CLOSE` (7).
    Close,
    /// `SRT_REJ_VERSION` (8): peer older than the minimum version.
    Version,
    /// `SRT_REJ_RDVCOOKIE` (9).
    RdvCookie,
    /// `SRT_REJ_BADSECRET` (10): wrong passphrase.
    BadSecret,
    /// `SRT_REJ_UNSECURE` (11): passphrase required or unexpected.
    Unsecure,
    /// `SRT_REJ_MESSAGEAPI` (12).
    MessageApi,
    /// `SRT_REJ_CONGESTION` (13).
    Congestion,
    /// `SRT_REJ_FILTER` (14).
    Filter,
    /// `SRT_REJ_GROUP` (15).
    Group,
    /// `SRT_REJ_TIMEOUT` (16).
    Timeout,
    /// `SRT_REJX_FALLBACK` (1000).
    Fallback,
    /// `SRT_REJX_KEY_NOTSUP` (1001): a streamid key is not supported.
    KeyNotSupported,
    /// `SRT_REJX_FILEPATH` (1002).
    FilePath,
    /// `SRT_REJX_HOSTNOTFOUND` (1003): unknown `h=`.
    HostNotFound,
    /// `SRT_REJX_BAD_REQUEST` (1400): streamid syntax error.
    BadRequest,
    /// `SRT_REJX_UNAUTHORIZED` (1401).
    Unauthorized,
    /// `SRT_REJX_OVERLOAD` (1402).
    Overload,
    /// `SRT_REJX_FORBIDDEN` (1403).
    Forbidden,
    /// `SRT_REJX_NOTFOUND` (1404).
    NotFound,
    /// `SRT_REJX_BAD_MODE` (1405): unsupported `m=`.
    BadMode,
    /// `SRT_REJX_UNACCEPTABLE` (1406).
    Unacceptable,
    /// `SRT_REJX_CONFLICT` (1409): already being published.
    Conflict,
    /// `SRT_REJX_NOTSUP_MEDIA` (1415).
    MediaNotSupported,
    /// `SRT_REJX_LOCKED` (1423).
    Locked,
    /// `SRT_REJX_FAILED_DEPEND` (1424).
    FailedDependency,
    /// `SRT_REJX_ISE` (1500).
    InternalServerError,
    /// `SRT_REJX_UNIMPLEMENTED` (1501).
    Unimplemented,
    /// `SRT_REJX_GW` (1502): the origin refused or failed.
    BadGateway,
    /// `SRT_REJX_DOWN` (1503): no origin available.
    Unavailable,
    /// `SRT_REJX_VERSION` (1505).
    VersionNotSupported,
    /// `SRT_REJX_NOROOM` (1507).
    NoRoom,
    /// Any other reason code, kept as received (user codes are 2000 and up).
    Other(u32),
}

/// Where rejection codes start on the wire (`URQ_FAILURE_TYPES`).
pub const FAILURE_TYPES: u32 = 1000;

const TABLE: &[(RejectReason, u32)] = &[
    (RejectReason::Unknown, 0),
    (RejectReason::System, 1),
    (RejectReason::Peer, 2),
    (RejectReason::Resource, 3),
    (RejectReason::Rogue, 4),
    (RejectReason::Backlog, 5),
    (RejectReason::Ipe, 6),
    (RejectReason::Close, 7),
    (RejectReason::Version, 8),
    (RejectReason::RdvCookie, 9),
    (RejectReason::BadSecret, 10),
    (RejectReason::Unsecure, 11),
    (RejectReason::MessageApi, 12),
    (RejectReason::Congestion, 13),
    (RejectReason::Filter, 14),
    (RejectReason::Group, 15),
    (RejectReason::Timeout, 16),
    (RejectReason::Fallback, 1000),
    (RejectReason::KeyNotSupported, 1001),
    (RejectReason::FilePath, 1002),
    (RejectReason::HostNotFound, 1003),
    (RejectReason::BadRequest, 1400),
    (RejectReason::Unauthorized, 1401),
    (RejectReason::Overload, 1402),
    (RejectReason::Forbidden, 1403),
    (RejectReason::NotFound, 1404),
    (RejectReason::BadMode, 1405),
    (RejectReason::Unacceptable, 1406),
    (RejectReason::Conflict, 1409),
    (RejectReason::MediaNotSupported, 1415),
    (RejectReason::Locked, 1423),
    (RejectReason::FailedDependency, 1424),
    (RejectReason::InternalServerError, 1500),
    (RejectReason::Unimplemented, 1501),
    (RejectReason::BadGateway, 1502),
    (RejectReason::Unavailable, 1503),
    (RejectReason::VersionNotSupported, 1505),
    (RejectReason::NoRoom, 1507),
];

impl RejectReason {
    /// From a libsrt reason code; unknown codes are kept in [`RejectReason::Other`].
    pub fn from_code(code: u32) -> Self {
        TABLE
            .iter()
            .find(|(_, c)| *c == code)
            .map_or(RejectReason::Other(code), |(r, _)| *r)
    }

    /// The libsrt reason code (`srt_getrejectreason()`).
    pub fn code(self) -> u32 {
        match self {
            RejectReason::Other(code) => code,
            named => TABLE
                .iter()
                .find(|(r, _)| *r == named)
                .map_or(0, |(_, c)| *c),
        }
    }

    /// The handshake type that carries it on the wire: `1000 + code`.
    ///
    /// Codes so large that the sum would not stay a positive `i32` (libsrt reads the
    /// field signed) are clamped to `i32::MAX`.
    pub fn wire(self) -> u32 {
        self.code()
            .saturating_add(FAILURE_TYPES)
            .min(i32::MAX as u32)
    }

    /// The reason a wire handshake type carries, if it is a rejection (`>= 1000` read as
    /// a signed 32-bit value, as libsrt does).
    pub fn from_wire(handshake_type: u32) -> Option<Self> {
        let signed = i32::from_be_bytes(handshake_type.to_be_bytes());
        (signed >= 1000).then(|| RejectReason::from_code(handshake_type - FAILURE_TYPES))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libsrt_numbers() {
        assert_eq!(RejectReason::Unknown.wire(), 1000);
        assert_eq!(RejectReason::Unsecure.wire(), 1011);
        assert_eq!(RejectReason::Forbidden.code(), 1403);
        assert_eq!(RejectReason::Forbidden.wire(), 2403);
        assert_eq!(RejectReason::NotFound.wire(), 2404);
        assert_eq!(RejectReason::BadGateway.wire(), 2502);
        assert_eq!(RejectReason::Unavailable.wire(), 2503);
        assert_eq!(
            RejectReason::from_wire(3042),
            Some(RejectReason::Other(2042))
        );
        assert_eq!(RejectReason::from_wire(999), None);
        assert_eq!(
            RejectReason::from_wire(0xFFFF_FFFF),
            None,
            "conclusion is -1, not a rejection"
        );
        assert_eq!(RejectReason::Other(u32::MAX).wire(), i32::MAX as u32);
    }

    #[test]
    fn table_is_a_bijection() {
        for (reason, code) in TABLE {
            assert_eq!(RejectReason::from_code(*code), *reason);
            assert_eq!(reason.code(), *code);
            assert_eq!(RejectReason::from_wire(reason.wire()), Some(*reason));
        }
    }

    proptest::proptest! {
        #[test]
        fn every_rejection_wire_value_round_trips(w in 1000u32..=i32::MAX as u32) {
            let r = RejectReason::from_wire(w).unwrap();
            proptest::prop_assert_eq!(r.wire(), w);
        }
    }
}
