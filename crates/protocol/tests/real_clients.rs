//! Real Kafka clients against the codec: librdkafka (the `rdkafka` crate and
//! Debian's `kcat`), kafka-python and kafkajs connect to a small listener that
//! decodes every request frame they send with eddy-protocol and answers
//! ApiVersions, Metadata and DescribeCluster (and, for librdkafka, Produce)
//! with responses encoded by eddy-protocol. A test passes when the client
//! reports the cluster we described and every frame it sent decoded cleanly.
//!
//! Needs `kcat`, `python3` with kafka-python, and `node` with kafkajs
//! (`.ci/run` installs them).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use eddy_protocol::messages::{
    ApiVersionsResponse, DescribeClusterResponse, MetadataRequest, MetadataResponse,
    ProduceRequest, ProduceResponse,
    api_versions_response::ApiVersion,
    describe_cluster_response::DescribeClusterBroker,
    metadata_response::{MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic},
    produce_response::{PartitionProduceResponse, TopicProduceResponse},
};
use eddy_protocol::records::RecordBatch;
use eddy_protocol::{
    API_TABLE, ApiKey, ErrorCode, RequestBody, RequestFrame, ResponseBody, ResponseFrame, StrBytes,
    Uuid,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const CLUSTER_ID: &str = "eddy-codec-test";
const NODE_ID: i32 = 1;
/// Topics the listener describes: name and partition count.
const TOPICS: &[(&str, i32)] = &[("orders", 3), ("payments", 1)];
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

/// What the listener saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    key: ApiKey,
    version: i16,
    client_id: Option<String>,
}

/// What the listener learned from a client's session.
#[derive(Default)]
struct Capture {
    requests: Vec<Seen>,
    /// Frames that failed to decode, with the reason: must stay empty.
    decode_failures: Vec<String>,
    /// Record values from decoded Produce batches, per compression codec.
    produced: Vec<(String, Vec<Option<Bytes>>)>,
}

struct Listener {
    address: SocketAddr,
    capture: Arc<Mutex<Capture>>,
}

impl Listener {
    async fn start() -> Listener {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let address = listener.local_addr().expect("local address");
        let capture = Arc::new(Mutex::new(Capture::default()));
        let shared = capture.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, address, shared.clone()));
            }
        });
        Listener { address, capture }
    }

    fn bootstrap(&self) -> String {
        self.address.to_string()
    }

    fn seen(&self) -> Vec<Seen> {
        self.capture.lock().unwrap().requests.clone()
    }

    fn assert_all_frames_decoded(&self) {
        let capture = self.capture.lock().unwrap();
        assert!(
            capture.decode_failures.is_empty(),
            "undecodable frames: {:?}",
            capture.decode_failures
        );
        assert!(!capture.requests.is_empty(), "the client sent no request");
    }
}

async fn serve(mut stream: TcpStream, address: SocketAddr, capture: Arc<Mutex<Capture>>) {
    loop {
        let mut length = [0u8; 4];
        if stream.read_exact(&mut length).await.is_err() {
            return;
        }
        let length = i32::from_be_bytes(length);
        if !(0..=100 << 20).contains(&length) {
            capture
                .lock()
                .unwrap()
                .decode_failures
                .push(format!("frame length {length}"));
            return;
        }
        let mut frame = BytesMut::zeroed(length as usize);
        if stream.read_exact(&mut frame).await.is_err() {
            return;
        }
        let frame = frame.freeze();
        let (key, header, _) = match RequestFrame::decode_header(&frame) {
            Ok(parsed) => parsed,
            Err(error) => {
                capture
                    .lock()
                    .unwrap()
                    .decode_failures
                    .push(error.to_string());
                return;
            }
        };
        let version = header.request_api_version;
        capture.lock().unwrap().requests.push(Seen {
            key,
            version,
            client_id: header.client_id.as_ref().map(|id| id.to_string()),
        });
        let supported = key.info().max_stable_version;
        let body = match RequestFrame::decode(&frame) {
            Ok(request) => answer(request.body, address, &capture),
            // KIP-511: an ApiVersions version we do not know gets our ranges in a v0 body.
            Err(_) if key == ApiKey::ApiVersions && version > supported => {
                let mut response = api_versions();
                response.error_code = ErrorCode::UnsupportedVersion.code();
                Some((ResponseBody::ApiVersions(response), Some(0)))
            }
            Err(error) => {
                capture
                    .lock()
                    .unwrap()
                    .decode_failures
                    .push(format!("{key:?} v{version}: {error}"));
                return;
            }
        };
        let Some((body, response_version)) = body else {
            return;
        };
        let response_version = response_version.unwrap_or(version);
        let mut encoded = ResponseFrame::encode(header.correlation_id, response_version, &body)
            .expect("encode response");
        if stream.write_all_buf(&mut encoded).await.is_err() {
            return;
        }
    }
}

