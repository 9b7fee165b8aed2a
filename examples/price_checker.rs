//! The seed's DynamicSupervisor snippet:
//!
//! ```elixir
//! spec = %{id: PriceChecker, start: {PriceChecker, :start_link, [2]}}
//! DynamicSupervisor.start_child(MySupervisor, spec)
//! ```
//!
//! with `ReactPhoenix.PriceSupervisor` as the application's child and `start_work` to kick
//! it off. The PriceChecker itself is not in the seed; here it checks the price of item `2`
//! every 20 ms. `cargo run --example price_checker` runs a few checks, then shuts down.

use arbor::prelude::*;
use arbor::supervisor::{
    render_tree, ChildSpec, DynamicOpts, DynamicSupervisor, StartChildError, Strategy, Supervisor, SupervisorOpts,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const PRICE_SUPERVISOR: &str = "ReactPhoenix.PriceSupervisor";
const INTERVAL: Duration = Duration::from_millis(20);

static CHECKS: AtomicU64 = AtomicU64::new(0);

/// Checks the price of one item, periodically.
struct PriceChecker {
    item: u64,
}

enum Tick {
    Check,
}

impl GenServer for PriceChecker {
    type Args = u64;
    type Info = Tick;
    type Call = ();
    type Reply = ();

    fn init(item: u64, ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        // Slow work goes after init (the seed's note): the first check is a message.
        ctx.send_self(Tick::Check);
        Ok(PriceChecker { item })
    }

    fn handle_info(&mut self, Tick::Check: Tick, ctx: &mut Context<'_, Self>) -> Flow {
        let n = CHECKS.fetch_add(1, Ordering::SeqCst) + 1;
        println!("check #{n}: price of item {} is {}", self.item, 100 + n);
        ctx.send_after(INTERVAL, Tick::Check);
        Flow::Continue
    }
}

/// `PriceSupervisor.start_work`: `DynamicSupervisor.start_child(MySupervisor, spec)` with the
/// seed's spec `%{id: PriceChecker, start: {PriceChecker, :start_link, [2]}}`.
fn start_work(sup: &DynamicSupervisor) -> Result<Pid, StartChildError> {
    let spec = ChildSpec::new("PriceChecker", || {
        PriceChecker::start_link(2, StartOpts::new()).map(|s| s.pid())
    });
    sup.start_child(spec)
}

fn main() {
    let rt = Runtime::new().expect("runtime");
    // application.ex: children = [ReactPhoenix.PriceSupervisor]
    let app = Supervisor::start_link(
        vec![DynamicSupervisor::child_spec(PRICE_SUPERVISOR, DynamicOpts::new())],
        SupervisorOpts::new(Strategy::OneForOne).runtime(rt.handle()),
    )
    .expect("application starts");
    let prices = app
        .child_pid(PRICE_SUPERVISOR)
        .ok()
        .flatten()
        .and_then(DynamicSupervisor::from_pid)
        .expect("price supervisor running");

    let pid = start_work(&prices).expect("price checker starts");
    println!("PriceChecker started as {pid}");
    print!("{}", render_tree(app.pid()));

    let deadline = Instant::now() + Duration::from_secs(10);
    while CHECKS.load(Ordering::SeqCst) < 5 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    rt.shutdown();
    println!("shut down cleanly");
}
