//! Spans per scenario, and the routing that puts each received span in the right scenario even
//! when many run at once.
//!
//! A span goes to a scenario only on evidence that a container of another scenario cannot fake:
//!
//! 1. its trace id, when the trace is known: each scenario is its own trace, whose random id only
//!    that scenario's processes are handed (in `TRACEPARENT`), and a trace first seen through the
//!    next rule is remembered for the scenario it was seen in;
//! 2. else the address of the container that sent it, claimed by the scenario that runs it.
//!
//! The `clnrm.scenario` resource attribute clnrm injects is *not* evidence: any program can set
//! it. A span whose attribute names another scenario than the one the evidence gives is counted
//! as conflicting, and goes where the evidence says. A span from an address no scenario has claimed
//! yet (a service may export before clnrm has learnt its address) waits until one does. Spans
//! that match no open scenario are counted — as late when their trace or address belonged to a
//! scenario already checked, else as unroutable — and never mixed into another scenario.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::receiver::Sink;
use super::span::{AttrValue, Span, TraceId};

/// The resource attribute naming the scenario a container belongs to.
pub const SCENARIO_ATTRIBUTE: &str = "clnrm.scenario";

/// Spans from unclaimed addresses kept at most, in all; beyond, they are unroutable at once.
const UNCLAIMED_MAX: usize = 10_000;

/// How long a trace known to be incomplete keeps its scenario's wait open, from the wait's start
/// (`Store::settle`): on a loaded machine, a service's batch can come past the quiet window. A
/// trace that is complete only later than this, or never (a scenario that fails), is judged as
/// it is then.
pub const PATIENCE: Duration = Duration::from_secs(1);

/// A scenario's name, shared by the maps that route to it (routing a span allocates nothing).
type Name = Arc<str>;

#[derive(Default)]
struct Collected {
    spans: Vec<Span>,
    refused: Refused,
    last_arrival: Option<Instant>,
}

/// Export requests from a scenario's containers that the receiver refused, whole or in part: the
/// scenario's trace is missing what they held.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Refused {
    /// Requests refused whole (malformed, too large, of another content type).
    pub requests: u64,
    /// Spans refused from requests otherwise kept (ids of the wrong length).
    pub spans: u64,
    /// Why the first was refused.
    pub first: Option<String>,
}

impl Refused {
    pub fn any(&self) -> bool {
        self.requests > 0 || self.spans > 0
    }

    /// "2 export requests and 3 spans", as a failure says it.
    pub fn describe(&self) -> String {
        let parts: Vec<String> = [(self.requests, "export request"), (self.spans, "span")]
            .into_iter()
            .filter(|&(n, _)| n > 0)
            .map(|(n, what)| crate::output::count(n as usize, what))
            .collect();
        parts.join(" and ")
    }
}

/// What closing a scenario hands over.
#[derive(Debug, Default)]
pub struct Closed {
    pub spans: Vec<Span>,
    pub refused: Refused,
}

#[derive(Default)]
struct Inner {
    open: HashMap<Name, Collected>,
    /// Traces and sender addresses of open scenarios.
    traces: HashMap<TraceId, Name>,
    addresses: HashMap<IpAddr, Name>,
    /// Traces and addresses of scenarios already checked: what still comes from them is late.
    closed_traces: HashSet<TraceId>,
    closed_addresses: HashSet<IpAddr>,
    /// Spans from addresses no scenario has claimed (yet), by address.
    unclaimed: HashMap<IpAddr, Vec<Span>>,
    unclaimed_count: usize,
    unroutable: u64,
    late: u64,
    conflicting: u64,
}

/// Counts of spans that went to no scenario, or claimed a scenario they do not belong to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Strays {
    /// Matched no scenario at all.
    pub unroutable: u64,
    /// Arrived after their scenario was checked.
    pub late: u64,
    /// Carried a `clnrm.scenario` attribute naming another scenario than the one they came from
    /// (they were kept in the one they came from).
    pub conflicting: u64,
}

