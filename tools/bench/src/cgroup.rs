//! CPU caps for the per-pod part: a capped service process runs in a cgroup of its own with a
//! CFS quota, the way a Kubernetes CPU limit (`limits.cpu: 200m`) caps a pod's container: at
//! most `quota` µs of CPU time per `period` µs of wall time (0.2 vCPU = 20,000 µs per
//! 100,000 µs), however many threads it runs.
//!
//! Where the cgroups go:
//! - cgroup v1 (preferred when mounted): the hierarchy with the `cpu` controller (usually
//!   `/sys/fs/cgroup/cpu` or `/sys/fs/cgroup/cpu,cpuacct`), a child
//!   `<mount>/user-otp-bench/<role>_<12 hex>/` with `cpu.cfs_period_us` and `cpu.cfs_quota_us`;
//! - cgroup v2, only when no v1 `cpu` hierarchy is mounted: the unified hierarchy's mount root,
//!   `+cpu` written to the `cgroup.subtree_control` of the root and of `user-otp-bench`, a child
//!   `<mount>/user-otp-bench/<role>_<12 hex>/` with `cpu.max` = `"<quota> <period>"`.
//!
//! A process joins its cgroup by writing its pid to `cgroup.procs` right after it is spawned
//! (the few milliseconds of `exec` before that run uncapped; start-up is no part of any figure).
//! The cgroup is removed (`rmdir`) when its [`Cgroup`] is dropped, after its process has exited;
//! `user-otp-bench clean` removes what a killed run left ([`remove_leftovers`]). Without a
//! writable cpu controller (not root, no such hierarchy) [`Controller::find`] says why, and the
//! per-pod part is skipped.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};

/// The folder under a hierarchy's mount point that holds every cgroup the benchmark makes.
pub(crate) const PARENT: &str = "user-otp-bench";

/// The CFS period of every cap, in µs (the kernel's and Kubernetes' default).
pub(crate) const PERIOD_US: u64 = 100_000;

/// The kernel's smallest CFS quota, in µs.
const MIN_QUOTA_US: u64 = 1_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    V1,
    V2,
}

impl Version {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::V1 => "v1",
            Self::V2 => "v2",
        }
    }
}

/// A CPU limit: `quota_us` of CPU time per `period_us` of wall time, both in µs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Quota {
    pub quota_us: u64,
    pub period_us: u64,
}

impl Quota {
    /// `vcpu` cores over a [`PERIOD_US`] period (0.2 → 20,000 µs per 100,000 µs).
    ///
    /// # Errors
    /// When `vcpu` is not a positive number or gives less than the kernel's 1 ms minimum quota.
    pub(crate) fn from_vcpu(vcpu: f64) -> anyhow::Result<Self> {
        if !vcpu.is_finite() || vcpu <= 0.0 {
            bail!("a CPU cap must be a positive number of vCPU, not {vcpu}");
        }
        let quota_us = (vcpu * PERIOD_US as f64).round() as u64;
        if quota_us < MIN_QUOTA_US {
            bail!("{vcpu} vCPU is below the kernel's smallest quota (0.01 vCPU)");
        }
        Ok(Self {
            quota_us,
            period_us: PERIOD_US,
        })
    }

    /// Cores this quota allows (quota / period).
    pub(crate) fn vcpu(self) -> f64 {
        self.quota_us as f64 / self.period_us as f64
    }

    /// The vCPU as figure names carry it: `0.2`, `0.25`, `1`.
    pub(crate) fn label(self) -> String {
        format!("{}", self.vcpu())
    }

    /// cgroup v2's `cpu.max`: `"<quota> <period>"`.
    pub(crate) fn cpu_max(self) -> String {
        format!("{} {}", self.quota_us, self.period_us)
    }

    /// As the environment map records it: `20000/100000 µs (0.2 vCPU)`.
    pub(crate) fn describe(self) -> String {
        format!(
            "{}/{} µs ({} vCPU)",
            self.quota_us,
            self.period_us,
            self.label()
        )
    }
}

/// A cpu controller this process can make cgroups in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Controller {
    pub version: Version,
    /// The hierarchy's mount point (cgroups go under `<mount>/user-otp-bench/`).
    pub mount: PathBuf,
}

