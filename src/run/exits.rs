//! Services that stop while their scenario runs. A service runs until its scenario ends: one that
//! exits (with any code) or is killed fails the scenario, every time, whether or not a later step
//! needs it, and the failure names the service, its exit code and when it stopped.
//!
//! Each service's container is watched from its start (the engine's wait API), so a stop is seen
//! as it happens and ends the scenario at once; at the end, every container is looked at once
//! more, so a stop the watchers have not reported yet is not missed either.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::engine::{Engine, service};

/// A service that stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exit {
    pub service: String,
    pub container: String,
    /// Its exit code, when the engine knows one.
    pub code: Option<i64>,
    /// When, from the scenario's start.
    pub at: Duration,
}

impl Exit {
    /// "exited with code 1 at +1.2s", as a failure says it.
    pub fn describe(&self) -> String {
        let at = crate::duration::display(self.at);
        match self.code {
            Some(137) => format!("was killed (exit code 137) at +{at}"),
            Some(code) => format!("exited with code {code} at +{at}"),
            None => format!("stopped at +{at} (its container is gone)"),
        }
    }
}

/// The exits of one scenario's services.
pub struct Exits {
    started: Instant,
    seen: watch::Sender<Vec<Exit>>,
    /// The services started so far, with their containers.
    started_services: Mutex<Vec<(String, String)>>,
    /// Dropped with the scenario, which stops watching (teardown removes the containers).
    watchers: Mutex<JoinSet<()>>,
}

impl Exits {
    /// For a scenario that started at `started`.
    pub fn new(started: Instant) -> Exits {
        Exits {
            started,
            seen: watch::Sender::new(Vec::new()),
            started_services: Mutex::default(),
            watchers: Mutex::default(),
        }
    }

    /// Watches `container`, which runs `service` and has just started.
    pub fn watch(&self, engine: &Engine, service: &str, container: &str) {
        let (engine, service, container) = (engine.clone(), service.to_string(), container.to_string());
        let mut started_services = self.started_services.lock().unwrap_or_else(|e| e.into_inner());
        started_services.push((service.clone(), container.clone()));
        let (seen, started) = (self.seen.clone(), self.started);
        let mut watchers = self.watchers.lock().unwrap_or_else(|e| e.into_inner());
        watchers.spawn(async move {
            let code = service::stopped(&engine, &container).await;
            let exit = Exit { service, container, code, at: started.elapsed() };
            seen.send_modify(|exits| exits.push(exit));
        });
    }

    /// Resolves when some service has stopped (never, if none does).
    pub async fn first(&self) {
        let mut seen = self.seen.subscribe();
        let _ = seen.wait_for(|exits| !exits.is_empty()).await;
    }

    /// The first service to stop, if any did, after looking at each started service whose stop
    /// was not reported yet.
    pub async fn confirm(&self, engine: &Engine) -> Option<Exit> {
        let mut exits = self.seen.borrow().clone();
        let started = self.started_services.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for (service, container) in &started {
            if exits.iter().any(|e| e.container == *container) {
                continue;
            }
            if let Some(code) = service::ended(engine, container).await {
                exits.push(Exit {
                    service: service.clone(),
                    container: container.clone(),
                    code,
                    at: self.started.elapsed(),
                });
            }
        }
        exits.into_iter().min_by_key(|e| e.at)
    }
}
