//! Spans per scenario, and the routing that puts each received span in the right scenario even
//! when many run at once.
//!
//! A span belongs to a scenario by (in this order): the `clnrm.scenario` resource attribute clnrm
//! injects into every container; its trace id (each scenario is its own trace, and a trace first
//! seen through another route is remembered); or the address of the container that sent it. A
//! span that matches no open scenario is counted — as unroutable, or as late when its scenario has
//! already been checked — and never mixed into another scenario.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::receiver::Sink;
use super::span::{AttrValue, Span, TraceId};

/// The resource attribute naming the scenario a container belongs to.
pub const SCENARIO_ATTRIBUTE: &str = "clnrm.scenario";

/// A scenario's name, shared by the maps that route to it (routing a span allocates nothing).
type Name = Arc<str>;

#[derive(Default)]
struct Collected {
    spans: Vec<Span>,
    last_arrival: Option<Instant>,
}

#[derive(Default)]
struct Inner {
    open: HashMap<Name, Collected>,
    closed: std::collections::HashSet<Name>,
    traces: HashMap<TraceId, Name>,
    addresses: HashMap<IpAddr, Name>,
    unroutable: u64,
    late: u64,
}

/// Counts of spans that went to no scenario.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Strays {
    /// Matched no scenario at all.
    pub unroutable: u64,
    /// Arrived after their scenario was checked.
    pub late: u64,
}

/// How waiting for a scenario's spans ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    /// No span arrived for the settle window.
    Quiet,
    /// Spans kept arriving until the hard cap.
    Capped,
}

#[derive(Default)]
pub struct Store {
    inner: Mutex<Inner>,
    arrived: Notify,
}

impl Store {
    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts collecting for `scenario`, whose own trace is `trace`.
    pub fn open(&self, scenario: &str, trace: TraceId) {
        let mut inner = self.inner();
        let name: Name = scenario.into();
        inner.open.entry(Arc::clone(&name)).or_default();
        inner.closed.remove(scenario);
        inner.traces.insert(trace, name);
    }

    /// Spans sent from `address` belong to `scenario` (until [`Store::close`]).
    pub fn claim(&self, address: IpAddr, scenario: &str) {
        let mut inner = self.inner();
        let name = inner.open.get_key_value(scenario).map_or_else(|| scenario.into(), |(name, _)| Arc::clone(name));
        inner.addresses.insert(address, name);
    }

    /// Adds spans known to belong to `scenario` (clnrm's own).
    pub fn add(&self, scenario: &str, spans: impl IntoIterator<Item = Span>) {
        let mut inner = self.inner();
        if let Some(collected) = inner.open.get_mut(scenario) {
            collected.spans.extend(spans);
            collected.last_arrival = Some(Instant::now());
        }
        drop(inner);
        self.arrived.notify_waiters();
    }

    /// Adds a span of clnrm's own to the scenario whose trace it is part of (spans of no open
    /// scenario's trace, like the run's own, are not strays: they are simply not stored).
    pub fn add_traced(&self, span: Span) {
        let mut inner = self.inner();
        let Some(owner) = inner.traces.get(&span.trace_id).cloned() else { return };
        if let Some(collected) = inner.open.get_mut(&owner) {
            collected.spans.push(span);
            collected.last_arrival = Some(Instant::now());
        }
        drop(inner);
        self.arrived.notify_waiters();
    }

    /// Calls `f` with the spans collected so far for `scenario`.
    pub fn with_spans<R>(&self, scenario: &str, f: impl FnOnce(&[Span]) -> R) -> R {
        let inner = self.inner();
        f(inner.open.get(scenario).map_or(&[][..], |c| &c.spans))
    }

    /// When the last span of `scenario` arrived.
    pub fn last_arrival(&self, scenario: &str) -> Option<Instant> {
        self.inner().open.get(scenario).and_then(|c| c.last_arrival)
    }

    /// Resolves when spans next arrive (for any scenario).
    pub fn arrival(&self) -> tokio::sync::futures::Notified<'_> {
        self.arrived.notified()
    }

    /// Waits until `scenario`'s trace has been quiet for `window` (measured from now at the
    /// earliest: the last step's spans may still be in an SDK's batch), at most `cap`. It never
    /// ends earlier: any later span could change the comparison with the baseline.
    pub async fn settle(&self, scenario: &str, window: Duration, cap: Duration) -> (Settled, Duration) {
        let started = Instant::now();
        let deadline = started + cap;
        loop {
            let arrival = self.arrival();
            tokio::pin!(arrival);
            arrival.as_mut().enable();
            let quiet_until = self.last_arrival(scenario).map_or(started, |last| last.max(started)) + window;
            let now = Instant::now();
            if now >= quiet_until {
                return (Settled::Quiet, started.elapsed());
            }
            if now >= deadline {
                return (Settled::Capped, started.elapsed());
            }
            tokio::select! {
                _ = arrival => {}
                _ = tokio::time::sleep_until(quiet_until.min(deadline).into()) => {}
            }
        }
    }

    /// Stops collecting for `scenario` and hands over its spans; later ones count as late.
    pub fn close(&self, scenario: &str) -> Vec<Span> {
        let mut inner = self.inner();
        inner.traces.retain(|_, owner| &**owner != scenario);
        inner.addresses.retain(|_, owner| &**owner != scenario);
        inner.closed.insert(scenario.into());
        inner.open.remove(scenario).map(|c| c.spans).unwrap_or_default()
    }

    pub fn strays(&self) -> Strays {
        let inner = self.inner();
        Strays { unroutable: inner.unroutable, late: inner.late }
    }
}

