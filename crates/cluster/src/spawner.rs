//! The spawner: one long-lived thread that forks every node.
//!
//! Linux's parent-death signal (see `process::configure_node_command`) is
//! tied to the thread that forked the child, not to the process. Spawning
//! from a tokio worker or blocking-pool thread would kill a node whenever
//! that thread is retired; spawning from this thread, which lives exactly as
//! long as the supervisor, kills nodes only when the supervisor is gone.

use std::io;
use std::process::{Child, Command};
use std::sync::mpsc;
use std::thread::JoinHandle;

struct SpawnRequest {
    command: Command,
    reply: mpsc::SyncSender<io::Result<Child>>,
}

pub(crate) struct Spawner {
    requests: Option<mpsc::Sender<SpawnRequest>>,
    thread: Option<JoinHandle<()>>,
}

impl Spawner {
    pub(crate) fn start() -> io::Result<Spawner> {
        let (requests, incoming) = mpsc::channel::<SpawnRequest>();
        let thread = std::thread::Builder::new()
            .name("eddy-spawner".into())
            .spawn(move || {
                for mut request in incoming {
                    let _ = request.reply.send(request.command.spawn());
                }
            })?;
        Ok(Spawner {
            requests: Some(requests),
            thread: Some(thread),
        })
    }

    /// Spawns `command` on the spawner thread and returns the child.
    pub(crate) fn spawn(&self, command: Command) -> io::Result<Child> {
        let gone = || io::Error::other("the spawner thread has stopped");
        let (reply, answer) = mpsc::sync_channel(1);
        self.requests
            .as_ref()
            .ok_or_else(gone)?
            .send(SpawnRequest { command, reply })
            .map_err(|_| gone())?;
        answer.recv().map_err(|_| gone())?
    }
}

impl Drop for Spawner {
    fn drop(&mut self) {
        self.requests.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
