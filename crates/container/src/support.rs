//! What this machine allows a container: each namespace kind (tried for real in a short-lived
//! child, since sysctls alone do not tell), and where the cpu, memory and pids controllers live —
//! cgroup v2 (`cgroup.controllers`, delegated to us or not) or v1 hierarchies (mounted per
//! controller, writable or not). Every missing facility comes with what to do about it.
//!
//! `VIRTLAB_CGROUP_ROOT` replaces `/sys/fs/cgroup`, so tests (and curious readers) can see the
//! "no cgroup" path on a machine that has one.

use std::path::{Path, PathBuf};
use virtlab_core::Error;
use virtlab_core::Result;
use virtlab_display::Table;

/// The namespace kinds a container gets, in the order the kernel creates them.
pub const NAMESPACES: [(&str, libc::c_int); 7] = [
    ("user", libc::CLONE_NEWUSER),
    ("pid", libc::CLONE_NEWPID),
    ("mount", libc::CLONE_NEWNS),
    ("uts", libc::CLONE_NEWUTS),
    ("ipc", libc::CLONE_NEWIPC),
    ("network", libc::CLONE_NEWNET),
    ("cgroup", libc::CLONE_NEWCGROUP),
];

/// Which cgroup interface holds a controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// Per-controller hierarchies under `/sys/fs/cgroup/<controller>`.
    V1,
    /// One unified hierarchy.
    V2,
}

/// Where one controller can be used: the folder our groups go under, or why not.
#[derive(Debug, Clone, PartialEq)]
pub struct Controller {
    /// The controller: cpu, memory, pids or cpuacct.
    pub name: &'static str,
    /// Its interface and the folder our groups go under, or why there is none.
    pub place: std::result::Result<(Version, PathBuf), Error>,
}

/// What this machine allows, found once per container run.
#[derive(Debug, Clone, PartialEq)]
pub struct Support {
    /// Whether this process runs as root (euid 0).
    pub root: bool,
    /// Whether this process may create a user namespace (tried in a child).
    pub user_namespaces: std::result::Result<(), Error>,
    /// Every other namespace kind, tried in a child (inside a new user namespace when that works).
    pub namespaces: Vec<(&'static str, std::result::Result<(), String>)>,
    /// cpu, memory, pids (the limits) and cpuacct (CPU time on v1).
    pub controllers: Vec<Controller>,
}

impl Support {
    /// Looks at this machine (`VIRTLAB_CGROUP_ROOT` or `/sys/fs/cgroup` for cgroups).
    pub fn detect() -> Support {
        let root = std::env::var_os("VIRTLAB_CGROUP_ROOT")
            .filter(|v| !v.is_empty())
            .map_or_else(|| PathBuf::from("/sys/fs/cgroup"), PathBuf::from);
        Support::detect_at(&root)
    }

    /// As [`Support::detect`], with the cgroup filesystems under `cgroup_root`.
    pub fn detect_at(cgroup_root: &Path) -> Support {
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        // The kernel's answer does not change while we run: ask it once per process.
        static FAILED: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
        let failed = *FAILED.get_or_init(try_namespaces);
        let user_namespaces = if failed & 1 == 0 {
            Ok(())
        } else {
            Err(Error::new(
                "this kernel refuses to create a user namespace for this user",
                "allow unprivileged user namespaces (Debian: sysctl kernel.unprivileged_userns_clone=1; Ubuntu 24.04+: sysctl kernel.apparmor_restrict_unprivileged_userns=0), or run as root",
            ))
        };
        let namespaces = NAMESPACES[1..]
            .iter()
            .enumerate()
            .map(|(i, (name, _))| {
                let ok = failed & (2 << i) == 0;
                (*name, if ok { Ok(()) } else { Err("refused".into()) })
            })
            .collect();
        let own = own_cgroups();
        let controllers = ["cpu", "memory", "pids", "cpuacct"]
            .into_iter()
            .map(|name| Controller {
                name,
                place: locate(cgroup_root, &own, name),
            })
            .collect();
        Support {
            root,
            user_namespaces,
            namespaces,
            controllers,
        }
    }

    /// The folder (and interface) for `controller`, or why there is none.
    pub fn controller(&self, name: &str) -> std::result::Result<(Version, PathBuf), Error> {
        self.controllers
            .iter()
            .find(|c| c.name == name)
            .map_or_else(
                || {
                    Err(Error::new(
                        format!("no controller named {name}"),
                        "report this as a bug",
                    ))
                },
                |c| c.place.clone(),
            )
    }

