//! eddy-protocol against the `kafka-protocol` crate, in the same run, on the
//! messages a broker handles most: a Produce request carrying 1 MiB of record
//! batches (decode), a Fetch response carrying 1 MiB (encode, ready for the
//! socket), and small Metadata and ApiVersions responses (encode + decode).
//!
//! Run with `cargo bench -p eddy-protocol --bench codec`. After criterion's
//! own report it prints one line per message with both means and the ratio
//! (kafka-protocol time / eddy time: above 1 means eddy is faster).

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use criterion::Criterion;
use eddy_protocol::messages::{
    ApiVersionsResponse, FetchResponse, MetadataResponse, ProduceRequest,
    api_versions_response::ApiVersion,
    fetch_response::{FetchableTopicResponse, PartitionData},
    metadata_response::{MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic},
    produce_request::{PartitionProduceData, TopicProduceData},
};
use eddy_protocol::{API_TABLE, Encodable as _, Encoder, Message, StrBytes, Uuid};
use kafka_protocol::protocol::{Decodable as TheirDecodable, Encodable as TheirEncodable};

const PRODUCE_VERSION: i16 = 9;
const FETCH_VERSION: i16 = 16;
const METADATA_VERSION: i16 = 12;
const API_VERSIONS_VERSION: i16 = 3;
const PAYLOAD_BYTES: usize = 1 << 20;
const PARTITIONS: usize = 16;

/// (group, target ratio) for the summary.
const TARGETS: &[(&str, f64)] = &[
    ("produce_request_decode_1MiB", 1.0),
    ("fetch_response_encode_1MiB", 5.0),
    ("metadata_response_round_trip", 1.0),
    ("api_versions_response_round_trip", 1.0),
];

fn record_payloads() -> Vec<Bytes> {
    let per_partition = PAYLOAD_BYTES / PARTITIONS;
    (0..PARTITIONS)
        .map(|index| Bytes::from(vec![index as u8; per_partition]))
        .collect()
}

