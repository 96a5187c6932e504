//! Malformed and hostile request frames: each is a clean `DecodeError`
//! naming the field, never a panic, an abort or a huge allocation.

use bytes::{BufMut, Bytes, BytesMut};
use eddy_protocol::messages::{
    ProduceRequest, RequestHeader, produce_request::PartitionProduceData,
    produce_request::TopicProduceData,
};
use eddy_protocol::{
    ApiKey, DecodeErrorKind, Encodable, Encoder, RequestBody, RequestFrame, StrBytes,
};

/// A request header for `key`/`version` with client id "x", as the given header version.
fn header(key: ApiKey, version: i16) -> BytesMut {
    let header = RequestHeader {
        request_api_key: key as i16,
        request_api_version: version,
        correlation_id: 7,
        client_id: Some(StrBytes::from("x")),
        ..Default::default()
    };
    let mut encoder = Encoder::new();
    header
        .encode(&mut encoder, key.request_header_version(version))
        .unwrap();
    BytesMut::from(&encoder.into_bytes()[..])
}

fn decode_error(frame: BytesMut) -> eddy_protocol::DecodeError {
    RequestFrame::decode(&frame.freeze()).expect_err("hostile frame decoded")
}

#[test]
fn a_sixteen_byte_frame_claiming_two_billion_topics_is_refused() {
    // Metadata v0: header, then a topics array claiming i32::MAX entries.
    let mut frame = header(ApiKey::Metadata, 0);
    frame.put_i32(i32::MAX);
    assert!(frame.len() <= 16, "frame is {} bytes", frame.len());
    let error = decode_error(frame);
    assert_eq!(error.field(), "MetadataRequest.Topics");
    assert_eq!(
        *error.kind(),
        DecodeErrorKind::LengthTooLarge {
            claimed: i32::MAX as u64,
            remaining: 0
        }
    );
}

#[test]
fn a_compact_array_claiming_more_elements_than_bytes_is_refused() {
    // Metadata v12 (flexible): topics as a compact array of u32::MAX - 1 entries.
    let mut frame = header(ApiKey::Metadata, 12);
    frame.put_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
    frame.put_slice(&[0; 8]);
    let error = decode_error(frame);
    assert_eq!(error.field(), "MetadataRequest.Topics");
    assert!(
        matches!(
            *error.kind(),
            DecodeErrorKind::LengthTooLarge { remaining: 8, .. }
        ),
        "{error}"
    );
}

#[test]
fn huge_string_and_bytes_lengths_are_refused() {
    // CreateTopics v0: topics array of one, then a name claiming 32767 bytes.
    let mut frame = header(ApiKey::CreateTopics, 0);
    frame.put_i32(1);
    frame.put_i16(i16::MAX);
    frame.put_slice(b"orders");
    let error = decode_error(frame);
    assert_eq!(error.field(), "CreatableTopic.Name");
    assert!(
        matches!(
            *error.kind(),
            DecodeErrorKind::LengthTooLarge { claimed: 32767, .. }
        ),
        "{error}"
    );

    // Produce v3: records claiming i32::MAX bytes.
    let mut frame = header(ApiKey::Produce, 3);
    frame.put_i16(-1); // transactional id: null
    frame.put_i16(1); // acks
    frame.put_i32(1000); // timeout
    frame.put_i32(1); // one topic
    frame.put_i16(6);
    frame.put_slice(b"orders");
    frame.put_i32(1); // one partition
    frame.put_i32(0);
    frame.put_i32(i32::MAX);
    let error = decode_error(frame);
    assert_eq!(error.field(), "PartitionProduceData.Records");
    assert!(
        matches!(error.kind(), DecodeErrorKind::LengthTooLarge { .. }),
        "{error}"
    );
}

#[test]
fn negative_lengths_other_than_null_are_refused() {
    let mut frame = header(ApiKey::Metadata, 1);
    frame.put_i32(-2);
    assert_eq!(
        *decode_error(frame).kind(),
        DecodeErrorKind::NegativeLength(-2)
    );

    let mut frame = header(ApiKey::CreateTopics, 0);
    frame.put_i32(1);
    frame.put_i16(-7);
    let error = decode_error(frame);
    assert_eq!(
        (error.field(), error.kind().clone()),
        ("CreatableTopic.Name", DecodeErrorKind::NegativeLength(-7))
    );
}

