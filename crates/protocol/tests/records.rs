//! Record batches (magic v2) through the public API: round trips in every
//! codec, in-place edits, produce validation and the Kafka error codes it
//! answers with, hostile input, known vectors from another implementation,
//! and interoperability with the `kafka-protocol` crate.

use bytes::{Bytes, BytesMut};
use eddy_protocol::records::{
    BATCH_HEADER_SIZE, BatchHeader, Compression, DEFAULT_MAX_DECOMPRESSED_BYTES, Record,
    RecordBatch, RecordHeader, RecordsError, TimestampType, TrailingPartialBatch, batches,
    batches_allowing_partial_tail, compute_crc, decode_records, fuzz_decode_batches,
    set_base_offset, set_log_append_time, set_partition_leader_epoch, validate_produce_batch,
    validate_produce_batch_for_version, verify_crc,
};

const CORRUPT_MESSAGE: i16 = 2;
const MESSAGE_TOO_LARGE: i16 = 10;
const UNSUPPORTED_COMPRESSION_TYPE: i16 = 76;
const INVALID_RECORD: i16 = 87;

fn header(key: &str, value: Option<&'static [u8]>) -> RecordHeader {
    RecordHeader {
        key: key.to_owned(),
        value: value.map(Bytes::from_static),
    }
}

fn big_value() -> Bytes {
    // Log-like text: every codec shrinks it, and it spans several snappy and LZ4 blocks.
    (0..8_000u32)
        .map(|i| {
            format!(
                "{i:>6} GET /api/items/{} 200\n",
                i.wrapping_mul(2_654_435_761) % 9_973
            )
        })
        .collect::<String>()
        .into()
}

fn sample_records() -> Vec<Record> {
    vec![
        Record {
            attributes: 0,
            timestamp_delta: 0,
            offset_delta: 0,
            key: Some(Bytes::from_static(b"key-0")),
            value: Some(Bytes::from_static(b"value-0")),
            headers: vec![
                header("trace", Some(b"first")),
                header("trace", Some(b"second")),
                header("null-value", None),
                header("", Some(b"")),
                header("trace", Some(b"third")),
            ],
        },
        Record {
            timestamp_delta: 5,
            offset_delta: 1,
            key: None,
            value: Some(Bytes::from_static(b"no key")),
            ..Record::default()
        },
        Record {
            timestamp_delta: -3,
            offset_delta: 2,
            key: Some(Bytes::new()),
            value: None,
            headers: vec![header("émoji-🦀", None)],
            ..Record::default()
        },
        Record {
            timestamp_delta: 1_000,
            offset_delta: 3,
            key: Some(Bytes::from_static(b"big")),
            value: Some(big_value()),
            ..Record::default()
        },
    ]
}

fn sample_batch() -> RecordBatch {
    let mut batch = RecordBatch::new(0, 1_700_000_000_000, sample_records());
    batch.producer_id = 4_242;
    batch.producer_epoch = 3;
    batch.base_sequence = 17;
    batch
}

/// A small batch, for tests that mutate it many times.
fn small_batch() -> RecordBatch {
    RecordBatch::new(
        0,
        1_700_000_000_000,
        vec![
            Record {
                key: Some(Bytes::from_static(b"k")),
                value: Some(Bytes::from_static(b"hello hello hello hello")),
                headers: vec![header("h", Some(b"v")), header("h", None)],
                ..Record::default()
            },
            Record {
                offset_delta: 1,
                timestamp_delta: 2,
                value: Some(Bytes::from_static(b"world")),
                ..Record::default()
            },
        ],
    )
}

/// Rewrites the stored CRC so that it matches the content.
fn refresh_crc(batch: &mut [u8]) {
    let crc = compute_crc(batch).unwrap();
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
}

/// A copy of `batch` with header fields changed and the CRC made valid again.
fn with_header(batch: &Bytes, edit: impl FnOnce(&mut BatchHeader)) -> Bytes {
    let mut header = BatchHeader::parse(batch).unwrap();
    edit(&mut header);
    let mut bytes = batch.to_vec();
    header.write(&mut &mut bytes[..BATCH_HEADER_SIZE]);
    refresh_crc(&mut bytes);
    Bytes::from(bytes)
}

/// An uncompressed batch around a hand-written records section, with a valid CRC.
fn batch_with_raw_records(records: &[u8], count: i32) -> Bytes {
    let header = BatchHeader {
        base_offset: 0,
        batch_length: (BATCH_HEADER_SIZE - 12 + records.len()) as i32,
        partition_leader_epoch: -1,
        magic: 2,
        crc: 0,
        attributes: 0,
        last_offset_delta: count - 1,
        base_timestamp: 0,
        max_timestamp: 0,
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
        records_count: count,
    };
    let mut bytes = Vec::new();
    header.write(&mut bytes);
    bytes.extend_from_slice(records);
    refresh_crc(&mut bytes);
    Bytes::from(bytes)
}

fn code(result: Result<impl std::fmt::Debug, RecordsError>) -> i16 {
    result.unwrap_err().kafka_error_code()
}

