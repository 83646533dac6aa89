//! A network lab for tests that need real packets: "pods" are Linux network
//! namespaces, each with one veth whose other end is a port of a Linux bridge;
//! servers listen inside the pods, nftables rulesets are loaded into a pod's
//! namespace, and probes open real TCP connections and UDP exchanges from one
//! pod to another. It exists so that network policies compiled to nftables can
//! be checked cell by cell against the kernel, not against our own evaluator.
//!
//! Layout of one [`Lab`] (prefix `moonlab-<pid>-<n>`, short prefix `ml<n>`):
//!
//! ```text
//!   netns <prefix>.br            netns <prefix>-<pod>
//!   ┌──────────────────────┐     ┌──────────────────────────┐
//!   │ ml<n>br  (gateway)   │     │ eth0  <pod ip>/<len>     │
//!   │   ├─ ml<n>p0 ────────┼─────┼─ (veth)                  │
//!   │   ├─ ml<n>p1 ─── ... │     │ lo up, default via gw    │
//!   └──────────────────────┘     └──────────────────────────┘
//! ```
//!
//! The bridge lives in a namespace of its own rather than in the root one, so
//! that (1) the host's firewall and its `br_netfilter` setting never see the
//! lab's packets (`bridge-nf-call-*` is per namespace since Linux 5.3 and is
//! turned off in the bridge's namespace), (2) several labs can run at once,
//! in one test process or several, even with the same addresses, and (3) the
//! root namespace's `ip link` never shows anything of a lab: deleting the
//! namespaces deletes the bridge and every veth with them.
//!
//! Everything runs through `ip` (iproute2) and `nft`; the only system calls
//! made directly are `setns` (to open sockets inside a pod), `poll` (the
//! servers' loop) and `geteuid`. Requires root (CAP_SYS_ADMIN and
//! CAP_NET_ADMIN); call [`unavailable`] first and skip when it says why not.
//!
//! A test file includes it with `mod lab;`. It depends on `std` and `libc`
//! only.

#![allow(dead_code)]

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Start of every namespace a lab creates: `ip netns list | grep moonlab-`
/// shows what labs exist, and stale ones of dead processes are found by it.
const NAME_PREFIX: &str = "moonlab-";

/// Where `ip netns add` bind-mounts named namespaces.
const NETNS_DIR: &str = "/run/netns";

/// How many probes [`Lab::probe_all`] runs at once. A dropped probe costs its
/// whole timeout, so a matrix with many blocked cells needs them in parallel;
/// probe threads mostly sleep in the kernel, so this is fine on 2 cores.
pub const PROBE_PARALLELISM: usize = 32;

/// The byte every TCP server writes on accept, which a TCP probe must read:
/// the connection then carried data both ways, not only a handshake.
const TCP_GREETING: u8 = b'm';

/// Transport protocol of a server or a probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// A probe connects and reads the one byte the server writes on accept.
    Tcp,
    /// A probe sends a datagram and waits for its echo.
    Udp,
}

/// One pod to create: a namespace with one interface holding `ip`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodSpec {
    /// Short name, e.g. `x-a`: ASCII letters, digits, `-` and `_` only (it
    /// becomes part of a namespace name), unique within the lab.
    pub name: String,
    /// The pod's address, in the gateway's subnet.
    pub ip: Ipv4Addr,
}

impl PodSpec {
    /// Shorthand for `PodSpec { name: name.into(), ip }`.
    pub fn new(name: impl Into<String>, ip: Ipv4Addr) -> Self {
        PodSpec {
            name: name.into(),
            ip,
        }
    }
}

/// A created pod: its spec, its namespace's name and an open handle on it
/// (what `setns` needs, and what keeps `probe` from reopening it each time).
struct Pod {
    name: String,
    ip: Ipv4Addr,
    netns: String,
    ns: File,
}

/// A running server loop: dropping `stop` wakes its `poll` (the peer end
/// sees end of file) and the thread returns, closing every socket it owns.
struct Server {
    stop: Option<UnixStream>,
    thread: Option<JoinHandle<()>>,
}

