//! Benchmarks of `clnrm watch` (the release binary, against the real engine): how soon a save is
//! on screen, and what an idle watch costs.
//!
//! `cargo bench --bench watch` needs a Docker engine and builds the fixture image
//! (`scripts/fixtures`). Set `CLNRM_BENCH_SAVES` (default 20) for the saves per figure.
//!
//! - Save → diagnostic: an invalid scenario is written; the time until its diagnostic line is read
//!   from watch's output (the default 50ms debounce included).
//! - Save → first step started: the scenario's step prints the wall clock from inside its
//!   container (busybox `adjtimex`, in microseconds) and fails, so the failure summary shows it;
//!   the figure is that time minus the time of the write. Saves are 2s apart, so the pool is warm.
//! - Idle: a project of 200 scenarios, once the first run is over: CPU time over 20s from
//!   /proc/PID/stat, and VmRSS.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const CONFIG: &str = "[defaults]\nimage = \"clnrm-fixture:busybox\"\npull = \"never\"\n[otel]\nsettle = \"20ms\"\n";

fn main() {
    let fixtures =
        Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/fixtures")).status().expect("fixtures");
    assert!(fixtures.success(), "building the fixture image failed");
    let saves: usize = std::env::var("CLNRM_BENCH_SAVES").ok().and_then(|s| s.parse().ok()).unwrap_or(20);

    let diagnostic = save_to_diagnostic(saves);
    report("save → diagnostic on screen (invalid file)", &diagnostic, "median and max < 100ms");
    let first_step = save_to_first_step(saves);
    report("save → first step started (warm pool)", &first_step, "median < 150ms");
    idle(200);
}

/// A running `clnrm watch`, its output lines with the time each was read.
struct Watch {
    child: Child,
    lines: Arc<Mutex<Vec<(Instant, String)>>>,
}

impl Watch {
    fn start(dir: &Path) -> Watch {
        let mut child = Command::new(env!("CARGO_BIN_EXE_clnrm"))
            .arg("watch")
            .current_dir(dir)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", dir)
            .envs(std::env::var_os("DOCKER_HOST").map(|h| ("DOCKER_HOST", h)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start clnrm watch");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let pipes: [Box<dyn std::io::Read + Send>; 2] =
            [Box::new(child.stdout.take().unwrap()), Box::new(child.stderr.take().unwrap())];
        for pipe in pipes {
            let lines = Arc::clone(&lines);
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    lines.lock().unwrap().push((Instant::now(), line));
                }
            });
        }
        Watch { child, lines }
    }

    /// Waits for the `nth` (from 1) line containing `needle`; when it was read, and the line.
    fn line(&self, needle: &str, nth: usize) -> (Instant, String) {
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let found = self.lines.lock().unwrap().iter().filter(|(_, l)| l.contains(needle)).nth(nth - 1).cloned();
            if let Some(found) = found {
                return found;
            }
            assert!(Instant::now() < deadline, "no {needle:?} ×{nth} in:\n{}", self.text());
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn count(&self, needle: &str) -> usize {
        self.lines.lock().unwrap().iter().filter(|(_, l)| l.contains(needle)).count()
    }

    fn text(&self) -> String {
        self.lines.lock().unwrap().iter().map(|(_, l)| l.as_str()).collect::<Vec<_>>().join("\n")
    }

    /// Stops it as Ctrl-C does, so it removes what it made.
    fn stop(mut self) {
        Command::new("kill").args(["-INT", &self.child.id().to_string()]).status().unwrap();
        let _ = self.child.wait();
    }
}

fn project(scenarios: &[(&str, String)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(".clnrm")).unwrap();
    std::fs::create_dir_all(dir.path().join("scenarios")).unwrap();
    std::fs::write(dir.path().join(".clnrm/config.toml"), CONFIG).unwrap();
    for (name, text) in scenarios {
        std::fs::write(dir.path().join(format!("scenarios/{name}.clnrm.toml")), text).unwrap();
    }
    dir
}

