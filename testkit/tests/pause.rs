//! `pause` returns only once the process is frozen.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::path::PathBuf;

use distlock_testkit::process::all_threads_stopped;
use distlock_testkit::{scratch_dir, ServerProcess, Spec};

#[test]
fn pause_returns_once_every_thread_is_stopped() {
    let dir = scratch_dir("pause").unwrap();
    let mut busy = ServerProcess::start(Spec {
        label: "busy".into(),
        program: PathBuf::from("/bin/sh"),
        args: vec!["-c".into(), "while :; do :; done".into()],
        env: Vec::new(),
        log: dir.join("busy.log"),
        cwd: None,
    })
    .unwrap();
    let pid = busy.pid().unwrap();
    for _ in 0..20 {
        busy.pause();
        assert!(all_threads_stopped(pid), "pause returned before the stop");
        busy.resume();
    }
    assert!(busy.is_running());
    busy.kill();
}