/// Pods on one bridge. Owns every namespace it created (and through them the
/// bridge and the veths) and every server thread it started: dropping it,
/// also while a test panics, stops the servers and deletes the namespaces.
pub struct Lab {
    prefix: String,
    short: String,
    bridge: String,
    /// The bridge's namespace (`<prefix>.br`: a `.` cannot occur in a pod
    /// name, so it never collides with one).
    hub: String,
    hub_ns: Option<File>,
    gateway: Ipv4Addr,
    prefix_len: u8,
    pods: Vec<Pod>,
    /// Every namespace created so far, in order; what Drop deletes. Filled
    /// as they are created, so a failing `create` cleans up what it made.
    created: Vec<String>,
    servers: Mutex<Vec<Server>>,
}

impl Lab {
    /// Creates one namespace per pod (named `<prefix>-<pod name>`, prefix
    /// `moonlab-<pid>-<n>`, unique per lab), plus the bridge's namespace
    /// `<prefix>.br` holding the bridge `ml<n>br` with address
    /// `gateway/prefix_len`; each pod gets a veth (`eth0` inside, `ml<n>p<i>`
    /// on the bridge), `ip/prefix_len`, `lo` up and a default route via
    /// `gateway`. Before creating, deletes stale namespaces of earlier labs
    /// whose process no longer exists (a test killed without unwinding).
    /// On error, deletes whatever it had created; where [`unavailable`] says
    /// the lab cannot run, fails with `ErrorKind::Unsupported` and its reason.
    pub fn create(pods: &[PodSpec], gateway: Ipv4Addr, prefix_len: u8) -> io::Result<Lab> {
        validate(pods, gateway, prefix_len)?;
        // Also the first `ip netns add` of the process, which sets up the
        // /run/netns mount, happens there, once, not in racing tests.
        if let Some(why) = unavailable() {
            return Err(io::Error::new(ErrorKind::Unsupported, why));
        }
        clean_stale();

        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let prefix = format!("{NAME_PREFIX}{}-{n}", std::process::id());
        // Interface names must fit in 15 bytes; they only need to be unique
        // inside the bridge's own namespace, the number is there for humans.
        let short = format!("ml{}", n % 100_000);
        let mut lab = Lab {
            hub: format!("{prefix}.br"),
            bridge: format!("{short}br"),
            prefix,
            short,
            hub_ns: None,
            gateway,
            prefix_len,
            pods: Vec::new(),
            created: Vec::new(),
            servers: Mutex::new(Vec::new()),
        };
        // From here on, an early return drops `lab`, which deletes what exists.

        // The namespaces, one by one, so that `created` is exact on failure.
        let hub = lab.hub.clone();
        add_netns(&hub)?;
        lab.created.push(hub.clone());
        lab.hub_ns = Some(open_netns(&hub)?);
        for spec in pods {
            let netns = format!("{}-{}", lab.prefix, spec.name);
            add_netns(&netns)?;
            lab.created.push(netns.clone());
            let ns = open_netns(&netns)?;
            lab.pods.push(Pod {
                name: spec.name.clone(),
                ip: spec.ip,
                netns,
                ns,
            });
        }

        // The bridge must forward, not filter: if br_netfilter is loaded,
        // bridged IPv4 would go through this namespace's iptables/nft hooks
        // (and conntrack). The sysctls exist per namespace, default 1.
        if let Some(hub_ns) = &lab.hub_ns {
            in_netns(hub_ns, || -> io::Result<()> {
                for name in [
                    "bridge-nf-call-iptables",
                    "bridge-nf-call-ip6tables",
                    "bridge-nf-call-arptables",
                ] {
                    let path = format!("/proc/sys/net/bridge/{name}");
                    if Path::new(&path).exists() {
                        std::fs::write(&path, "0").map_err(|e| {
                            context(e, &format!("writing 0 to {path} in the bridge's namespace"))
                        })?;
                    }
                }
                Ok(())
            })??;
        }

        // Bridge and veths, in one `ip` run inside the bridge's namespace.
        // STP stays off (the default), so ports forward at once.
        let gw = format!("{gateway}/{prefix_len}");
        let mut batch = format!(
            "link set lo up\nlink add name {br} type bridge\naddr add {gw} dev {br}\nlink set {br} up\n",
            br = lab.bridge
        );
        for (i, pod) in lab.pods.iter().enumerate() {
            let port = format!("{}p{i}", lab.short);
            batch.push_str(&format!(
                "link add name {port} type veth peer name eth0 netns {ns}\nlink set {port} master {br} up\n",
                ns = pod.netns,
                br = lab.bridge
            ));
        }
        ip_batch(Some(&hub), &batch)?;

        // Each pod's side.
        for pod in &lab.pods {
            let batch = format!(
                "link set lo up\naddr add {ip}/{prefix_len} dev eth0\nlink set eth0 up\nroute add default via {gateway} dev eth0\n",
                ip = pod.ip
            );
            ip_batch(Some(&pod.netns), &batch)?;
        }
        Ok(lab)
    }

