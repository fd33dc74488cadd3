//! Sans-IO m3u8 parsing and rewriting: every URI-bearing line of a master or media
//! playlist (plain URI lines and `URI="..."` attributes) is rewritten so that it carries a
//! backend-affinity token, whatever proxy of the fleet serves it next.
