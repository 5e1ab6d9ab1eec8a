//! The program's modes and their options, checked before MPI starts (a bad value is a clear
//! error on every rank, not a hang in a collective).

/// What to run.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// Every rank's line, `iterations` times, `interval_ms` apart.
    Hello { iterations: u32, interval_ms: u64 },
    /// The hit count of `samples` points from `seed`.
    Hits { samples: u64, seed: u64 },
    /// Ping-pong between ranks 0 and 1 at each size, `rounds` round trips each.
    PingPong { sizes: Vec<usize>, rounds: u32 },
}

const USAGE: &str = "virtlab-ranks hello --iterations N --interval-ms M | hits --samples N --seed S | pingpong --sizes 8,64,4194304 --rounds R";

fn error(problem: String) -> String {
    format!("virtlab error: {problem}. Fix: {USAGE}")
}

/// The value of `flag` parsed, or `default` when the flag is absent.
fn number<T: std::str::FromStr>(args: &[String], flag: &str, default: T) -> Result<T, String> {
    match args.iter().position(|a| a == flag) {
        None => Ok(default),
        Some(i) => {
            let text = args.get(i + 1).map(String::as_str).unwrap_or("");
            text.parse()
                .map_err(|_| error(format!("{flag} cannot be {text:?}")))
        }
    }
}

impl Mode {
    /// Parses the command line (mode first, then its options).
    pub fn parse(args: &[String]) -> Result<Mode, String> {
        let mode = match args.first().map(String::as_str) {
            Some("hello") => Mode::Hello {
                iterations: number(args, "--iterations", 3)?,
                interval_ms: number(args, "--interval-ms", 200)?,
            },
            Some("hits") => Mode::Hits {
                samples: number(args, "--samples", 10_000_000)?,
                seed: number(args, "--seed", 42)?,
            },
            Some("pingpong") => {
                let sizes = match args.iter().position(|a| a == "--sizes") {
                    None => vec![8, 64, 512, 4096, 32768, 262144, 4194304],
                    Some(i) => args
                        .get(i + 1)
                        .map(String::as_str)
                        .unwrap_or("")
                        .split(',')
                        .map(|s| s.trim().parse::<usize>())
                        .collect::<Result<_, _>>()
                        .map_err(|_| error("--sizes must be byte counts, e.g. 8,64,4096".into()))?,
                };
                Mode::PingPong {
                    sizes,
                    rounds: number(args, "--rounds", 100)?,
                }
            }
            other => return Err(error(format!("there is no mode {other:?}"))),
        };
        let zero = match &mode {
            Mode::Hello { iterations, .. } => *iterations == 0,
            Mode::Hits { samples, .. } => *samples == 0,
            Mode::PingPong { sizes, rounds } => {
                *rounds == 0 || sizes.is_empty() || sizes.contains(&0)
            }
        };
        if zero {
            return Err(error(
                "iterations, samples, sizes and rounds must be above 0".into(),
            ));
        }
        Ok(mode)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Mode, String> {
        Mode::parse(
            &line
                .split_whitespace()
                .map(String::from)
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn modes_parse_and_bad_values_are_refused() {
        assert_eq!(
            parse("hits --samples 1000 --seed 7"),
            Ok(Mode::Hits {
                samples: 1000,
                seed: 7
            })
        );
        assert_eq!(
            parse("pingpong --sizes 8,64 --rounds 5"),
            Ok(Mode::PingPong {
                sizes: vec![8, 64],
                rounds: 5
            })
        );
        assert!(
            parse("hello --iterations 0")
                .unwrap_err()
                .contains("above 0")
        );
        assert!(
            parse("hits --samples many")
                .unwrap_err()
                .contains("\"many\"")
        );
        assert!(parse("dance").unwrap_err().contains("Fix:"));
    }
}