/// The hierarchy to use, from `/proc/self/mountinfo`: the v1 one whose super options name the
/// `cpu` controller, else the v2 (unified) one; `None` when neither is mounted. Whether v2 offers
/// the cpu controller is checked apart ([`offers_cpu`]).
fn choose(mountinfo: &str) -> Option<(Version, PathBuf)> {
    let mut v2 = None;
    for line in mountinfo.lines() {
        // `<id> <parent> <dev> <root> <mount point> <options> [optional…] - <fstype> <source> <super options>`
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let Some(mount) = left.split_whitespace().nth(4) else {
            continue;
        };
        let mut right = right.split_whitespace();
        let (fstype, super_options) = (right.next(), right.nth(1).unwrap_or_default());
        match fstype {
            Some("cgroup") if super_options.split(',').any(|o| o == "cpu") => {
                return Some((Version::V1, PathBuf::from(mount)));
            }
            Some("cgroup2") if v2.is_none() => v2 = Some(PathBuf::from(mount)),
            _ => {}
        }
    }
    v2.map(|mount| (Version::V2, mount))
}

/// Whether a v2 `cgroup.controllers` line lists `cpu`.
fn offers_cpu(controllers: &str) -> bool {
    controllers.split_whitespace().any(|c| c == "cpu")
}

impl Controller {
    /// The cpu controller of this machine, made ready (`user-otp-bench/` created, on v2 the cpu
    /// controller enabled for its children); `Err` says why there is none usable.
    pub(crate) fn find() -> Result<Self, String> {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| format!("cannot read /proc/self/mountinfo: {e}"))?;
        let (version, mount) =
            choose(&mountinfo).ok_or("no cgroup hierarchy with a cpu controller is mounted")?;
        let controller = Self { version, mount };
        controller.prepare().map_err(|e| {
            format!(
                "cgroup {} at {}: {e:#}",
                version.label(),
                controller.mount.display()
            )
        })?;
        Ok(controller)
    }

    fn parent(&self) -> PathBuf {
        self.mount.join(PARENT)
    }

    fn prepare(&self) -> anyhow::Result<()> {
        let parent = self.parent();
        match self.version {
            Version::V1 => {
                std::fs::create_dir_all(&parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
                if !parent.join("cpu.cfs_quota_us").exists() {
                    bail!("{} has no cpu.cfs_quota_us", parent.display());
                }
            }
            Version::V2 => {
                let controllers = std::fs::read_to_string(self.mount.join("cgroup.controllers"))
                    .context("reading cgroup.controllers")?;
                if !offers_cpu(&controllers) {
                    bail!(
                        "the cpu controller is not available (cgroup.controllers: {controllers:?})"
                    );
                }
                write(&self.mount.join("cgroup.subtree_control"), "+cpu")?;
                std::fs::create_dir_all(&parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
                write(&parent.join("cgroup.subtree_control"), "+cpu")?;
            }
        }
        Ok(())
    }

    /// A new cgroup `user-otp-bench/<role>_<12 hex>` capped at `quota`.
    ///
    /// # Errors
    /// When the folder cannot be made or the quota is refused.
    pub(crate) fn create(&self, role: &str, quota: Quota) -> anyhow::Result<Cgroup> {
        // Again each time: the last cgroup dropped removes `user-otp-bench/` too.
        self.prepare()?;
        let path = self.parent().join(crate::env::unique(role));
        std::fs::create_dir(&path).with_context(|| format!("creating {}", path.display()))?;
        // From here on the folder is removed again on every path.
        let cgroup = Cgroup { path };
        match self.version {
            Version::V1 => {
                write(
                    &cgroup.path.join("cpu.cfs_period_us"),
                    &quota.period_us.to_string(),
                )?;
                write(
                    &cgroup.path.join("cpu.cfs_quota_us"),
                    &quota.quota_us.to_string(),
                )?;
            }
            Version::V2 => write(&cgroup.path.join("cpu.max"), &quota.cpu_max())?,
        }
        Ok(cgroup)
    }
}

/// A controller and the quota every process capped with it gets (one cgroup each).
#[derive(Debug, Clone)]
pub(crate) struct Cap {
    pub controller: Controller,
    pub quota: Quota,
}

impl Cap {
    /// A new cgroup for process `pid` (named after its `role`), with the process in it.
    ///
    /// # Errors
    /// When the cgroup cannot be made or the process cannot be moved into it.
    pub(crate) fn apply(&self, role: &str, pid: u32) -> anyhow::Result<Cgroup> {
        let cgroup = self.controller.create(role, self.quota)?;
        cgroup
            .add(pid)
            .with_context(|| format!("capping {role} (pid {pid})"))?;
        Ok(cgroup)
    }
}

/// A capped service process's cgroup; removed when dropped (drop it after the process exited).
pub(crate) struct Cgroup {
    path: PathBuf,
}

/// How often the CFS throttled a cgroup (its `cpu.stat`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Throttling {
    /// Enforcement periods in which the cgroup had something to run.
    pub periods: u64,
    /// Of those, periods in which it used up its quota and was stopped until the next.
    pub throttled: u64,
}

