//! libFuzzer entry for `omnigate_fuzz::redis_reply`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| omnigate_fuzz::redis_reply(data));
