//! Scenario files as templates: rendered with Tera through clnrm's renderer (with the fixture
//! project's templates and variables), then read and validated like any scenario file.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    clnrm_fuzz::load(data);
});
