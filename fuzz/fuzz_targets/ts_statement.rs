//! libFuzzer entry for `omnigate_fuzz::ts_statement`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| omnigate_fuzz::ts_statement(data));
