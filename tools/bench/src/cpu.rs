//! CPU time of the processes a measurement involves, from `/proc`: the service processes the
//! benchmark starts, PostgreSQL (the postmaster and every backend), the Kafka broker, the fake
//! egov-user and the benchmark itself; and how busy the whole box was.
//!
//! A process's CPU time is `utime + stime` of `/proc/<pid>/stat` plus `cutime + cstime` (its
//! waited-for children: PostgreSQL's backends, once their connection closes, land in the
//! postmaster's). A figure is the difference of two readings, in seconds.

use std::path::{Path, PathBuf};

/// Clock ticks per second of `/proc` times (`getconf CLK_TCK`; 100 on Linux).
fn ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// `(ppid, own + children's CPU seconds)` of `pid`, or `None` when it is gone.
fn stat(pid: u32, tick: f64) -> Option<(u32, f64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces: fields follow the last ')'.
    let rest = text.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is the state (field 3); ppid is field 4, utime..cstime are fields 14..17.
    let ppid = fields.get(1)?.parse().ok()?;
    let ticks: f64 = fields
        .get(11..15)?
        .iter()
        .filter_map(|f| f.parse::<f64>().ok())
        .sum();
    Some((ppid, ticks / tick))
}

/// CPU seconds of `pid` and, when `with_children`, of every live process whose parent it is.
fn tree_seconds(pid: u32, with_children: bool, tick: f64) -> Option<f64> {
    let (_, own) = stat(pid, tick)?;
    if !with_children {
        return Some(own);
    }
    let children: f64 = std::fs::read_dir("/proc")
        .ok()?
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|child| stat(child, tick))
        .filter(|(ppid, _)| *ppid == pid)
        .map(|(_, seconds)| seconds)
        .sum();
    Some(own + children)
}

/// The first line of a pid file (PostgreSQL's `postmaster.pid`, our `kafka.pid`).
fn pid_file(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path)
        .ok()?
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()
}

/// One metered process: a role name and how to find it.
#[derive(Clone)]
pub(crate) struct Metered {
    pub name: String,
    pid: u32,
    with_children: bool,
}

impl Metered {
    pub(crate) fn process(name: &str, pid: u32) -> Self {
        Self {
            name: name.to_owned(),
            pid,
            with_children: false,
        }
    }
}

/// The processes of the local stack that every measurement meters: PostgreSQL and Kafka (found
/// through the pid files under `state_dir`, as `scripts/services` writes them), this process.
pub(crate) fn local_stack(state_dir: &Path) -> Vec<Metered> {
    let mut metered = vec![Metered::process("bench", std::process::id())];
    if let Some(pid) = pid_file(&state_dir.join("postgres/data/postmaster.pid")) {
        metered.push(Metered {
            name: "postgres".into(),
            pid,
            with_children: true,
        });
    }
    if let Some(pid) = pid_file(&state_dir.join("kafka/kafka.pid")) {
        metered.push(Metered::process("kafka", pid));
    }
    metered
}

/// The state folder of `scripts/services`: `USER_OTP_LOCAL_DIR`, else `./.local`.
pub(crate) fn state_dir() -> PathBuf {
    std::env::var_os("USER_OTP_LOCAL_DIR").map_or_else(|| PathBuf::from(".local"), PathBuf::from)
}

/// Busy and total jiffies of the whole box (`/proc/stat`, first line; idle and iowait are not
/// busy).
fn box_jiffies() -> Option<(f64, f64)> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let values: Vec<f64> = text
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    let total: f64 = values.iter().take(8).sum();
    let idle = values.get(3)? + values.get(4)?;
    Some((total - idle, total))
}

/// A reading of every metered process and of the box, to subtract from a later one.
pub(crate) struct Meter {
    tick: f64,
    processes: Vec<(Metered, f64)>,
    box_start: Option<(f64, f64)>,
}

/// What a [`Meter`] measured: CPU seconds per process name, and the box's busy share.
pub(crate) struct Usage {
    pub seconds: Vec<(String, f64)>,
    pub box_busy: Option<f64>,
}

impl Usage {
    /// CPU seconds of the named process, if it was metered.
    pub(crate) fn of(&self, name: &str) -> Option<f64> {
        self.seconds
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, s)| *s)
            .reduce(|a, b| a + b)
    }
}

impl Meter {
    /// Starts metering `processes` (a process started after this reading counts from zero).
    pub(crate) fn start(processes: &[Metered]) -> Self {
        let tick = ticks_per_second();
        Self {
            tick,
            processes: processes
                .iter()
                .map(|p| {
                    let now = tree_seconds(p.pid, p.with_children, tick).unwrap_or(0.0);
                    (p.clone(), now)
                })
                .collect(),
            box_start: box_jiffies(),
        }
    }

    /// Adds a process started after [`Meter::start`] (counted from zero).
    pub(crate) fn add(&mut self, process: Metered) {
        self.processes.push((process, 0.0));
    }

    /// CPU seconds used since the start by each process still there, and the box's busy share.
    pub(crate) fn read(&self) -> Usage {
        let seconds = self
            .processes
            .iter()
            .filter_map(|(p, start)| {
                let now = tree_seconds(p.pid, p.with_children, self.tick)?;
                Some((p.name.clone(), (now - start).max(0.0)))
            })
            .collect();
        let box_busy = match (self.box_start, box_jiffies()) {
            (Some((b0, t0)), Some((b1, t1))) if t1 > t0 => Some((b1 - b0) / (t1 - t0)),
            _ => None,
        };
        Usage { seconds, box_busy }
    }
}

/// How busy the box is over `window` before a measurement starts (0..1).
pub(crate) async fn box_busy_over(window: std::time::Duration) -> Option<f64> {
    let before = box_jiffies()?;
    tokio::time::sleep(window).await;
    let after = box_jiffies()?;
    (after.1 > before.1).then(|| (after.0 - before.0) / (after.1 - before.1))
}
