//! Process control: the one place that sends signals to node processes and
//! sets up how they are spawned. Callers speak in [`Signal`]s; platforms
//! without one of them (Windows has no SIGSTOP or SIGTERM) answer
//! [`std::io::ErrorKind::Unsupported`] here, so adding a platform touches
//! only this file.

use std::io;
use std::process::Command;

/// What the supervisor can ask of a node process, and what each means to a
/// node (`eddy broker` implements these meanings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGKILL: a crash. The node gets no chance to do anything.
    Kill,
    /// SIGTERM: controlled shutdown; the node hands its partition
    /// leaderships to in-sync followers, then exits.
    Terminate,
    /// SIGINT: clean shutdown without hand-offs.
    Interrupt,
    /// SIGSTOP: the node hangs, as if stuck.
    Pause,
    /// SIGCONT: a paused node carries on.
    Resume,
}

impl Signal {
    pub fn name(self) -> &'static str {
        match self {
            Signal::Kill => "SIGKILL",
            Signal::Terminate => "SIGTERM",
            Signal::Interrupt => "SIGINT",
            Signal::Pause => "SIGSTOP",
            Signal::Resume => "SIGCONT",
        }
    }
}

/// Sends `signal` to process `pid`. A process that is already gone is an
/// error of kind [`io::ErrorKind::NotFound`].
#[cfg(unix)]
pub fn send(pid: u32, signal: Signal) -> io::Result<()> {
    let number = match signal {
        Signal::Kill => libc::SIGKILL,
        Signal::Terminate => libc::SIGTERM,
        Signal::Interrupt => libc::SIGINT,
        Signal::Pause => libc::SIGSTOP,
        Signal::Resume => libc::SIGCONT,
    };
    let pid = libc::pid_t::try_from(pid).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("pid {pid} out of range"),
        )
    })?;
    // pid 0 or negative would signal whole process groups.
    if pid <= 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("pid {pid}"),
        ));
    }
    // SAFETY: kill(2) takes plain integers and touches no memory.
    if unsafe { libc::kill(pid, number) } == 0 {
        return Ok(());
    }
    let error = io::Error::last_os_error();
    if error.raw_os_error() == Some(libc::ESRCH) {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no process {pid}"),
        ));
    }
    Err(error)
}

#[cfg(not(unix))]
pub fn send(_pid: u32, signal: Signal) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        format!("{} is not supported on this platform", signal.name()),
    ))
}

/// Makes a node's command safe to supervise: its own process group (so a
/// Ctrl-C in the supervisor's terminal reaches only the supervisor, which
/// then shuts nodes down in order), and on Linux death with the process
/// that spawned it, so a killed supervisor leaves no orphans.
///
/// On Linux the parent-death signal fires when the *thread* that forked
/// exits, so commands configured here must be spawned from a thread that
/// lives as long as the children (see `spawner`).
pub fn configure_node_command(command: &mut Command) {
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        command.process_group(0);
    }
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        let supervisor_pid = std::process::id();
        // SAFETY: the closure runs between fork and exec and calls only
        // async-signal-safe functions (prctl, getppid), allocating nothing
        // on the success path.
        unsafe {
            command.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) == -1 {
                    return Err(io::Error::last_os_error());
                }
                // The supervisor may have died before prctl took effect.
                if u32::try_from(libc::getppid()).ok() != Some(supervisor_pid) {
                    return Err(io::Error::from(io::ErrorKind::BrokenPipe));
                }
                Ok(())
            });
        }
    }
}

/// Raises this process's soft open-files limit to its hard limit, so that
/// nodes (which inherit it) can hold many segments and connections. Returns
/// the new soft limit, or `None` where there is no such limit.
#[cfg(unix)]
// `rlim_t` is u64 on Linux and macOS but not on every unix.
#[allow(clippy::unnecessary_cast)]
pub fn raise_open_files_limit() -> io::Result<Option<u64>> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes only into `limit`, which outlives the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if limit.rlim_cur >= limit.rlim_max {
        return Ok(Some(limit.rlim_cur as u64));
    }
    let mut raised = libc::rlimit {
        rlim_cur: limit.rlim_max,
        rlim_max: limit.rlim_max,
    };
    // SAFETY: as above; setrlimit only reads `raised`.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
        // macOS refuses an unlimited soft limit; its kernel cap is OPEN_MAX.
        const MACOS_OPEN_MAX: libc::rlim_t = 10_240;
        raised.rlim_cur = limit.rlim_max.min(MACOS_OPEN_MAX).max(limit.rlim_cur);
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(Some(raised.rlim_cur as u64))
}

#[cfg(not(unix))]
pub fn raise_open_files_limit() -> io::Result<Option<u64>> {
    Ok(None)
}

/// How a process ended: its exit code, or the signal that killed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExitInfo {
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

impl From<std::process::ExitStatus> for ExitInfo {
    fn from(status: std::process::ExitStatus) -> ExitInfo {
        #[cfg(unix)]
        let signal = std::os::unix::process::ExitStatusExt::signal(&status);
        #[cfg(not(unix))]
        let signal = None;
        ExitInfo {
            code: status.code(),
            signal,
        }
    }
}

impl std::fmt::Display for ExitInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.code, self.signal) {
            (Some(code), _) => write!(f, "exit code {code}"),
            (None, Some(signal)) => write!(f, "signal {signal}"),
            (None, None) => f.write_str("unknown status"),
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn signalling_a_process_that_is_gone_is_not_found() {
        let mut child = Command::new("true").spawn().expect("spawning true");
        let pid = child.id();
        child.wait().expect("waiting for true");
        let error = send(pid, Signal::Terminate).expect_err("the process is gone");
        assert_eq!(error.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn pause_resume_and_kill_reach_the_process() {
        let mut child = Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("spawning sleep");
        send(child.id(), Signal::Pause).expect("SIGSTOP");
        send(child.id(), Signal::Resume).expect("SIGCONT");
        send(child.id(), Signal::Kill).expect("SIGKILL");
        let status = ExitInfo::from(child.wait().expect("waiting for sleep"));
        assert_eq!(status.signal, Some(libc::SIGKILL));
    }

    #[test]
    fn the_open_files_limit_ends_at_least_where_it_started() {
        let raised = raise_open_files_limit().expect("raising RLIMIT_NOFILE");
        assert!(raised.is_some_and(|limit| limit >= 256));
    }
}