/// The response to a decoded request and the version to encode it at
/// (`None`: the request's), or `None` to close the connection.
fn answer(
    body: RequestBody,
    address: SocketAddr,
    capture: &Mutex<Capture>,
) -> Option<(ResponseBody, Option<i16>)> {
    let response = match body {
        RequestBody::ApiVersions(_) => ResponseBody::ApiVersions(api_versions()),
        RequestBody::Metadata(request) => ResponseBody::Metadata(metadata(&request, address)),
        RequestBody::DescribeCluster(_) => ResponseBody::DescribeCluster(DescribeClusterResponse {
            cluster_id: StrBytes::from(CLUSTER_ID),
            controller_id: NODE_ID,
            brokers: vec![DescribeClusterBroker {
                broker_id: NODE_ID,
                host: StrBytes::from(address.ip().to_string()),
                port: i32::from(address.port()),
                ..Default::default()
            }],
            ..Default::default()
        }),
        RequestBody::Produce(request) => ResponseBody::Produce(produce(&request, capture)),
        _ => return None,
    };
    Some((response, None))
}

/// Every stable version of every API a broker serves, except client
/// telemetry, which would only add requests this listener ignores.
fn api_versions() -> ApiVersionsResponse {
    ApiVersionsResponse {
        api_keys: API_TABLE
            .iter()
            .filter(|api| {
                api.listeners.contains(&"broker") && api.max_stable_version >= api.min_version
            })
            .filter(|api| {
                !matches!(
                    api.key,
                    ApiKey::GetTelemetrySubscriptions | ApiKey::PushTelemetry
                )
            })
            .map(|api| ApiVersion {
                api_key: api.key as i16,
                min_version: api.min_version,
                max_version: api.max_stable_version,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

fn metadata(request: &MetadataRequest, address: SocketAddr) -> MetadataResponse {
    let wanted: Option<Vec<String>> = request.topics.as_ref().map(|topics| {
        topics
            .iter()
            .filter_map(|topic| topic.name.as_ref().map(|name| name.to_string()))
            .collect()
    });
    let topics = match wanted {
        None => TOPICS
            .iter()
            .map(|(name, partitions)| describe_topic(name, *partitions))
            .collect(),
        Some(names) => names
            .iter()
            .map(
                |name| match TOPICS.iter().find(|(known, _)| known == name) {
                    Some((name, partitions)) => describe_topic(name, *partitions),
                    None => MetadataResponseTopic {
                        error_code: ErrorCode::UnknownTopicOrPartition.code(),
                        name: Some(StrBytes::from(name.as_str())),
                        ..Default::default()
                    },
                },
            )
            .collect(),
    };
    MetadataResponse {
        brokers: vec![MetadataResponseBroker {
            node_id: NODE_ID,
            host: StrBytes::from(address.ip().to_string()),
            port: i32::from(address.port()),
            rack: None,
            ..Default::default()
        }],
        cluster_id: Some(StrBytes::from(CLUSTER_ID)),
        controller_id: NODE_ID,
        topics,
        ..Default::default()
    }
}

fn describe_topic(name: &str, partitions: i32) -> MetadataResponseTopic {
    MetadataResponseTopic {
        name: Some(StrBytes::from(name)),
        topic_id: Uuid::from_u128(name.len() as u128 + 0xedd1),
        partitions: (0..partitions)
            .map(|index| MetadataResponsePartition {
                partition_index: index,
                leader_id: NODE_ID,
                replica_nodes: vec![NODE_ID],
                isr_nodes: vec![NODE_ID],
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

/// Decodes every batch (checking CRC and decompressing), remembers the
/// values, and acknowledges at offset 0.
fn produce(request: &ProduceRequest, capture: &Mutex<Capture>) -> ProduceResponse {
    let mut responses = Vec::new();
    for topic in &request.topic_data {
        let mut partition_responses = Vec::new();
        for partition in &topic.partition_data {
            let error_code = match partition.records.as_ref().map(RecordBatch::decode) {
                Some(Ok(batch)) => {
                    let values = batch
                        .records
                        .iter()
                        .map(|record| record.value.clone())
                        .collect();
                    let codec = batch
                        .compression()
                        .map_or_else(|error| error.to_string(), |codec| format!("{codec:?}"));
                    capture.lock().unwrap().produced.push((codec, values));
                    0
                }
                Some(Err(error)) => {
                    capture
                        .lock()
                        .unwrap()
                        .decode_failures
                        .push(format!("produce batch: {error}"));
                    error.kafka_error_code()
                }
                None => ErrorCode::InvalidRecord.code(),
            };
            partition_responses.push(PartitionProduceResponse {
                index: partition.index,
                error_code,
                base_offset: 0,
                ..Default::default()
            });
        }
        responses.push(TopicProduceResponse {
            name: topic.name.clone(),
            partition_responses,
            ..Default::default()
        });
    }
    ProduceResponse {
        responses,
        ..Default::default()
    }
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs a client program and parses the JSON it prints.
async fn run_client(program: &str, args: &[&str]) -> serde_json::Value {
    let child = tokio::process::Command::new(program)
        .args(args)
        .current_dir(repo_root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|error| {
            panic!("cannot start {program} (run .ci/run to install the clients): {error}")
        });
    let output = tokio::time::timeout(CLIENT_TIMEOUT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{program} {args:?} did not finish within {CLIENT_TIMEOUT:?}"))
        .expect("client output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}\nstdout: {stdout}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&stdout)
        .unwrap_or_else(|error| panic!("{program} printed no JSON ({error}): {stdout}"))
}

fn assert_saw(listener: &Listener, key: ApiKey) -> Seen {
    listener
        .seen()
        .into_iter()
        .find(|seen| seen.key == key)
        .unwrap_or_else(|| panic!("no {key:?} request among {:?}", listener.seen()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn librdkafka_reads_metadata_encoded_by_the_codec() {
    use rdkafka::ClientConfig;
    use rdkafka::consumer::{BaseConsumer, Consumer};

    let listener = Listener::start().await;
    let bootstrap = listener.bootstrap();
    let metadata = tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("client.id", "eddy-rdkafka-test")
            .create()
            .expect("consumer");
        let metadata = consumer
            .fetch_metadata(None, Duration::from_secs(10))
            .expect("metadata");
        let mut topics: Vec<(String, usize)> = metadata
            .topics()
            .iter()
            .map(|topic| (topic.name().to_string(), topic.partitions().len()))
            .collect();
        topics.sort();
        let brokers: Vec<i32> = metadata
            .brokers()
            .iter()
            .map(|broker| broker.id())
            .collect();
        (brokers, topics)
    })
    .await
    .expect("librdkafka thread");

    assert_eq!(metadata.0, vec![NODE_ID]);
    assert_eq!(
        metadata.1,
        vec![("orders".to_string(), 3), ("payments".to_string(), 1)]
    );
    listener.assert_all_frames_decoded();
    let api_versions = assert_saw(&listener, ApiKey::ApiVersions);
    assert_eq!(api_versions.client_id.as_deref(), Some("eddy-rdkafka-test"));
    let metadata_request = assert_saw(&listener, ApiKey::Metadata);
    assert!(
        metadata_request.version >= 4,
        "librdkafka 2.12 used Metadata v{}",
        metadata_request.version
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn librdkafka_produce_batches_decode_with_every_compression() {
    use rdkafka::ClientConfig;
    use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

    let listener = Listener::start().await;
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let bootstrap = listener.bootstrap();
        tokio::task::spawn_blocking(move || {
            let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
                .set("bootstrap.servers", &bootstrap)
                .set("compression.codec", codec)
                .set("linger.ms", "50")
                .create()
                .expect("producer");
            for index in 0..20 {
                let value = format!("{codec}-{index}-{}", "x".repeat(200 + index * 10));
                producer
                    .send(
                        BaseRecord::<str, str>::to("orders")
                            .partition(0)
                            .key("k")
                            .payload(&value),
                    )
                    .map_err(|(error, _)| error)
                    .expect("enqueue");
            }
            producer.flush(Duration::from_secs(15)).expect("flush");
        })
        .await
        .expect("producer thread");
    }
    listener.assert_all_frames_decoded();
    let capture = listener.capture.lock().unwrap();
    for (codec, name) in [
        ("none", "None"),
        ("gzip", "Gzip"),
        ("snappy", "Snappy"),
        ("lz4", "Lz4"),
        ("zstd", "Zstd"),
    ] {
        let values: Vec<String> = capture
            .produced
            .iter()
            .filter(|(compression, _)| compression == name)
            .flat_map(|(_, values)| {
                values.iter().map(|value| {
                    String::from_utf8_lossy(value.as_deref().unwrap_or_default()).into_owned()
                })
            })
            .collect();
        let expected: Vec<String> = (0..20)
            .map(|index| format!("{codec}-{index}-{}", "x".repeat(200 + index * 10)))
            .collect();
        assert_eq!(values, expected, "records produced with {codec}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kcat_lists_the_cluster() {
    let listener = Listener::start().await;
    let output = run_client(
        "kcat",
        &["-b", &listener.bootstrap(), "-L", "-J", "-m", "10"],
    )
    .await;
    let mut topics: Vec<(String, usize)> = output["topics"]
        .as_array()
        .expect("topics")
        .iter()
        .map(|topic| {
            (
                topic["topic"].as_str().unwrap_or_default().to_string(),
                topic["partitions"].as_array().map_or(0, Vec::len),
            )
        })
        .collect();
    topics.sort();
    assert_eq!(
        topics,
        vec![("orders".to_string(), 3), ("payments".to_string(), 1)]
    );
    assert_eq!(output["brokers"][0]["id"], NODE_ID);
    listener.assert_all_frames_decoded();
    // Debian's kcat links librdkafka 2.0.2, which is strict about the
    // ApiVersions v3 layout: reaching Metadata shows it accepted ours.
    assert_eq!(assert_saw(&listener, ApiKey::ApiVersions).version, 3);
    assert_saw(&listener, ApiKey::Metadata);
}

/// Checks the JSON that `tests/clients/*_metadata.*` print.
fn assert_described_cluster(output: &serde_json::Value, listener: &Listener) {
    assert_eq!(output["cluster_id"], CLUSTER_ID);
    assert_eq!(output["controller_id"], NODE_ID);
    assert_eq!(output["brokers"][0]["node_id"], NODE_ID);
    assert_eq!(output["brokers"][0]["port"], listener.address.port());
    let topics: Vec<(String, usize)> = output["topics"]
        .as_array()
        .expect("topics")
        .iter()
        .map(|topic| {
            (
                topic["name"].as_str().unwrap_or_default().to_string(),
                topic["partitions"].as_array().map_or(0, Vec::len),
            )
        })
        .collect();
    assert_eq!(
        topics,
        vec![("orders".to_string(), 3), ("payments".to_string(), 1)]
    );
    assert_eq!(output["topics"][0]["partitions"][2]["leader"], NODE_ID);
    listener.assert_all_frames_decoded();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_python_reads_the_cluster() {
    let listener = Listener::start().await;
    let output = run_client(
        "python3",
        &[
            "tests/clients/kafka_python_metadata.py",
            &listener.bootstrap(),
        ],
    )
    .await;
    assert_described_cluster(&output, &listener);
    // kafka-python 3 opens with ApiVersions v4, newer than some brokers know.
    let first = &listener.seen()[0];
    assert_eq!((first.key, first.version), (ApiKey::ApiVersions, 4));
    assert_eq!(first.client_id.as_deref(), Some("eddy-test-kafka-python"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafkajs_reads_the_cluster() {
    let listener = Listener::start().await;
    let output = run_client(
        "node",
        &["tests/clients/kafkajs_metadata.mjs", &listener.bootstrap()],
    )
    .await;
    assert_described_cluster(&output, &listener);
    assert_eq!(
        assert_saw(&listener, ApiKey::Metadata).client_id.as_deref(),
        Some("eddy-test-kafkajs")
    );
}
