//! The telemetry of one run: the receiver containers send to, the store that routes what arrives,
//! clnrm's own tracing, the environment that wires containers up, and forwarding to the user's
//! endpoint when one is named.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

use super::export::{Destination, Forwarder};
use super::own::Tracing;
use super::receiver::{Receiver, Sink};
use super::span::Span;
use super::store::{Store, Strays};
use super::wiring::{OtlpProtocol, Wiring};

pub struct Session {
    pub store: Arc<Store>,
    pub tracing: Tracing,
    pub wiring: Wiring,
    /// The receiver's address, as containers reach it.
    pub address: SocketAddr,
    receiver: Mutex<Option<Receiver>>,
    forwarder: Option<Arc<Forwarder>>,
}

/// What the session saw go astray.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ended {
    pub strays: Strays,
    /// Requests that could not be delivered to the user's endpoint.
    pub undelivered: u64,
}

/// Stores what arrives and forwards it unchanged.
struct Tee {
    store: Arc<Store>,
    forwarder: Arc<Forwarder>,
}

impl Sink for Tee {
    fn accept(&self, peer: IpAddr, spans: Vec<Span>) {
        self.store.accept(peer, spans);
    }

    fn refused(&self, peer: IpAddr, spans: Option<u64>, reason: &str) {
        self.store.refused(peer, spans, reason);
    }

    fn forward(&self, request: &ExportTraceServiceRequest) {
        self.forwarder.send(request);
    }
}

impl Session {
    /// Binds the receiver on `bind` (the run network's gateway: reachable from every container,
    /// and no public interface) and starts tracing.
    pub async fn start(
        bind: IpAddr,
        protocol: OtlpProtocol,
        run_id: &str,
        destination: Option<Destination>,
    ) -> Result<Session, String> {
        let store = Arc::new(Store::default());
        let exporter = destination.as_ref().map(Destination::exporter).transpose()?;
        let forwarder = destination.map(|d| Arc::new(Forwarder::start(d)));
        let sink: Arc<dyn Sink> = match &forwarder {
            Some(forwarder) => Arc::new(Tee { store: Arc::clone(&store), forwarder: Arc::clone(forwarder) }),
            None => Arc::clone(&store) as Arc<dyn Sink>,
        };
        let receiver = Receiver::start(SocketAddr::new(bind, 0), sink)
            .await
            .map_err(|e| format!("the span receiver could not bind {bind}: {e}"))?;
        let address = receiver.addr;
        let wiring = Wiring { endpoint: format!("http://{address}"), protocol, run_id: run_id.to_string() };
        let tracing = Tracing::start(Arc::clone(&store), run_id, exporter);
        Ok(Session { store, tracing, wiring, address, receiver: Mutex::new(Some(receiver)), forwarder })
    }

    /// Stops receiving, flushes clnrm's spans and what is being forwarded.
    pub async fn end(&self) -> Ended {
        let receiver = self.receiver.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(receiver) = receiver {
            receiver.stop().await;
        }
        self.tracing.shutdown();
        let undelivered = match &self.forwarder {
            Some(forwarder) => forwarder.flush().await,
            None => 0,
        };
        Ended { strays: self.store.strays(), undelivered }
    }
}
