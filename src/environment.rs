//! What clnrm takes from its environment to decide how to behave, read once when a command starts
//! and handed down as a value: no module below the commands reads these variables, and every
//! policy made from them is a function of this value (tested without touching the environment).

/// `CI` and `CLNRM_UPDATE`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Environment {
    /// `CI` is set and not `false`, `0` or empty. Under CI status lines are plain, no key is read,
    /// nothing under `baselines/` is written and a scenario without a baseline fails.
    pub ci: bool,
    /// `CLNRM_UPDATE`, when set and not empty: what a run may write under `baselines/`.
    pub update: Option<String>,
}

impl Environment {
    /// The process's environment.
    pub fn read() -> Environment {
        Environment::of(|name| std::env::var(name).ok())
    }

    /// The environment `var` looks variables up in.
    pub fn of(var: impl Fn(&str) -> Option<String>) -> Environment {
        let ci = var("CI").is_some_and(|v| !matches!(v.trim().to_ascii_lowercase().as_str(), "" | "0" | "false"));
        Environment { ci, update: var("CLNRM_UPDATE").filter(|v| !v.is_empty()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> Environment {
        Environment::of(|name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string()))
    }

    #[test]
    fn ci_is_any_value_but_empty_zero_or_false() {
        for value in ["true", "1", "yes", "TRUE", "github"] {
            assert!(env(&[("CI", value)]).ci, "{value}");
        }
        for value in ["", "0", "false", "False", " false "] {
            assert!(!env(&[("CI", value)]).ci, "{value:?}");
        }
        assert!(!env(&[]).ci);
        assert_eq!(env(&[("CLNRM_UPDATE", "")]).update, None);
        assert_eq!(env(&[("CLNRM_UPDATE", "no")]).update.as_deref(), Some("no"));
    }
}
