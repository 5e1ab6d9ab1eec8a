//! Hosts listed in a hostfile, the way MPI runs on real machines: [`Hosts`] is Open MPI's
//! hostfile (`host slots=N`, a host a line), the agent mpirun reaches them with (ssh unless
//! told otherwise) and the network their ranks talk over. A cluster's namespace nodes stand in
//! for hosts through [`Hosts::standing_in`]: a hostfile of their addresses, reached through the
//! cluster's agent, on its subnet — the same mpirun flags a user gives for real machines.

use crate::cluster::{Cluster, on_path};
use crate::{Error, ErrorKind, Result};
use serde::{Deserialize, Serialize};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long a host may take to answer the reachability check.
const REACH_TIMEOUT: Duration = Duration::from_secs(20);

/// One host of a hostfile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Host {
    /// Its name or address, as the agent is given it.
    pub name: String,
    /// Ranks placed on it before the next host (None: Open MPI counts its cores).
    pub slots: Option<usize>,
}

/// Where ranks run: the hosts of a hostfile, how mpirun reaches them and over which network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hosts {
    /// The hostfile mpirun is given.
    pub hostfile: PathBuf,
    /// Its hosts, in order.
    pub hosts: Vec<Host>,
    /// The command mpirun starts its daemons with, called like ssh (None: mpirun's own, ssh).
    pub agent: Option<String>,
    /// The network (CIDR or interface) MPI's traffic keeps to (None: Open MPI chooses).
    pub net: Option<String>,
}

/// A malformed hostfile line, named with the fix.
fn malformed(path: &Path, number: usize, line: &str, why: &str) -> Error {
    Error::of(
        ErrorKind::Invalid,
        format!(
            "hostfile {} line {number} (\"{line}\") is malformed: {why}",
            path.display()
        ),
        "write one host a line in Open MPI's format, e.g. `node1 slots=2` (`#` starts a comment)",
    )
}

/// The hosts of a hostfile's `text` (Open MPI's format: a host, then `slots=N` and
/// `max_slots=N` where wanted; `#` comments; blank lines); `path` names it in errors.
pub fn parse(text: &str, path: &Path) -> Result<Vec<Host>> {
    let mut hosts = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or_default().trim();
        let mut words = line.split_whitespace();
        let Some(name) = words.next() else {
            continue;
        };
        // A name starting with '-' would reach ssh as an option.
        if name.starts_with('-') || name.contains('=') {
            return Err(malformed(
                path,
                i + 1,
                line,
                &format!("\"{name}\" is not a host name"),
            ));
        }
        let mut slots = None;
        for word in words {
            let (key, value) = word.split_once('=').unwrap_or((word, ""));
            let count = || -> Result<usize> {
                value.parse().ok().filter(|&n| n > 0).ok_or_else(|| {
                    malformed(
                        path,
                        i + 1,
                        line,
                        &format!("{key} needs a whole number of 1 or more"),
                    )
                })
            };
            match key {
                "slots" => slots = Some(count()?),
                // Kept by Open MPI's own reading of the file; checked here, used by it.
                "max_slots" | "max-slots" => drop(count()?),
                _ => {
                    return Err(malformed(
                        path,
                        i + 1,
                        line,
                        &format!("\"{word}\" is not slots=N or max_slots=N"),
                    ));
                }
            }
        }
        hosts.push(Host {
            name: name.to_string(),
            slots,
        });
    }
    if hosts.is_empty() {
        return Err(Error::of(
            ErrorKind::Invalid,
            format!("hostfile {} lists no hosts", path.display()),
            "write one host a line in Open MPI's format, e.g. `node1 slots=2`",
        ));
    }
    Ok(hosts)
}

impl Hosts {
    /// The hosts `hostfile` lists, reached by `agent` (None: ssh) over `net`; checks the file
    /// and that the agent's program exists, and touches no host.
    pub fn read(hostfile: &Path, agent: Option<&str>, net: Option<&str>) -> Result<Hosts> {
        let text = std::fs::read_to_string(hostfile).map_err(|e| {
            Error::of(
                ErrorKind::Invalid,
                format!("the hostfile {} cannot be read: {e}", hostfile.display()),
                "give the path of a hostfile: one host a line, e.g. `node1 slots=2`",
            )
            .caused_by(e)
        })?;
        let hosts = Hosts {
            hostfile: hostfile.to_path_buf(),
            hosts: parse(&text, hostfile)?,
            agent: agent.map(str::to_string),
            net: net.map(str::to_string),
        };
        hosts.check_agent()?;
        hosts.check_net()?;
        Ok(hosts)
    }

