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
    let cfg = workloads::Config {
        size: args.size,
        threads: args.threads,
    };
    eprintln!(
        "arbor-bench: size={}, runs={}, worker threads={}, workloads={}",
        args.size.name(),
        args.runs,
        args.threads,
        args.only.join(",")
    );

    let mut results: Vec<(&workloads::Workload, Vec<Measurement>)> = Vec::new();
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
            let figures = (w.arbor)(&cfg);
            let m = Measurement {
                workload: w.name,
                imp: Impl::Arbor,
                run,
                size: args.size.name(),
                figures,
            };
            report::print_line(&m);
            ms.push(m);
            if let Some(raw) = w.raw {
                let m = Measurement {
                    workload: w.name,
                    imp: Impl::Raw,
                    run,
                    size: args.size.name(),
                    figures: raw(&cfg),
                };
                report::print_line(&m);
                ms.push(m);
            }
        }
        results.push((w, ms));
    }
    report::print_summary(&results, args.runs);
}
