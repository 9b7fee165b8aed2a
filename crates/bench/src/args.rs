//! Command-line parsing (no dependencies).

use crate::workloads::{self, Size};

pub(crate) const USAGE: &str = "\
usage: arbor-bench [--size tiny|default] [--runs N] [--only name,...] [--threads N] [--raw on|off]

  --size     tiny: a smoke test, each workload well under a second (CI runs this)
             default: the sizes in docs/performance.md
  --runs     runs per workload and implementation (default 5); the summary shows medians
  --only     comma-separated workloads to run (default: all)
  --threads  arbor worker threads (default: available cores)
  --raw      off: skip the raw baselines (for profiling arbor alone; ratios show n/a)

workloads: ping_pong, fan_in, call_latency, spawn, thread_ring, timers, restart_storm
";

/// Parsed options.
#[derive(Debug)]
pub(crate) struct Args {
    pub(crate) size: Size,
    pub(crate) runs: usize,
    pub(crate) only: Vec<String>,
    pub(crate) threads: usize,
    /// Run the raw baselines (default).
    pub(crate) raw: bool,
    /// Internal: run this workload's arbor side once and print its figures as
    /// `key value` lines (see `fresh_process` in workloads/mod.rs).
    pub(crate) child: Option<String>,
}

impl Args {
    /// `Ok(None)` for `--help`.
    pub(crate) fn parse(mut it: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
        let mut args = Args {
            size: Size::Default,
            runs: 5,
            only: workloads::ALL.iter().map(|w| w.name.to_string()).collect(),
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            raw: true,
            child: None,
        };
        while let Some(flag) = it.next() {
            let (flag, inline) = match flag.split_once('=') {
                Some((f, v)) => (f.to_string(), Some(v.to_string())),
                None => (flag, None),
            };
            if flag == "-h" || flag == "--help" {
                return Ok(None);
            }
            let value = match inline.or_else(|| it.next()) {
                Some(v) => v,
                None => return Err(format!("{flag} needs a value")),
            };
            match flag.as_str() {
                "--size" => {
                    args.size = match value.as_str() {
                        "tiny" => Size::Tiny,
                        "default" => Size::Default,
                        _ => return Err(format!("unknown size {value:?} (tiny or default)")),
                    }
                }
                "--runs" => args.runs = positive(&flag, &value)?,
                "--threads" => args.threads = positive(&flag, &value)?,
                "--raw" => {
                    args.raw = match value.as_str() {
                        "on" => true,
                        "off" => false,
                        _ => return Err(format!("--raw takes on or off, got {value:?}")),
                    }
                }
                "--child" => {
                    if !workloads::ALL.iter().any(|w| w.name == value) {
                        return Err(format!("unknown workload {value:?}"));
                    }
                    args.child = Some(value);
                }
                "--only" => {
                    let names: Vec<String> = value
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(String::from)
                        .collect();
                    if let Some(bad) = names
                        .iter()
                        .find(|n| !workloads::ALL.iter().any(|w| w.name == n.as_str()))
                    {
                        return Err(format!("unknown workload {bad:?}"));
                    }
                    if names.is_empty() {
                        return Err("--only needs at least one workload".into());
                    }
                    args.only = names;
                }
                _ => return Err(format!("unknown option {flag:?}")),
            }
        }
        Ok(Some(args))
    }
}

fn positive(flag: &str, value: &str) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{flag} needs a positive integer, got {value:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Option<Args>, String> {
        Args::parse(s.split_whitespace().map(String::from))
    }

    #[test]
    fn defaults_and_flags() {
        let a = parse("").unwrap().unwrap();
        assert_eq!(a.runs, 5);
        assert_eq!(a.only.len(), workloads::ALL.len());
        let a = parse("--size tiny --runs=3 --only ping_pong,timers").unwrap().unwrap();
        assert!(matches!(a.size, Size::Tiny));
        assert_eq!(a.runs, 3);
        assert_eq!(a.only, vec!["ping_pong", "timers"]);
        assert!(parse("--help").unwrap().is_none());
        assert!(parse("--runs 0").is_err());
        assert!(!parse("--raw off").unwrap().unwrap().raw);
        assert!(parse("--raw maybe").is_err());
        assert!(parse("--only nope").is_err());
        assert!(parse("--bogus 1").is_err());
        assert!(parse("--runs").is_err());
    }
}
