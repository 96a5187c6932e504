//! Random messages for the round-trip property test: every message, every
//! valid version, encode then decode gives back the same value (fields a
//! version does not carry hold their defaults).

use bytes::Bytes;

use crate::Message;
use crate::codec::{Decoder, Encoder, RawTaggedField, StrBytes, Uuid};

/// A small deterministic generator (xorshift64*), so failures reproduce.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub fn u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn bool(&mut self) -> bool {
        self.u64() & 1 == 1
    }

    /// True one time in four: how often a nullable field is null.
    pub fn chance(&mut self) -> bool {
        self.u64().is_multiple_of(4)
    }

    pub fn length(&mut self) -> usize {
        (self.u64() % 3) as usize
    }

    pub fn f64(&mut self) -> f64 {
        (self.u64() % 1_000_000) as f64 / 7.0
    }

    pub fn uuid(&mut self) -> Uuid {
        Uuid::from_u128((u128::from(self.u64()) << 64) | u128::from(self.u64()))
    }

    pub fn string(&mut self) -> StrBytes {
        const WORDS: &[&str] = &[
            "",
            "orders",
            "ü-topic",
            "a.b_c-d",
            "__consumer_offsets",
            "🦀",
        ];
        let word = WORDS[(self.u64() % WORDS.len() as u64) as usize];
        StrBytes::from(format!("{word}{}", self.u64() % 100))
    }

    pub fn bytes(&mut self) -> Bytes {
        let length = (self.u64() % 40) as usize;
        (0..length)
            .map(|_| self.u64() as u8)
            .collect::<Vec<u8>>()
            .into()
    }

    /// Unknown tags above any tag Kafka's schemas use, in ascending order.
    pub fn unknown_tagged_fields(&mut self) -> Vec<RawTaggedField> {
        if !self.chance() {
            return Vec::new();
        }
        (0..self.length())
            .map(|index| RawTaggedField {
                tag: 1000 + index as u32 * 10 + (self.u64() % 10) as u32,
                data: self.bytes(),
            })
            .collect()
    }
}

/// Builds a random value valid for `version`.
pub trait Random {
    fn random(rng: &mut Rng, version: i16) -> Self;
}

/// Something done for every generated message type.
pub trait MessageCheck {
    fn check<M: Message + Random>(&mut self);
}

struct RoundTrip {
    rng: Rng,
    checked: usize,
}

impl MessageCheck for RoundTrip {
    fn check<M: Message + Random>(&mut self) {
        for version in M::VERSIONS.min..=M::VERSIONS.max {
            for _ in 0..24 {
                let original = M::random(&mut self.rng, version);
                let mut encoder = Encoder::new();
                original
                    .encode(&mut encoder, version)
                    .unwrap_or_else(|error| panic!("{} v{version}: {error}", M::NAME));
                let bytes = encoder.into_bytes();
                let mut decoder = Decoder::new(&bytes);
                let decoded = M::decode(&mut decoder, version)
                    .unwrap_or_else(|error| panic!("{} v{version}: {error}", M::NAME));
                assert_eq!(
                    decoded,
                    original,
                    "{} v{version} changed in a round trip",
                    M::NAME
                );
                assert_eq!(
                    decoder.remaining(),
                    0,
                    "{} v{version} left bytes unread",
                    M::NAME
                );
                self.checked += 1;
            }
        }
    }
}

#[test]
fn every_message_round_trips_at_every_version() {
    let mut check = RoundTrip {
        rng: Rng::new(0x5eed),
        checked: 0,
    };
    crate::messages::for_each_message(&mut check);
    assert!(
        check.checked > 10_000,
        "only {} round trips ran",
        check.checked
    );
}

struct Truncation {
    rng: Rng,
}

impl MessageCheck for Truncation {
    fn check<M: Message + Random>(&mut self) {
        for version in M::VERSIONS.min..=M::VERSIONS.max {
            let original = M::random(&mut self.rng, version);
            let Ok(bytes) = original.encode_to_bytes(version) else {
                continue;
            };
            // Every strict prefix either fails cleanly or (when the tail was
            // all-default) decodes; it never panics.
            for cut in 0..bytes.len() {
                let prefix = bytes.slice(..cut);
                let _ = M::decode_from_bytes(&prefix, version);
            }
        }
    }
}

#[test]
fn every_truncation_of_every_message_is_a_clean_error() {
    crate::messages::for_each_message(&mut Truncation { rng: Rng::new(7) });
}

/// Wire compatibility with an independent implementation: what we encode,
/// the `kafka-protocol` crate decodes and re-encodes to the same bytes, for
/// every request and response at every version both know.
#[test]
fn encoding_matches_an_independent_codec_byte_for_byte() {
    use kafka_protocol::messages::{ApiKey as TheirKey, RequestKind, ResponseKind};

    let mut rng = Rng::new(0xc0ffee);
    let mut compared = 0;
    for key in crate::ApiKey::ALL {
        let Ok(their_key) = TheirKey::try_from(*key as i16) else {
            continue;
        };
        let theirs = their_key.valid_versions();
        let ours = key.info();
        // Unstable versions (share groups, early access) differ between Kafka releases.
        for version in ours.min_version.max(theirs.min)..=ours.max_stable_version.min(theirs.max) {
            for _ in 0..8 {
                let request = crate::RequestBody::random(*key, &mut rng, version);
                let mut encoder = Encoder::new();
                request
                    .encode(&mut encoder, version)
                    .expect("encode request");
                let ours_bytes = encoder.into_bytes();
                let decoded = RequestKind::decode(their_key, &mut ours_bytes.clone(), version)
                    .unwrap_or_else(|error| {
                        panic!("{key:?} request v{version}: {error:#} {ours_bytes:?}")
                    });
                let mut theirs_bytes = bytes::BytesMut::new();
                decoded
                    .encode(&mut theirs_bytes, version)
                    .expect("re-encode request");
                assert_eq!(
                    ours_bytes,
                    theirs_bytes.freeze(),
                    "{key:?} request v{version}"
                );

                let response = crate::ResponseBody::random(*key, &mut rng, version);
                let mut encoder = Encoder::new();
                response
                    .encode(&mut encoder, version)
                    .expect("encode response");
                let ours_bytes = encoder.into_bytes();
                let decoded = ResponseKind::decode(their_key, &mut ours_bytes.clone(), version)
                    .unwrap_or_else(|error| {
                        panic!("{key:?} response v{version}: {error:#} {ours_bytes:?}")
                    });
                let mut theirs_bytes = bytes::BytesMut::new();
                decoded
                    .encode(&mut theirs_bytes, version)
                    .expect("re-encode response");
                assert_eq!(
                    ours_bytes,
                    theirs_bytes.freeze(),
                    "{key:?} response v{version}"
                );
                compared += 2;
            }
        }
    }
    assert!(compared > 2_000, "only {compared} messages compared");
}
