//! The cluster's network: a "switch" (a bridge in a network namespace of its own), one veth
//! from each node to it, one veth from the host to it (so mpirun and slurmctld on the host
//! reach the nodes), and a private /24, 10.213.x.0/24, that nothing on this machine uses.
//! Made with iproute2's `ip` in batch mode: one process per namespace. Nothing needs removing:
//! when the switch's namespace dies, its bridge and every veth end in it go, and a veth's
//! other end goes with it.

use crate::{Error, Result};
use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

/// The lab's private range: subnets are `10.213.<octet>.0/24`.
pub const PREFIX: [u8; 2] = [10, 213];
/// The host's address in every subnet.
pub const HOST_OCTET: u8 = 254;

/// The `ip` program, or how to get it.
pub fn ip_program() -> Result<&'static str> {
    for path in ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"] {
        if std::path::Path::new(path).exists() {
            return Ok(path);
        }
    }
    Err(Error::unavailable(
        "iproute2's `ip` program is not installed",
        "apt-get install iproute2",
    ))
}

/// The /24 `octet` names, as text ("10.213.7.0/24").
pub fn subnet_text(octet: u8) -> String {
    format!("{}.{}.{octet}.0/24", PREFIX[0], PREFIX[1])
}

/// The address of host number `host` in subnet `octet`.
pub fn address(octet: u8, host: u8) -> Ipv4Addr {
    Ipv4Addr::new(PREFIX[0], PREFIX[1], octet, host)
}

/// The first subnet octet not in `taken` and not seen in the host's addresses or routes.
pub fn free_subnet(taken: &[u8]) -> Result<u8> {
    let ip = ip_program()?;
    let mut seen = String::new();
    for args in [["-4", "-o", "addr"], ["-4", "route", "show"]] {
        let out = Command::new(ip)
            .args(args)
            .output()
            .map_err(|e| Error::os("running ip", e))?;
        seen.push_str(&String::from_utf8_lossy(&out.stdout));
    }
    let used = |octet: u8| {
        let prefix = format!("{}.{}.{octet}.", PREFIX[0], PREFIX[1]);
        // A route or address covering a larger range (10.0.0.0/8, 10.213.0.0/16) takes ours too.
        let wider = seen.contains(&format!("{}.0.0.0/8", PREFIX[0]))
            || seen.contains(&format!("{}.{}.0.0/16", PREFIX[0], PREFIX[1]));
        taken.contains(&octet) || seen.contains(&prefix) || wider
    };
    (1..=250).find(|&o| !used(o)).ok_or_else(|| {
        Error::unavailable(
            format!(
                "every subnet {}.{}.1-250.0/24 is in use on this machine",
                PREFIX[0], PREFIX[1]
            ),
            "take down clusters you no longer need (virtlab cluster down), or free that range",
        )
    })
}

/// Runs `commands` (one per line) through `ip -batch -`, inside the network namespace of
/// `netns_pid` when given (entered with nsenter).
pub fn ip_batch(netns_pid: Option<i32>, commands: &[String]) -> Result<()> {
    let ip = ip_program()?;
    let mut command = match netns_pid {
        Some(pid) => {
            let mut c = Command::new("nsenter");
            c.arg("-t")
                .arg(pid.to_string())
                .arg("--net")
                .arg("--")
                .arg(ip);
            c
        }
        None => Command::new(ip),
    };
    command
        .args(["-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = command.spawn().map_err(|e| {
        Error::os(
            "starting ip (nsenter from util-linux enters the namespaces)",
            e,
        )
    })?;
    let mut stdin = child.stdin.take().expect("stdin was piped");
    let text = commands.join("\n") + "\n";
    let written = stdin.write_all(text.as_bytes());
    drop(stdin);
    let out = child
        .wait_with_output()
        .map_err(|e| Error::os("waiting for ip", e))?;
    if !out.status.success() || written.is_err() {
        let said = String::from_utf8_lossy(&out.stderr);
        // ip names the failed line as "Command failed -:<line>".
        let line = said
            .rsplit_once("-:")
            .and_then(|(_, n)| n.trim().parse::<usize>().ok())
            .and_then(|n| commands.get(n.wrapping_sub(1)));
        return Err(Error::new(
            format!(
                "ip could not set up the cluster's network{}: {}",
                line.map(|l| format!(" (`ip {l}`)")).unwrap_or_default(),
                said.lines().next().unwrap_or("").trim()
            ),
            "run as root on a kernel with veth and bridge support (modprobe veth bridge)",
        ));
    }
    Ok(())
}

/// The host's veth to the switch, named after the subnet (unique among live clusters).
pub fn host_link(octet: u8) -> String {
    format!("vlab{octet}")
}

/// Connects the host, the switch and the nodes (`node_pids[i]` holds node i+1's namespaces).
pub fn wire(octet: u8, switch_pid: i32, node_pids: &[i32]) -> Result<()> {
    let host = host_link(octet);
    ip_batch(
        None,
        &[
            format!("link add {host} type veth peer name {host}s"),
            format!("link set {host}s netns {switch_pid}"),
            format!("addr add {}/24 dev {host}", address(octet, HOST_OCTET)),
            format!("link set {host} up"),
        ],
    )?;
    let mut switch = vec![
        "link set lo up".to_string(),
        "link add br0 type bridge".into(),
        "link set br0 up".into(),
        format!("link set {host}s master br0 up"),
    ];
    for (i, pid) in node_pids.iter().enumerate() {
        let n = i + 1;
        switch.extend([
            format!("link add port{n} type veth peer name eth{n}"),
            format!("link set port{n} master br0 up"),
            format!("link set eth{n} netns {pid}"),
        ]);
    }
    ip_batch(Some(switch_pid), &switch)?;
    for (i, pid) in node_pids.iter().enumerate() {
        let n = i + 1;
        ip_batch(
            Some(*pid),
            &[
                "link set lo up".into(),
                format!("link set eth{n} name eth0"),
                format!("addr add {}/24 dev eth0", address(octet, n as u8)),
                "link set eth0 up".into(),
            ],
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_names_follow_the_subnet() {
        assert_eq!(subnet_text(7), "10.213.7.0/24");
        assert_eq!(address(7, 3).to_string(), "10.213.7.3");
        assert!(host_link(250).len() <= 15, "Linux link names hold 15 bytes");
    }
}
