//! A directory made read-only for real while a test runs.

use std::path::{Path, PathBuf};

/// The state directory made read-only for real, also for root (who ignores permission bits):
/// the immutable attribute (`chattr +i`, ext4/xfs/btrfs/tmpfs) refuses every new entry with
/// EPERM. Elsewhere, as a normal user, mode 0500 does it. Writable again when dropped.
pub struct ReadOnly(PathBuf);

impl ReadOnly {
    pub fn make(dir: &Path) -> ReadOnly {
        let guard = ReadOnly(dir.to_owned());
        let chattr = std::process::Command::new("chattr").arg("+i").arg(dir).status();
        if !matches!(chattr, Ok(s) if s.success()) || writable(dir) {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o500)).unwrap();
        }
        assert!(!writable(dir), "cannot make {} read-only here", dir.display());
        guard
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::process::Command::new("chattr").arg("-i").arg(&self.0).status();
        let _ = std::fs::set_permissions(&self.0, std::fs::Permissions::from_mode(0o700));
    }
}

fn writable(dir: &Path) -> bool {
    let probe = dir.join(".probe");
    let ok = std::fs::write(&probe, b"x").is_ok();
    let _ = std::fs::remove_file(probe);
    ok
}
