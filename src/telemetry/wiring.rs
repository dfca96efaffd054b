//! What connects a container to the run's receiver: the standard OpenTelemetry environment
//! variables, injected into every service container and every step's exec.
//!
//! `OTEL_EXPORTER_OTLP_ENDPOINT` and `_PROTOCOL` point the SDK at the receiver, `OTEL_SERVICE_NAME`
//! names the service (`steps` for step commands), `OTEL_RESOURCE_ATTRIBUTES` carries
//! `clnrm.scenario` (only counted when it disagrees: spans are routed by trace and by sender
//! address, `telemetry::store`), a short `OTEL_BSP_SCHEDULE_DELAY` makes batching SDKs
//! export promptly, and `TRACEPARENT` is the span of the step (or service start) the process runs
//! under, so its spans join the scenario's trace. Values the scenario sets explicitly win, except
//! that `OTEL_RESOURCE_ATTRIBUTES` is merged: the user's attributes plus clnrm's.

use std::time::Duration;

use serde::Serialize;

use crate::telemetry::store::SCENARIO_ATTRIBUTE;

/// `OTEL_SERVICE_NAME` of commands run by steps in step containers.
pub const STEPS_SERVICE: &str = "steps";
/// Batch export delay, in milliseconds, injected so spans arrive soon after they end (and the
/// wait for them after a scenario's last step, `quiet_window`, is short).
pub const BATCH_DELAY_MS: u32 = 10;
/// What a batching SDK waits when `OTEL_BSP_SCHEDULE_DELAY` is set to something it cannot read.
const SDK_DEFAULT_DELAY_MS: u64 = 5000;
/// Beyond the batch delay: an export's trip from a container to the receiver's store (a request
/// on the run's bridge network, decoded), with room for a loaded machine.
const IN_FLIGHT: Duration = Duration::from_millis(15);

/// How long a scenario's trace must be quiet before it is judged, when `[otel] settle` does not
/// say. A step's process has exported its spans by the time it exits (SDKs flush on shutdown),
/// but a service, or a process a step left running, exports a batch every schedule delay: ours
/// (`BATCH_DELAY_MS`), or the longest that the scenario's `explicit` environment variables set.
/// So a window of that delay plus an export's flight holds every span ended before it began.
pub fn quiet_window<'a>(explicit: impl IntoIterator<Item = &'a (String, String)>) -> Duration {
    let delay = explicit
        .into_iter()
        .filter(|(key, _)| key == "OTEL_BSP_SCHEDULE_DELAY")
        .map(|(_, value)| value.trim().parse::<u64>().unwrap_or(SDK_DEFAULT_DELAY_MS))
        .fold(u64::from(BATCH_DELAY_MS), u64::max);
    Duration::from_millis(delay) + IN_FLIGHT
}

/// OTLP transport announced through `OTEL_EXPORTER_OTLP_PROTOCOL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum OtlpProtocol {
    #[serde(rename = "http/protobuf")]
    HttpProtobuf,
    #[serde(rename = "grpc")]
    Grpc,
}

#[derive(Debug, Clone)]
pub struct Wiring {
    /// The receiver as containers reach it, e.g. `http://172.18.0.1:40123`.
    pub endpoint: String,
    pub protocol: OtlpProtocol,
    pub run_id: String,
}

