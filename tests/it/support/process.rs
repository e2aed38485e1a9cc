//! The binary as a separate process, as a user runs it.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::broker::unsafe_kill;

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_meter2mqtt"))
}

/// The binary as a separate process, its stdout and stderr collected line by line.
pub struct Proc {
    pub child: Child,
    pub lines: Arc<Mutex<Vec<String>>>,
}

impl Proc {
    pub fn spawn(args: &[&str], env: &[(&str, &str)]) -> Proc {
        let mut cmd = Command::new(bin());
        cmd.args(args).env_remove("METER2MQTT_LOG");
        for (k, v) in env {
            cmd.env(k, v);
        }
        Proc::spawn_command(cmd)
    }

    /// Any command (the image's, through buildah), its output collected as the binary's is.
    pub fn spawn_command(mut cmd: Command) -> Proc {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
        let lines = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            Box::new(child.stderr.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stdout.take().unwrap()),
        ] {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    lines.lock().unwrap().push(line);
                }
            });
        }
        Proc { child, lines }
    }

    pub fn text(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    pub async fn wait_for_line(&self, what: &str, count: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while self.lines.lock().unwrap().iter().filter(|l| l.contains(what)).count() < count {
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what:?} in:\n{}",
                self.text()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn wait_exit(&mut self, limit: Duration) -> i32 {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "process still running after {limit:?}:\n{}",
                self.text()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Proc {
    /// SIGTERM, then the exit code (it must come within `limit`).
    pub async fn terminate(&mut self, limit: Duration) -> i32 {
        unsafe_kill(self.child.id(), "TERM");
        self.wait_exit(limit).await
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
