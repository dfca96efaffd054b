//! Checks that need the whole scenario: unique step names, steps and dependencies that name real
//! services, no dependency cycles, and wait strategies that can work.

use std::collections::HashMap;

use crate::diagnostic::Diagnostic;
use crate::scenario::model::{Scenario, StepTarget, WaitStrategy};
use crate::schema::{Cx, Spanned};
use crate::suggest::did_you_mean;

pub fn validate(cx: &mut Cx, scenario: &Scenario) {
    // After a syntax error the parser may have lost the steps; saying so would only add noise.
    if scenario.steps.is_empty() && !cx.has_syntax_errors() {
        let d = Diagnostic::error("no-steps", "the scenario has no steps")
            .label("nothing to run")
            .help(format!("add a step, e.g.\n{}", super::EXAMPLE_STEP));
        cx.report(d, 0..0);
    }
    unique_step_names(cx, scenario);
    let services: Vec<&str> = scenario.services.iter().map(|s| s.name.as_str()).collect();
    for step in &scenario.steps {
        if let StepTarget::Service(name) = &step.target {
            known_service(cx, &services, name, &format!("step `{}` runs in", *step.name));
        }
    }
    for service in &scenario.services {
        for dependency in &service.depends_on {
            if dependency.value == service.name.value {
                let d = Diagnostic::error("dependency-cycle", format!("service `{}` depends on itself", *service.name))
                    .label("itself");
                cx.report(d, dependency.span.clone());
            } else {
                known_service(cx, &services, dependency, &format!("service `{}` depends on", *service.name));
            }
        }
        wait_can_work(cx, service);
    }
    dependency_cycles(cx, scenario);
}

fn unique_step_names(cx: &mut Cx, scenario: &Scenario) {
    let mut seen: HashMap<&str, &Spanned<String>> = HashMap::new();
    for step in &scenario.steps {
        if step.name.is_empty() {
            continue;
        }
        if let Some(first) = seen.get(step.name.as_str()) {
            let d = Diagnostic::error("duplicate-step", format!("two steps are named `{}`", *step.name))
                .label("second use of this name")
                .help("step names identify steps in reports; make each unique");
            let d = cx.note_at(d, "first used here", first.span.clone());
            cx.report(d, step.name.span.clone());
        } else {
            seen.insert(step.name.as_str(), &step.name);
        }
    }
}

fn known_service(cx: &mut Cx, services: &[&str], name: &Spanned<String>, what: &str) {
    if services.contains(&name.as_str()) {
        return;
    }
    let help = match did_you_mean(name, services.iter().copied()) {
        Some(s) => format!("did you mean `{s}`?"),
        None if services.is_empty() => format!("define it: [services.{}] with an `image`", name.value),
        None => format!("services defined here: {}", crate::schema::list(services)),
    };
    let d = Diagnostic::error("unknown-service", format!("{what} service `{}`, which is not defined", name.value))
        .label("undefined service")
        .help(help);
    cx.report(d, name.span.clone());
}

/// `port` and `http` waits probe a port, which must be one the service declares in `ports`.
fn wait_can_work(cx: &mut Cx, service: &crate::scenario::model::Service) {
    let Some(wait) = &service.wait else { return };
    let port = match &wait.strategy.value {
        WaitStrategy::Port(port) | WaitStrategy::Http { port, .. } => *port,
        _ => return,
    };
    if service.ports.iter().any(|p| p.value == port) {
        return;
    }
    let d = Diagnostic::error(
        "wait-port",
        format!("service `{}` waits on port {port}, which is not in its `ports`", *service.name),
    )
    .label("port not declared")
    .help(format!("add it: ports = [{port}]"));
    cx.report(d, wait.strategy.span.clone());
}

/// Reports each `depends_on` cycle once, at the entry that closes it, naming the whole loop.
fn dependency_cycles(cx: &mut Cx, scenario: &Scenario) {
    let index: HashMap<&str, usize> = scenario.services.iter().enumerate().map(|(i, s)| (s.name.as_str(), i)).collect();
    let mut state = vec![Visit::New; scenario.services.len()];
    let mut path = Vec::new();
    for start in 0..scenario.services.len() {
        visit(cx, scenario, &index, start, &mut state, &mut path);
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Visit {
    New,
    Active,
    Done,
}

fn visit(
    cx: &mut Cx,
    scenario: &Scenario,
    index: &HashMap<&str, usize>,
    at: usize,
    state: &mut [Visit],
    path: &mut Vec<usize>,
) {
    if state[at] != Visit::New {
        return;
    }
    state[at] = Visit::Active;
    path.push(at);
    for dependency in &scenario.services[at].depends_on {
        let Some(&next) = index.get(dependency.as_str()) else { continue };
        if next == at {
            continue;
        }
        if state[next] == Visit::Active {
            let from = path.iter().position(|&p| p == next).unwrap_or(0);
            let names: Vec<&str> =
                path[from..].iter().chain([&next]).map(|&i| scenario.services[i].name.as_str()).collect();
            let d = Diagnostic::error(
                "dependency-cycle",
                format!("services depend on each other in a cycle: {}", names.join(" → ")),
            )
            .label("closes the cycle")
            .help(
                "services start in dependency order, so `depends_on` must not loop; remove one of these dependencies",
            );
            cx.report(d, dependency.span.clone());
        } else {
            visit(cx, scenario, index, next, state, path);
        }
    }
    path.pop();
    state[at] = Visit::Done;
}