    /// Starts, in every pod, a TCP listener and/or a UDP socket on each of
    /// `ports`, bound to 0.0.0.0. TCP servers accept, write one byte and
    /// close; UDP servers echo every datagram to its sender. The sockets are
    /// opened by a thread that `setns`es into each pod (a socket stays in the
    /// namespace it was created in), then served by one `poll` loop thread,
    /// which the lab stops and joins on drop. May be called again with other
    /// ports; a port already served fails with `AddrInUse`.
    pub fn serve(&self, ports: &[(u16, Protocol)]) -> io::Result<()> {
        let mut tcp = Vec::new();
        let mut udp = Vec::new();
        for pod in &self.pods {
            let (t, u) = in_netns(
                &pod.ns,
                || -> io::Result<(Vec<TcpListener>, Vec<UdpSocket>)> {
                    let mut t = Vec::new();
                    let mut u = Vec::new();
                    for &(port, protocol) in ports {
                        let addr = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port);
                        let what = format!("binding {protocol:?} port {port} in pod {}", pod.name);
                        match protocol {
                            Protocol::Tcp => {
                                let l = TcpListener::bind(addr).map_err(|e| context(e, &what))?;
                                l.set_nonblocking(true)?;
                                t.push(l);
                            }
                            Protocol::Udp => {
                                let s = UdpSocket::bind(addr).map_err(|e| context(e, &what))?;
                                s.set_nonblocking(true)?;
                                u.push(s);
                            }
                        }
                    }
                    Ok((t, u))
                },
            )??;
            tcp.extend(t);
            udp.extend(u);
        }
        let (stop, wake) = UnixStream::pair()?;
        let thread = thread::Builder::new()
            .name(format!("{}-serve", self.prefix))
            .spawn(move || serve_loop(wake, tcp, udp))?;
        self.servers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Server {
                stop: Some(stop),
                thread: Some(thread),
            });
        Ok(())
    }

    /// Replaces the pod's whole nftables ruleset with `ruleset`: runs
    /// `ip netns exec <ns> nft -f -` with `flush ruleset` prepended, which nft
    /// applies as one transaction (no moment with half a ruleset). Errors
    /// carry nft's stderr, which points at the offending line.
    pub fn load_nft(&self, pod: &str, ruleset: &str) -> io::Result<()> {
        let netns = &self.find(pod)?.netns;
        let input = format!("flush ruleset\n{ruleset}\n");
        run(
            "ip",
            &["netns", "exec", netns, "nft", "-f", "-"],
            Some(&input),
        )
        .map(drop)
        .map_err(|e| {
            context(
                e,
                &format!("loading nftables ruleset into pod {pod}:\n{ruleset}\n"),
            )
        })
    }

    /// The pod's current ruleset as `nft list ruleset` prints it (for a
    /// failing test's message).
    pub fn nft_ruleset(&self, pod: &str) -> io::Result<String> {
        let netns = &self.find(pod)?.netns;
        run(
            "ip",
            &["netns", "exec", netns, "nft", "list", "ruleset"],
            None,
        )
    }

    /// Whether `from` reaches `to` on `port`: for TCP, a connection opens
    /// and the server's byte arrives within `timeout`; for UDP, a datagram's
    /// echo comes back within `timeout` (sent up to 3 times, at 0, 1/3 and
    /// 2/3 of it, UDP being lossy). The socket is opened inside `from`'s
    /// namespace, so the packets leave through its veth and cross the bridge
    /// (except when `from == to`: then they go over the pod's `lo`, still
    /// through its nftables hooks). A refused connection (RST or ICMP
    /// unreachable, e.g. an nft `reject`) is `false` at once; a dropped one is
    /// `false` after the whole timeout.
    ///
    /// Panics on an unknown pod name (a bug in the test).
    pub fn probe(
        &self,
        from: &str,
        to: &str,
        port: u16,
        protocol: Protocol,
        timeout: Duration,
    ) -> bool {
        self.probe_all(
            &[(from.to_string(), to.to_string(), port, protocol)],
            timeout,
        )[0]
    }

    /// [`Lab::probe`] for many `(from, to, port, protocol)` at once, at most
    /// [`PROBE_PARALLELISM`] in flight, answers in the order given. Threads
    /// that `setns` are short-lived ones of their own, never the caller's.
    ///
    /// Panics on an unknown pod name.
    pub fn probe_all(
        &self,
        probes: &[(String, String, u16, Protocol)],
        timeout: Duration,
    ) -> Vec<bool> {
        // Resolve names here, so that a typo panics in the test's thread.
        let jobs: Vec<(usize, SocketAddrV4, Protocol)> = probes
            .iter()
            .map(|(from, to, port, protocol)| {
                (
                    self.index(from),
                    SocketAddrV4::new(self.pod_ip(to), *port),
                    *protocol,
                )
            })
            .collect();
        let next = AtomicUsize::new(0);
        let workers = jobs.len().min(PROBE_PARALLELISM);
        let mut answers = vec![false; jobs.len()];
        thread::scope(|scope| {
            let handles: Vec<_> = (0..workers)
                .map(|_| {
                    scope.spawn(|| {
                        let mut done = Vec::new();
                        let mut current: Option<usize> = None;
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(&(from, to, protocol)) = jobs.get(i) else {
                                break;
                            };
                            if current != Some(from) {
                                if let Err(e) = setns(&self.pods[from].ns) {
                                    panic!(
                                        "setns into pod {}'s namespace: {e}",
                                        self.pods[from].name
                                    );
                                }
                                current = Some(from);
                            }
                            let ok = match protocol {
                                Protocol::Tcp => probe_tcp(to, timeout),
                                Protocol::Udp => probe_udp(to, timeout),
                            };
                            done.push((i, ok));
                        }
                        done
                    })
                })
                .collect();
            for handle in handles {
                match handle.join() {
                    Ok(done) => {
                        for (i, ok) in done {
                            answers[i] = ok;
                        }
                    }
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
        });
        answers
    }

    /// The address `pod` was created with. Panics on an unknown pod name.
    pub fn pod_ip(&self, pod: &str) -> Ipv4Addr {
        self.pods[self.index(pod)].ip
    }

    /// The pods' names, in creation order.
    pub fn pod_names(&self) -> Vec<&str> {
        self.pods.iter().map(|p| p.name.as_str()).collect()
    }

    /// The namespace of `pod` (for `ip netns exec <it> ...` while debugging).
    /// Panics on an unknown pod name.
    pub fn netns(&self, pod: &str) -> &str {
        &self.pods[self.index(pod)].netns
    }

    /// The namespace holding the bridge and the veths' bridge ends (e.g. for
    /// `ip netns exec <it> tcpdump -ni <bridge>`).
    pub fn bridge_netns(&self) -> &str {
        &self.hub
    }

    /// The bridge's interface name, inside [`Lab::bridge_netns`].
    pub fn bridge(&self) -> &str {
        &self.bridge
    }

    /// The lab's unique prefix, `moonlab-<pid>-<n>`: every namespace it
    /// created starts with it.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The gateway: the bridge's address.
    pub fn gateway(&self) -> Ipv4Addr {
        self.gateway
    }

    fn find(&self, pod: &str) -> io::Result<&Pod> {
        self.pods.iter().find(|p| p.name == pod).ok_or_else(|| {
            io::Error::new(
                ErrorKind::NotFound,
                format!("no pod {pod:?} in lab {}", self.prefix),
            )
        })
    }

    fn index(&self, pod: &str) -> usize {
        match self.pods.iter().position(|p| p.name == pod) {
            Some(i) => i,
            None => panic!(
                "no pod {pod:?} in lab {} (pods: {:?})",
                self.prefix,
                self.pod_names()
            ),
        }
    }
}

