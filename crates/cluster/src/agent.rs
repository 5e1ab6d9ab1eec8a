//! The launcher agent: a small shell script in the cluster's run folder that mpirun (and the
//! lab) call in place of ssh — options, host, command — and that runs the command on that
//! node: it joins the node's cgroup, then enters the node's namespaces with `nsenter`.
//! Written once per cluster, beside the node map it reads (`nodes`: address, name, holder pid,
//! cgroup folders).

use crate::{Error, Result};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The agent's file name in the run folder.
pub const AGENT: &str = "agent";
/// The node map's file name in the run folder.
pub const NODE_MAP: &str = "nodes";

/// The script. orted's `--daemonize` is stripped: a daemon would leave the node's pid
/// namespace with pid 1 only, and the run would hang (NOTES: measured).
const SCRIPT: &str = r#"#!/bin/sh
# virtlab cluster launcher, called like ssh: [options] host command...
# Runs the command on that node (its cgroup, then its namespaces).
here=$(dirname "$0")
while [ $# -gt 0 ]; do
  case "$1" in
    -[BbcDEeFIiJLlmOoPpQRSWw]) shift 2 ;;
    -*) shift ;;
    *) break ;;
  esac
done
if [ $# -lt 2 ]; then
  echo "virtlab error: the cluster agent needs a host and a command. Fix: call it like ssh: agent node-1 hostname" >&2
  exit 2
fi
host=$1
shift
found=
while read -r address name pid groups; do
  if [ "$host" = "$address" ] || [ "$host" = "$name" ]; then
    found=$pid
    for group in $(echo "$groups" | tr ',' ' '); do
      echo $$ > "$group/cgroup.procs" || exit 1
    done
    break
  fi
done < "$here/nodes"
if [ -z "$found" ]; then
  echo "virtlab error: no node $host in this cluster. Fix: use a node's name or address from the cluster's table" >&2
  exit 2
fi
command=$(printf '%s' "$*" | sed 's/ --daemonize//g')
exec nsenter -t "$found" --net --uts --mount --pid --wd="$PWD" -- /bin/sh -c "$command"
"#;

/// One line of the node map.
pub fn map_line(address: &str, name: &str, pid: i32, groups: &[PathBuf]) -> String {
    let groups: Vec<String> = groups.iter().map(|g| g.display().to_string()).collect();
    format!("{address} {name} {pid} {}", groups.join(","))
}

/// Writes the agent and its node map into `dir`; returns the agent's path.
pub fn write(dir: &Path, map: &[String]) -> Result<PathBuf> {
    let map_path = dir.join(NODE_MAP);
    std::fs::write(&map_path, map.join("\n") + "\n")
        .map_err(|e| Error::io(format!("writing {}", map_path.display()), e))?;
    let path = dir.join(AGENT);
    std::fs::write(&path, SCRIPT)
        .and_then(|()| std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)))
        .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
    Ok(path)
}
