//! libFuzzer entry for `omnigate_fuzz::line_protocol`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| omnigate_fuzz::line_protocol(data));