    /// `cluster`'s nodes (1-based, in this order) standing in for hosts: a hostfile of their
    /// addresses written to its run folder (`slots` each, or their instance type's CPUs), its
    /// agent in place of ssh, its subnet as the network.
    pub fn standing_in(cluster: &Cluster, nodes: &[usize], slots: Option<usize>) -> Result<Hosts> {
        if slots == Some(0) {
            return Err(Error::of(
                ErrorKind::Invalid,
                "a node cannot have 0 slots",
                "give each node 1 slot or more",
            ));
        }
        let hosts = nodes
            .iter()
            .map(|&n| {
                let node = cluster.node(n)?;
                Ok(Host {
                    name: node.address.clone(),
                    slots: Some(slots.unwrap_or(node.instance_type.slots())),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let path = cluster
            .dir()
            .join(format!("hostfile-{}", std::process::id()));
        std::fs::write(&path, text(&hosts))
            .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
        Ok(Hosts {
            hostfile: path,
            hosts,
            agent: Some(cluster.agent().display().to_string()),
            net: Some(cluster.state().subnet.clone()),
        })
    }

    /// All of `cluster`'s nodes standing in for hosts (see [`Hosts::standing_in`]).
    pub fn of_cluster(cluster: &Cluster) -> Result<Hosts> {
        let all: Vec<usize> = (1..=cluster.nodes().len()).collect();
        Hosts::standing_in(cluster, &all, None)
    }

    /// The slots of all the hosts, where every line gives its count.
    pub fn slots(&self) -> Option<usize> {
        self.hosts.iter().map(|h| h.slots).sum()
    }

    /// The agent's words (program first): the given agent, or ssh as mpirun calls it.
    fn agent_words(&self) -> Vec<String> {
        match &self.agent {
            Some(agent) => agent.split_whitespace().map(str::to_string).collect(),
            None => vec!["ssh".into()],
        }
    }

    fn check_agent(&self) -> Result<()> {
        let words = self.agent_words();
        let Some(program) = words.first() else {
            return Err(Error::invalid(
                "--agent",
                "empty",
                "name the command that reaches a host like ssh does, e.g. --agent ssh",
            ));
        };
        let found = if program.contains('/') {
            Path::new(program).is_file()
        } else {
            on_path(program)
        };
        if found {
            return Ok(());
        }
        Err(match self.agent {
            None => Error::unavailable(
                "ssh, which mpirun reaches the hosts with, is not installed",
                "apt-get install openssh-client, or give the command that reaches your hosts with --agent",
            ),
            Some(_) => Error::of(
                ErrorKind::Invalid,
                format!("the agent {program} is not a file nor on PATH"),
                "give the path of a command called like ssh (options, host, command)",
            ),
        })
    }

    fn check_net(&self) -> Result<()> {
        match &self.net {
            Some(net) if net.is_empty() || net.contains(char::is_whitespace) => {
                Err(Error::invalid(
                    "--net",
                    format!("\"{net}\""),
                    "name the network the hosts share, as a CIDR (10.0.0.0/24) or an interface (eth1)",
                ))
            }
            _ => Ok(()),
        }
    }

    /// Asks every host to run `true` through the agent (ssh without a password prompt), so
    /// an unreachable host is named before mpirun starts rather than left to hang it.
    pub fn reach(&self) -> Result<()> {
        for host in &self.hosts {
            let words = self.agent_words();
            let mut command = Command::new(&words[0]);
            command.args(&words[1..]);
            if self.agent.is_none() {
                command.args(["-o", "BatchMode=yes", "-o", "ConnectTimeout=10"]);
            }
            let mut child = command
                .arg(&host.name)
                .arg("true")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| Error::os(format!("starting {}", words[0]), e))?;
            let asked = Instant::now();
            let status = loop {
                if let Some(status) = child
                    .try_wait()
                    .map_err(|e| Error::os("waiting for the agent", e))?
                {
                    break Some(status);
                }
                if asked.elapsed() > REACH_TIMEOUT {
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
                std::thread::sleep(Duration::from_millis(10));
            };
            let said = match status {
                Some(s) if s.success() => continue,
                Some(s) => {
                    let mut text = String::new();
                    if let Some(mut err) = child.stderr.take() {
                        let _ = std::io::Read::read_to_string(&mut err, &mut text);
                    }
                    let last = text.lines().rfind(|l| !l.trim().is_empty());
                    format!("{s}: {}", last.unwrap_or("it said nothing").trim())
                }
                None => format!("no answer in {} s", REACH_TIMEOUT.as_secs()),
            };
            return Err(Error::unavailable(
                format!(
                    "host {} of {} cannot be reached through {} ({said})",
                    host.name,
                    self.hostfile.display(),
                    words.join(" ")
                ),
                match self.agent {
                    None => {
                        "check the name, and that `ssh HOST true` works without a password (ssh-copy-id HOST)"
                    }
                    Some(_) => {
                        "check the name against the hosts your agent knows, and that `AGENT HOST true` works"
                    }
                },
            ));
        }
        Ok(())
    }

    /// mpirun's flags for these hosts: the hostfile, the agent (a given agent exists only
    /// here, so daemons are all started from here, not in a tree), the network for both the
    /// daemons' and the ranks' TCP.
    pub fn mpirun_args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec!["--hostfile".into(), self.hostfile.clone().into()];
        if let Some(agent) = &self.agent {
            for flag in ["plm_rsh_agent", agent, "plm_rsh_no_tree_spawn", "1"].chunks(2) {
                args.extend(["--mca".into(), flag[0].into(), flag[1].into()]);
            }
        }
        if let Some(net) = &self.net {
            for key in ["oob_tcp_if_include", "btl_tcp_if_include"] {
                args.extend(["--mca".into(), key.into(), net.into()]);
            }
        }
        args
    }

    /// The `virtlab mpi` flags that run on these hosts (what a user types).
    pub fn flags(&self) -> String {
        let mut flags = format!("--hostfile {}", self.hostfile.display());
        if let Some(agent) = &self.agent {
            flags.push_str(&format!(" --agent '{agent}'"));
        }
        if let Some(net) = &self.net {
            flags.push_str(&format!(" --net {net}"));
        }
        flags
    }
}

/// `hosts` as a hostfile's text.
pub fn text(hosts: &[Host]) -> String {
    hosts
        .iter()
        .map(|h| match h.slots {
            Some(n) => format!("{} slots={n}\n", h.name),
            None => format!("{}\n", h.name),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Result<Vec<Host>> {
        parse(text, Path::new("hosts"))
    }

    fn host(name: &str, slots: Option<usize>) -> Host {
        Host {
            name: name.into(),
            slots,
        }
    }

    #[test]
    fn open_mpi_s_format_is_read_with_comments_and_blank_lines() {
        let hosts = parsed(
            "# the lab\n\nnode1 slots=2\n10.0.0.3 slots=1 max_slots=4 # spare\nuser@node4\n",
        )
        .unwrap();
        assert_eq!(
            hosts,
            [
                host("node1", Some(2)),
                host("10.0.0.3", Some(1)),
                host("user@node4", None)
            ]
        );
        assert_eq!(parsed(&text(&hosts)).unwrap(), hosts);
    }

    #[test]
    fn an_empty_or_malformed_hostfile_is_named_with_the_fix() {
        for empty in ["", "\n  \n# only a comment\n"] {
            let e = parsed(empty).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Invalid);
            assert!(e.to_string().contains("lists no hosts"), "{e}");
        }
        for (bad, says) in [
            ("node1 slots=0", "slots needs a whole number"),
            ("node1 slots=two", "slots needs a whole number"),
            ("node1 cores=2", "\"cores=2\" is not slots=N"),
            ("slots=2", "is not a host name"),
            ("-oProxyCommand=x", "is not a host name"),
        ] {
            let e = parsed(&format!("ok slots=1\n{bad}\n")).unwrap_err();
            let text = e.to_string();
            assert!(text.contains("line 2") && text.contains(says), "{text}");
            assert!(e.fix().contains("node1 slots=2"), "{}", e.fix());
        }
    }

    #[test]
    fn slots_add_up_only_when_every_host_gives_them() {
        let mut hosts = Hosts {
            hostfile: "h".into(),
            hosts: vec![host("a", Some(2)), host("b", Some(1))],
            agent: None,
            net: None,
        };
        assert_eq!(hosts.slots(), Some(3));
        hosts.hosts.push(host("c", None));
        assert_eq!(hosts.slots(), None);
    }

    #[test]
    fn ssh_is_mpirun_s_own_and_a_given_agent_starts_every_daemon_from_here() {
        let mut hosts = Hosts {
            hostfile: "h".into(),
            hosts: vec![host("a", None)],
            agent: None,
            net: None,
        };
        assert_eq!(hosts.mpirun_args(), ["--hostfile", "h"]);
        assert_eq!(hosts.flags(), "--hostfile h");
        hosts.agent = Some("/run/x/agent".into());
        hosts.net = Some("10.1.2.0/24".into());
        let args: Vec<String> = hosts
            .mpirun_args()
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args.join(" "),
            "--hostfile h --mca plm_rsh_agent /run/x/agent --mca plm_rsh_no_tree_spawn 1 \
             --mca oob_tcp_if_include 10.1.2.0/24 --mca btl_tcp_if_include 10.1.2.0/24"
        );
        assert_eq!(
            hosts.flags(),
            "--hostfile h --agent '/run/x/agent' --net 10.1.2.0/24"
        );
    }

    #[test]
    fn a_missing_hostfile_or_agent_and_a_blank_network_are_refused() {
        let e = Hosts::read(Path::new("/no/such/hostfile"), None, None).unwrap_err();
        assert!(e.to_string().contains("cannot be read"), "{e}");
        let dir = std::env::temp_dir().join(format!("virtlab-hostfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("hosts");
        std::fs::write(&file, "node1 slots=1\n").unwrap();
        let e = Hosts::read(&file, Some("/no/such/agent"), None).unwrap_err();
        assert!(e.to_string().contains("/no/such/agent"), "{e}");
        let e = Hosts::read(&file, Some("true"), Some("")).unwrap_err();
        assert!(e.to_string().contains("--net"), "{e}");
        assert!(Hosts::read(&file, Some("true"), Some("eth1")).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
