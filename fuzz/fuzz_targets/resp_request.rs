//! libFuzzer entry for `omnigate_fuzz::resp_request`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| omnigate_fuzz::resp_request(data));
