//! Deterministic fault simulation: thousands of seeded runs of the core against fake
//! upstreams in simulated time, with loss, delay, duplication, reordering (delays
//! differ per reply), spoofed replies (wrong ID, wrong address), garbage, upstreams
//! that are unreachable then answer again, SERVFAIL/REFUSED/NOTIMP/TC replies, TCP
//! streams of several frames per read (failure rcodes, zero-length frames, garbage,
//! endless streams), floods of identical queries, and small exchange and waiting limits
//! now and then. After every step, waiting queries, open exchanges and the bytes an
//! upstream TCP try holds stay within their bounds. After every run
//! (`names_tests::fuzz::run_scenario`): every client query got exactly one reply,
//! with its ID and question, that parses back, fits the client's UDP limit, came within
//! the budget and carries no spoofed data; no query, exchange, token, timer or TCP
//! connection is left.
//!
//! `FAULT_SIM_RUNS=N` changes the number of runs (default 2000); a failing seed is
//! printed, and `FAULT_SIM_SEED=S` replays just that one.

use arbitrary::{Arbitrary, Unstructured};
use names_tests::fuzz::{run_scenario, Scenario, SplitMix};

/// SplitMix64: the bytes each seed's scenario is decoded from.
fn bytes_for(seed: u64) -> Vec<u8> {
    let mut rng = SplitMix(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let len = 64 + (rng.next_u64() % 960) as usize;
    (0..len).map(|_| rng.next_u64() as u8).collect()
}

fn scenario(seed: u64) -> Scenario {
    let data = bytes_for(seed);
    Scenario::arbitrary_take_rest(Unstructured::new(&data)).expect("any bytes decode")
}

#[test]
fn seeded_fault_simulation() {
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
    let seeds: Vec<u64> = match env("FAULT_SIM_SEED") {
        Some(s) => vec![s],
        None => (0..env("FAULT_SIM_RUNS").unwrap_or(2000)).collect(),
    };
    let (mut queries, mut faults, mut lookups) = (0, 0, 0);
    for &seed in &seeds {
        let s = scenario(seed);
        queries += s.queries.len();
        faults += s.upstream.len();
        match std::panic::catch_unwind(|| run_scenario(&s)) {
            Ok(n) => lookups += n,
            Err(_) => panic!(
                "fault simulation seed {seed} failed; replay with \
                 FAULT_SIM_SEED={seed} cargo test -p names-tests --test core fault_sim\n{s:#?}"
            ),
        }
    }
    eprintln!(
        "fault simulation: {} runs, {queries} client queries, {faults} upstream behaviours, \
         {lookups} lookups",
        seeds.len()
    );
    assert!(queries >= seeds.len());
    if seeds.len() >= 1000 {
        assert!(lookups > 1000, "lookups are exercised: {lookups}");
    }
}
