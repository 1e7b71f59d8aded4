#![no_main]
//! See `names_core::fuzzing::zonefile` for the scenario and its invariants.
libfuzzer_sys::fuzz_target!(|data: &[u8]| names_core::fuzzing::zonefile(data));
