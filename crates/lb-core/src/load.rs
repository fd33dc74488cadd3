//! An origin's own account of its load: the `summaries` SRS adds to its heartbeat.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// Most connections an origin may claim; beyond it the report is nonsense and is clamped.
const MAX_CONNECTIONS: u64 = 1_000_000_000;

/// An origin's own account of its load, from the `summaries` SRS adds to its heartbeat
/// when `heartbeat.summaries` is on. Percentages are rounded to whole numbers and clamped
/// to 0..=100; a negative or non-numeric value counts as not reported.
///
/// Despite their names, SRS's `cpu_percent` and `mem_ram_percent` are fractions
/// (`1 - idle / total`, `MemActive / MemTotal`), so a value up to 1 is read as a fraction
/// and a larger one (another origin writing real percentages) as a percentage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OriginLoad {
    /// The host's CPU use, 0 to 100 (`system.cpu_percent`).
    pub cpu_percent: Option<u32>,
    /// The host's memory use, 0 to 100 (`system.mem_ram_percent`).
    pub mem_percent: Option<u32>,
    /// Connections the origin serves (`system.conn_srs`).
    pub connections: Option<u64>,
}

impl OriginLoad {
    /// Reads SRS's `summaries` object: `{"ok":true,"now_ms":..,"self":{..},"system":{..}}`,
    /// or the same wrapped in `{"data":{..}}` as `/api/v1/summaries` and older SRS write it.
    /// `None` when it reports nothing usable (`ok` false, no `system`, no known field).
    ///
    /// ```
    /// use lb_core::OriginLoad;
    /// let v = serde_json::json!({"ok":true,"system":{"cpu_percent":0.126,"mem_ram_percent":40,"conn_srs":7}});
    /// let load = OriginLoad::from_summaries(&v).unwrap();
    /// assert_eq!((load.cpu_percent, load.mem_percent, load.connections), (Some(13), Some(40), Some(7)));
    /// ```
    pub fn from_summaries(summaries: &Value) -> Option<OriginLoad> {
        let summaries = summaries.get("data").unwrap_or(summaries);
        if summaries.get("ok").and_then(Value::as_bool) == Some(false) {
            return None;
        }
        let system = summaries.get("system")?;
        let number = |name: &str| {
            system
                .get(name)
                .and_then(Value::as_f64)
                .filter(|v| v.is_finite() && *v >= 0.0)
        };
        let percent = |name: &str| {
            number(name).map(|v| {
                let percent = if v <= 1.0 { v * 100.0 } else { v };
                percent.round().min(100.0) as u32
            })
        };
        let load = OriginLoad {
            cpu_percent: percent("cpu_percent"),
            mem_percent: percent("mem_ram_percent"),
            connections: number("conn_srs").map(|v| (v.round() as u64).min(MAX_CONNECTIONS)),
        };
        (load != OriginLoad::default()).then_some(load)
    }
}

/// `summaries` as a registration carries it: whatever it holds, it never fails the
/// registration (an origin's load is advice; its heartbeat is what matters).
pub(crate) fn lenient_summaries<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<OriginLoad>, D::Error> {
    let value = Value::deserialize(d)?;
    Ok(OriginLoad::from_summaries(&value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn srs_summaries_as_srs_sends_them() {
        let v = json!({"ok":true,"now_ms":1700000000000u64,
            "self":{"cpu_percent":0.035,"mem_percent":0.012,"pid":42},
            "system":{"cpu_percent":0.5549,"mem_ram_percent":0.715,"load_1m":0.5,"cpus":4,"conn_srs":123}});
        let load = OriginLoad::from_summaries(&v).unwrap();
        assert_eq!(load.cpu_percent, Some(55));
        assert_eq!(load.mem_percent, Some(72));
        assert_eq!(load.connections, Some(123));
        let wrapped = json!({"code":0,"data": v});
        assert_eq!(OriginLoad::from_summaries(&wrapped), Some(load));
        // Another origin writing real percentages.
        let percents = json!({"system":{"cpu_percent":55.49,"mem_ram_percent":71.5}});
        let load = OriginLoad::from_summaries(&percents).unwrap();
        assert_eq!((load.cpu_percent, load.mem_percent), (Some(55), Some(72)));
    }

    #[test]
    fn absurd_and_malformed_values() {
        let v = json!({"system":{"cpu_percent":1e300,"mem_ram_percent":-5,"conn_srs":1e30}});
        let load = OriginLoad::from_summaries(&v).unwrap();
        assert_eq!(load.cpu_percent, Some(100));
        assert_eq!(load.mem_percent, None);
        assert_eq!(load.connections, Some(MAX_CONNECTIONS));
        for bad in [
            json!(null),
            json!(3),
            json!("x"),
            json!([1, 2]),
            json!({"ok": false, "system": {"cpu_percent": 5}}),
            json!({"system": "busy"}),
            json!({"system": {"cpu_percent": "5"}}),
        ] {
            assert_eq!(OriginLoad::from_summaries(&bad), None, "{bad}");
        }
    }
}
