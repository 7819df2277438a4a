//! What the lab tests share: the binary, the lab held under a lock, and the ground truth.
#![allow(dead_code)]

use std::fs::File;
use std::os::fd::AsRawFd;
use std::process::{Command, Output, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_dane-survey");
pub const RESOLVER: &str = "127.53.0.53";

pub fn dane_survey(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run dane-survey")
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Holds the lab for the test; takes it down on drop (also on panic) if this test started it.
pub struct Lab {
    started_here: bool,
    _lock: File,
}

impl Lab {
    pub fn up() -> Lab {
        let lock = File::create(std::env::temp_dir().join("dane-survey-lab.lock")).unwrap();
        // SAFETY: flock on a file descriptor we own.
        assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) }, 0);
        let out = dane_survey(&["lab", "up"]);
        assert!(
            out.status.success(),
            "lab up failed: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        let started_here = !text(&out.stdout).contains("already up");
        // Idempotent: a second `up` finds it healthy and starts nothing.
        let again = dane_survey(&["lab", "up"]);
        assert!(again.status.success());
        assert!(
            text(&again.stdout).contains("already up"),
            "{}",
            text(&again.stdout)
        );
        Lab {
            started_here,
            _lock: lock,
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if self.started_here {
            let out = dane_survey(&["lab", "down"]);
            assert!(out.status.success(), "lab down: {}", text(&out.stderr));
            let st = dane_survey(&["lab", "status"]);
            assert!(!st.status.success(), "lab still healthy after down");
        }
    }
}

pub struct Truth {
    pub domain: String,
    pub verdict: String,
    pub all_hosts: String,
    pub provider: String,
}

pub fn ground_truth() -> Vec<Truth> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/lab/ground-truth.tsv");
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert!(f.len() >= 4, "bad ground-truth line {l:?}");
            Truth {
                domain: f[0].into(),
                verdict: f[1].into(),
                all_hosts: f[2].into(),
                provider: f[3].into(),
            }
        })
        .collect()
}