impl Drop for Lab {
    /// Stops and joins the servers (closing their sockets), closes the
    /// namespace handles, then deletes every namespace created; the bridge
    /// and veths go with the bridge's namespace. Runs during a panic's
    /// unwinding too; it never panics itself (failures go to stderr).
    fn drop(&mut self) {
        let servers = std::mem::take(&mut *self.servers.lock().unwrap_or_else(|e| e.into_inner()));
        for mut server in servers {
            drop(server.stop.take());
            if let Some(thread) = server.thread.take() {
                let _ = thread.join();
            }
        }
        self.pods.clear();
        self.hub_ns = None;
        // Pods first, then the bridge's namespace: a pod's veth end goes
        // with either; doing the hub last keeps the bridge until the end.
        let mut batch = String::new();
        for netns in self.created.iter().rev() {
            batch.push_str(&format!("netns del {netns}\n"));
        }
        if batch.is_empty() {
            return;
        }
        if let Err(e) = run("ip", &["-force", "-batch", "-"], Some(&batch)) {
            eprintln!("lab {}: deleting namespaces: {e}", self.prefix);
        }
    }
}

/// Why the lab cannot run on this machine (not root, `ip` or `nft` missing,
/// no namespace, veth, bridge or nftables support in the kernel), or `None`.
/// Tries the real thing once (a throwaway namespace with a bridge, a veth and
/// an nft ruleset) and remembers the answer for the process.
pub fn unavailable() -> Option<String> {
    static ANSWER: OnceLock<Option<String>> = OnceLock::new();
    ANSWER.get_or_init(check_available).clone()
}

