//! An idle runtime uses no CPU. Alone in its file: CPU time is counted per process, so
//! no other test may run beside it.

mod common;
use common::*;
use std::time::Duration;

#[test]
fn idle_runtime_uses_no_cpu() {
    fn cpu_ticks() -> u64 {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
        let fields: Vec<&str> = stat.rsplit(')').next().unwrap().split_whitespace().collect();
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    }
    let rt = rt(2);
    let log = Log::default();
    // Some processes, some far timers, then nothing to do.
    let s = probe(&rt, "a", &log, InitMode::Ok).unwrap();
    s.call(Req::ArmMany(10, Duration::from_secs(3600))).unwrap();
    let before = cpu_ticks();
    std::thread::sleep(Duration::from_millis(500));
    let used = cpu_ticks() - before;
    // Clock ticks are 10 ms: a busy thread would use 50 in this window.
    assert!(used <= 2, "idle runtime used {used} ticks of CPU in 500 ms");
}
