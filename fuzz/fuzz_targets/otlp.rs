//! OTLP export requests as the receiver gets them: the first byte chooses the encoding (odd:
//! OTLP/JSON, even: protobuf), the rest is the body, decoded by the receiver's own path into
//! spans. Spans that decode are normalized into a baseline, as a run records them.
#![no_main]

use clnrm::baseline::normalize::{Recorded, normalize};
use clnrm::telemetry::receiver::decode;
use clnrm::telemetry::span::from_otlp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&first, body)) = data.split_first() else { return };
    let Ok(request) = decode(first & 1 == 1, body) else { return };
    let sent: usize = request.resource_spans.iter().flat_map(|r| &r.scope_spans).map(|s| s.spans.len()).sum();
    let (spans, rejected) = from_otlp(request.resource_spans);
    let rejected = rejected.map_or(0, |r| usize::try_from(r.count).expect("a count"));
    assert_eq!(spans.len() + rejected, sent, "every span is stored or reported as rejected");
    for span in &spans {
        serde_json::to_string(span).expect("a span serializes to JSON (reports)");
    }
    let baseline = normalize("fuzz", &[Recorded::plain(&spans)]);
    assert_eq!(baseline.spans.len(), spans.len(), "normalizing keeps every span");
    clnrm_fuzz::check_baseline(&baseline);
});