impl Wiring {
    /// The environment (`KEY=value`) for a process of `scenario`: `explicit` (what the scenario
    /// sets) plus the injected variables it does not set.
    pub fn env(&self, explicit: &[(String, String)], service: &str, scenario: &str, traceparent: &str) -> Vec<String> {
        let ours = format!("{SCENARIO_ATTRIBUTE}={scenario},clnrm.run-id={}", self.run_id);
        let protocol = match self.protocol {
            OtlpProtocol::HttpProtobuf => "http/protobuf",
            OtlpProtocol::Grpc => "grpc",
        };
        let injected = [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", self.endpoint.clone()),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol.to_string()),
            ("OTEL_SERVICE_NAME", service.to_string()),
            ("OTEL_RESOURCE_ATTRIBUTES", ours.clone()),
            ("OTEL_BSP_SCHEDULE_DELAY", BATCH_DELAY_MS.to_string()),
            ("TRACEPARENT", traceparent.to_string()),
        ];
        let mut env: Vec<String> = Vec::new();
        for (key, value) in explicit {
            if key == "OTEL_RESOURCE_ATTRIBUTES" {
                env.push(format!("{key}={}", merge_resource_attributes(value, &ours)));
            } else {
                env.push(format!("{key}={value}"));
            }
        }
        for (key, value) in injected {
            if !explicit.iter().any(|(k, _)| k == key) {
                env.push(format!("{key}={value}"));
            }
        }
        env
    }
}

/// The user's `key=value,…` list plus clnrm's pairs for keys the user did not set.
fn merge_resource_attributes(user: &str, ours: &str) -> String {
    let user_keys: Vec<&str> = user.split(',').filter_map(|pair| pair.split_once('=').map(|(k, _)| k.trim())).collect();
    let extra = ours.split(',').filter(|pair| pair.split_once('=').is_some_and(|(k, _)| !user_keys.contains(&k)));
    std::iter::once(user).filter(|u| !u.trim().is_empty()).chain(extra).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wiring() -> Wiring {
        Wiring { endpoint: "http://172.18.0.1:4000".into(), protocol: OtlpProtocol::Grpc, run_id: "r1".into() }
    }

    #[test]
    fn injects_the_standard_variables() {
        let env = wiring().env(&[("RUST_LOG".into(), "info".into())], "shop", "checkout", "00-aa-bb-01");
        assert_eq!(
            env,
            [
                "RUST_LOG=info",
                "OTEL_EXPORTER_OTLP_ENDPOINT=http://172.18.0.1:4000",
                "OTEL_EXPORTER_OTLP_PROTOCOL=grpc",
                "OTEL_SERVICE_NAME=shop",
                "OTEL_RESOURCE_ATTRIBUTES=clnrm.scenario=checkout,clnrm.run-id=r1",
                "OTEL_BSP_SCHEDULE_DELAY=10",
                "TRACEPARENT=00-aa-bb-01",
            ]
        );
    }

    #[test]
    fn explicit_values_win_and_resource_attributes_merge() {
        let explicit = [
            ("OTEL_SERVICE_NAME".to_string(), "custom".to_string()),
            ("OTEL_RESOURCE_ATTRIBUTES".to_string(), "team=shop,clnrm.run-id=mine".to_string()),
        ];
        let env = wiring().env(&explicit, "shop", "checkout", "tp");
        assert!(env.contains(&"OTEL_SERVICE_NAME=custom".to_string()));
        assert!(!env.contains(&"OTEL_SERVICE_NAME=shop".to_string()));
        assert!(
            env.contains(&"OTEL_RESOURCE_ATTRIBUTES=team=shop,clnrm.run-id=mine,clnrm.scenario=checkout".to_string()),
            "{env:?}"
        );
    }

    #[test]
    fn the_quiet_window_is_the_longest_batch_delay_plus_a_flight() {
        let env = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
        };
        assert_eq!(quiet_window(&env(&[("RUST_LOG", "info")])), Duration::from_millis(25));
        assert_eq!(quiet_window(&env(&[("OTEL_BSP_SCHEDULE_DELAY", "5")])), Duration::from_millis(25));
        let slow = env(&[("OTEL_BSP_SCHEDULE_DELAY", "500"), ("OTEL_BSP_SCHEDULE_DELAY", " 1000 ")]);
        assert_eq!(quiet_window(&slow), Duration::from_millis(1015));
        // What an SDK cannot read, it replaces with its default of 5 s.
        assert_eq!(quiet_window(&env(&[("OTEL_BSP_SCHEDULE_DELAY", "1s")])), Duration::from_millis(5015));
    }
}