fn check_available() -> Option<String> {
    if !cfg!(target_os = "linux") {
        return Some("not Linux".into());
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if euid != 0 {
        return Some(format!(
            "not root (euid {euid}): network namespaces need CAP_SYS_ADMIN"
        ));
    }
    if !Path::new("/proc/self/ns/net").exists() {
        return Some("no network namespace support (/proc/self/ns/net missing)".into());
    }
    for (program, arg) in [("ip", "-V"), ("nft", "--version")] {
        if let Err(e) = run(program, &[arg], None) {
            return Some(format!(
                "`{program}` unusable ({e}); install iproute2 and nftables"
            ));
        }
    }
    clean_stale();
    let netns = format!("{NAME_PREFIX}{}-check", std::process::id());
    let result = (|| -> io::Result<()> {
        add_netns(&netns)?;
        ip_batch(
            Some(&netns),
            "link add name mlcbr type bridge\nlink add name mlcp0 type veth peer name mlcp1\nlink set mlcp0 master mlcbr\n",
        )?;
        run(
            "ip",
            &["netns", "exec", &netns, "nft", "-f", "-"],
            Some(
                "flush ruleset\ntable inet t {\n chain c {\n  type filter hook input priority 0;\n }\n}\n",
            ),
        )?;
        let ns = open_netns(&netns)?;
        in_netns(&ns, || ())?;
        Ok(())
    })();
    let _ = run("ip", &["netns", "del", &netns], None);
    result
        .err()
        .map(|e| format!("network lab unsupported here: {e}"))
}

/// Rejects specs that would fail half-way (or, worse, silently misbehave).
fn validate(pods: &[PodSpec], gateway: Ipv4Addr, prefix_len: u8) -> io::Result<()> {
    let invalid = |msg: String| Err(io::Error::new(ErrorKind::InvalidInput, msg));
    if prefix_len == 0 || prefix_len > 30 {
        return invalid(format!("prefix length {prefix_len} must be within 1..=30"));
    }
    let mut names = HashSet::new();
    let mut ips = HashSet::from([gateway]);
    for pod in pods {
        let ok = !pod.name.is_empty()
            && pod.name.len() <= 64
            && pod
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok {
            return invalid(format!(
                "pod name {:?}: use 1 to 64 ASCII letters, digits, '-' or '_'",
                pod.name
            ));
        }
        if !names.insert(pod.name.as_str()) {
            return invalid(format!("pod name {:?} given twice", pod.name));
        }
        if !ips.insert(pod.ip) {
            return invalid(format!(
                "address {} given twice (or is the gateway's)",
                pod.ip
            ));
        }
        let mask = u32::MAX << (32 - u32::from(prefix_len));
        if u32::from(pod.ip) & mask != u32::from(gateway) & mask {
            return invalid(format!(
                "pod {} address {} is not in {gateway}/{prefix_len}",
                pod.name, pod.ip
            ));
        }
    }
    Ok(())
}

/// Deletes namespaces `moonlab-<pid>-...` whose process no longer exists:
/// what a test killed without unwinding (SIGKILL, abort, a timeout) left.
/// Those of live processes are left alone, other test binaries' labs too.
fn clean_stale() {
    let Ok(entries) = std::fs::read_dir(NETNS_DIR) else {
        return;
    };
    let mut batch = String::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(NAME_PREFIX) else {
            continue;
        };
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let Ok(pid) = digits.parse::<u32>() else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            batch.push_str(&format!("netns del {name}\n"));
        }
    }
    if !batch.is_empty() {
        // Another process may be deleting the same ones: errors don't matter.
        let _ = run("ip", &["-force", "-batch", "-"], Some(&batch));
    }
}

