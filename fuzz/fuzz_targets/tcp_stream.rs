#![no_main]
//! See `names_tests::fuzz::tcp_stream` for the scenario and its invariants.
libfuzzer_sys::fuzz_target!(|data: &[u8]| names_tests::fuzz::tcp_stream(data));
