//! `--report junit=PATH`: one test suite, one test case per scenario with its duration in
//! fractional seconds; failures carry the message and the output tail.

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use crate::record::Record;
use crate::record::outcome::Status;

pub fn render(record: &Record) -> Result<String, String> {
    let mut suite = TestSuite::new("clnrm");
    for outcome in &record.scenarios {
        let mut status = match outcome.status {
            Status::Pass => TestCaseStatus::success(),
            Status::Fail => TestCaseStatus::non_success(NonSuccessKind::Failure),
            Status::Timeout => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_type("timeout");
                s
            }
            Status::Regressed => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_type("baseline regression");
                s
            }
            Status::Cached | Status::Skipped | Status::Interrupted => TestCaseStatus::skipped(),
        };
        if let Some(failure) = &outcome.failure {
            status.set_message(format!("{}: {}", failure.place, failure.message));
            status.set_description(super::failure_output(outcome, false));
        } else if outcome.status == Status::Cached {
            status.set_message("unchanged since its last passing run");
        } else if outcome.status == Status::Interrupted {
            status.set_message("running when a signal stopped the run");
        }
        let mut case = TestCase::new(outcome.name.clone(), status);
        case.set_classname(outcome.file.clone());
        case.set_time(outcome.duration);
        suite.add_test_case(case);
    }
    let mut junit = Report::new("clnrm");
    junit.set_time(record.run.elapsed);
    junit.add_test_suite(suite);
    junit.to_string().map_err(|e| e.to_string())
}
