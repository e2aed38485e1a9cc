//! Capturing what the code under test logs. One subscriber serves the whole test binary (every
//! level, websocket frames capped as the daemon caps them) and writes each event to the
//! captures active on the thread that emitted it. Per-test subscribers would race: tracing
//! decides process-wide which call sites are enabled, so one test's filter could silence
//! another's. Tests that capture run on a current-thread runtime, where their spawned tasks log
//! on the same thread.

use std::cell::RefCell;
use std::io::Write;
use std::sync::{Arc, Mutex, Once};

type Buffer = Arc<Mutex<Vec<u8>>>;

thread_local! {
    static ACTIVE: RefCell<Vec<Buffer>> = const { RefCell::new(Vec::new()) };
}

#[derive(Clone, Default)]
pub struct Logs(Buffer);

/// Capturing stops when this drops.
pub struct Capturing(Buffer);

impl Drop for Capturing {
    fn drop(&mut self) {
        ACTIVE.with(|active| active.borrow_mut().retain(|b| !Arc::ptr_eq(b, &self.0)));
    }
}

impl Logs {
    /// Starts capturing everything logged on this thread until the guard drops.
    pub fn capture() -> (Logs, Capturing) {
        install();
        let logs = Logs::default();
        ACTIVE.with(|active| active.borrow_mut().push(logs.0.clone()));
        (logs.clone(), Capturing(logs.0))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// The captured lines at WARN level.
    pub fn warnings(&self) -> Vec<String> {
        self.text()
            .lines()
            .filter(|l| l.contains(" WARN "))
            .map(str::to_owned)
            .collect()
    }
}

/// Writes to every capture of the current thread; nowhere when there is none.
struct ThreadWriter;

impl Write for ThreadWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        ACTIVE.with(|active| {
            for buffer in active.borrow().iter() {
                buffer.lock().unwrap().extend_from_slice(buf);
            }
        });
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn install() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let filter = std::iter::once("trace")
            .chain(meter2mqtt::homeassistant::LOG_DIRECTIVES.iter().copied())
            .collect::<Vec<_>>()
            .join(",");
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_ansi(false)
            .with_writer(|| ThreadWriter)
            .try_init()
            .expect("the only subscriber of the test binary");
    });
}