impl Throttling {
    /// The sum of several cgroups' counts.
    pub(crate) fn add(self, other: Self) -> Self {
        Self {
            periods: self.periods + other.periods,
            throttled: self.throttled + other.throttled,
        }
    }

    /// The counts since an `earlier` reading of the same cgroup.
    pub(crate) fn since(self, earlier: Self) -> Self {
        Self {
            periods: self.periods.saturating_sub(earlier.periods),
            throttled: self.throttled.saturating_sub(earlier.throttled),
        }
    }

    /// Share of the periods that were throttled, in % (`None` before any period).
    pub(crate) fn pct(self) -> Option<f64> {
        (self.periods > 0).then(|| self.throttled as f64 * 100.0 / self.periods as f64)
    }
}

/// `nr_periods` and `nr_throttled` of a `cpu.stat` (the same keys on v1 and v2).
fn parse_throttling(stat: &str) -> Throttling {
    let value = |key: &str| {
        stat.lines()
            .filter_map(|l| l.split_once(' '))
            .find(|(k, _)| *k == key)
            .and_then(|(_, v)| v.trim().parse().ok())
            .unwrap_or(0)
    };
    Throttling {
        periods: value("nr_periods"),
        throttled: value("nr_throttled"),
    }
}

impl Cgroup {
    /// Moves process `pid` (all its threads) into this cgroup.
    ///
    /// # Errors
    /// When the kernel refuses (the process is gone, or not ours to move).
    pub(crate) fn add(&self, pid: u32) -> anyhow::Result<()> {
        write(&self.path.join("cgroup.procs"), &pid.to_string())
    }

    /// The throttling so far (zeros when `cpu.stat` cannot be read).
    pub(crate) fn throttling(&self) -> Throttling {
        std::fs::read_to_string(self.path.join("cpu.stat"))
            .map(|s| parse_throttling(&s))
            .unwrap_or_default()
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        if !remove_dir_retrying(&self.path) {
            eprintln!(
                "WARNING: could not remove cgroup {} (scripts/bench clean removes it later)",
                self.path.display()
            );
        }
        // The parent goes too once the last child is gone (another run's children keep it).
        if let Some(parent) = self.path.parent() {
            let _ = std::fs::remove_dir(parent);
        }
    }
}