fn add_netns(name: &str) -> io::Result<()> {
    run("ip", &["netns", "add", name], None).map(drop)
}

fn open_netns(name: &str) -> io::Result<File> {
    let path = format!("{NETNS_DIR}/{name}");
    File::open(&path).map_err(|e| context(e, &format!("opening {path}")))
}

/// Runs `ip [-n netns] -batch -` with `commands`, one per line: one process
/// for many commands; it stops at the first failing line and says which.
fn ip_batch(netns: Option<&str>, commands: &str) -> io::Result<()> {
    let mut args = Vec::new();
    if let Some(netns) = netns {
        args.extend(["-n", netns]);
    }
    args.extend(["-batch", "-"]);
    run("ip", &args, Some(commands))
        .map(drop)
        .map_err(|e| context(e, &format!("with input:\n{commands}")))
}

/// Runs a program to completion, feeding it `stdin`; its stdout on success,
/// an error with its stderr otherwise.
fn run(program: &str, args: &[&str], stdin: Option<&str>) -> io::Result<String> {
    let shown = format!("`{program} {}`", args.join(" "));
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| context(e, &format!("starting {shown}")))?;
    // Written from another thread so a large input and a chatty program
    // cannot deadlock on full pipes.
    let output = thread::scope(|scope| {
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            scope.spawn(move || {
                let _ = pipe.write_all(input.as_bytes());
            });
        }
        child.wait_with_output()
    })
    .map_err(|e| context(e, &format!("waiting for {shown}")))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(io::Error::other(format!(
            "{shown} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )))
    }
}

fn context(e: io::Error, what: &str) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// Moves the calling thread into the network namespace `ns`. Only this
/// thread: other threads, and sockets already open, keep theirs.
fn setns(ns: &File) -> io::Result<()> {
    // SAFETY: `ns` is an open file descriptor borrowed for the whole call;
    // setns with CLONE_NEWNET only changes the calling thread's network
    // namespace and touches no memory of ours.
    let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Runs `f` on a fresh thread moved into `ns`, so that the caller's thread
/// never changes namespace; sockets `f` opens stay in `ns` wherever used.
fn in_netns<T: Send>(ns: &File, f: impl FnOnce() -> T + Send) -> io::Result<T> {
    thread::scope(|scope| {
        scope
            .spawn(|| {
                setns(ns)?;
                Ok(f())
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// The servers of one [`Lab::serve`] call: waits in `poll` for connections,
/// datagrams or `wake`'s end of file (the lab dropping the other end).
fn serve_loop(wake: UnixStream, tcp: Vec<TcpListener>, udp: Vec<UdpSocket>) {
    let mut fds: Vec<libc::pollfd> = std::iter::once(wake.as_raw_fd())
        .chain(tcp.iter().map(|l| l.as_raw_fd()))
        .chain(udp.iter().map(|s| s.as_raw_fd()))
        .map(|fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let mut buf = [0u8; 2048];
    loop {
        for fd in &mut fds {
            fd.revents = 0;
        }
        // SAFETY: `fds` is a live, exclusively borrowed array of exactly
        // `fds.len()` pollfd structs; their descriptors are owned by `wake`,
        // `tcp` and `udp`, which outlive the call.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        if n < 0 {
            if io::Error::last_os_error().kind() == ErrorKind::Interrupted {
                continue;
            }
            eprintln!("lab server: poll: {}", io::Error::last_os_error());
            return;
        }
        if fds[0].revents != 0 {
            return; // Stop: the lab is being dropped.
        }
        for (i, listener) in tcp.iter().enumerate() {
            if fds[1 + i].revents == 0 {
                continue;
            }
            // Drain every pending connection: accept, greet, close.
            while let Ok((mut stream, _)) = listener.accept() {
                let _ = stream.write_all(&[TCP_GREETING]);
            }
        }
        for (i, socket) in udp.iter().enumerate() {
            if fds[1 + tcp.len() + i].revents == 0 {
                continue;
            }
            while let Ok((len, peer)) = socket.recv_from(&mut buf) {
                let _ = socket.send_to(&buf[..len], peer);
            }
        }
    }
}

/// Connect, then read the server's greeting, all within `timeout`.
fn probe_tcp(to: SocketAddrV4, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let Ok(mut stream) = TcpStream::connect_timeout(&SocketAddr::V4(to), timeout) else {
        return false;
    };
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
        return false;
    }
    let mut byte = [0u8; 1];
    matches!(stream.read(&mut byte), Ok(1) if byte[0] == TCP_GREETING)
}

/// Send a unique token (up to 3 times) and wait for it to come back.
fn probe_udp(to: SocketAddrV4, timeout: Duration) -> bool {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let start = Instant::now();
    let deadline = start + timeout;
    let Ok(socket) = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)) else {
        return false;
    };
    if socket.connect(to).is_err() {
        return false;
    }
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut token = [0u8; 24];
    token[..8].copy_from_slice(&u64::from(std::process::id()).to_be_bytes());
    token[8..16].copy_from_slice(&COUNTER.fetch_add(1, Ordering::Relaxed).to_be_bytes());
    token[16..].copy_from_slice(&nanos.to_be_bytes());

    const SENDS: u32 = 3;
    let mut sent = 0;
    let mut buf = [0u8; 64];
    loop {
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        let next_send = start + timeout * sent / SENDS;
        if sent < SENDS && now >= next_send {
            match socket.send(&token) {
                Ok(_) => {}
                // An earlier datagram's ICMP unreachable is reported here.
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => return false,
                Err(_) => {}
            }
            sent += 1;
            continue;
        }
        let until = if sent < SENDS {
            (start + timeout * sent / SENDS).min(deadline)
        } else {
            deadline
        };
        let wait = until
            .saturating_duration_since(now)
            .max(Duration::from_millis(1));
        if socket.set_read_timeout(Some(wait)).is_err() {
            return false;
        }
        match socket.recv(&mut buf) {
            Ok(len) if buf[..len] == token => return true,
            Ok(_) => {} // A late echo of nothing of ours: keep waiting.
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => return false,
            Err(_) => {} // Timed out: send again or give up, at the loop's top.
        }
    }
}
