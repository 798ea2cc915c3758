//! Secrets the channels hold (auth tokens, signing keys): read from an
//! environment variable the configuration names, and kept in a wrapper
//! whose `Debug` never shows the value, so neither a log line nor a panic
//! message can carry it.

use std::fmt;

/// A secret value. `Debug` prints `Secret(***)`; the value is reachable
/// only through [`Secret::expose`], which makes every use easy to find.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value of the environment variable `name`, which must be set,
    /// valid UTF-8 and not empty. The error names the variable, never a
    /// value.
    pub fn from_env(name: &str) -> Result<Secret, String> {
        match std::env::var(name) {
            Ok(value) if value.is_empty() => Err(format!("environment variable `{name}` is empty")),
            Ok(value) => Ok(Secret(value)),
            Err(std::env::VarError::NotPresent) => {
                Err(format!("environment variable `{name}` is not set"))
            }
            Err(std::env::VarError::NotUnicode(_)) => {
                Err(format!("environment variable `{name}` is not valid UTF-8"))
            }
        }
    }

    /// The secret itself, for the one place that must send or sign with it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Whether `name` can name an environment variable: letters, digits and
/// underscores, not starting with a digit (the portable shell form).
pub fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_value() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?}"), "Secret(***)");
        assert_eq!(secret.expose(), "hunter2");
    }

    #[test]
    fn missing_variable_is_named_without_a_value() {
        let err = Secret::from_env("NUDGE_TEST_SURELY_UNSET_VARIABLE").unwrap_err();
        assert_eq!(
            err,
            "environment variable `NUDGE_TEST_SURELY_UNSET_VARIABLE` is not set"
        );
    }

    #[test]
    fn env_names() {
        for good in ["TWILIO_AUTH_TOKEN", "_X", "a1"] {
            assert!(is_env_name(good), "{good}");
        }
        for bad in ["", "1A", "MY-TOKEN", "A=B", "A B", "tøken"] {
            assert!(!is_env_name(bad), "{bad}");
        }
    }
}
