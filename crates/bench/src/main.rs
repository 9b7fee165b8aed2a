//! arbor-bench: arbor's benchmark suite.
//!
//! Every workload runs on arbor and, where a fair equivalent exists, on a "raw" baseline
//! (plain OS threads and crossbeam-channel, no actor layer), in the same run and on the same
//! machine. Each run prints one JSON line per measurement; the suite ends with a summary
//! table of medians and the ratio arbor/raw. Each workload asserts its own result and
//! panics if it is wrong.
//!
//! ```text
//! cargo run --release -p arbor-bench -- [--size tiny|default] [--runs N] [--only name,...] [--threads N]
//! ```
//!
//! See `docs/performance.md`.

mod args;
mod report;
mod stats;
mod workloads;

use args::Args;
use report::{Impl, Measurement};
use std::process::{Command, Stdio};
use workloads::{Config, Figures, Workload};

fn main() {
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            print!("{}", args::USAGE);
            return;
        }
        Err(msg) => {
            eprintln!("arbor-bench: {msg}\n\n{}", args::USAGE);
            std::process::exit(2);
        }
    };
    let cfg = Config {
        size: args.size,
        threads: args.threads,
    };
    if let Some(name) = &args.child {
        let w = workloads::ALL.iter().find(|w| w.name == name).unwrap();
        for (k, v) in (w.arbor)(&cfg) {
            println!("{k} {v}");
        }
        return;
    }
    eprintln!(
        "arbor-bench: size={}, runs={}, worker threads={}, workloads={}",
        args.size.name(),
        args.runs,
        args.threads,
        args.only.join(",")
    );

    let mut results: Vec<(&Workload, Vec<Measurement>)> = Vec::new();
    for w in workloads::ALL {
        if !args.only.iter().any(|n| n == w.name) {
            continue;
        }
        let mut ms = Vec::new();
        if w.raw.is_none() {
            report::print_na(w);
        }
        // Arbor and raw alternate within each run, so drifting machine load hits both.
        for run in 0..args.runs {
            let mut record = |imp, figures| {
                let m = Measurement {
                    workload: w.name,
                    imp,
                    run,
                    size: args.size.name(),
                    figures,
                };
                report::print_line(&m);
                ms.push(m);
            };
            let figures = if w.fresh_process {
                in_fresh_process(w, &cfg)
            } else {
                (w.arbor)(&cfg)
            };
            record(Impl::Arbor, figures);
            if let Some(raw) = w.raw.filter(|_| args.raw) {
                record(Impl::Raw, raw(&cfg));
            }
        }
        results.push((w, ms));
    }
    report::print_summary(&results, args.runs);
}

/// Runs `w`'s arbor side once in a new process of this binary and reads back its figures.
fn in_fresh_process(w: &Workload, cfg: &Config) -> Figures {
    let exe = std::env::current_exe().expect("arbor-bench: cannot find its own executable");
    let out = Command::new(exe)
        .args([
            "--size",
            cfg.size.name(),
            "--threads",
            &cfg.threads.to_string(),
            "--child",
            w.name,
        ])
        .stderr(Stdio::inherit())
        .output()
        .expect("arbor-bench: cannot start a child process");
    assert!(out.status.success(), "{}: child process failed: {}", w.name, out.status);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| {
            let (k, v) = line.split_once(' ').expect("child output: `key value` lines");
            // Figure keys are static in-process; the handful read back here are leaked.
            let k: &'static str = String::leak(k.to_string());
            (k, v.parse().expect("child output: a number"))
        })
        .collect()
}
