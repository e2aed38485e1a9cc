//! The app image as the Supervisor starts it, run with buildah (there is no Docker engine on the
//! CI machine): a container from the image, the image's own entrypoint and command, `/data`
//! bind-mounted, the environment the Supervisor gives, and the host's network, where the fakes
//! listen on loopback ports.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::Value;

use super::broker::unsafe_kill;
use super::process::Proc;

/// The image under test, named by `.ci/addon-image.sh` when it runs these tests.
pub const IMAGE_VAR: &str = "ADDON_IMAGE";

pub fn image() -> String {
    std::env::var(IMAGE_VAR)
        .unwrap_or_else(|_| panic!("{IMAGE_VAR} names the image to test; .ci/addon-image.sh sets it"))
}

/// buildah with the storage driver that works without overlay support (as in CI's containers).
fn buildah() -> Command {
    let mut cmd = Command::new("buildah");
    cmd.args(["--storage-driver", "vfs"]);
    cmd
}

fn buildah_output(args: &[&str]) -> String {
    let output = buildah()
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("buildah {args:?}: {e}"));
    assert!(
        output.status.success(),
        "buildah {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// A working container of the image, removed when dropped.
pub struct Container {
    name: String,
    command: Vec<String>,
}

impl Container {
    pub fn of(image: &str) -> Container {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "meter2mqtt-it-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        buildah_output(&["from", "--quiet", "--pull=never", "--name", &name, image]);
        let config: Value = serde_json::from_str(&buildah_output(&["inspect", "--type", "image", image])).unwrap();
        let strings = |key: &str| -> Vec<String> {
            config["OCIv1"]["config"][key]
                .as_array()
                .into_iter()
                .flatten()
                .map(|v| v.as_str().unwrap().to_owned())
                .collect()
        };
        // What Docker runs: the entrypoint followed by the command.
        let mut command = strings("Entrypoint");
        command.extend(strings("Cmd"));
        assert!(!command.is_empty(), "the image has neither entrypoint nor command");
        Container { name, command }
    }

    /// The image's entrypoint and command, as the Supervisor starts them.
    pub fn start(&self, data: &Path, env: &[(&str, &str)]) -> Running {
        let mut cmd = buildah();
        cmd.args(["run", "--isolation", "chroot", "--network", "host", "--volume"])
            .arg(format!("{}:/data", data.display()));
        for (key, value) in env {
            cmd.arg("--env").arg(format!("{key}={value}"));
        }
        cmd.arg(&self.name).arg("--").args(&self.command);
        Running {
            proc: Proc::spawn_command(cmd),
            program: self.command[0].rsplit('/').next().unwrap().to_owned(),
        }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        // A container left behind costs disk space only; .ci/addon-image.sh clears such leftovers.
        if let Ok(out) = buildah().args(["rm", &self.name]).output() {
            if !out.status.success() {
                eprintln!("buildah rm {}: {}", self.name, String::from_utf8_lossy(&out.stderr));
            }
        }
    }
}

/// `buildah run` and, below it, the image's program.
pub struct Running {
    /// The `buildah run` process: the program's output and exit code.
    pub proc: Proc,
    program: String,
}

impl Running {
    /// The program inside the container, as Docker's PID 1 would be: buildah's chroot isolation
    /// starts it as a descendant of the `buildah run` process, in the host's PID namespace.
    pub async fn program_pid(&self) -> u32 {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(pid) = descendant_named(self.proc.child.id(), &self.program) {
                return pid;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} did not start in the container:\n{}",
                self.program,
                self.proc.text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Running {
    /// buildah cannot pass SIGKILL on: a test that failed half-way kills the program itself.
    fn drop(&mut self) {
        if let Some(pid) = descendant_named(self.proc.child.id(), &self.program) {
            unsafe_kill(pid, "KILL");
        }
    }
}

/// `comm` and parent of a process, from `/proc/<pid>/stat`.
fn stat(pid: u32) -> Option<(String, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (open, close) = (stat.find('(')?, stat.rfind(')')?);
    let comm = stat[open + 1..close].to_owned();
    let parent = stat[close + 2..].split(' ').nth(1)?.parse().ok()?;
    Some((comm, parent))
}

fn descendant_named(ancestor: u32, name: &str) -> Option<u32> {
    let pids = std::fs::read_dir("/proc")
        .ok()?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok());
    pids.into_iter().find(|&pid| {
        let Some((comm, mut parent)) = stat(pid) else {
            return false;
        };
        if comm != name {
            return false;
        }
        while parent > 1 {
            if parent == ancestor {
                return true;
            }
            parent = match stat(parent) {
                Some((_, p)) => p,
                None => return false,
            };
        }
        false
    })
}

/// `VmRSS` and `VmHWM` (peak) of a process, in KiB.
pub fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} in /proc/{pid}/status"))
    };
    (field("VmRSS:"), field("VmHWM:"))
}
