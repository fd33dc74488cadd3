//! The Lua scripts: every operation that reads and then writes shared state runs as one
//! script, so it is atomic across proxies and costs one round trip.

use fred::types::scripts::Script;

macro_rules! script {
    ($file:literal) => {
        concat!(
            include_str!("lua/prelude.lua"),
            include_str!(concat!("lua/", $file))
        )
    };
}

/// The scripts, hashed once; they are sent by SHA (EVALSHA) and loaded again when Redis has
/// forgotten them (a restart, `SCRIPT FLUSH`).
pub(crate) struct Scripts {
    pub(crate) register: Script,
    pub(crate) status: Script,
    pub(crate) pick: Script,
    pub(crate) touch: Script,
    pub(crate) release: Script,
    pub(crate) placements: Script,
    pub(crate) drain: Script,
    pub(crate) mark: Script,
    pub(crate) report: Script,
    pub(crate) session_get: Script,
}

impl Scripts {
    pub(crate) fn new() -> Self {
        Scripts {
            register: Script::from_lua(script!("register.lua")),
            status: Script::from_lua(script!("status.lua")),
            pick: Script::from_lua(script!("pick.lua")),
            touch: Script::from_lua(script!("touch.lua")),
            release: Script::from_lua(script!("release.lua")),
            placements: Script::from_lua(script!("placements.lua")),
            drain: Script::from_lua(script!("drain.lua")),
            mark: Script::from_lua(include_str!("lua/mark.lua")),
            report: Script::from_lua(include_str!("lua/report.lua")),
            session_get: Script::from_lua(include_str!("lua/session_get.lua")),
        }
    }

    pub(crate) fn all(&self) -> [&Script; 10] {
        [
            &self.register,
            &self.status,
            &self.pick,
            &self.touch,
            &self.release,
            &self.placements,
            &self.drain,
            &self.mark,
            &self.report,
            &self.session_get,
        ]
    }
}
