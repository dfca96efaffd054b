//! The scenario's own places on the network: every address its containers and clnrm have on the
//! scenario's networks, with the name each goes by, and the host names that lead inside.
//!
//! One map serves two decisions that must agree: `hermetic` asks whether a peer a span names is
//! inside the scenario, and baselines write a container's address as its name, so that a trace
//! recorded on one network allocation compares equal to one recorded on the next.

use std::borrow::Cow;
use std::net::IpAddr;

/// What a step container is called (the lane the scenario's steps run in).
pub const STEPS: &str = "steps";

/// What clnrm itself is called: the host end of the scenario's networks, where the span receiver
/// listens and from where `http` and `port` wait probes come.
pub const CLNRM: &str = "clnrm";

/// The scenario's peers.
#[derive(Debug, Clone, PartialEq)]
pub struct Peers {
    /// Addresses inside the scenario with their names (a service's name, [`STEPS`], [`CLNRM`]).
    addresses: Vec<(IpAddr, String)>,
    /// Host names inside the scenario: service and container names, `localhost`.
    names: Vec<String>,
}

/// Loopback is inside every scenario: an empty map would call it outside.
impl Default for Peers {
    fn default() -> Self {
        Peers::new()
    }
}

impl Peers {
    /// Only this machine's loopback, which is inside every container.
    pub fn new() -> Peers {
        let loopback = ["127.0.0.1", "::1"].map(|ip| (ip.parse().expect("a loopback address"), "localhost".into()));
        Peers { addresses: loopback.into(), names: vec!["localhost".into()] }
    }

    /// `address` belongs to the scenario and goes by `name`; an address already known keeps its
    /// first name.
    pub fn add_address(&mut self, address: IpAddr, name: &str) {
        if self.name_of(address).is_none() {
            self.addresses.push((address, name.to_string()));
        }
        self.add_name(name);
    }

    /// `name` resolves to one of the scenario's containers (or clnrm).
    pub fn add_name(&mut self, name: &str) {
        if !self.names.iter().any(|n| n.eq_ignore_ascii_case(name)) {
            self.names.push(name.to_string());
        }
    }

    /// The name of a known address.
    pub fn name_of(&self, address: IpAddr) -> Option<&str> {
        self.addresses.iter().find(|(a, _)| *a == address).map(|(_, name)| name.as_str())
    }

    /// Whether `host` (a name or an address, without a port: see [`host`]) is inside the scenario.
    /// Names compare ignoring ASCII case, as DNS does.
    pub fn is_inside(&self, host: &str) -> bool {
        match host.parse::<IpAddr>() {
            Ok(address) => self.name_of(address).is_some() || address.is_loopback(),
            Err(_) => self.names.iter().any(|n| n.eq_ignore_ascii_case(host)),
        }
    }

    /// For messages: `app (172.30.0.5), steps (172.30.0.4), …, localhost`.
    pub fn describe(&self) -> String {
        let mut items: Vec<String> = Vec::new();
        for name in &self.names {
            let addresses: Vec<String> =
                self.addresses.iter().filter(|(_, n)| n == name).map(|(a, _)| a.to_string()).collect();
            items.push(match addresses.is_empty() {
                true => name.clone(),
                false => format!("{name} ({})", addresses.join(", ")),
            });
        }
        items.join(", ")
    }

    /// `text` with every known address written as its name (`172.30.0.5:8000` → `app:8000`,
    /// `http://172.30.0.5/items` → `http://app/items`). An address is replaced only as a whole:
    /// `172.30.0.5` is not found inside `172.30.0.50`.
    pub fn substitute<'t>(&self, text: &'t str) -> Cow<'t, str> {
        let mut out = Cow::Borrowed(text);
        for (address, name) in self.addresses.iter().filter(|(a, _)| !a.is_loopback()) {
            let address = address.to_string();
            if out.contains(&address) {
                out = Cow::Owned(replace_whole(&out, &address, name));
            }
        }
        out
    }
}