#[test]
fn every_codec_round_trips_with_duplicate_headers_and_nulls() {
    let batch = sample_batch();
    for codec in Compression::ALL {
        let encoded = batch.encode(codec).unwrap();
        let header = validate_produce_batch(&encoded).unwrap();
        assert_eq!(header.compression().unwrap(), codec);
        assert_eq!(header.records_count, 4);
        assert_eq!(header.last_offset_delta, 3);
        assert_eq!(header.total_size(), encoded.len());
        assert_eq!(header.max_timestamp, 1_700_000_001_000);
        assert_eq!(header.producer_id, 4_242);
        assert_eq!(header.timestamp_type(), TimestampType::CreateTime);

        let decoded = RecordBatch::decode(&encoded).unwrap();
        assert_eq!(decoded.compression().unwrap(), codec);
        let mut expected = batch.clone();
        expected.attributes = i16::from(codec.id());
        assert_eq!(decoded, expected, "{codec}");
        let keys: Vec<&str> = decoded.records[0]
            .headers
            .iter()
            .map(|header| header.key.as_str())
            .collect();
        assert_eq!(keys, ["trace", "trace", "null-value", "", "trace"]);

        // Re-encoding the decoded batch gives the same bytes.
        assert_eq!(decoded.encode(codec).unwrap(), encoded, "{codec}");
    }
}

#[test]
fn compressed_batches_are_smaller_and_flag_their_codec() {
    let batch = sample_batch();
    let plain = batch.encode(Compression::None).unwrap();
    for codec in [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let encoded = batch.encode(codec).unwrap();
        assert!(encoded.len() < plain.len(), "{codec}");
        assert_eq!(encoded[22] & 0x07, codec.id());
    }
}

#[test]
fn uncompressed_decoding_slices_the_input_without_copying() {
    let encoded = sample_batch().encode(Compression::None).unwrap();
    let decoded = RecordBatch::decode(&encoded).unwrap();
    let range = encoded.as_ptr_range();
    for record in &decoded.records {
        for value in record.value.iter().chain(record.key.iter()) {
            if !value.is_empty() {
                assert!(range.contains(&value.as_ptr()));
            }
        }
    }
}

#[test]
fn base_offset_and_leader_epoch_rewrites_keep_the_crc_valid() {
    let mut bytes = sample_batch().encode(Compression::Lz4).unwrap().to_vec();
    let crc_before = BatchHeader::parse(&bytes).unwrap().crc;
    set_base_offset(&mut bytes, 1_234_567).unwrap();
    set_partition_leader_epoch(&mut bytes, 9).unwrap();
    verify_crc(&bytes).unwrap();
    let header = BatchHeader::parse(&bytes).unwrap();
    assert_eq!(header.crc, crc_before);
    assert_eq!(header.base_offset, 1_234_567);
    assert_eq!(header.partition_leader_epoch, 9);
    assert_eq!(header.last_offset(), 1_234_570);
    assert_eq!(header.next_offset(), 1_234_571);
    let decoded = RecordBatch::decode(&Bytes::from(bytes)).unwrap();
    assert_eq!(decoded.base_offset, 1_234_567);
}

#[test]
fn log_append_time_sets_the_bit_and_max_timestamp_and_recomputes_the_crc() {
    let batch = sample_batch();
    for codec in Compression::ALL {
        let mut bytes = batch.encode(codec).unwrap().to_vec();
        set_log_append_time(&mut bytes, 1_800_000_000_000).unwrap();
        verify_crc(&bytes).unwrap();
        let header = BatchHeader::parse(&bytes).unwrap();
        assert_eq!(header.timestamp_type(), TimestampType::LogAppendTime);
        assert_eq!(header.max_timestamp, 1_800_000_000_000);
        assert_eq!(header.compression().unwrap(), codec);
        assert_eq!(header.crc, compute_crc(&bytes).unwrap());

        // Same bytes as encoding the batch with those fields in the first place.
        let mut expected = batch.clone();
        expected.attributes |= 0x08;
        expected.max_timestamp = 1_800_000_000_000;
        assert_eq!(bytes, expected.encode(codec).unwrap());

        // Setting it again changes nothing.
        let again = bytes.clone();
        set_log_append_time(&mut bytes, 1_800_000_000_000).unwrap();
        assert_eq!(bytes, again);
    }
}

#[test]
fn log_append_time_does_not_launder_a_corrupt_batch() {
    let mut bytes = small_batch().encode(Compression::None).unwrap().to_vec();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    set_log_append_time(&mut bytes, 5).unwrap();
    assert!(matches!(
        verify_crc(&bytes),
        Err(RecordsError::CrcMismatch { .. })
    ));
}

#[test]
fn crc_corruption_is_corrupt_message() {
    let encoded = sample_batch().encode(Compression::Gzip).unwrap();
    for position in [21, 30, 60, 61, encoded.len() / 2, encoded.len() - 1] {
        let mut bytes = encoded.to_vec();
        bytes[position] ^= 0x40;
        let bytes = Bytes::from(bytes);
        let error = verify_crc(&bytes).unwrap_err();
        assert!(matches!(error, RecordsError::CrcMismatch { .. }), "{error}");
        assert_eq!(error.kafka_error_code(), CORRUPT_MESSAGE);
        assert_eq!(code(validate_produce_batch(&bytes)), CORRUPT_MESSAGE);
        assert_eq!(code(RecordBatch::decode(&bytes)), CORRUPT_MESSAGE);
    }
    let mut bytes = encoded.to_vec();
    bytes[18] ^= 0xff; // the stored CRC itself
    let message = verify_crc(&bytes).unwrap_err().to_string();
    assert!(
        message.starts_with("record batch CRC mismatch: stored 0x"),
        "{message}"
    );
}

