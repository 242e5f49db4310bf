//! libFuzzer entry for `omnigate_fuzz::pg_wire`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| omnigate_fuzz::pg_wire(data));