fn produce_request() -> ProduceRequest {
    ProduceRequest {
        acks: -1,
        timeout_ms: 30_000,
        topic_data: vec![TopicProduceData {
            name: StrBytes::from("orders"),
            partition_data: record_payloads()
                .into_iter()
                .enumerate()
                .map(|(index, records)| PartitionProduceData {
                    index: index as i32,
                    records: Some(records),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn fetch_response() -> FetchResponse {
    FetchResponse {
        responses: vec![FetchableTopicResponse {
            topic_id: Uuid::from_u128(0xedd1),
            partitions: record_payloads()
                .into_iter()
                .enumerate()
                .map(|(index, records)| PartitionData {
                    partition_index: index as i32,
                    high_watermark: 1_000_000,
                    last_stable_offset: 1_000_000,
                    log_start_offset: 0,
                    records: Some(records),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn metadata_response() -> MetadataResponse {
    MetadataResponse {
        brokers: (1..=3)
            .map(|node| MetadataResponseBroker {
                node_id: node,
                host: StrBytes::from("127.0.0.1"),
                port: 19091 + node,
                ..Default::default()
            })
            .collect(),
        cluster_id: Some(StrBytes::from("eddy-local")),
        controller_id: 1,
        topics: (0..5)
            .map(|topic| MetadataResponseTopic {
                name: Some(StrBytes::from(format!("topic-{topic}"))),
                topic_id: Uuid::from_u128(topic + 1),
                partitions: (0..3)
                    .map(|partition| MetadataResponsePartition {
                        partition_index: partition,
                        leader_id: 1 + partition % 3,
                        replica_nodes: vec![1, 2, 3],
                        isr_nodes: vec![1, 2, 3],
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

fn api_versions_response() -> ApiVersionsResponse {
    ApiVersionsResponse {
        api_keys: API_TABLE
            .iter()
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

fn ours_to_bytes<M: Message>(message: &M, version: i16) -> Bytes {
    message.encode_to_bytes(version).expect("encode")
}

/// The same message as the `kafka-protocol` crate's type, by decoding our bytes.
fn theirs<T: TheirDecodable>(bytes: &Bytes, version: i16) -> T {
    T::decode(&mut bytes.clone(), version).expect("kafka-protocol decodes our bytes")
}

fn their_encode<T: TheirEncodable>(message: &T, version: i16) -> BytesMut {
    let mut buffer = BytesMut::with_capacity(message.compute_size(version).expect("size"));
    message.encode(&mut buffer, version).expect("encode");
    buffer
}

fn benches(criterion: &mut Criterion) {
    let produce_bytes = ours_to_bytes(&produce_request(), PRODUCE_VERSION);
    let mut group = criterion.benchmark_group("produce_request_decode_1MiB");
    group.bench_function("eddy", |bench| {
        bench.iter(|| {
            ProduceRequest::decode_from_bytes(black_box(&produce_bytes), PRODUCE_VERSION)
                .expect("decode")
        })
    });
    group.bench_function("kafka-protocol", |bench| {
        bench.iter(|| {
            kafka_protocol::messages::ProduceRequest::decode(
                &mut black_box(&produce_bytes).clone(),
                PRODUCE_VERSION,
            )
            .expect("decode")
        })
    });
    group.finish();

    let ours_fetch = fetch_response();
    let their_fetch: kafka_protocol::messages::FetchResponse =
        theirs(&ours_to_bytes(&ours_fetch, FETCH_VERSION), FETCH_VERSION);
    let mut group = criterion.benchmark_group("fetch_response_encode_1MiB");
    group.bench_function("eddy", |bench| {
        bench.iter(|| {
            let mut encoder = Encoder::framed();
            black_box(&ours_fetch)
                .encode(&mut encoder, FETCH_VERSION)
                .expect("encode");
            encoder.finish()
        })
    });
    group.bench_function("kafka-protocol", |bench| {
        bench.iter(|| their_encode(black_box(&their_fetch), FETCH_VERSION))
    });
    group.finish();

    let ours_metadata = metadata_response();
    let their_metadata: kafka_protocol::messages::MetadataResponse = theirs(
        &ours_to_bytes(&ours_metadata, METADATA_VERSION),
        METADATA_VERSION,
    );
    let mut group = criterion.benchmark_group("metadata_response_round_trip");
    group.bench_function("eddy", |bench| {
        bench.iter(|| {
            let bytes = ours_to_bytes(black_box(&ours_metadata), METADATA_VERSION);
            MetadataResponse::decode_from_bytes(&bytes, METADATA_VERSION).expect("decode")
        })
    });
    group.bench_function("kafka-protocol", |bench| {
        bench.iter(|| {
            let bytes = their_encode(black_box(&their_metadata), METADATA_VERSION).freeze();
            theirs::<kafka_protocol::messages::MetadataResponse>(&bytes, METADATA_VERSION)
        })
    });
    group.finish();

    let ours_versions = api_versions_response();
    let their_versions: kafka_protocol::messages::ApiVersionsResponse = theirs(
        &ours_to_bytes(&ours_versions, API_VERSIONS_VERSION),
        API_VERSIONS_VERSION,
    );
    let mut group = criterion.benchmark_group("api_versions_response_round_trip");
    group.bench_function("eddy", |bench| {
        bench.iter(|| {
            let bytes = ours_to_bytes(black_box(&ours_versions), API_VERSIONS_VERSION);
            ApiVersionsResponse::decode_from_bytes(&bytes, API_VERSIONS_VERSION).expect("decode")
        })
    });
    group.bench_function("kafka-protocol", |bench| {
        bench.iter(|| {
            let bytes = their_encode(black_box(&their_versions), API_VERSIONS_VERSION).freeze();
            theirs::<kafka_protocol::messages::ApiVersionsResponse>(&bytes, API_VERSIONS_VERSION)
        })
    });
    group.finish();
}

/// Mean time in nanoseconds from criterion's estimates for this run.
fn mean_ns(output: &Path, group: &str, function: &str) -> Option<f64> {
    let path = output
        .join(group)
        .join(function)
        .join("new")
        .join("estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    value["mean"]["point_estimate"].as_f64()
}

fn print_ratios(output: &Path) {
    println!(
        "\n{:<36} {:>14} {:>16} {:>8} {:>8}",
        "message", "eddy", "kafka-protocol", "ratio", "target"
    );
    for (group, target) in TARGETS {
        match (
            mean_ns(output, group, "eddy"),
            mean_ns(output, group, "kafka-protocol"),
        ) {
            (Some(ours), Some(theirs)) => {
                let ratio = theirs / ours;
                let verdict = if ratio >= *target { "met" } else { "MISSED" };
                println!(
                    "{group:<36} {:>11.1} µs {:>13.1} µs {ratio:>7.2}× {:>6.1}× {verdict}",
                    ours / 1000.0,
                    theirs / 1000.0,
                    target
                );
            }
            _ => println!(
                "{group:<36} (no estimates: run `cargo bench -p eddy-protocol --bench codec`)"
            ),
        }
    }
}

fn main() {
    let output = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("criterion-codec");
    let mut criterion = Criterion::default()
        .output_directory(&output)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    benches(&mut criterion);
    criterion.final_summary();
    print_ratios(&output);
}