#[test]
fn legacy_magic_is_invalid_record() {
    for magic in [0u8, 1] {
        // A v0/v1 message: offset, size, crc, magic, attributes, (timestamp), key, value.
        let mut message = Vec::new();
        message.extend_from_slice(&0i64.to_be_bytes());
        message.extend_from_slice(&20i32.to_be_bytes());
        message.extend_from_slice(&0u32.to_be_bytes());
        message.push(magic);
        message.push(0);
        if magic == 1 {
            message.extend_from_slice(&0i64.to_be_bytes());
        }
        message.extend_from_slice(&(-1i32).to_be_bytes());
        message.extend_from_slice(&1i32.to_be_bytes());
        message.push(b'x');
        let message = Bytes::from(message);
        let error = validate_produce_batch(&message).unwrap_err();
        assert_eq!(error, RecordsError::UnsupportedMagic { magic: magic as i8 });
        assert_eq!(error.kafka_error_code(), INVALID_RECORD);
        assert_eq!(
            error.to_string(),
            format!("record batch magic {magic} is not supported: only magic 2 is")
        );
        assert_eq!(code(BatchHeader::parse(&message)), INVALID_RECORD);
        assert_eq!(code(RecordBatch::decode(&message)), INVALID_RECORD);
        assert!(batches(&message).next().unwrap().is_err());
    }
    // A v2 header with a future magic.
    let mut bytes = small_batch().encode(Compression::None).unwrap().to_vec();
    bytes[16] = 3;
    assert_eq!(
        code(validate_produce_batch(&Bytes::from(bytes))),
        INVALID_RECORD
    );
}

#[test]
fn a_produce_payload_must_hold_exactly_one_batch() {
    let one = small_batch().encode(Compression::None).unwrap();
    let mut two = one.to_vec();
    two.extend_from_slice(&one);
    let error = validate_produce_batch(&Bytes::from(two)).unwrap_err();
    assert_eq!(error, RecordsError::MultipleBatches);
    assert_eq!(error.kafka_error_code(), INVALID_RECORD);

    let error = validate_produce_batch(&Bytes::new()).unwrap_err();
    assert_eq!(error, RecordsError::NoBatch);
    assert_eq!(error.kafka_error_code(), INVALID_RECORD);

    let mut trailing = one.to_vec();
    trailing.extend_from_slice(&[0, 1, 2]);
    let error = validate_produce_batch(&Bytes::from(trailing)).unwrap_err();
    assert_eq!(error, RecordsError::TrailingBytes { count: 3 });
    assert_eq!(error.kafka_error_code(), CORRUPT_MESSAGE);
}

#[test]
fn client_batch_rules_follow_kafkas_log_validator() {
    let encoded = small_batch().encode(Compression::None).unwrap();
    validate_produce_batch(&encoded).unwrap();

    let edits: [fn(&mut BatchHeader); 6] = [
        |h| h.records_count = 0,
        |h| h.records_count = -1,
        |h| h.last_offset_delta = 5,
        |h| h.last_offset_delta = -1,
        |h| h.attributes |= 0x20,
        |h| {
            h.producer_id = 7;
            h.base_sequence = -1;
        },
    ];
    for edit in edits {
        let edited = with_header(&encoded, edit);
        assert_eq!(code(validate_produce_batch(&edited)), INVALID_RECORD);
    }
    let control = with_header(&encoded, |h| h.attributes |= 0x20);
    assert_eq!(
        validate_produce_batch(&control).unwrap_err(),
        RecordsError::ControlBatchFromClient
    );
    let inconsistent = with_header(&encoded, |h| h.last_offset_delta = 5);
    assert_eq!(
        validate_produce_batch(&inconsistent)
            .unwrap_err()
            .to_string(),
        "last offset delta 5 is inconsistent with the record count 2 (expected 1)"
    );
}

#[test]
fn unknown_codec_is_unsupported_compression_type() {
    let encoded = small_batch().encode(Compression::None).unwrap();
    for id in 5..=7 {
        let edited = with_header(&encoded, |h| h.attributes = (h.attributes & !0x07) | id);
        let error = validate_produce_batch(&edited).unwrap_err();
        assert_eq!(error, RecordsError::UnknownCompression { id: id as u8 });
        assert_eq!(error.kafka_error_code(), UNSUPPORTED_COMPRESSION_TYPE);
        assert_eq!(
            code(RecordBatch::decode(&edited)),
            UNSUPPORTED_COMPRESSION_TYPE
        );
    }
}

#[test]
fn zstd_needs_produce_v7() {
    let zstd = small_batch().encode(Compression::Zstd).unwrap();
    assert_eq!(
        code(validate_produce_batch_for_version(&zstd, 6)),
        UNSUPPORTED_COMPRESSION_TYPE
    );
    validate_produce_batch_for_version(&zstd, 7).unwrap();
    let lz4 = small_batch().encode(Compression::Lz4).unwrap();
    validate_produce_batch_for_version(&lz4, 3).unwrap();
}

