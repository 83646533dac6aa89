//! Loopback ports that distributed jobs and services on one machine listen on.

use std::collections::HashSet;
use std::io;
use std::net::{Ipv4Addr, TcpListener};

/// A TCP port on 127.0.0.1 that is free now and not in `taken` (ports
/// handed out earlier that their jobs may not have bound yet).
///
/// The kernel picks from its ephemeral range, which it walks rather than
/// repeats, so a port just released is unlikely to come back at once.
pub fn free_loopback_port(taken: &HashSet<u16>) -> io::Result<u16> {
    for _ in 0..64 {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let port = listener.local_addr()?.port();
        if !taken.contains(&port) {
            return Ok(port);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AddrInUse,
        "no free loopback port outside those already handed out",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_free_and_avoid_taken_ones() {
        let mut taken = HashSet::new();
        for _ in 0..20 {
            let port = free_loopback_port(&taken).expect("a free port");
            assert!(!taken.contains(&port));
            TcpListener::bind((Ipv4Addr::LOCALHOST, port)).expect("the port is bindable");
            taken.insert(port);
        }
    }
}
