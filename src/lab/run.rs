//! Starting, tracking and stopping the lab's servers — by pid, never by name.

use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::build::run;

/// The environment variable every process the lab starts carries, naming the lab directory:
/// `down` checks it in `/proc/PID/environ` before it signals a pid, so a recycled pid that now
/// belongs to someone else is never touched.
const MARKER_VAR: &str = "DANE_SURVEY_LAB";

/// One process the lab started.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Tracked {
    /// What it is (`nsd-root`, `unbound`, `postfix`).
    pub name: String,
    /// Its pid.
    pub pid: i32,
    /// A `KEY=VALUE` line that must be in its `/proc/PID/environ`.
    pub marker: String,
}

/// The lab's process table, persisted as `pids.json` in the lab directory.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Pids {
    /// The processes, in start order.
    pub processes: Vec<Tracked>,
}

impl Pids {
    fn path(dir: &Path) -> PathBuf {
        dir.join("pids.json")
    }

    /// Loads the table (empty when there is none).
    pub fn load(dir: &Path) -> Result<Pids> {
        match fs::read(Self::path(dir)) {
            Ok(b) => serde_json::from_slice(&b).context("pids.json is corrupt"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Pids::default()),
            Err(e) => Err(e.into()),
        }
    }

    /// Saves the table atomically.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let tmp = dir.join("pids.json.tmp");
        fs::write(&tmp, serde_json::to_vec_pretty(self)?)?;
        fs::rename(&tmp, Self::path(dir))?;
        Ok(())
    }
}

/// Whether `pid` is alive, not a zombie, and carries `marker` in its environment.
pub fn is_ours(pid: i32, marker: &str) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state follows the last ')' (the command name may itself contain parentheses).
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, r)| r.split_whitespace().next());
    if matches!(state, Some("Z") | Some("X") | None) {
        return false;
    }
    fs::read(format!("/proc/{pid}/environ"))
        .map(|env| env.split(|b| *b == 0).any(|kv| kv == marker.as_bytes()))
        .unwrap_or(false)
}

fn marker(dir: &Path) -> String {
    format!("{MARKER_VAR}={}", dir.display())
}

/// Starts a foreground daemon in its own process group, logging to `log`, and tracks it.
fn spawn(pids: &mut Pids, dir: &Path, name: &str, cmd: &mut Command, log: &Path) -> Result<()> {
    let out = fs::File::create(log)?;
    let child = cmd
        .env(MARKER_VAR, dir)
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .process_group(0)
        .spawn()
        .with_context(|| format!("cannot start {name}"))?;
    pids.processes.push(Tracked {
        name: name.into(),
        pid: child.id() as i32,
        marker: marker(dir),
    });
    pids.save(dir)
}

/// Starts nsd ×3, unbound and Postfix from the generated configuration.
pub fn start_all(dir: &Path) -> Result<Pids> {
    let mut pids = Pids::default();
    for level in ["root", "tld", "sld"] {
        let d = dir.join(format!("nsd-{level}"));
        spawn(
            &mut pids,
            dir,
            &format!("nsd-{level}"),
            Command::new("nsd")
                .arg("-d")
                .arg("-c")
                .arg(d.join("nsd.conf")),
            &d.join("stderr.log"),
        )?;
    }
    let ub = dir.join("unbound");
    spawn(
        &mut pids,
        dir,
        "unbound",
        Command::new("unbound")
            .arg("-d")
            .arg("-c")
            .arg(ub.join("unbound.conf")),
        &ub.join("stderr.log"),
    )?;
    // The hostile SMTP servers: this very binary, in its hidden `lab hostile-smtpd` mode.
    let exe = std::env::current_exe().context("cannot find the dane-survey binary")?;
    spawn(
        &mut pids,
        dir,
        "hostile",
        Command::new(exe).args(["lab", "hostile-smtpd"]),
        &dir.join("hostile.log"),
    )?;
    // Postfix daemonises itself; its master writes its pid where we can read it back, and
    // carries its queue directory in its environment (our marker for it).
    let pf = dir.join("postfix");
    run(Command::new("postfix")
        .arg("-c")
        .arg(&pf)
        .arg("start")
        .env(MARKER_VAR, dir))
    .context("starting postfix")?;
    let pidfile = pf.join("spool/pid/master.pid");
    let deadline = Instant::now() + Duration::from_secs(10);
    let pid = loop {
        if let Some(pid) = fs::read_to_string(&pidfile)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
        {
            break pid;
        }
        if Instant::now() > deadline {
            bail!("postfix started but wrote no {}", pidfile.display());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    pids.processes.push(Tracked {
        name: "postfix".into(),
        pid,
        marker: format!("queue_directory={}", pf.join("spool").display()),
    });
    pids.save(dir)?;
    Ok(pids)
}

/// Stops exactly the tracked processes: SIGTERM, then SIGKILL after five seconds.
/// Returns the names of those that were running.
pub fn stop_all(dir: &Path) -> Result<Vec<String>> {
    let pids = Pids::load(dir)?;
    let mut stopped = Vec::new();
    for p in pids.processes.iter().rev() {
        if is_ours(p.pid, &p.marker) {
            terminate(&[p.pid], &p.marker);
            stopped.push(p.name.clone());
        }
    }
    // Children outlive a parent by a moment (Postfix's smtpd processes hold the listening
    // sockets until they notice their master is gone). They inherited the marker, so stop
    // those too — by marker, never by name — before saying the lab is down.
    let mut markers: Vec<&str> = pids.processes.iter().map(|p| p.marker.as_str()).collect();
    markers.sort_unstable();
    markers.dedup();
    for m in markers {
        let left = processes_with(m);
        if !left.is_empty() {
            terminate(&left, m);
        }
    }
    let _ = fs::remove_file(Pids::path(dir));
    Ok(stopped)
}

/// Every live process whose environment holds `marker`.
fn processes_with(marker: &str) -> Vec<i32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != std::process::id() as i32 && is_ours(pid, marker))
        .collect()
}

/// SIGTERM to each pid, then SIGKILL to whoever still carries `marker` after five seconds.
fn terminate(pids: &[i32], marker: &str) {
    for &pid in pids {
        // SAFETY: kill(2) on a pid whose environment carries our marker; no memory involved.
        unsafe { libc::kill(pid, libc::SIGTERM) };
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while pids.iter().any(|&p| is_ours(p, marker)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    for &pid in pids {
        if is_ours(pid, marker) {
            // SAFETY: as above.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// Fails with the name of whatever already holds one of the lab's addresses.
pub fn ports_free(addrs: &[SocketAddr]) -> Result<()> {
    for a in addrs {
        if TcpStream::connect_timeout(a, Duration::from_millis(200)).is_ok() {
            bail!(
                "{a} is already in use by another process; stop it (or `dane-survey lab down` \
                 with the --dir of the lab that owns it) before `lab up`"
            );
        }
    }
    Ok(())
}