#[test]
fn every_truncation_is_a_clean_error() {
    let encoded = sample_batch().encode(Compression::Snappy).unwrap();
    for length in 1..encoded.len() {
        let cut = encoded.slice(..length);
        let error = validate_produce_batch(&cut).unwrap_err();
        assert_eq!(
            error.kafka_error_code(),
            CORRUPT_MESSAGE,
            "{length}: {error}"
        );
        assert!(RecordBatch::decode(&cut).is_err());
        assert!(verify_crc(&cut).is_err());
        assert!(batches(&cut).next().unwrap().is_err());
        assert!(batches_allowing_partial_tail(&cut).next().is_none());
    }
    let error = validate_produce_batch(&encoded.slice(..5)).unwrap_err();
    assert_eq!(
        error.to_string(),
        "record batch length field needs 12 bytes but only 5 are available"
    );
    let error = BatchHeader::parse(&encoded[..40]).unwrap_err();
    assert_eq!(
        error.to_string(),
        "record batch header needs 61 bytes but only 40 are available"
    );
}

#[test]
fn huge_and_negative_batch_lengths_are_refused() {
    let encoded = small_batch().encode(Compression::None).unwrap();
    let mut bytes = encoded[..52].to_vec();
    bytes[8..12].copy_from_slice(&i32::MAX.to_be_bytes());
    let error = validate_produce_batch(&Bytes::from(bytes)).unwrap_err();
    assert_eq!(
        error.to_string(),
        "batch length 2147483647 exceeds the 40 bytes available"
    );
    assert_eq!(error.kafka_error_code(), CORRUPT_MESSAGE);

    for length in [-1, i32::MIN, 0, 48] {
        let mut bytes = encoded.to_vec();
        bytes[8..12].copy_from_slice(&length.to_be_bytes());
        let bytes = Bytes::from(bytes);
        let error = validate_produce_batch(&bytes).unwrap_err();
        assert_eq!(error, RecordsError::BatchLengthTooSmall { length });
        assert_eq!(error.kafka_error_code(), CORRUPT_MESSAGE);
        assert_eq!(code(BatchHeader::parse(&bytes)), CORRUPT_MESSAGE);
        assert!(
            batches_allowing_partial_tail(&bytes)
                .next()
                .unwrap()
                .is_err()
        );
    }
}

#[test]
fn huge_record_counts_are_refused_before_allocating() {
    for codec in Compression::ALL {
        let encoded = small_batch().encode(codec).unwrap();
        let huge = with_header(&encoded, |h| {
            h.records_count = i32::MAX;
            h.last_offset_delta = i32::MAX - 1;
        });
        let error = RecordBatch::decode(&huge).unwrap_err();
        assert!(
            matches!(
                error,
                RecordsError::LengthExceedsInput {
                    what: "record count",
                    ..
                }
            ),
            "{codec}: {error}"
        );
        assert_eq!(error.kafka_error_code(), INVALID_RECORD);
        if codec == Compression::None {
            assert_eq!(code(validate_produce_batch(&huge)), INVALID_RECORD);
        }
    }
    let error = decode_records(&Bytes::from_static(&[0; 70]), 11).unwrap_err();
    assert_eq!(
        error.to_string(),
        "record count 11 exceeds what the 70 remaining bytes can hold"
    );
}

#[test]
fn record_counts_must_match_the_records() {
    let encoded = small_batch().encode(Compression::None).unwrap();
    let more = with_header(&encoded, |h| {
        h.records_count = 3;
        h.last_offset_delta = 2;
    });
    assert_eq!(
        RecordBatch::decode(&more).unwrap_err(),
        RecordsError::RecordCountMismatch {
            declared: 3,
            decoded: 2
        }
    );
    let fewer = with_header(&encoded, |h| {
        h.records_count = 1;
        h.last_offset_delta = 0;
    });
    let error = RecordBatch::decode(&fewer).unwrap_err();
    assert!(matches!(
        error,
        RecordsError::TrailingRecordBytes { count: 1, .. }
    ));
    assert_eq!(error.kafka_error_code(), INVALID_RECORD);

    let compressed = small_batch().encode(Compression::Zstd).unwrap();
    let more = with_header(&compressed, |h| h.records_count = 3);
    assert_eq!(code(RecordBatch::decode(&more)), INVALID_RECORD);
}

/// A record: length, attributes, timestamp delta, offset delta, then `rest` as given.
fn raw_record(rest: &[u8]) -> Vec<u8> {
    let mut body = vec![0, 0, 0];
    body.extend_from_slice(rest);
    let mut record = vec![(body.len() as u8) << 1];
    record.extend(body);
    record
}