    /// Refuses what cannot be done here: namespaces this user may not create, or a limit whose
    /// controller is missing or not ours to write. The error names the fix.
    pub fn check(&self, limits: &super::Limits) -> Result<()> {
        if let Err(e) = &self.user_namespaces
            && !self.root
        {
            return Err(e.clone());
        }
        if let Some((name, _)) = self.namespaces.iter().find(|(_, r)| r.is_err()) {
            return Err(Error::new(
                format!("this kernel refuses to create a {name} namespace here"),
                "run on a Linux kernel with namespaces enabled (CONFIG_NAMESPACES), outside a sandbox that forbids them (seccomp), or as root",
            ));
        }
        let wanted = [
            ("cpu", limits.cpu.is_some(), "--cpu"),
            ("memory", limits.memory.is_some(), "--memory"),
            ("pids", limits.pids.is_some(), "--pids"),
        ];
        for (name, asked, flag) in wanted {
            if asked && let Err(e) = self.controller(name) {
                return Err(Error::new(
                    format!("the {name} limit cannot be set: {}", e.problem()),
                    format!("{}; or leave out {flag}", e.fix()),
                ));
            }
        }
        Ok(())
    }

    /// The limits that can be set here, and a sentence for each one left out.
    pub fn allowed(&self, limits: &super::Limits) -> (super::Limits, Vec<String>) {
        let mut allowed = *limits;
        let mut notes = Vec::new();
        let mut drop_if_missing = |name: &str, present: bool, clear: &mut dyn FnMut()| {
            if present && let Err(e) = self.controller(name) {
                notes.push(format!("{name} limit left out: {}", e.sentence()));
                clear();
            }
        };
        drop_if_missing("cpu", limits.cpu.is_some(), &mut || allowed.cpu = None);
        drop_if_missing("memory", limits.memory.is_some(), &mut || {
            allowed.memory = None
        });
        drop_if_missing("pids", limits.pids.is_some(), &mut || allowed.pids = None);
        (allowed, notes)
    }

    /// One row per facility: namespaces, then controllers, each with where or why not.
    pub fn table(&self) -> Table {
        let mut t = Table::new(
            format!(
                "What this machine allows a container (running as {})",
                if self.root { "root" } else { "a normal user" }
            ),
            ["facility", "available", "where / why not"],
        );
        let yes_no = |ok: bool| if ok { "yes" } else { "no" };
        match &self.user_namespaces {
            Ok(()) => t.row(["user namespace", "yes", "created by this user in a child"]),
            Err(e) => t.row(["user namespace", "no", &e.to_string()]),
        };
        for (name, r) in &self.namespaces {
            let note = r.as_ref().err().cloned().unwrap_or_default();
            t.row([format!("{name} namespace"), yes_no(r.is_ok()).into(), note]);
        }
        for c in &self.controllers {
            match &c.place {
                Ok((v, dir)) => t.row([
                    format!("{} controller", c.name),
                    "yes".into(),
                    format!("cgroup {v:?} at {}", dir.display()),
                ]),
                Err(e) => t.row([format!("{} controller", c.name), "no".into(), e.to_string()]),
            };
        }
        t
    }

    /// Shows the table inline in a notebook.
    pub fn evcxr_display(&self) {
        self.table().evcxr_display();
    }
}

/// Tries each namespace kind in a forked child (unshare in a multi-threaded process fails for
/// a user namespace, and a failed try must not change this process). Returns a bit per kind in
/// [`NAMESPACES`] order, set when the kernel refused it.
fn try_namespaces() -> u32 {
    // SAFETY: the child calls only async-signal-safe functions (unshare, _exit) before exiting.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let mut failed = 0;
        for (i, (_, flag)) in NAMESPACES.iter().enumerate() {
            // SAFETY: unshare changes only this short-lived child.
            if unsafe { libc::unshare(*flag) } != 0 {
                failed |= 1 << i;
            }
        }
        // SAFETY: _exit ends the child without running the parent's atexit handlers.
        unsafe { libc::_exit(failed) };
    }
    if pid < 0 {
        return (1 << NAMESPACES.len()) - 1;
    }
    let mut status = 0;
    // SAFETY: waits for the child just forked, writing its status through a valid pointer.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status) as u32
    } else {
        (1 << NAMESPACES.len()) - 1
    }
}

/// This process's groups from /proc/self/cgroup: (controllers, path) per hierarchy; the v2
/// line has an empty controller list.
fn own_cgroups() -> Vec<(Vec<String>, String)> {
    std::fs::read_to_string("/proc/self/cgroup")
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let (_, list, path) = (parts.next()?, parts.next()?, parts.next()?);
            let list = list
                .split(',')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect();
            Some((list, path.to_string()))
        })
        .collect()
}

