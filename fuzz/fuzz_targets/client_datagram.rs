#![no_main]
//! See `names_tests::fuzz::client_datagram` for the scenario and its invariants.
libfuzzer_sys::fuzz_target!(|data: &[u8]| names_tests::fuzz::client_datagram(data));