#[test]
fn negative_lengths_are_invalid_records() {
    // Zig-zag: 0x03 is -2, 0x01 is -1, 0x02 is 1.
    let cases: [(&[u8], &str); 5] = [
        (&[0x03, 0x01, 0x00], "invalid key length -2"),
        (&[0x01, 0x03, 0x00], "invalid value length -2"),
        (&[0x01, 0x01, 0x01], "invalid header count -1"),
        (
            &[0x01, 0x01, 0x02, 0x01, 0x01],
            "invalid header key length -1",
        ),
        (
            &[0x01, 0x01, 0x02, 0x00, 0x03],
            "invalid header value length -2",
        ),
    ];
    for (rest, message) in cases {
        let batch = batch_with_raw_records(&raw_record(rest), 1);
        let error = RecordBatch::decode(&batch).unwrap_err();
        assert_eq!(error.to_string(), format!("record 0: {message}"));
        assert_eq!(error.kafka_error_code(), INVALID_RECORD);
    }
    // A negative record length.
    let batch = batch_with_raw_records(&[0x05, 0, 0, 0, 1, 1, 0], 1);
    assert_eq!(
        RecordBatch::decode(&batch).unwrap_err().to_string(),
        "record 0: invalid record length -3"
    );
}

#[test]
fn lengths_past_the_record_are_invalid_records() {
    // Key length 50 in a record of 6 bytes.
    let batch = batch_with_raw_records(&raw_record(&[100, 0x01, 0x00]), 1);
    let error = RecordBatch::decode(&batch).unwrap_err();
    assert_eq!(
        error.to_string(),
        "record 0: key length 50 exceeds what the 2 remaining bytes can hold"
    );
    assert_eq!(error.kafka_error_code(), INVALID_RECORD);
    // A record that ends before its key length (padding keeps the count check quiet).
    let mut short = raw_record(&[]);
    short.extend_from_slice(&[0, 0, 0]);
    let error = RecordBatch::decode(&batch_with_raw_records(&short, 1)).unwrap_err();
    assert_eq!(
        error.to_string(),
        "record 0: key length runs past the end of its record (0 bytes left)"
    );
    assert_eq!(error.kafka_error_code(), INVALID_RECORD);
    // A header count the record cannot hold.
    let batch = batch_with_raw_records(&raw_record(&[0x01, 0x01, 0xfe, 0x01]), 1);
    assert_eq!(code(RecordBatch::decode(&batch)), INVALID_RECORD);
    // Record length larger than its fields.
    let mut record = raw_record(&[0x01, 0x01, 0x00, 0x00]);
    record.truncate(record.len() - 1); // 7 bytes declared, 6 present ...
    let batch = batch_with_raw_records(&record, 1);
    assert!(RecordBatch::decode(&batch).is_err());
    // ... and fields shorter than the record length.
    let record = raw_record(&[0x01, 0x01, 0x00, 0x07]);
    let error = RecordBatch::decode(&batch_with_raw_records(&record, 1)).unwrap_err();
    assert_eq!(
        error.to_string(),
        "record 0: record length 7 does not match the 6 bytes its fields take"
    );
}