/// Where a received span goes.
enum Route {
    To(Name),
    Late,
    /// From an address no scenario has claimed, in a trace no scenario knows.
    Unclaimed,
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
        inner.traces.insert(trace, name);
    }

    /// Spans sent from `address` belong to `scenario` (until [`Store::close`]); those that came
    /// from it before are routed now.
    pub fn claim(&self, address: IpAddr, scenario: &str) {
        let mut inner = self.inner();
        let name = inner.open.get_key_value(scenario).map_or_else(|| scenario.into(), |(name, _)| Arc::clone(name));
        inner.closed_addresses.remove(&address);
        inner.addresses.insert(address, name);
        let waiting = inner.unclaimed.remove(&address).unwrap_or_default();
        inner.unclaimed_count -= waiting.len();
        let delivered = !waiting.is_empty();
        inner.deliver(address, waiting);
        drop(inner);
        if delivered {
            self.arrived.notify_waiters();
        }
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
    /// earliest: the last step's spans may still be in an SDK's batch), and, for up to
    /// [`PATIENCE`], until it is not `incomplete` either; at most `cap`. It never ends earlier:
    /// any later span could change the comparison with the baseline.
    pub async fn settle(
        &self,
        scenario: &str,
        window: Duration,
        cap: Duration,
        incomplete: impl Fn(&[Span]) -> bool,
    ) -> (Settled, Duration) {
        let started = Instant::now();
        let deadline = started + cap;
        loop {
            let arrival = self.arrival();
            tokio::pin!(arrival);
            arrival.as_mut().enable();
            let quiet_until = self.last_arrival(scenario).map_or(started, |last| last.max(started)) + window;
            let now = Instant::now();
            // Looked at only once the trace is quiet, on a copy: the receiver routes every
            // scenario's spans through the lock, and judging a large trace takes milliseconds.
            let wake = if now >= quiet_until {
                let patience = started + PATIENCE.min(cap);
                if now >= patience || !incomplete(&self.with_spans(scenario, <[Span]>::to_vec)) {
                    return (Settled::Quiet, started.elapsed());
                }
                patience
            } else if now >= deadline {
                return (Settled::Capped, started.elapsed());
            } else {
                quiet_until.min(deadline)
            };
            tokio::select! {
                _ = arrival => {}
                _ = tokio::time::sleep_until(wake.into()) => {}
            }
        }
    }

    /// Notes a refused export request (or part of one) from `peer`, against the open scenario whose
    /// container it is.
    pub fn refused(&self, peer: IpAddr, spans: Option<u64>, reason: &str) {
        let mut inner = self.inner();
        let Some(owner) = inner.addresses.get(&peer).cloned() else { return };
        if let Some(collected) = inner.open.get_mut(&owner) {
            let refused = &mut collected.refused;
            match spans {
                Some(n) => refused.spans += n,
                None => refused.requests += 1,
            }
            refused.first.get_or_insert_with(|| reason.to_string());
        }
    }

    /// Stops collecting for `scenario` and hands over its spans and what was refused; later spans
    /// from its trace or its containers count as late.
    pub fn close(&self, scenario: &str) -> Closed {
        let mut guard = self.inner();
        let inner = &mut *guard;
        let (traces, addresses) = (&mut inner.closed_traces, &mut inner.closed_addresses);
        inner.traces.retain(|trace, owner| {
            let keep = &**owner != scenario;
            if !keep {
                traces.insert(*trace);
            }
            keep
        });
        inner.addresses.retain(|address, owner| {
            let keep = &**owner != scenario;
            if !keep {
                addresses.insert(*address);
            }
            keep
        });
        inner.open.remove(scenario).map(|c| Closed { spans: c.spans, refused: c.refused }).unwrap_or_default()
    }

    /// What went astray so far; spans still waiting for their address to be claimed count as
    /// unroutable.
    pub fn strays(&self) -> Strays {
        let inner = self.inner();
        Strays {
            unroutable: inner.unroutable + inner.unclaimed_count as u64,
            late: inner.late,
            conflicting: inner.conflicting,
        }
    }
}

