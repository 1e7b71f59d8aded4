//! The recursion simulation (`names_tests::sim::recursion`): seeded runs of a cache and a
//! recursor resolving in the in-memory hierarchy, behind a network with loss, delay,
//! reordering and duplicates, hostile servers planting out-of-bailiwick records and a
//! spoofer. Every run checks: one reply per client query within the budget, exchanges
//! and packets per client query bounded, no planted record in any reply, the zones' data
//! (or SERVFAIL on a faulty network), and nothing out of bailiwick cached.
//!
//! `RECURSION_SIM_RUNS=N` changes the number of runs; `RECURSION_SIM_SEED=S` replays one.

use std::time::{Duration, Instant};

use names_tests::sim::recursion::{simulate_recursion, RecursionScenario};

#[test]
fn seeded_recursion_simulation() {
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
    let seeds: Vec<u64> = match env("RECURSION_SIM_SEED") {
        Some(s) => vec![s],
        None => (0..env("RECURSION_SIM_RUNS").unwrap_or(300)).collect(),
    };
    let started = Instant::now();
    let (mut queries, mut exact, mut servfails, mut packets, mut spoofs, mut clean) =
        (0, 0, 0, 0, 0, 0);
    let mut limited = 0;
    for &seed in &seeds {
        let s = RecursionScenario::random(seed);
        let report = std::panic::catch_unwind(|| simulate_recursion(&s, Duration::from_millis(10)))
            .unwrap_or_else(|_| {
                panic!(
                    "recursion simulation seed {seed} failed; replay with RECURSION_SIM_SEED={seed} \
                     cargo test -p names-tests --test core recursion_sim\n{s:#?}"
                )
            });
        queries += report.queries;
        exact += report.exact;
        servfails += report.servfails;
        packets += report.packets;
        spoofs += report.spoofs;
        clean += usize::from(s.clean());
        limited += report.recursor.limited;
    }
    eprintln!(
        "recursion simulation: {} runs ({clean} on a clean network) in {:?}: {queries} client \
         queries, {exact} with the zones' data, {servfails} SERVFAIL, {packets} packets sent, \
         {spoofs} forged replies, {limited} resolutions ended by a limit",
        seeds.len(),
        started.elapsed()
    );
    if seeds.len() >= 50 {
        assert!(
            clean > 0 && spoofs > 0,
            "the mix has clean runs and spoofing"
        );
        assert!(
            exact * 2 > queries,
            "most queries get their data: {exact} of {queries}"
        );
    }
}
