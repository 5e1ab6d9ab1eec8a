//! Serving policies: how many instances, started when, kept how long.

use crate::error::{Error, ErrorKind, Result};
use crate::prices::Model;
use serde::{Deserialize, Serialize};

/// How the front gets instances for the requests.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "policy")]
pub enum Policy {
    /// A fleet of `instances` started (warm) before the first request and kept all along.
    Fixed { instances: usize },
    /// Instances started on demand (up to `max_instances`), each stopped after `keep_alive_s`
    /// idle: scale to zero.
    Autoscale {
        max_instances: usize,
        keep_alive_s: f64,
    },
    /// A fresh instance for every request, stopped after it (up to `max_instances` at once):
    /// the function's worst case.
    PerRequest { max_instances: usize },
}

impl Policy {
    /// The policy's name as the CLI spells it.
    pub fn name(&self) -> &'static str {
        match self {
            Policy::Fixed { .. } => "fixed",
            Policy::Autoscale { .. } => "autoscale",
            Policy::PerRequest { .. } => "per-request",
        }
    }

    /// A policy from the CLI's words: `fixed`, `autoscale` or `per-request`, with the fleet
    /// size (or cap) and keep-alive they need.
    pub fn parse(name: &str, instances: usize, keep_alive_s: f64) -> Result<Policy> {
        let policy = match name {
            "fixed" => Policy::Fixed { instances },
            "autoscale" => Policy::Autoscale {
                max_instances: instances,
                keep_alive_s,
            },
            "per-request" => Policy::PerRequest {
                max_instances: instances,
            },
            other => {
                return Err(Error::of(
                    ErrorKind::Invalid,
                    format!("there is no serving policy `{other}`"),
                    "use fixed, autoscale or per-request",
                ));
            }
        };
        policy.check()?;
        Ok(policy)
    }

    /// Whether a product of `model` sells this way of serving, so a run is billed only as the
    /// products that could run it: an always-on fleet as instances or containers, scaling as
    /// those or request-billed containers, one per request as functions or request-billed
    /// containers.
    pub fn fits(&self, model: Model) -> bool {
        match self {
            Policy::Fixed { .. } => matches!(model, Model::Instance | Model::Container),
            Policy::Autoscale { .. } => !matches!(model, Model::Function),
            Policy::PerRequest { .. } => matches!(model, Model::Function | Model::RequestContainer),
        }
    }

    /// Refuses a policy that cannot serve.
    pub fn check(&self) -> Result<()> {
        let (Policy::Fixed { instances: n }
        | Policy::Autoscale {
            max_instances: n, ..
        }
        | Policy::PerRequest { max_instances: n }) = *self;
        if n == 0 {
            return Err(Error::of(
                ErrorKind::Invalid,
                format!("the {} policy cannot have 0 instances", self.name()),
                "give 1 or more (the fleet size, or the most at once)",
            ));
        }
        if let Policy::Autoscale { keep_alive_s, .. } = *self
            && !(keep_alive_s.is_finite() && keep_alive_s >= 0.0)
        {
            return Err(Error::of(
                ErrorKind::Invalid,
                format!("the keep-alive window cannot be {keep_alive_s} s"),
                "give how long an idle instance is kept, in seconds, 0 or more (1 is a fair start)",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_bad_values_are_refused() {
        assert_eq!(
            Policy::parse("fixed", 2, 0.0).unwrap(),
            Policy::Fixed { instances: 2 }
        );
        assert_eq!(
            Policy::parse("per-request", 4, 0.0).unwrap().name(),
            "per-request"
        );
        let e = Policy::parse("autoscale", 2, -1.0).unwrap_err();
        assert!(
            e.problem().contains("keep-alive") && e.problem().contains("-1"),
            "{e}"
        );
        let e = Policy::parse("spot", 2, 1.0).unwrap_err();
        assert!(e.fix().contains("fixed, autoscale or per-request"), "{e}");
        assert!(Policy::parse("fixed", 0, 1.0).is_err());
        let per_request = Policy::PerRequest { max_instances: 1 };
        assert!(per_request.fits(Model::Function) && !per_request.fits(Model::Instance));
        assert!(!Policy::Fixed { instances: 1 }.fits(Model::Function));
    }
}
