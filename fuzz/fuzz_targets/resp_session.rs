//! libFuzzer entry for `omnigate_fuzz::resp_session`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| omnigate_fuzz::resp_session(data));