impl Inner {
    /// Where a span from `peer` goes, learning its trace when its sender tells.
    fn route(&mut self, peer: IpAddr, span: &Span) -> Route {
        let owner = match self.traces.get(&span.trace_id) {
            Some(owner) => Arc::clone(owner),
            None if self.closed_traces.contains(&span.trace_id) => return Route::Late,
            None => match self.addresses.get(&peer) {
                Some(owner) => {
                    let owner = Arc::clone(owner);
                    self.traces.insert(span.trace_id, Arc::clone(&owner));
                    owner
                }
                None if self.closed_addresses.contains(&peer) => return Route::Late,
                None => return Route::Unclaimed,
            },
        };
        let claimed = span.resource.attributes.iter().find(|(k, _)| &**k == SCENARIO_ATTRIBUTE);
        if let Some((_, AttrValue::Str(named))) = claimed
            && **named != *owner
        {
            self.conflicting += 1;
        }
        Route::To(owner)
    }

    /// Routes spans that arrived from `peer` at `now`.
    fn deliver(&mut self, peer: IpAddr, spans: Vec<Span>) {
        let now = Instant::now();
        for span in spans {
            match self.route(peer, &span) {
                Route::To(owner) => match self.open.get_mut(&owner) {
                    Some(collected) => {
                        collected.spans.push(span);
                        collected.last_arrival = Some(now);
                    }
                    // Claimed for a scenario that was checked meanwhile.
                    None => self.late += 1,
                },
                Route::Late => self.late += 1,
                Route::Unclaimed if self.unclaimed_count < UNCLAIMED_MAX => {
                    self.unclaimed.entry(peer).or_default().push(span);
                    self.unclaimed_count += 1;
                }
                Route::Unclaimed => self.unroutable += 1,
            }
        }
    }
}

impl Sink for Store {
    fn accept(&self, peer: IpAddr, spans: Vec<Span>) {
        self.inner().deliver(peer, spans);
        self.arrived.notify_waiters();
    }