#[test]
fn varint_overflow_is_an_invalid_record() {
    // Timestamp delta as 11 continuation bytes.
    let mut record = vec![0x30, 0x00];
    record.extend_from_slice(&[0xff; 11]);
    record.extend_from_slice(&[0; 12]);
    let error = RecordBatch::decode(&batch_with_raw_records(&record, 1)).unwrap_err();
    assert_eq!(
        error.to_string(),
        "record 0: invalid varint in timestamp delta: varint is longer than its type allows"
    );
    assert_eq!(error.kafka_error_code(), INVALID_RECORD);
    // The record length itself.
    let record = [0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0, 0, 0, 0, 0, 0, 0];
    let error = RecordBatch::decode(&batch_with_raw_records(&record, 1)).unwrap_err();
    assert!(
        matches!(
            *error_in_record(&error),
            RecordsError::Varint {
                what: "record length",
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(
        code(Record::decode(&Bytes::from_static(&[0xff; 12]))),
        INVALID_RECORD
    );
}

fn error_in_record(error: &RecordsError) -> &RecordsError {
    match error {
        RecordsError::InRecord { error, .. } => error,
        other => other,
    }
}

#[test]
fn decompression_bombs_are_refused() {
    let zeros = vec![0u8; 2 << 20];
    for codec in [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let bomb = codec.compress(&zeros).unwrap();
        let error = codec.decompress(&bomb, 1 << 20).unwrap_err();
        assert_eq!(
            error,
            RecordsError::DecompressedTooLarge {
                codec,
                limit_bytes: 1 << 20
            }
        );
        assert_eq!(error.kafka_error_code(), MESSAGE_TOO_LARGE);
        // Exactly at the limit is fine.
        assert_eq!(codec.decompress(&bomb, 2 << 20).unwrap().len(), 2 << 20);
    }

    // Through a batch: one record whose value is 2 MiB of zeros, decoded with a 1 MiB limit.
    let batch = RecordBatch::new(
        0,
        0,
        vec![Record {
            value: Some(Bytes::from(zeros)),
            ..Record::default()
        }],
    );
    let encoded = batch.encode(Compression::Gzip).unwrap();
    assert!(encoded.len() < 10_000);
    validate_produce_batch(&encoded).unwrap();
    let error = RecordBatch::decode_with_limit(&encoded, 1 << 20).unwrap_err();
    assert!(matches!(error, RecordsError::DecompressedTooLarge { .. }));
    assert_eq!(RecordBatch::decode(&encoded).unwrap(), {
        let mut expected = batch;
        expected.attributes = 1;
        expected
    });
}

#[test]
fn the_default_limit_stops_a_bomb_past_64_mib() {
    assert_eq!(DEFAULT_MAX_DECOMPRESSED_BYTES, 64 << 20);
    // Concatenated zstd frames of 1 MiB of zeros each: 70 MiB from a few kilobytes.
    let frame = Compression::Zstd.compress(&vec![0; 1 << 20]).unwrap();
    let bomb = frame.repeat(70);
    assert!(bomb.len() < 100_000);
    // The bomb as the records section; decompression fails before records are read.
    let mut batch = batch_with_raw_records(&bomb, 1).to_vec();
    batch[22] |= Compression::Zstd.id();
    refresh_crc(&mut batch);
    let error = RecordBatch::decode(&Bytes::from(batch)).unwrap_err();
    assert_eq!(
        error,
        RecordsError::DecompressedTooLarge {
            codec: Compression::Zstd,
            limit_bytes: DEFAULT_MAX_DECOMPRESSED_BYTES
        }
    );
    assert_eq!(
        error.to_string(),
        "zstd data decompresses to more than the 67108864-byte limit"
    );
}

#[test]
fn corrupt_compressed_data_is_corrupt_message() {
    for codec in [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let error = codec
            .decompress(b"definitely not compressed data", 1 << 20)
            .unwrap_err();
        assert!(
            matches!(error, RecordsError::Decompression { .. }),
            "{codec}: {error}"
        );
        assert_eq!(error.kafka_error_code(), CORRUPT_MESSAGE);
    }
}

#[test]
fn raw_snappy_and_xerial_framing_are_both_read() {
    let data = b"records records records records".repeat(100);
    let raw = snap::raw::Encoder::new().compress_vec(&data).unwrap();
    assert_eq!(Compression::Snappy.decompress(&raw, 1 << 20).unwrap(), data);
    let framed = Compression::Snappy.compress(&data).unwrap();
    assert_eq!(&framed[..8], b"\x82SNAPPY\x00");
    assert_eq!(
        Compression::Snappy.decompress(&framed, 1 << 20).unwrap(),
        data
    );
}

#[test]
fn walking_a_fetch_response_with_a_partial_tail() {
    let first = small_batch().encode(Compression::None).unwrap();
    let second = sample_batch().encode(Compression::Lz4).unwrap();
    let third = small_batch().encode(Compression::Zstd).unwrap();
    let mut joined = Vec::new();
    for (offset, batch) in [(0, &first), (2, &second), (6, &third)] {
        let mut bytes = batch.to_vec();
        set_base_offset(&mut bytes, offset).unwrap();
        joined.extend(bytes);
    }
    let whole = joined.len();
    joined.extend_from_slice(&first[..30]);
    let buffer = Bytes::from(joined);

    let mut walk = batches_allowing_partial_tail(&buffer);
    let mut offsets = Vec::new();
    let mut sizes = Vec::new();
    for item in walk.by_ref() {
        let (header, batch) = item.unwrap();
        assert!(buffer.as_ptr_range().contains(&batch.as_ptr()));
        verify_crc(&batch).unwrap();
        offsets.push(header.base_offset);
        sizes.push(batch.len());
        RecordBatch::decode(&batch).unwrap();
    }
    assert_eq!(offsets, [0, 2, 6]);
    assert_eq!(sizes, [first.len(), second.len(), third.len()]);
    assert_eq!(walk.remaining().len(), 30);
    assert!(walk.next().is_none());

    // The same buffer as a log segment: the tail is an error.
    let results: Vec<_> = batches(&buffer).collect();
    assert_eq!(results.len(), 4);
    assert!(results[..3].iter().all(Result::is_ok));
    assert_eq!(
        results[3].as_ref().unwrap_err().kafka_error_code(),
        CORRUPT_MESSAGE
    );
    assert_eq!(batches(&buffer.slice(..whole)).count(), 3);
    assert_eq!(
        eddy_protocol::records::BatchIter::new(buffer.clone(), TrailingPartialBatch::Ignore)
            .count(),
        3
    );
}

/// Test vectors from sarama's `record_test.go` (github.com/IBM/sarama), an independent
/// implementation. Header: base offset 0, length, leader epoch 0, magic 2, CRC,
/// attributes, last offset delta 0, base timestamp (1479847795000 ms where there are
/// records, 0 for the empty batches), max timestamp 0, producer id 0, producer epoch 0,
/// base sequence 0, record count.
fn sarama_batch(length: u8, crc: [u8; 4], codec: u8, count: u8, records: &[u8]) -> Bytes {
    let mut bytes = vec![0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, length, 0, 0, 0, 0, 2];
    bytes.extend_from_slice(&crc);
    bytes.extend_from_slice(&[0, codec, 0, 0, 0, 0]);
    if count == 0 {
        bytes.extend_from_slice(&[0; 8]);
    } else {
        bytes.extend_from_slice(&[0, 0, 1, 88, 141, 205, 89, 56]);
    }
    bytes.extend_from_slice(&[0; 8]);
    bytes.extend_from_slice(&[0; 8]);
    bytes.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, count]);
    bytes.extend_from_slice(records);
    Bytes::from(bytes)
}

/// The record of sarama's vectors: timestamp delta 5 ms, key 1 2 3 4, value 5 6 7,
/// one header with key 8 9 10 and value 11 12.
const SARAMA_RECORD: [u8; 21] = [
    40, 0, 10, 0, 8, 1, 2, 3, 4, 6, 5, 6, 7, 2, 6, 8, 9, 10, 4, 11, 12,
];

fn sarama_record() -> Record {
    Record {
        attributes: 0,
        timestamp_delta: 5,
        offset_delta: 0,
        key: Some(Bytes::from_static(&[1, 2, 3, 4])),
        value: Some(Bytes::from_static(&[5, 6, 7])),
        headers: vec![RecordHeader {
            key: "\u{8}\u{9}\u{a}".to_owned(),
            value: Some(Bytes::from_static(&[11, 12])),
        }],
    }
}

#[test]
fn known_vector_uncompressed_field_by_field() {
    let bytes = sarama_batch(70, [84, 121, 97, 253], 0, 1, &SARAMA_RECORD);
    assert_eq!(bytes.len(), 82);
    let header = BatchHeader::parse(&bytes).unwrap();
    assert_eq!(header.base_offset, 0);
    assert_eq!(header.batch_length, 70);
    assert_eq!(header.partition_leader_epoch, 0);
    assert_eq!(header.magic, 2);
    assert_eq!(header.crc, 0x5479_61fd);
    assert_eq!(header.attributes, 0);
    assert_eq!(header.compression().unwrap(), Compression::None);
    assert_eq!(header.timestamp_type(), TimestampType::CreateTime);
    assert!(!header.is_transactional());
    assert!(!header.is_control());
    assert_eq!(header.last_offset_delta, 0);
    assert_eq!(header.base_timestamp, 1_479_847_795_000);
    assert_eq!(header.max_timestamp, 0);
    assert_eq!(header.producer_id, 0);
    assert_eq!(header.producer_epoch, 0);
    assert_eq!(header.base_sequence, 0);
    assert_eq!(header.records_count, 1);
    assert_eq!(header.total_size(), 82);
    assert_eq!(header.next_offset(), 1);
    verify_crc(&bytes).unwrap();
    assert_eq!(compute_crc(&bytes).unwrap(), 0x5479_61fd);
    assert_eq!(validate_produce_batch(&bytes).unwrap(), header);

    let decoded = RecordBatch::decode(&bytes).unwrap();
    assert_eq!(decoded.records, [sarama_record()]);
    let (record, used) = Record::decode(&bytes.slice(61..)).unwrap();
    assert_eq!((record, used), (sarama_record(), 21));

    // Writing the same fields gives the same bytes.
    let mut written = Vec::new();
    header.write(&mut written);
    assert_eq!(written, bytes[..61]);
    assert_eq!(decoded.encode(Compression::None).unwrap(), bytes);
}

#[test]
fn known_vectors_compressed_and_empty() {
    let gzip = sarama_batch(
        95,
        [231, 74, 206, 165],
        1,
        1,
        &[
            31, 139, 8, 0, 0, 9, 110, 136, 0, 255, 0, 21, 0, 234, 255, 40, 0, 10, 0, 8, 1, 2, 3, 4,
            6, 5, 6, 7, 2, 6, 8, 9, 10, 4, 11, 12, 3, 0, 173, 201, 88, 103, 21, 0, 0, 0,
        ],
    );
    // Raw snappy, no xerial framing, as sarama and librdkafka write it.
    let mut snappy_records = vec![21, 80];
    snappy_records.extend_from_slice(&SARAMA_RECORD);
    let snappy = sarama_batch(72, [21, 0, 159, 97], 2, 1, &snappy_records);
    // LZ4 frame with a content checksum and 4 MiB blocks, one stored (uncompressed) block.
    let mut lz4_records = vec![4, 34, 77, 24, 100, 112, 185, 21, 0, 0, 128];
    lz4_records.extend_from_slice(&SARAMA_RECORD);
    lz4_records.extend_from_slice(&[0, 0, 0, 0, 12, 59, 239, 146]);
    let lz4 = sarama_batch(89, [169, 74, 119, 197], 3, 1, &lz4_records);

    for (bytes, codec) in [
        (gzip, Compression::Gzip),
        (snappy, Compression::Snappy),
        (lz4, Compression::Lz4),
    ] {
        verify_crc(&bytes).unwrap();
        validate_produce_batch(&bytes).unwrap();
        let decoded = RecordBatch::decode(&bytes).unwrap();
        assert_eq!(decoded.compression().unwrap(), codec);
        assert_eq!(decoded.records, [sarama_record()], "{codec}");
    }

    let empty = sarama_batch(49, [89, 95, 183, 221], 0, 0, &[]);
    let decoded = RecordBatch::decode(&empty).unwrap();
    assert!(decoded.records.is_empty());
    assert_eq!(code(validate_produce_batch(&empty)), INVALID_RECORD);

    let mut control = sarama_batch(49, [81, 46, 67, 217], 0, 0, &[]).to_vec();
    control[22] = 32;
    let header = BatchHeader::parse(&control).unwrap();
    verify_crc(&control).unwrap();
    assert!(header.is_control());
    assert!(
        RecordBatch::decode(&Bytes::from(control))
            .unwrap()
            .is_control()
    );
}

#[test]
fn header_keys_that_are_not_utf8_are_read_as_java_does() {
    // One header with key bytes FF FE (not UTF-8) and a null value.
    let record = raw_record(&[0x01, 0x01, 0x02, 0x04, 0xff, 0xfe, 0x01]);
    let decoded = RecordBatch::decode(&batch_with_raw_records(&record, 1)).unwrap();
    assert_eq!(decoded.records[0].headers[0].key, "\u{fffd}\u{fffd}");
}

mod kafka_protocol_interop {
    use super::*;
    use kafka_protocol::indexmap::IndexMap;
    use kafka_protocol::protocol::StrBytes;
    use kafka_protocol::records as kp;

    fn their_codec(codec: Compression) -> kp::Compression {
        match codec {
            Compression::None => kp::Compression::None,
            Compression::Gzip => kp::Compression::Gzip,
            Compression::Snappy => kp::Compression::Snappy,
            Compression::Lz4 => kp::Compression::Lz4,
            Compression::Zstd => kp::Compression::Zstd,
        }
    }

    /// The sample records without duplicate header keys, which `kafka-protocol` cannot hold.
    fn records() -> Vec<(i64, i64, Record)> {
        let base_timestamp = 1_700_000_000_000;
        sample_records()
            .into_iter()
            .map(|mut record| {
                let mut seen = std::collections::HashSet::new();
                record
                    .headers
                    .retain(|header| seen.insert(header.key.clone()));
                (
                    i64::from(record.offset_delta),
                    base_timestamp + record.timestamp_delta,
                    record,
                )
            })
            .collect()
    }

    fn theirs(offset: i64, timestamp: i64, record: &Record) -> kp::Record {
        kp::Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: kp::TimestampType::Creation,
            offset,
            sequence: offset as i32,
            timestamp,
            key: record.key.clone(),
            value: record.value.clone(),
            headers: record
                .headers
                .iter()
                .map(|header| {
                    (
                        StrBytes::from_string(header.key.clone()),
                        header.value.clone(),
                    )
                })
                .collect::<IndexMap<_, _>>(),
        }
    }

    #[test]
    fn we_read_what_kafka_protocol_writes() {
        let expected = records();
        let input: Vec<kp::Record> = expected
            .iter()
            .map(|(offset, timestamp, record)| theirs(*offset, *timestamp, record))
            .collect();
        for codec in Compression::ALL {
            let mut buffer = BytesMut::new();
            let options = kp::RecordEncodeOptions {
                version: 2,
                compression: their_codec(codec),
            };
            kp::RecordBatchEncoder::encode(&mut buffer, &input, &options).unwrap();
            let bytes = buffer.freeze();
            validate_produce_batch(&bytes).unwrap();
            let batch = RecordBatch::decode(&bytes).unwrap();
            assert_eq!(batch.compression().unwrap(), codec);
            assert_eq!(batch.records.len(), expected.len());
            for (record, (offset, timestamp, want)) in batch.records.iter().zip(&expected) {
                assert_eq!(batch.base_offset + i64::from(record.offset_delta), *offset);
                assert_eq!(batch.base_timestamp + record.timestamp_delta, *timestamp);
                assert_eq!(record.key, want.key, "{codec}");
                assert_eq!(record.value, want.value, "{codec}");
                assert_eq!(record.headers, want.headers, "{codec}");
            }
        }
    }

    #[test]
    fn kafka_protocol_reads_what_we_write() {
        let expected = records();
        let batch = RecordBatch::new(
            0,
            1_700_000_000_000,
            expected
                .iter()
                .map(|(_, _, record)| record.clone())
                .collect(),
        );
        for codec in Compression::ALL {
            let mut bytes = batch.encode(codec).unwrap();
            let set = kp::RecordBatchDecoder::decode(&mut bytes).unwrap();
            assert_eq!(set.compression, their_codec(codec));
            assert_eq!(set.records.len(), expected.len());
            for (record, (offset, timestamp, want)) in set.records.iter().zip(&expected) {
                assert_eq!(record.offset, *offset);
                assert_eq!(record.timestamp, *timestamp);
                assert_eq!(record.key, want.key, "{codec}");
                assert_eq!(record.value, want.value, "{codec}");
                let headers: Vec<RecordHeader> = record
                    .headers
                    .iter()
                    .map(|(key, value)| RecordHeader {
                        key: key.as_str().to_owned(),
                        value: value.clone(),
                    })
                    .collect();
                assert_eq!(headers, want.headers, "{codec}");
            }
        }
    }
}

/// A deterministic stand-in for the fuzzer: mutated and truncated batches in every codec
/// through every decoder. It passes if nothing panics.
#[test]
fn mutated_batches_never_panic() {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for codec in Compression::ALL {
        let encoded = small_batch().encode(codec).unwrap();
        for length in 0..=encoded.len() {
            fuzz_decode_batches(&encoded[..length]);
        }
        for _ in 0..1_500 {
            let mut bytes = encoded.to_vec();
            for _ in 0..1 + next() % 4 {
                let position = (next() % bytes.len() as u64) as usize;
                bytes[position] = next() as u8;
            }
            fuzz_decode_batches(&bytes);
        }
    }
    fuzz_decode_batches(&[]);
    fuzz_decode_batches(&[0xff; 200]);
    let mut doubled = small_batch().encode(Compression::None).unwrap().to_vec();
    doubled.extend(doubled.clone());
    fuzz_decode_batches(&doubled);
}
