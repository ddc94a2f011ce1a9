//! The lock holder's watch on the `distlock` process that started it, through a pidfd: it
//! becomes readable when that process is gone, however it died (SIGKILL included).
//!
//! A thread of its own waits on the pidfd (`poll` is a safe call; registering a raw fd
//! with tokio's reactor is not) and tells the async side through a watch channel.

use rustix::event::{poll, PollFd, PollFlags};
use rustix::io::Errno;
use rustix::process::{getppid, pidfd_open, Pid, PidfdFlags};
use tokio::sync::watch;

/// A watch on our parent process.
#[derive(Debug)]
pub(crate) struct ParentWatch {
    died: watch::Receiver<bool>,
}

impl ParentWatch {
    /// Watches `parent`, which must be our parent process; `Ok(None)` when it has already
    /// died (we were re-parented, so our parent is someone else by now).
    pub(crate) fn open(parent: Pid) -> std::io::Result<Option<Self>> {
        if getppid() != Some(parent) {
            return Ok(None);
        }
        let pidfd = pidfd_open(parent, PidfdFlags::empty())?;
        // Checked again after opening: had the parent died in between, its pid could be
        // another process's by now and the pidfd would watch a stranger.
        if getppid() != Some(parent) {
            return Ok(None);
        }
        let (tell, died) = watch::channel(false);
        std::thread::Builder::new()
            .name("distlock-parent-watch".into())
            .spawn(move || {
                let mut fds = [PollFd::new(&pidfd, PollFlags::IN)];
                // Any other error counts as a death: the command must not run on
                // unsupervised.
                while let Err(Errno::INTR) = poll(&mut fds, None) {}
                let _ = tell.send(true);
            })?;
        Ok(Some(ParentWatch { died }))
    }

    /// Resolves once the parent has died.
    ///
    /// # Cancel safety
    /// Cancel safe: it only observes.
    pub(crate) async fn died(&self) {
        let mut died = self.died.clone();
        // A closed channel (the thread is gone) counts as a death too.
        let _ = died.wait_for(|died| *died).await;
    }
}
