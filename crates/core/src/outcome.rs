//! A measurement that ran, or was skipped with the reason: what a missing peer (Python, a
//! container runtime) or a missing facility (KVM, a GPU) leaves in a result. Serialised as
//! `{"outcome": "measured", "value": …}` or `{"outcome": "skipped", "value": "why"}`.

use serde::{Deserialize, Serialize};

/// A measured value, or why it was skipped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", content = "value", rename_all = "snake_case")]
pub enum Outcome<T> {
    /// It ran; here is what it measured.
    Measured(T),
    /// It did not run, and why (with how to get it).
    Skipped(String),
}

impl<T> Outcome<T> {
    /// The measured value, if it ran.
    pub fn measured(&self) -> Option<&T> {
        match self {
            Outcome::Measured(value) => Some(value),
            Outcome::Skipped(_) => None,
        }
    }

    /// Why it was skipped, if it was.
    pub fn skipped(&self) -> Option<&str> {
        match self {
            Outcome::Measured(_) => None,
            Outcome::Skipped(why) => Some(why),
        }
    }
}

impl<T> From<std::result::Result<T, String>> for Outcome<T> {
    fn from(result: std::result::Result<T, String>) -> Self {
        result.map_or_else(Outcome::Skipped, Outcome::Measured)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_with_a_tag_not_as_a_rust_result() {
        let ran: Outcome<u32> = Ok(3).into();
        assert_eq!(
            serde_json::to_string(&ran).unwrap(),
            r#"{"outcome":"measured","value":3}"#
        );
        let skipped: Outcome<u32> = Err("no python3".to_string()).into();
        assert_eq!(
            serde_json::to_string(&skipped).unwrap(),
            r#"{"outcome":"skipped","value":"no python3"}"#
        );
        assert_eq!(skipped.skipped(), Some("no python3"));
        assert_eq!(ran.measured(), Some(&3));
    }
}
