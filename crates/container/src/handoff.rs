//! How the program starting a container tells the container's shim that its cgroup is made:
//! the shim's stdin is one end of a socket pair on which it hears "go". The group is made on a
//! thread of ours while the shim program starts, instead of before it (0.25 ms of a ~4 ms start
//! here); the shim waits for the word before it clones pid 1 into the group. Only the cgroup is
//! made outside: the namespaces are made by the shim's clone, after exec, never in the calling
//! process (a notebook kernel's many-threaded process).

use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use virtlab_core::Error;
use virtlab_core::Result;

/// The word that says "go on".
const GO: &[u8] = b"go";

/// Sends "go". A shim already gone makes this fail quietly (MSG_NOSIGNAL: no SIGPIPE); how it
/// ended is reported from its side.
pub(crate) fn send_go(to_shim: &UnixStream) {
    // SAFETY: send reads GO.len() bytes from a live buffer.
    unsafe {
        libc::send(
            to_shim.as_raw_fd(),
            GO.as_ptr().cast(),
            GO.len(),
            libc::MSG_NOSIGNAL,
        )
    };
}

/// Waits on stdin for "go", then puts /dev/null in stdin's place, where every worker has it.
pub(crate) fn receive_go() -> Result<()> {
    receive(0)?;
    let null = std::fs::File::open("/dev/null").map_err(|e| Error::io("opening /dev/null", e))?;
    // SAFETY: dup2 replaces descriptor 0 with a descriptor we own.
    if unsafe { libc::dup2(null.as_raw_fd(), 0) } < 0 {
        return Err(Error::io(
            "putting /dev/null in stdin's place",
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// Reads "go" from the socket `from`; anything else (the sender gone unsaid) is an error.
fn receive(from: RawFd) -> Result<()> {
    let mut word = [0u8; 8];
    let received = loop {
        // SAFETY: recv writes at most word.len() bytes into a live buffer.
        let n = unsafe { libc::recv(from, word.as_mut_ptr().cast(), word.len(), 0) };
        if n >= 0 || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            break n;
        }
    };
    if received < 0 || word.get(..received as usize) != Some(GO) {
        return Err(Error::new(
            "the container's cgroup was not made",
            "see the error the program that started this container printed",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_crosses_a_socket_pair() {
        let (ours, theirs) = UnixStream::pair().unwrap();
        send_go(&ours);
        receive(theirs.as_raw_fd()).unwrap();
    }

    #[test]
    fn silence_is_not_go() {
        let (ours, theirs) = UnixStream::pair().unwrap();
        drop(ours);
        let e = receive(theirs.as_raw_fd()).unwrap_err();
        assert!(e.problem().contains("not made"), "{e}");
    }
}
