//! Image references as the engine reads them (Docker's reference grammar), checked by `dry-run`
//! so that a reference the engine would refuse is an error in the file rather than a failed run:
//!
//! ```text
//! reference := [host[:port] "/"] path [":" tag] ["@" digest]
//! path      := component ("/" component)*        -- lowercase letters and digits,
//!                                                 -- separated by ".", "_", "__" or "-"+
//! tag       := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
//! digest    := algorithm ":" hex                 -- e.g. sha256:<64 hex digits>
//! ```
//!
//! As the engine does, the first component is a registry host when more follow and it has a `.`
//! or a `:`, is `localhost`, or has an uppercase letter.

use std::sync::LazyLock;

use regex::Regex;

use crate::diagnostic::Diagnostic;
use crate::schema::{Cx, Spanned};

/// What is wrong with a reference, and what to write instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub message: String,
    pub help: String,
}

/// The longest repository name (registry and path) the engine accepts.
const NAME_MAX: usize = 255;

/// The general form, for help texts.
const FORM: &str =
    "an image reference is [REGISTRY[:PORT]/]NAME[:TAG][@DIGEST], e.g. \"busybox:1.36\" or \"ghcr.io/org/app:v2\"";

fn pattern(re: &str) -> Regex {
    Regex::new(re).expect("the reference grammar's patterns are valid")
}

static COMPONENT: LazyLock<Regex> = LazyLock::new(|| pattern(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$"));
static HOST: LazyLock<Regex> = LazyLock::new(|| {
    let label = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
    pattern(&format!(r"^(?:{label}(?:\.{label})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?$"))
});
static TAG: LazyLock<Regex> = LazyLock::new(|| pattern(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"));
static DIGEST: LazyLock<Regex> =
    LazyLock::new(|| pattern(r"^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$"));

/// Whether the engine accepts `image`; an error at its place when it does not (rather than a failed
/// pull at run time).
pub fn valid(cx: &mut Cx, image: &Spanned<String>) -> bool {
    let Some(problem) = check(image) else { return true };
    let d = Diagnostic::error(
        "invalid-image",
        format!("`{}` is not a valid image reference: {}", image.value, problem.message),
    )
    .label("invalid image reference")
    .help(problem.help);
    cx.report(d, image.span.clone());
    false
}

/// Why the engine would refuse `reference`; `None` when it is valid.
pub fn check(reference: &str) -> Option<Problem> {
    let problem = |message: String| Some(Problem { message, help: FORM.to_string() });
    if reference.is_empty() {
        return problem("the image reference is empty".into());
    }
    let (rest, digest) = match reference.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (reference, None),
    };
    if let Some(digest) = digest.filter(|d| !DIGEST.is_match(d)) {
        return problem(format!("`{digest}` is not a digest: write ALGORITHM:HEX, e.g. sha256: and 64 hex digits"));
    }
    let (name, tag) = match rest.rfind(':') {
        Some(i) if !rest[i..].contains('/') => (&rest[..i], Some(&rest[i + 1..])),
        _ => (rest, None),
    };
    if let Some(tag) = tag.filter(|t| !TAG.is_match(t)) {
        return problem(format!(
            "the tag `{tag}` is not valid: at most 128 letters, digits, `_`, `.` and `-`, not starting with `.` or `-`"
        ));
    }
    if name.len() > NAME_MAX {
        return problem(format!(
            "the repository name is {} characters long; at most {NAME_MAX} are allowed",
            name.len()
        ));
    }
    let mut path: Vec<&str> = name.split('/').collect();
    if path.len() > 1 && is_host(path[0]) {
        let host = path.remove(0);
        if !HOST.is_match(host) {
            return problem(format!("`{host}` is not a valid registry host[:port]"));
        }
    }
    // Valid when no component is bad.
    let bad = path.iter().find(|c| !COMPONENT.is_match(c))?;
    if COMPONENT.is_match(&bad.to_ascii_lowercase()) {
        let lower = format!("{}{}", name.to_ascii_lowercase(), &reference[name.len()..]);
        let help = match check(&lower) {
            None => format!("did you mean \"{lower}\"?"),
            Some(_) => FORM.to_string(),
        };
        return Some(Problem { message: format!("repository names must be lowercase: `{bad}`"), help });
    }
    let what = if bad.is_empty() {
        format!("`{name}` has an empty path component")
    } else {
        format!(
            "`{bad}` is not a valid repository name: lowercase letters and digits, separated by `.`, `_`, `__` or `-`"
        )
    };
    problem(what)
}

/// Whether the engine reads `first`, followed by more components, as a registry host.
fn is_host(first: &str) -> bool {
    first.contains(['.', ':']) || first == "localhost" || first.chars().any(|c| c.is_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_what_the_engine_accepts() {
        for valid in [
            "busybox",
            "busybox:1.36",
            "clnrm-fixture:busybox",
            "library/busybox:latest",
            "ghcr.io/org/app:v2",
            "localhost:5000/a/b__c.d-e:Tag_1.0-rc",
            "Registry.Example/app",
            "[::1]:5000/app",
            "a--b",
            "busybox@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "busybox:1.36@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            assert_eq!(check(valid), None, "{valid}");
        }
    }

    #[test]
    fn says_what_is_wrong() {
        let message = |r: &str| check(r).map(|p| p.message).unwrap_or_default();
        assert_eq!(message(""), "the image reference is empty");
        assert_eq!(message("Busybox:latest"), "repository names must be lowercase: `Busybox`");
        assert_eq!(check("org/MyApp:V1").unwrap().help, "did you mean \"org/myapp:V1\"?");
        assert!(message("busybox:bad tag").starts_with("the tag `bad tag` is not valid"));
        assert!(message("busybox:.hidden").starts_with("the tag `.hidden` is not valid"));
        assert!(message(&format!("busybox:{}", "t".repeat(129))).starts_with("the tag"));
        assert!(message("busybox@sha256:abc").starts_with("`sha256:abc` is not a digest"));
        assert!(message("my app").starts_with("`my app` is not a valid repository name"));
        assert!(message("a//b").starts_with("`a//b` has an empty path component"));
        assert!(message("bad_host_:5000/app").starts_with("`bad_host_:5000` is not a valid registry"));
        assert!(message("-lead").starts_with("`-lead` is not a valid"));
        assert!(message(&"a".repeat(256)).starts_with("the repository name is 256 characters long"));
    }
}
