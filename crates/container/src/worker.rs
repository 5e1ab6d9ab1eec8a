//! What the worker does differently inside a container: its line names the host pid and the
//! hostname beside the pid it sees (1), and on request it probes its view, grows its memory
//! each iteration, or tries to fork without end to meet its pids limit.

use super::init::ContainerMessage;
use super::probe::Probe;
use virtlab_core::Error;
use virtlab_core::Result;
use virtlab_core::protocol::Message;

/// The most forks `--fork-bomb` tries, whatever the pids limit.
pub const FORK_BOMB_CAP: u64 = 1024;

/// The container worker's extra flags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extras {
    /// Our pid on the host (given by the shim); set only inside a container.
    pub host_pid: Option<u32>,
    /// Allocate and touch this many MiB in every iteration, keeping all of it.
    pub allocate_mib: u32,
    /// Fork until the kernel refuses, at the first iteration (pid 1 of a container only).
    pub fork_bomb: bool,
    /// Print what this process sees before the first iteration.
    pub probe: bool,
}

impl Extras {
    /// Refuses a fork bomb outside a container, where nothing would stop or reap it.
    pub fn checked(self) -> Result<Extras> {
        if self.fork_bomb && (self.host_pid.is_none() || std::process::id() != 1) {
            return Err(Error::new(
                "--fork-bomb runs only as pid 1 of a container, where the pids limit stops it and the namespace's end reaps it",
                "start it through `virtlab container --fork-bomb`",
            ));
        }
        Ok(self)
    }

    /// Prints the probe when asked, then returns the hook `processes::worker_main` calls at
    /// each iteration (its text ends the iteration's line).
    pub fn hook(mut self, name: &str) -> impl FnMut(u32) -> String + Send + use<> {
        if self.probe {
            let probe = Probe::here(name, self.host_pid);
            Message::Kind(ContainerMessage::Probe(probe)).print();
        }
        let mut held: Vec<Vec<u8>> = Vec::new();
        move |i| {
            let mut suffix = self.where_am_i();
            if self.allocate_mib > 0 {
                held.push(touched(self.allocate_mib as usize));
                suffix += &format!(", holding {} MiB", held.len() * self.allocate_mib as usize);
            }
            if self.fork_bomb && i == 0 {
                suffix += &fork_bomb();
                self.fork_bomb = false;
            }
            suffix
        }
    }

    fn where_am_i(&self) -> String {
        match self.host_pid {
            Some(host) => format!(
                " (host pid {host}), hostname {}",
                std::fs::read_to_string("/proc/sys/kernel/hostname")
                    .unwrap_or_default()
                    .trim()
            ),
            None => String::new(),
        }
    }
}

/// `mib` MiB written page by page, so the memory is really resident (and charged).
fn touched(mib: usize) -> Vec<u8> {
    let mut block = vec![0u8; mib << 20];
    for page in block.chunks_mut(4096) {
        page[0] = 1;
    }
    std::hint::black_box(block)
}

/// Forks sleeping children until the kernel refuses; says how many it got and why it stopped.
/// They sleep until pid 1 ends, when the kernel kills every process of the namespace.
fn fork_bomb() -> String {
    let mut started = 0u64;
    let error = loop {
        // SAFETY: the child only pauses (async-signal-safe) and is killed with the namespace.
        match unsafe { libc::fork() } {
            0 => loop {
                // SAFETY: pause just sleeps until a signal.
                unsafe { libc::pause() };
            },
            pid if pid > 0 => started += 1,
            _ => break std::io::Error::last_os_error(),
        }
        if started >= FORK_BOMB_CAP {
            break std::io::Error::other("virtlab's own cap, in case no pids limit was set");
        }
    };
    format!(", fork bomb stopped after {started} forks: {error}")
}
