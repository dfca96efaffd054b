//! `clnrm-bench-testcontainers N TASKS IMAGE`: N one-step scenarios as a testcontainers-rs user
//! writes them, TASKS at a time: a fresh container of IMAGE, `echo hi` in it, its output checked,
//! the container removed. Prints the wall time in seconds.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use testcontainers::core::ExecCommand;
use testcontainers::runners::AsyncRunner;
use testcontainers::{GenericImage, ImageExt};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: clnrm-bench-testcontainers N TASKS IMAGE:TAG";
    let (n, tasks, image) = match &args[1..] {
        [n, tasks, image] => (n.parse::<usize>().expect(usage), tasks.parse::<usize>().expect(usage), image),
        _ => panic!("{usage}"),
    };
    let (name, tag) = image.split_once(':').expect(usage);
    let next = AtomicUsize::new(0);
    let started = Instant::now();
    futures_util::future::join_all((0..tasks).map(|_| async {
        while next.fetch_add(1, Ordering::Relaxed) < n {
            let container =
                GenericImage::new(name, tag).with_cmd(["sleep", "3600"]).start().await.expect("container started");
            let mut result = container.exec(ExecCommand::new(["echo", "hi"])).await.expect("exec");
            let stdout = result.stdout_to_vec().await.expect("stdout");
            assert_eq!(stdout, b"hi\n");
            container.rm().await.expect("container removed");
        }
    }))
    .await;
    println!("{:.3}", started.elapsed().as_secs_f64());
}