#[test]
fn null_in_a_non_nullable_field_is_refused() {
    // CreateTopics v0 topic name: null (-1) is not allowed.
    let mut frame = header(ApiKey::CreateTopics, 0);
    frame.put_i32(1);
    frame.put_i16(-1);
    let error = decode_error(frame);
    assert_eq!(
        (error.field(), error.kind().clone()),
        ("CreatableTopic.Name", DecodeErrorKind::UnexpectedNull)
    );
}

#[test]
fn varint_overflow_is_refused() {
    let mut frame = header(ApiKey::Metadata, 12);
    frame.put_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
    let error = decode_error(frame);
    assert_eq!(
        (error.field(), error.kind().clone()),
        ("MetadataRequest.Topics", DecodeErrorKind::MalformedVarint)
    );
}

#[test]
fn a_tagged_field_section_claiming_more_fields_than_bytes_is_refused() {
    let mut frame = header(ApiKey::ApiVersions, 3);
    frame.put_u8(1); // client software name: empty compact string
    frame.put_u8(1); // client software version: empty
    frame.put_slice(&[0xff, 0xff, 0xff, 0x7f]); // tagged field count
    let error = decode_error(frame);
    assert_eq!(error.field(), "ApiVersionsRequest._tagged_fields");
    assert!(
        matches!(error.kind(), DecodeErrorKind::LengthTooLarge { .. }),
        "{error}"
    );
}

#[test]
fn every_truncation_of_a_real_request_is_a_clean_error() {
    let request = ProduceRequest {
        acks: -1,
        timeout_ms: 5000,
        topic_data: vec![TopicProduceData {
            name: StrBytes::from("orders"),
            partition_data: vec![PartitionProduceData {
                index: 2,
                records: Some(Bytes::from_static(&[1; 70])),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    for version in [3, 8, 9, 11] {
        let mut frame = header(ApiKey::Produce, version);
        let mut body = Encoder::new();
        request.encode(&mut body, version).unwrap();
        frame.put_slice(&body.into_bytes());
        let frame = frame.freeze();
        let decoded = RequestFrame::decode(&frame).expect("whole frame decodes");
        assert_eq!(decoded.body, RequestBody::Produce(request.clone()));
        for cut in 0..frame.len() {
            let error =
                RequestFrame::decode(&frame.slice(..cut)).expect_err("truncated frame decoded");
            assert!(
                matches!(
                    *error.kind(),
                    DecodeErrorKind::Truncated { .. }
                        | DecodeErrorKind::LengthTooLarge { .. }
                        | DecodeErrorKind::MalformedVarint
                ),
                "v{version} cut at {cut}: {error}"
            );
        }
    }
}

#[test]
fn an_unknown_api_key_is_named() {
    let mut frame = BytesMut::new();
    frame.put_i16(999);
    frame.put_i16(0);
    frame.put_i32(1);
    frame.put_i16(-1);
    let error = decode_error(frame);
    assert_eq!(
        (error.field(), error.kind().clone()),
        (
            "RequestHeader.RequestApiKey",
            DecodeErrorKind::UnknownApiKey(999)
        )
    );
}

#[test]
fn an_api_versions_request_newer_than_known_still_yields_its_header() {
    // KIP-511: the broker must read the correlation id to answer with its ranges.
    let newest = ApiKey::ApiVersions.info().max_version;
    let mut frame = header(ApiKey::ApiVersions, newest + 1);
    frame.put_slice(&[3, b'l', b'i', 4, b'2', b'.', b'0', 0, 0xaa, 0xbb]);
    let frame = frame.freeze();
    let (key, header, _) = RequestFrame::decode_header(&frame).expect("header decodes");
    assert_eq!(
        (key, header.correlation_id, header.request_api_version),
        (ApiKey::ApiVersions, 7, newest + 1)
    );
    let error = RequestFrame::decode(&frame).expect_err("body of an unknown version decoded");
    assert_eq!(
        *error.kind(),
        DecodeErrorKind::UnsupportedVersion(newest + 1)
    );
}

#[test]
fn garbage_never_panics() {
    // A cheap deterministic sweep; the fuzz targets go much further.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..3_000 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let length = (state % 64) as usize;
        let mut frame = Vec::with_capacity(length);
        let key = (state >> 8) % 80;
        frame.extend_from_slice(&(key as i16).to_be_bytes());
        frame.extend_from_slice(&(((state >> 16) % 14) as i16).to_be_bytes());
        for index in 0..length {
            frame.push((state >> (index % 56)) as u8);
        }
        eddy_protocol::fuzzing::decode_request(&frame);
        eddy_protocol::fuzzing::decode_responses(&frame[4..]);
    }
}
