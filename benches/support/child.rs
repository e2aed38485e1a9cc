//! The benchmarks' child process: its figures from `/proc` and a clean stop.

use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// The first number after `field` in a `/proc` file such as `/proc/<pid>/status` or `io`.
pub fn proc_field(file: &str, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(file).ok()?;
    let line = text.lines().find(|l| l.starts_with(field))?;
    line[field.len()..].split_whitespace().next()?.parse().ok()
}

/// SIGTERM, as a user's service manager would send it; killed after 30 s without an exit.
pub fn stop(child: &mut Child) {
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("  meter2mqtt ignored SIGTERM for 30 s; killing it");
    let _ = child.kill();
    let _ = child.wait();
}