/// Finds where groups with `controller` can be made under `root`, given our own groups.
fn locate(
    root: &Path,
    own: &[(Vec<String>, String)],
    controller: &str,
) -> std::result::Result<(Version, PathBuf), Error> {
    let not_ours = |dir: &Path, v2: bool| {
        Error::new(
            format!(
                "{} is not writable by this user",
                dir.join("cgroup.procs").display()
            ),
            if v2 {
                "run as root, or inside a delegated systemd scope: systemd-run --user --scope -p Delegate=yes virtlab container …"
            } else {
                "run as root (cgroup v1 hierarchies are writable by root only)"
            },
        )
    };
    if root.join("cgroup.controllers").is_file() {
        let path = own
            .iter()
            .find(|(list, _)| list.is_empty())
            .map_or("/", |(_, p)| p.as_str());
        let base = inside(root, path);
        let listed = std::fs::read_to_string(base.join("cgroup.controllers")).unwrap_or_default();
        if !listed.split_whitespace().any(|c| c == controller) {
            return Err(Error::new(
                format!(
                    "cgroup v2 does not hand the {controller} controller to {}",
                    base.display()
                ),
                "run inside a delegated systemd scope: systemd-run --user --scope -p Delegate=yes virtlab container …, or as root",
            ));
        }
        if !writable(&base.join("cgroup.subtree_control")) || !writable(&base) {
            return Err(not_ours(&base, true));
        }
        return Ok((Version::V2, base));
    }
    let mount = root.join(controller);
    if !mount.join("cgroup.procs").is_file() {
        return Err(Error::new(
            format!(
                "no cgroup filesystem with the {controller} controller under {}",
                root.display()
            ),
            "mount cgroup2 at /sys/fs/cgroup (most distributions do), or run on a machine with cgroups",
        ));
    }
    let path = own
        .iter()
        .find(|(list, _)| list.iter().any(|c| c == controller))
        .map_or("/", |(_, p)| p.as_str());
    let base = inside(&mount, path);
    if !writable(&base) {
        return Err(not_ours(&base, false));
    }
    Ok((Version::V1, base))
}

/// `mount` + our group's path, or the mount itself when that path is not visible there
/// (a cgroup namespace or a test root shows our group at its top).
fn inside(mount: &Path, path: &str) -> PathBuf {
    let dir = mount.join(path.trim_start_matches('/'));
    if dir.is_dir() {
        dir
    } else {
        mount.to_path_buf()
    }
}

fn writable(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: access reads a NUL-terminated path.
    unsafe { libc::access(c.as_ptr(), libc::W_OK) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Limits;

    #[test]
    fn no_cgroup_filesystem_gives_a_clear_error_per_limit() {
        let empty = std::env::temp_dir().join(format!("virtlab-no-cgroup-{}", std::process::id()));
        let support = Support::detect_at(&empty);
        assert!(support.controllers.iter().all(|c| c.place.is_err()));
        let limits = Limits {
            memory: Some(64 << 20),
            ..Limits::default()
        };
        let e = support.check(&limits).unwrap_err();
        assert!(e.problem().contains("memory limit cannot be set"), "{e}");
        assert!(e.fix().contains("leave out --memory"), "{e}");
        let (allowed, notes) = support.allowed(&limits);
        assert_eq!(allowed, Limits::default());
        assert_eq!(notes.len(), 1);
        if support.user_namespaces.is_ok() || support.root {
            assert!(support.check(&Limits::default()).is_ok());
        }
    }

    #[test]
    fn without_user_namespaces_a_normal_user_is_told_how_to_allow_them() {
        let refused = Error::new("this kernel refuses to create a user namespace", "sysctl …");
        let mut support = Support::detect_at(Path::new("/nonexistent"));
        support.root = false;
        support.user_namespaces = Err(refused.clone());
        assert_eq!(support.check(&Limits::default()), Err(refused));
        // Root needs no user namespace: the container runs without one.
        support.root = true;
        if support.namespaces.iter().all(|(_, r)| r.is_ok()) {
            assert!(support.check(&Limits::default()).is_ok());
        }
    }

    #[test]
    fn a_v2_root_without_delegated_controllers_says_how_to_delegate() {
        let root = std::env::temp_dir().join(format!("virtlab-v2-{}", std::process::id()));
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("cgroup.controllers"), "cpu io\n").unwrap();
        let e = locate(&root, &[], "memory").unwrap_err();
        assert!(e.fix().contains("Delegate=yes"), "{e}");
        std::fs::remove_dir_all(&root).unwrap();
    }
}