    fn refused(&self, peer: IpAddr, spans: Option<u64>, reason: &str) {
        Store::refused(self, peer, spans, reason);
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
            resource: Arc::new(Resource { attributes, own: false }),
        }
    }

    const PEER_A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(172, 18, 0, 2));
    const PEER_B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(172, 19, 0, 2));
    const STRANGER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 9));

    fn ids(store: &Store, scenario: &str) -> Vec<u8> {
        store.with_spans(scenario, |spans| spans.iter().map(|s| s.span_id[0]).collect())
    }

    #[test]
    fn routes_by_trace_and_address_without_cross_talk() {
        let store = Store::default();
        store.open("a", [1; 16]);
        store.open("b", [2; 16]);
        store.claim(PEER_B, "b");
        // Its own trace from anywhere; a new trace from its address is learnt, so its later spans
        // follow from anywhere.
        store.accept(STRANGER, vec![span(1, 1, None), span(2, 2, None)]);
        store.accept(PEER_B, vec![span(7, 4, None)]);
        store.accept(STRANGER, vec![span(7, 5, None)]);
        assert_eq!(ids(&store, "a"), [1]);
        assert_eq!(ids(&store, "b"), [2, 4, 5]);
        assert_eq!(store.strays(), Strays::default());
    }

    #[test]
    fn the_scenario_attribute_is_no_evidence() {
        let store = Store::default();
        store.open("a", [1; 16]);
        store.open("b", [2; 16]);
        store.claim(PEER_A, "a");
        // A container of `a` posing as `b`: it stays in `a`, and the claim is counted.
        store.accept(PEER_A, vec![span(8, 1, Some("b")), span(8, 2, Some("a"))]);
        // From nowhere known, naming `b`: not taken into `b`.
        store.accept(STRANGER, vec![span(9, 3, Some("b"))]);
        assert_eq!(ids(&store, "a"), [1, 2]);
        assert!(ids(&store, "b").is_empty());
        assert_eq!(store.strays(), Strays { unroutable: 1, late: 0, conflicting: 1 });
    }

    #[test]
    fn refusals_count_against_the_scenario_that_sent_them() {
        let store = Store::default();
        store.open("a", [1; 16]);
        store.claim(PEER_A, "a");
        store.refused(PEER_A, None, "malformed");
        store.refused(PEER_A, Some(3), "bad ids");
        store.refused(STRANGER, None, "not ours");
        let closed = store.close("a");
        assert_eq!(closed.refused, Refused { requests: 1, spans: 3, first: Some("malformed".into()) });
        assert_eq!(closed.refused.describe(), "1 export request and 3 spans");
    }

    #[test]
    fn spans_from_an_address_wait_until_a_scenario_claims_it() {
        let store = Store::default();
        store.open("a", [1; 16]);
        store.accept(PEER_A, vec![span(5, 1, None), span(5, 2, None)]);
        assert!(ids(&store, "a").is_empty());
        assert_eq!(store.strays().unroutable, 2, "unclaimed spans are unroutable until claimed");
        store.claim(PEER_A, "a");
        assert_eq!(ids(&store, "a"), [1, 2]);
        assert_eq!(store.strays(), Strays::default());
        assert!(store.last_arrival("a").is_some());
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
        let (how, waited) = store.settle("a", window, Duration::from_secs(5), |_| false).await;
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
        let (how, waited) = store.settle("a", window, Duration::from_millis(300), |_| false).await;
        assert_eq!(how, Settled::Capped);
        assert!(waited < Duration::from_millis(450), "{waited:?}");
        spammer.abort();
    }

    #[tokio::test]
    async fn settling_waits_a_while_for_an_incomplete_trace() {
        let store = std::sync::Arc::new(Store::default());
        let window = Duration::from_millis(25);
        // Known to be incomplete without three spans; the third is stalled past the window.
        let incomplete = |spans: &[Span]| spans.len() < 3;
        store.open("a", [1; 16]);
        store.accept(PEER_A, vec![span(1, 1, None), span(1, 2, None)]);
        let third = {
            let store = std::sync::Arc::clone(&store);
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(200)).await;
                store.accept(PEER_A, vec![span(1, 3, None)]);
            })
        };
        let (how, waited) = store.settle("a", window, Duration::from_secs(5), incomplete).await;
        third.await.unwrap();
        assert_eq!(how, Settled::Quiet);
        assert!(waited >= Duration::from_millis(200), "judged incomplete: {waited:?}");
        assert!(waited < PATIENCE, "{waited:?}");
        assert_eq!(ids(&store, "a"), [1, 2, 3]);

        // What never comes holds the wait for the patience, not the cap.
        store.open("b", [4; 16]);
        store.accept(PEER_B, vec![span(4, 1, None)]);
        let (how, waited) = store.settle("b", window, Duration::from_secs(5), incomplete).await;
        assert_eq!(how, Settled::Quiet);
        assert!(waited >= PATIENCE && waited < PATIENCE * 2, "{waited:?}");
    }

    #[test]
    fn closing_hands_over_spans_and_later_ones_are_late() {
        let store = Store::default();
        store.open("a", [1; 16]);
        store.claim(PEER_A, "a");
        store.accept(PEER_A, vec![span(3, 1, None)]);
        assert!(store.last_arrival("a").is_some());
        assert_eq!(store.close("a").spans.len(), 1);
        // Its own trace, a trace it was seen to use, its address: late. Naming it: no evidence.
        store.accept(STRANGER, vec![span(1, 2, None), span(3, 3, None)]);
        store.accept(PEER_A, vec![span(4, 4, Some("a"))]);
        store.accept(STRANGER, vec![span(5, 5, Some("a"))]);
        assert_eq!(store.strays(), Strays { unroutable: 1, late: 3, conflicting: 0 });
        // A later scenario whose container gets the same address takes what comes from it.
        store.open("b", [2; 16]);
        store.claim(PEER_A, "b");
        store.accept(PEER_A, vec![span(6, 6, None)]);
        assert_eq!(ids(&store, "b"), [6]);
    }
}
