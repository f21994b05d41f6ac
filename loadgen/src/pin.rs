//! Core pinning for `make bench`: with two cores or more, the load generator runs on the first
//! core it may use and every server it starts on the second, so the two never take turns on
//! one core and "per core" means one core. With one core, nothing is pinned.

use std::{os::unix::process::CommandExt, process::Command, sync::OnceLock};

/// The cores chosen, once, by [`split`].
static CORES: OnceLock<Option<Cores>> = OnceLock::new();

#[derive(Clone, Copy)]
pub struct Cores {
    pub load: usize,
    pub server: usize,
}

/// The CPUs this process may run on (its affinity mask).
fn allowed() -> Vec<usize> {
    // SAFETY: a zeroed cpu_set_t is an empty set; sched_getaffinity fills it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Vec::new();
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&cpu| libc::CPU_ISSET(cpu, &set))
            .collect()
    }
}

fn set_of(cpu: usize) -> libc::cpu_set_t {
    // SAFETY: a zeroed cpu_set_t is an empty set; CPU_SET adds one CPU below CPU_SETSIZE.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        set
    }
}

/// Pins this process (the calling thread, and every thread it starts from now on) to the first
/// allowed core and keeps the second for servers, when there are two; returns the choice.
/// Call before starting any thread.
pub fn split() -> Option<Cores> {
    *CORES.get_or_init(|| {
        let cpus = allowed();
        let [load, server, ..] = cpus[..] else {
            return None;
        };
        let set = set_of(load);
        // SAFETY: pid 0 is the calling thread; `set` is a valid cpu_set_t.
        let pinned = unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) } == 0;
        pinned.then_some(Cores { load, server })
    })
}

/// Makes `command`'s process start on the servers' core, when [`split`] chose one. Set in the
/// child before it runs anything, so all of its threads inherit it.
pub fn server(command: &mut Command) {
    let Some(Some(cores)) = CORES.get() else {
        return;
    };
    let set = set_of(cores.server);
    // SAFETY: the closure only makes a system call on a set prepared before the fork, which is
    // async-signal-safe.
    unsafe {
        command.pre_exec(move || {
            if libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
}