impl Inner {
    /// The open scenario a span from `peer` belongs to, learning its trace on the way.
    fn route(&mut self, peer: IpAddr, span: &Span) -> Result<Name, bool> {
        let named = match span.resource.attributes.iter().find(|(k, _)| &**k == SCENARIO_ATTRIBUTE) {
            Some((_, AttrValue::Str(name))) => {
                self.open.get_key_value(&**name).map(|(name, _)| name).or_else(|| self.closed.get(&**name)).cloned()
            }
            _ => None,
        };
        let owner =
            named.or_else(|| self.traces.get(&span.trace_id).cloned()).or_else(|| self.addresses.get(&peer).cloned());
        match owner {
            Some(owner) if self.open.contains_key(&owner) => {
                self.traces.entry(span.trace_id).or_insert_with(|| Arc::clone(&owner));
                Ok(owner)
            }
            Some(_) => Err(true),
            None => Err(false),
        }
    }
}

impl Sink for Store {
    fn accept(&self, peer: IpAddr, spans: Vec<Span>) {
        let mut inner = self.inner();
        let now = Instant::now();
        for span in spans {
            match inner.route(peer, &span) {
                Ok(owner) => {
                    let collected = inner.open.get_mut(&owner).expect("routed to an open scenario");
                    collected.spans.push(span);
                    collected.last_arrival = Some(now);
                }
                Err(true) => inner.late += 1,
                Err(false) => inner.unroutable += 1,
            }
        }
        drop(inner);
        self.arrived.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::span::{Resource, SpanKind, SpanStatus};
    use std::sync::Arc;

    fn span(trace: u8, id: u8, scenario: Option<&str>) -> Span {
        let attributes =
            scenario.map(|s| vec![(SCENARIO_ATTRIBUTE.into(), AttrValue::Str(s.into()))]).unwrap_or_default();
        Span {
            trace_id: [trace; 16],
            span_id: [id; 8],
            parent_span_id: None,
            name: "s".into(),
            kind: SpanKind::Internal,
            start_unix_nano: 0,
            end_unix_nano: 1,
            status: SpanStatus::Unset,
            status_message: "".into(),
            attributes: Vec::new(),
            events: Vec::new(),
            resource: Arc::new(Resource { attributes }),
        }
    }

    const PEER_A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(172, 18, 0, 2));
    const PEER_B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(172, 19, 0, 2));
    const STRANGER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 9));

    #[test]
    fn routes_by_attribute_trace_and_address_without_cross_talk() {
        let store = Store::default();
        store.open("a", [1; 16]);
        store.open("b", [2; 16]);
        store.claim(PEER_B, "b");
        store.accept(STRANGER, vec![span(1, 1, None), span(9, 2, Some("b")), span(8, 3, None)]);
        store.accept(PEER_B, vec![span(7, 4, None)]);
        // A new trace first seen by attribute is learned: its later spans follow without it.
        store.accept(STRANGER, vec![span(9, 5, None)]);
        let ids =
            |scenario: &str| store.with_spans(scenario, |spans| spans.iter().map(|s| s.span_id[0]).collect::<Vec<_>>());
        assert_eq!(ids("a"), [1]);
        assert_eq!(ids("b"), [2, 4, 5]);
        assert_eq!(store.strays(), Strays { unroutable: 1, late: 0 });
    }

    #[tokio::test]
    async fn settling_waits_for_quiet_at_most_the_cap() {
        let store = std::sync::Arc::new(Store::default());
        store.open("a", [1; 16]);
        let window = Duration::from_millis(100);
        let feeder = {
            let store = std::sync::Arc::clone(&store);
            tokio::spawn(async move {
                for id in 1..=3 {
                    tokio::time::sleep(Duration::from_millis(60)).await;
                    store.accept(PEER_A, vec![span(1, id, None)]);
                }
            })
        };
        let (how, waited) = store.settle("a", window, Duration::from_secs(5)).await;
        feeder.await.unwrap();
        assert_eq!(how, Settled::Quiet);
        assert!(waited >= Duration::from_millis(280), "quiet only after the last arrival: {waited:?}");
        assert_eq!(store.with_spans("a", |s| s.len()), 3);

        let spammer = {
            let store = std::sync::Arc::clone(&store);
            tokio::spawn(async move {
                for id in 0..40 {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    store.accept(PEER_A, vec![span(1, id, None)]);
                }
            })
        };
        let (how, waited) = store.settle("a", window, Duration::from_millis(300)).await;
        assert_eq!(how, Settled::Capped);
        assert!(waited < Duration::from_millis(450), "{waited:?}");
        spammer.abort();
    }

    #[test]
    fn closing_hands_over_spans_and_later_ones_are_late() {
        let store = Store::default();
        store.open("a", [1; 16]);
        store.claim(PEER_A, "a");
        store.accept(PEER_A, vec![span(3, 1, None)]);
        assert!(store.last_arrival("a").is_some());
        assert_eq!(store.close("a").len(), 1);
        store.accept(PEER_A, vec![span(1, 2, Some("a"))]);
        store.accept(PEER_A, vec![span(5, 3, None)]);
        assert_eq!(store.strays(), Strays { unroutable: 1, late: 1 });
    }
}