/// `rmdir`, retried for up to 1 s: a cgroup is busy until its last task is fully gone.
fn remove_dir_retrying(path: &Path) -> bool {
    for _ in 0..50 {
        match std::fs::remove_dir(path) {
            Ok(()) => return true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return true,
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    false
}

fn write(path: &Path, value: &str) -> anyhow::Result<()> {
    std::fs::write(path, value).with_context(|| format!("writing {value:?} to {}", path.display()))
}

/// Removes every `user-otp-bench` cgroup an earlier run left, under every cpu hierarchy mounted
/// (v1 and v2), then `user-otp-bench` itself. Returns (removed, still busy: a process of a killed
/// run still runs in it).
pub(crate) fn remove_leftovers() -> (usize, usize) {
    let Ok(mountinfo) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return (0, 0);
    };
    let mut mounts: Vec<PathBuf> = Vec::new();
    mounts.extend(choose(&mountinfo).map(|(_, m)| m));
    // The v2 hierarchy too, when v1 was chosen above (a run on another setup may have used it).
    let v2_only: String = mountinfo
        .lines()
        .filter(|l| l.contains(" - cgroup2 "))
        .collect::<Vec<_>>()
        .join("\n");
    mounts.extend(choose(&v2_only).map(|(_, m)| m));
    let (mut removed, mut busy) = (0, 0);
    for parent in mounts.iter().map(|m| m.join(PARENT)) {
        let Ok(children) = std::fs::read_dir(&parent) else {
            continue;
        };
        for child in children.filter_map(Result::ok) {
            if child.file_type().is_ok_and(|t| t.is_dir()) {
                if std::fs::remove_dir(child.path()).is_ok() {
                    removed += 1;
                } else {
                    busy += 1;
                }
            }
        }
        let _ = std::fs::remove_dir(&parent);
    }
    (removed, busy)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
40 31 0:37 / /sys/fs/cgroup/unified rw,relatime shared:5 - cgroup2 cgroup2 rw";

    #[test]
    fn v1_cpu_hierarchy_is_preferred_over_v2() {
        assert_eq!(
            choose(HYBRID),
            Some((Version::V1, PathBuf::from("/sys/fs/cgroup/cpu")))
        );
        let combined = "25 22 0:22 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct";
        assert_eq!(
            choose(combined),
            Some((Version::V1, PathBuf::from("/sys/fs/cgroup/cpu,cpuacct")))
        );
    }

    #[test]
    fn v2_when_no_v1_cpu_hierarchy() {
        let unified =
            "30 23 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n\
                       33 31 0:30 / /sys/fs/cgroup/cpuacct rw - cgroup cgroup rw,cpuacct";
        assert_eq!(
            choose(unified),
            Some((Version::V2, PathBuf::from("/sys/fs/cgroup")))
        );
        assert_eq!(choose("31 23 0:28 / /proc rw - proc proc rw"), None);
        // `cpuacct` or `cpuset` alone is not the cpu controller.
        assert_eq!(
            choose("33 31 0:30 / /sys/fs/cgroup/cpuset rw - cgroup cgroup rw,cpuset"),
            None
        );
    }

    #[test]
    fn v2_needs_cpu_in_its_controllers() {
        assert!(offers_cpu("cpuset cpu io memory pids\n"));
        assert!(!offers_cpu("hugetlb\n"));
        assert!(!offers_cpu("cpuset"));
    }

    #[test]
    fn quota_from_vcpu() {
        let q = Quota::from_vcpu(0.2).expect("valid");
        assert_eq!((q.quota_us, q.period_us), (20_000, 100_000));
        assert_eq!(q.cpu_max(), "20000 100000");
        assert_eq!(q.label(), "0.2");
        assert_eq!(q.describe(), "20000/100000 µs (0.2 vCPU)");
        assert_eq!(Quota::from_vcpu(0.1).expect("valid").label(), "0.1");
        assert_eq!(Quota::from_vcpu(0.25).expect("valid").label(), "0.25");
        assert_eq!(Quota::from_vcpu(1.0).expect("valid").label(), "1");
        assert!(Quota::from_vcpu(0.0).is_err());
        assert!(Quota::from_vcpu(-0.1).is_err());
        assert!(Quota::from_vcpu(f64::NAN).is_err());
        assert!(Quota::from_vcpu(0.005).is_err());
    }

    #[test]
    fn throttling_from_cpu_stat() {
        let v1 = "nr_periods 30\nnr_throttled 27\nthrottled_time 2107769932\n";
        let t = parse_throttling(v1);
        assert_eq!((t.periods, t.throttled), (30, 27));
        assert_eq!(t.pct(), Some(90.0));
        let v2 = "usage_usec 1\nnr_periods 10\nnr_throttled 5\nthrottled_usec 3\n";
        let sum = parse_throttling(v2).add(t);
        assert_eq!((sum.periods, sum.throttled), (40, 32));
        assert_eq!(sum.since(t), parse_throttling(v2));
        assert_eq!(Throttling::default().pct(), None);
    }
}