fn save_to_diagnostic(saves: usize) -> Vec<Duration> {
    let step = "[[steps]]\nname = \"s\"\nrun = [\"true\"]\n";
    let dir = project(&[("target", step.to_string()), ("other", step.to_string())]);
    let watch = Watch::start(dir.path());
    watch.line("watching for changes", 1);
    let file = dir.path().join("scenarios/target.clnrm.toml");
    let mut times = Vec::new();
    for save in 0..saves {
        std::thread::sleep(Duration::from_millis(300));
        let seen = watch.count("target.clnrm.toml:");
        // Each save is invalid in its own way, so each is a change with a diagnostic.
        let text = format!("{step}[[steps]\n# save {save}\n");
        let written = Instant::now();
        std::fs::write(&file, text).unwrap();
        let (shown, _) = watch.line("target.clnrm.toml:", seen + 1);
        times.push(shown - written);
    }
    watch.stop();
    times
}

fn save_to_first_step(saves: usize) -> Vec<Duration> {
    let body = |save: usize| {
        format!(
            "# save {save}\n[[steps]]\nname = \"clock\"\nrun = [\"sh\", \"-c\", \"adjtimex | grep time.tv; exit 1\"]\n"
        )
    };
    let dir = project(&[("probe", body(0))]);
    let watch = Watch::start(dir.path());
    watch.line("watching for changes", 1);
    let file = dir.path().join("scenarios/probe.clnrm.toml");
    let mut times = Vec::new();
    for save in 1..=saves {
        // Time for the used container to be replaced by a warm one.
        std::thread::sleep(Duration::from_secs(2));
        let written = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        std::fs::write(&file, body(save)).unwrap();
        let seconds = number(&watch.line("time.tv_sec:", save + 1).1);
        let micros = number(&watch.line("time.tv_usec:", save + 1).1);
        let started = Duration::from_secs(seconds) + Duration::from_micros(micros);
        times.push(started.saturating_sub(written));
    }
    let hits = watch.count("pool: 1 hits, 0 misses");
    println!("  runs served by a warm container: {hits} of {saves}");
    watch.stop();
    times
}

fn number(line: &str) -> u64 {
    line.rsplit(':').next().and_then(|n| n.trim().parse().ok()).unwrap_or_else(|| panic!("no number in {line:?}"))
}

fn idle(count: usize) {
    let scenarios: Vec<(String, String)> = (0..count)
        .map(|i| (format!("s{i:03}"), format!("[[steps]]\nname = \"say\"\nrun = [\"echo\", \"{i}\"]\n")))
        .collect();
    let refs: Vec<(&str, String)> = scenarios.iter().map(|(n, t)| (n.as_str(), t.clone())).collect();
    let dir = project(&refs);
    let started = Instant::now();
    let watch = Watch::start(dir.path());
    watch.line("watching for changes", 1);
    println!("idle watch, {count} scenarios (first run took {:.1}s):", started.elapsed().as_secs_f64());
    std::thread::sleep(Duration::from_secs(3));
    let pid = watch.child.id();
    let (cpu_before, at) = (cpu_ticks(pid), Instant::now());
    std::thread::sleep(Duration::from_secs(20));
    let cpu = (cpu_ticks(pid) - cpu_before) as f64 / ticks_per_second() / at.elapsed().as_secs_f64() * 100.0;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| status.lines().find(|l| l.starts_with(name)).unwrap_or_default().to_string();
    println!("  CPU {cpu:.2}% over 20s (target < 1%)");
    println!("  {} (target < 50 MB); peak {}", field("VmRSS:"), field("VmHWM:").trim_start_matches("VmHWM:").trim());
    watch.stop();
}

/// User + system CPU time of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap().split_whitespace().collect();
    // After the command name: state is field 3, utime 14, stime 15.
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

fn ticks_per_second() -> f64 {
    let out = Command::new("getconf").arg("CLK_TCK").output().expect("getconf");
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(100.0)
}

fn report(what: &str, times: &[Duration], target: &str) {
    let mut sorted = times.to_vec();
    sorted.sort();
    let at = |p: f64| sorted[((sorted.len() - 1) as f64 * p).round() as usize];
    let ms = |d: Duration| format!("{:.1}ms", d.as_secs_f64() * 1000.0);
    println!(
        "{what}: median {}  p90 {}  min {}  max {}  ({} saves; target {target})",
        ms(at(0.5)),
        ms(at(0.9)),
        ms(sorted[0]),
        ms(sorted[sorted.len() - 1]),
        sorted.len()
    );
}
