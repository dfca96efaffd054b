//! Durations as users write them in scenario and config files: `"250ms"`, `"10s"`, `"2m"`, `"1h"`,
//! and combinations such as `"1m30s"` or fractions such as `"1.5s"`.

use std::time::Duration;

const UNITS: [(&str, f64); 6] = [("ns", 1e-9), ("us", 1e-6), ("ms", 1e-3), ("s", 1.0), ("m", 60.0), ("h", 3600.0)];

/// Parses a duration string. The error says what is wrong in words fit for a diagnostic.
pub fn parse(input: &str) -> Result<Duration, String> {
    let text = input.trim();
    if text.is_empty() {
        return Err("empty duration".into());
    }
    let mut rest = text;
    let mut seconds = 0.0;
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        if number_len == 0 {
            return Err(format!("expected a number in `{input}`"));
        }
        let number: f64 =
            rest[..number_len].parse().map_err(|_| format!("`{}` is not a number", &rest[..number_len]))?;
        rest = rest[number_len..].trim_start();
        let unit_len = rest.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        if unit.is_empty() {
            return Err(format!("`{input}` has no unit"));
        }
        let Some(&(_, scale)) = UNITS.iter().find(|(name, _)| *name == unit) else {
            return Err(format!("unknown unit `{unit}` in `{input}`"));
        };
        seconds += number * scale;
        rest = &rest[unit_len..];
    }
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("`{input}` is out of range"))
}

/// What a valid duration looks like, for help texts.
pub const HELP: &str = "write a number with a unit: \"250ms\", \"10s\", \"2m\", \"1h\" or \"1m30s\"";

/// Short human form for reports: `850ms`, `1.25s`, `2m05s`.
pub fn display(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 1.0 {
        format!("{:.0}µs", ms * 1000.0)
    } else if ms < 1000.0 {
        format!("{ms:.1}ms")
    } else if d.as_secs() < 60 {
        format!("{:.2}s", d.as_secs_f64())
    } else {
        format!("{}m{:02}s", d.as_secs() / 60, d.as_secs() % 60)
    }
}

/// Durations in JSON (the run record, reports) as fractional milliseconds, which people read and
/// tools sum. Written with nanosecond precision and read back to the same nanosecond: a `u64` of
/// nanoseconds below 2^52 (52 days) survives the trip through an `f64` of milliseconds.
pub mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn of(d: Duration) -> f64 {
        d.as_nanos() as f64 / 1e6
    }

    pub fn to(ms: f64) -> Duration {
        Duration::from_nanos((ms.max(0.0) * 1e6).round() as u64)
    }

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(of(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        f64::deserialize(d).map(to)
    }

    /// The same for an optional duration (`null` when absent).
    pub mod option {
        use std::time::Duration;

        use serde::{Deserialize, Deserializer, Serializer};

        pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
            match d {
                Some(d) => s.serialize_f64(super::of(*d)),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
            Ok(Option::<f64>::deserialize(d)?.map(super::to))
        }
    }

    /// The same for a list of durations.
    pub mod list {
        use std::time::Duration;

        use serde::{Deserialize, Deserializer, Serializer};

        pub fn serialize<S: Serializer>(list: &[Duration], s: S) -> Result<S::Ok, S::Error> {
            s.collect_seq(list.iter().map(|d| super::of(*d)))
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Duration>, D::Error> {
            Ok(Vec::<f64>::deserialize(d)?.into_iter().map(super::to).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_combinations() {
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn rejects_what_is_not_a_duration() {
        assert_eq!(parse("10"), Err("`10` has no unit".into()));
        assert_eq!(parse("10 sec"), Err("unknown unit `sec` in `10 sec`".into()));
        assert_eq!(parse(""), Err("empty duration".into()));
        assert_eq!(parse("s"), Err("expected a number in `s`".into()));
        assert!(parse("1.2.3s").is_err());
        assert!(parse("99999999999999999999h").is_err());
    }

    #[test]
    fn displays_compactly() {
        assert_eq!(display(Duration::from_micros(420)), "420µs");
        assert_eq!(display(Duration::from_micros(12_340)), "12.3ms");
        assert_eq!(display(Duration::from_millis(1250)), "1.25s");
        assert_eq!(display(Duration::from_secs(125)), "2m05s");
    }

    /// Every nanosecond count a run can produce comes back from its milliseconds unchanged.
    #[test]
    fn millis_round_trip_to_the_nanosecond() {
        for nanos in [0u64, 1, 999, 123_456_789, 4_999_999_999_999, (1 << 52) - 1] {
            let d = Duration::from_nanos(nanos);
            let text = serde_json::to_string(&millis::of(d)).unwrap();
            assert_eq!(millis::to(serde_json::from_str(&text).unwrap()), d, "{nanos} ns as {text}");
        }
    }
}
