//! Ctrl-C for long commands: the first SIGINT asks them to stop (a swarm finishes the
//! seeds running and prints the partial report); a second one ends the process as usual.
//! It only sets a flag; the commands decide what stopping means.

use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);

/// Exit code of a command stopped by Ctrl-C (128 + SIGINT, as shells report it).
pub const EXIT_INTERRUPTED: u8 = 130;

/// Whether Ctrl-C asked the command to stop.
pub fn requested() -> bool {
    STOP.load(Ordering::Relaxed)
}

#[cfg(unix)]
extern "C" fn on_sigint(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
    // SAFETY: `signal` is async-signal-safe; restoring the default lets a second Ctrl-C
    // end the process at once.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_DFL);
    }
}

/// Catches the first Ctrl-C from now on.
pub fn catch() {
    #[cfg(unix)]
    // SAFETY: the handler only stores to an atomic and calls `signal`, both
    // async-signal-safe.
    unsafe {
        libc::signal(
            libc::SIGINT,
            on_sigint as extern "C" fn(libc::c_int) as libc::sighandler_t,
        );
    }
}
