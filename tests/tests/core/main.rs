//! The core's tests: a sans-IO `names_core::Server` driven by hand or in the simulated
//! world of the harness (`names_tests::sim`), no binary and no sockets. One test binary
//! with a module per subject (each binary links on its own).

mod admission;
mod bare_errors;
mod cache;
mod compress;
mod fault_sim;
mod fuzz_corpus;
mod hosts;
mod ixfr;
mod journal;
mod lookups;
mod notify;
mod properties;
mod protocol;
mod query_state;
mod recursion_sim;
mod recursor;
mod recursor_unbound;
mod reload_sim;
mod secondary;
mod simulation;
mod tcp_limits;
mod tsig;
mod unbound;
mod upstream_hardening;
mod zone;
mod zone_types;