/// `text` with each whole occurrence of `address` replaced by `name`: not preceded or followed by
/// another character of an address.
fn replace_whole(text: &str, address: &str, name: &str) -> String {
    let part = |c: Option<char>| c.is_some_and(|c| c.is_ascii_hexdigit() || c == '.' || c == ':');
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(address) {
        let (before, after) = (&rest[..at], &rest[at + address.len()..]);
        // A port (`:8000`) or a full stop ends an address; a digit, or a dot before one, does not.
        let mut next = after.chars();
        let continues = match next.next() {
            Some('.') => next.next().is_some_and(|c| c.is_ascii_digit()),
            c => c.is_some_and(|c| c.is_ascii_hexdigit()),
        };
        let preceded = part(before.chars().next_back());
        out.push_str(before);
        out.push_str(if continues || preceded { address } else { name });
        rest = after;
    }
    out.push_str(rest);
    out
}

/// The host of a peer value, without a port: `app:8000` → `app`, `[fd00::1]:80` → `fd00::1`;
/// a bare IPv6 address stays whole.
pub fn host(value: &str) -> &str {
    if let Some(bracketed) = value.strip_prefix('[') {
        return bracketed.split_once(']').map_or(bracketed, |(host, _)| host);
    }
    match value.split_once(':') {
        Some((host, port)) if !port.contains(':') => host,
        _ => value,
    }
}

/// The host of `scheme://[user@]host[:port][/…]`, without brackets for an IPv6 address.
pub fn url_host(url: &str) -> Option<&str> {
    let (_, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, host_port)| host_port);
    if host_port.starts_with('[') && !host_port.contains(']') {
        return None;
    }
    Some(host(host_port))
}

/// Whether `text` is an IP address, with or without a port.
pub fn is_address(text: &str) -> bool {
    host(text).parse::<IpAddr>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shop() -> Peers {
        let mut peers = Peers::new();
        peers.add_address("172.30.0.5".parse().unwrap(), "app");
        peers.add_address("172.30.0.4".parse().unwrap(), STEPS);
        peers.add_address("172.30.0.1".parse().unwrap(), CLNRM);
        peers.add_address("fd00::5".parse().unwrap(), "app");
        peers.add_name("clnrm-svc-1234-app");
        peers
    }

    #[test]
    fn hosts_lose_their_ports() {
        assert_eq!(host("app:8000"), "app");
        assert_eq!(host("app"), "app");
        assert_eq!(host("[fd00::5]:8000"), "fd00::5");
        assert_eq!(host("fd00::5"), "fd00::5");
        assert_eq!(url_host("http://user@App:8000/items?x=1"), Some("App"));
        assert_eq!(url_host("http://[fd00::5]:8000/"), Some("fd00::5"));
        assert_eq!(url_host("/items"), None);
        assert!(is_address("172.30.0.5:8000") && is_address("::1") && !is_address("app:8000"));
    }

    #[test]
    fn inside_are_names_addresses_and_loopback() {
        let peers = shop();
        for inside in
            ["app", "APP", "steps", "clnrm-svc-1234-app", "172.30.0.5", "fd00::5", "127.0.0.1", "::1", "localhost"]
        {
            assert!(peers.is_inside(inside), "{inside}");
        }
        for outside in ["api.example.com", "172.30.0.6", "app.example.com", "10.0.0.1"] {
            assert!(!peers.is_inside(outside), "{outside}");
        }
    }

    #[test]
    fn addresses_become_names_only_as_a_whole() {
        let peers = shop();
        assert_eq!(peers.substitute("172.30.0.5:8000"), "app:8000");
        assert_eq!(peers.substitute("http://172.30.0.5/items/172.30.0.50"), "http://app/items/172.30.0.50");
        assert_eq!(peers.substitute("[fd00::5]:80"), "[app]:80");
        assert_eq!(peers.substitute("1172.30.0.5 and 172.30.0.4."), "1172.30.0.5 and steps.");
        assert_eq!(peers.substitute("127.0.0.1:5432"), "127.0.0.1:5432", "loopback is the same everywhere");
        assert!(matches!(peers.substitute("no address"), Cow::Borrowed(_)));
    }

    #[test]
    fn describe_lists_names_with_their_addresses() {
        assert_eq!(
            shop().describe(),
            "localhost (127.0.0.1, ::1), app (172.30.0.5, fd00::5), steps (172.30.0.4), clnrm (172.30.0.1), \
             clnrm-svc-1234-app"
        );
    }
}
