//! Scenario files without template syntax: bytes → UTF-8 → `[vars]` → TOML (spanned) → model →
//! validation → cache key, as `clnrm dry-run` reads a plain scenario file.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Template syntax goes through Tera: that is the `template` target's input.
    if clnrm::scenario::render::has_template_syntax(&String::from_utf8_lossy(data)) {
        return;
    }
    clnrm_fuzz::load(data);
});
