//! libFuzzer entry for `omnigate_fuzz::falkor_reply`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| omnigate_fuzz::falkor_reply(data));
