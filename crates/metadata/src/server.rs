//! The controller listener: accepts connections from other nodes, answers
//! their requests concurrently, and tells the controller when a connection
//! that carried heartbeats closes (usually: that node's process is gone).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, watch};

use crate::controller::ControllerEvent;
use crate::node::Shared;
use crate::wire::{Frame, Rpc, encode_frame, read_frame, write_frame};

/// Connections served at once; more wait in the kernel's backlog.
const MAX_CONNECTIONS: usize = 256;
/// Requests of one connection being answered at once.
const MAX_IN_FLIGHT_PER_CONNECTION: usize = 64;

pub(crate) async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let connections = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let next_connection_id = AtomicU64::new(1);
    loop {
        let Ok(permit) = connections.clone().acquire_owned().await else {
            return;
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => return,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::debug!(%error, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        if crate::fault::isolated() {
            // Cut off by fault injection: other nodes cannot reach this one.
            drop(stream);
            continue;
        }
        let _ = stream.set_nodelay(true);
        let connection_id = next_connection_id.fetch_add(1, Ordering::Relaxed);
        let shared = shared.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            serve_connection(stream, connection_id, shared, shutdown).await;
            drop(permit);
        });
    }
}

async fn serve_connection(
    stream: TcpStream,
    connection_id: u64,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let (mut read_half, mut write_half) = stream.into_split();
    let (replies, mut outgoing) = mpsc::channel::<Vec<u8>>(MAX_IN_FLIGHT_PER_CONNECTION);
    let writer = tokio::spawn(async move {
        while let Some(frame) = outgoing.recv().await {
            if write_frame(&mut write_half, &frame).await.is_err() {
                return;
            }
        }
    });
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT_PER_CONNECTION));
    let mut carried_heartbeats = false;
    let mut faults = crate::fault::subscribe();
    loop {
        let frame = tokio::select! {
            frame = read_frame::<Frame<Rpc>>(&mut read_half) => frame,
            _ = shutdown.changed() => break,
            () = crate::fault::until_isolated(&mut faults) => {
                // Cut off by fault injection: the peer is not gone.
                carried_heartbeats = false;
                break;
            }
        };
        let Frame { id, body } = match frame {
            Ok(frame) => frame,
            Err(error) => {
                tracing::debug!(connection_id, %error, "closing controller connection");
                break;
            }
        };
        carried_heartbeats |= matches!(body, Rpc::Heartbeat(_));
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            break;
        };
        let shared = shared.clone();
        let replies = replies.clone();
        tokio::spawn(async move {
            let body = shared.handle(body, connection_id).await;
            match encode_frame(&Frame { id, body }) {
                Ok(frame) => {
                    let _ = replies.send(frame).await;
                }
                Err(error) => tracing::warn!(%error, "cannot encode a reply"),
            }
            drop(permit);
        });
    }
    writer.abort();
    if carried_heartbeats {
        shared
            .controller
            .send(ControllerEvent::ConnectionClosed { connection_id });
    }
}
