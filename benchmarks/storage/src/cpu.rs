//! CPU time spent by this process and by its finished children: what a client costs per
//! request, which decides throughput when the client and the servers share a few cores.

use std::time::Duration;

fn usage(who: libc::c_int) -> Duration {
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid `who` and a pointer to a live rusage.
    if unsafe { libc::getrusage(who, &mut usage) } != 0 {
        return Duration::ZERO;
    }
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// User and system time of this process so far, every thread included.
pub fn own() -> Duration {
    usage(libc::RUSAGE_SELF)
}

/// User and system time of the children that have ended and been waited for.
pub fn children() -> Duration {
    usage(libc::RUSAGE_CHILDREN)
}

/// User and system time of the process `pid` so far (from `/proc/PID/stat`); `None` when it
/// cannot be read.
pub fn of_process(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name, in parentheses, may hold spaces: the fields start after its last `)`.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (per_second > 0).then(|| Duration::from_secs_f64(ticks as f64 / per_second as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_work_shows_in_own_time() {
        // On a loaded machine wall time says little about CPU time: spin until our own time
        // has moved on, within a generous deadline.
        let before = own();
        let started = std::time::Instant::now();
        let mut x = 0u64;
        while own() - before < Duration::from_millis(30) {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "20 s of spinning did not show in getrusage"
            );
            for _ in 0..100_000 {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            }
            std::hint::black_box(x);
        }
    }

    #[test]
    fn another_process_time_is_read_from_proc() {
        let mut child = std::process::Command::new("sh")
            .args([
                "-c",
                "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; sleep 5",
            ])
            .spawn()
            .unwrap();
        let started = std::time::Instant::now();
        let mut seen = Duration::ZERO;
        while seen < Duration::from_millis(50) && started.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(20));
            seen = of_process(child.id()).expect("the child's /proc/PID/stat");
        }
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(seen >= Duration::from_millis(50), "{seen:?}");
        assert_eq!(of_process(u32::MAX), None);
    }

    #[test]
    fn a_finished_child_shows_in_children_time() {
        let before = children();
        let status = std::process::Command::new("sh")
            .args(["-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done"])
            .status()
            .unwrap();
        assert!(status.success());
        assert!(children() > before);
    }
}
