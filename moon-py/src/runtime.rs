//! The one way a native call blocks: on a shared Tokio runtime, with the GIL
//! released, interruptible by Ctrl-C, and with panics turned into exceptions.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use moon_core::Error;
use pyo3::prelude::*;
use tokio::runtime::{Builder, Runtime};

use crate::errors::{panic_to_py_err, to_py_err};

/// How long a blocking call runs before it takes the GIL back to let Python
/// run its signal handlers: short enough that Ctrl-C feels immediate.
const SLICE: Duration = Duration::from_millis(100);

/// The moon work of a process is I/O bound (a Unix socket, SQLite, log
/// files); two workers keep watches and log follows going while one client
/// call blocks in SQLite.
const WORKER_THREADS: usize = 2;

/// The runtime and the process that created it.
static RUNTIME: Mutex<Option<(u32, Arc<Runtime>)>> = Mutex::new(None);

/// The process's runtime, created on first use and again in a child after
/// `os.fork()`, which inherits the parent's runtime but none of its threads.
fn runtime() -> std::io::Result<Arc<Runtime>> {
    let pid = std::process::id();
    let mut slot = RUNTIME.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((owner, runtime)) = slot.as_ref()
        && *owner == pid
    {
        return Ok(runtime.clone());
    }
    if let Some((_, inherited)) = slot.take() {
        // Dropping it would wait for worker threads that only exist in the
        // parent; leaking it costs the child a little memory.
        std::mem::forget(inherited);
    }
    let runtime = Arc::new(
        Builder::new_multi_thread()
            .worker_threads(WORKER_THREADS)
            .thread_name("moon-runtime")
            .enable_all()
            .build()?,
    );
    *slot = Some((pid, runtime.clone()));
    Ok(runtime)
}

/// Starts `future` on the process's runtime, for work that outlives one call (an upload that
/// Python feeds chunk by chunk).
pub(crate) fn spawn<F>(future: F) -> std::io::Result<tokio::task::JoinHandle<F::Output>>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    Ok(runtime()?.spawn(future))
}

/// Runs `future` to completion for Python.
///
/// The GIL is released while it runs, so other Python threads go on. It is
/// polled in slices of [`SLICE`]; between slices the GIL is taken back to
/// run signal handlers, so Ctrl-C raises `KeyboardInterrupt` (dropping, and
/// so cancelling, the future) however long the call would otherwise take.
/// Errors become the exceptions of `moon.errors`; a panic becomes a
/// `MoonError` instead of unwinding into the interpreter.
pub(crate) fn run<F, T>(py: Python<'_>, future: F) -> PyResult<T>
where
    F: Future<Output = moon_core::Result<T>> + Send,
    T: Send,
{
    let runtime = runtime()
        .map_err(|error| to_py_err(py, Error::io("starting moon's async runtime", "", error)))?;
    let mut future = std::pin::pin!(future);
    loop {
        let slice = py.detach(|| {
            catch_unwind(AssertUnwindSafe(|| {
                // The timer must be made inside the runtime, which it registers with.
                runtime.block_on(async { tokio::time::timeout(SLICE, future.as_mut()).await })
            }))
        });
        match slice {
            Ok(Ok(Ok(value))) => return Ok(value),
            Ok(Ok(Err(error))) => return Err(to_py_err(py, error)),
            Ok(Err(_unfinished)) => py.check_signals()?,
            Err(payload) => return Err(panic_to_py_err(py, payload)),
        }
    }
}
