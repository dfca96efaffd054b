//! Baseline files (`baselines/<scenario>.toml`): any text either is refused with a reason or reads
//! into a baseline that writes back, reads back the same, and matches itself in a diff.
#![no_main]

use clnrm::baseline::store;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(baseline) = store::parse(text) {
        clnrm_fuzz::check_baseline(&baseline);
    }
});
