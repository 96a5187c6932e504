//! One client connection: framing, and nothing else.
//!
//! Frames are read one at a time and answered in order (Kafka clients
//! pipeline requests and match responses by order as well as correlation
//! id). Responses go to a writer task, so a slow socket never stalls the
//! next request's work, and large record payloads reach the socket by
//! vectored writes without being copied. An acks=all Produce hands the
//! writer a response still waiting for the in-sync replicas: the next
//! request is read and appended meanwhile (a client with several requests in
//! flight keeps the followers busy), and the writer keeps the order. A frame over
//! `socket.request.max.bytes`, a malformed frame or an unsupported request
//! closes this connection only, as Kafka does.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use eddy_protocol::{EncodedBytes, ResponseFrame};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

use crate::handlers::{self, Reply};
use crate::state::Broker;

/// Responses queued for the socket at most; the reader waits beyond that.
const WRITE_QUEUE_LENGTH: usize = 64;
/// Buffer for reading small frames with few system calls.
const READ_BUFFER_BYTES: usize = 64 * 1024;
/// Frame bytes allocated ahead of their arrival, so a client that claims a
/// huge frame and sends nothing costs little memory.
const FRAME_ALLOCATION_STEP_BYTES: usize = 1 << 20;

/// A response on its way to the socket, in request order.
enum Queued {
    Ready(EncodedBytes),
    /// Encoded and written once `body` is ready.
    Deferred {
        correlation_id: i32,
        version: i16,
        body: std::pin::Pin<
            Box<dyn std::future::Future<Output = eddy_protocol::ResponseBody> + Send>,
        >,
    },
}

pub async fn serve(
    broker: Arc<Broker>,
    stream: TcpStream,
    peer: SocketAddr,
    max_request_bytes: usize,
    mut shutdown: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let (reader, mut writer) = stream.into_split();
    let mut reader = BufReader::with_capacity(READ_BUFFER_BYTES, reader);
    let (responses, mut queue) = mpsc::channel::<Queued>(WRITE_QUEUE_LENGTH);
    let writer_task = tokio::spawn(async move {
        while let Some(queued) = queue.recv().await {
            let mut response = match queued {
                Queued::Ready(response) => response,
                Queued::Deferred {
                    correlation_id,
                    version,
                    body,
                } => {
                    let body = body.await;
                    match ResponseFrame::encode(correlation_id, version, &body) {
                        Ok(encoded) => encoded,
                        Err(error) => {
                            tracing::error!(%peer, %error, "could not encode a response; closing connection");
                            break;
                        }
                    }
                }
            };
            if writer.write_all_buf(&mut response).await.is_err() {
                break;
            }
        }
        let _ = writer.shutdown().await;
    });
    loop {
        let frame = tokio::select! {
            frame = read_frame(&mut reader, max_request_bytes) => frame,
            _ = shutdown.changed() => break,
        };
        let frame = match frame {
            Ok(Some(frame)) => frame,
            Ok(None) => break,
            Err(reason) => {
                tracing::warn!(%peer, %reason, "closing connection");
                break;
            }
        };
        match handlers::handle(&broker, frame, peer).await {
            Reply::Respond {
                correlation_id,
                version,
                body,
            } => match ResponseFrame::encode(correlation_id, version, &body) {
                Ok(encoded) => {
                    if responses.send(Queued::Ready(encoded)).await.is_err() {
                        break;
                    }
                }
                Err(error) => {
                    tracing::error!(%peer, %error, "could not encode a response; closing connection");
                    break;
                }
            },
            Reply::Deferred {
                correlation_id,
                version,
                body,
            } => {
                let queued = Queued::Deferred {
                    correlation_id,
                    version,
                    body,
                };
                if responses.send(queued).await.is_err() {
                    break;
                }
            }
            Reply::Nothing => {}
            Reply::Close(reason) => {
                tracing::warn!(%peer, %reason, "closing connection");
                break;
            }
        }
    }
    drop(responses);
    let _ = writer_task.await;
    tracing::debug!(%peer, "connection closed");
}

/// Reads one length-prefixed frame. `Ok(None)`: the client closed the
/// connection between frames.
async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    max_request_bytes: usize,
) -> Result<Option<bytes::Bytes>, String> {
    let mut prefix = [0u8; 4];
    match reader.read_exact(&mut prefix).await {
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(error) => return Err(error.to_string()),
    }
    let claimed = i32::from_be_bytes(prefix);
    let length =
        usize::try_from(claimed).map_err(|_| format!("negative frame length {claimed}"))?;
    if length > max_request_bytes {
        return Err(format!(
            "frame of {length} bytes is larger than socket.request.max.bytes ({max_request_bytes})"
        ));
    }
    let mut frame = BytesMut::with_capacity(length.min(FRAME_ALLOCATION_STEP_BYTES));
    while frame.len() < length {
        let wanted = (length - frame.len()).min(FRAME_ALLOCATION_STEP_BYTES);
        frame.reserve(wanted);
        let mut limited = (&mut *reader).take(wanted as u64);
        let read = limited
            .read_buf(&mut frame)
            .await
            .map_err(|error| error.to_string())?;
        if read == 0 {
            return Err(format!(
                "connection closed {} bytes into a {length}-byte frame",
                frame.len()
            ));
        }
    }
    Ok(Some(frame.freeze()))
}
