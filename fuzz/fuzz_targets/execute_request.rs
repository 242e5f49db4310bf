//! libFuzzer entry for `omnigate_fuzz::execute_request`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| omnigate_fuzz::execute_request(data));
