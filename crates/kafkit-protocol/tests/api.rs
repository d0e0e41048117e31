//! The typed surface of the generated messages: API keys, version ranges, response types,
//! header versions, encode-time refusals, unknown tagged fields, error codes, and decode
//! errors that say where they happened.

use bytes::{Bytes, BytesMut};
use kafkit_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafkit_protocol::messages::metadata_request::MetadataRequestTopic;
use kafkit_protocol::messages::*;
use kafkit_protocol::wire::RawTaggedField;
use kafkit_protocol::{
    ApiKey, ApiVersion, DecodeErrorKind, EncodeError, ErrorCode, Message, Request, Response, VersionRange,
};

fn response_of<R: Request>() -> &'static str {
    <R::Response as Message>::NAME
}

#[test]
fn requests_know_their_key_versions_and_response() {
    assert_eq!(ProduceRequest::API_KEY, ApiKey::Produce);
    assert_eq!(ProduceRequest::API_KEY.key(), 0);
    assert_eq!(ProduceRequest::VERSIONS, VersionRange::new(0, 11));
    assert_eq!(ProduceRequest::FLEXIBLE_VERSIONS, VersionRange::new(9, 11));
    assert_eq!(ProduceRequest::DEPRECATED_VERSIONS, VersionRange::new(0, 6));
    assert!(ProduceRequest::is_flexible(ApiVersion(9)) && !ProduceRequest::is_flexible(ApiVersion(8)));
    assert_eq!(response_of::<ProduceRequest>(), "ProduceResponse");
    assert_eq!(response_of::<FetchRequest>(), "FetchResponse");
    assert_eq!(<FetchResponse as Response>::API_KEY, ApiKey::Fetch);
    assert_eq!(ApiKey::from_key(18), Some(ApiKey::ApiVersions));
    assert_eq!(ApiKey::from_key(-5), None);
    assert_eq!(ApiKey::Fetch.name(), "Fetch");
    // Every API key the schemas define, from 0 (Produce) up.
    assert!(ApiKey::ALL.len() >= 80, "{}", ApiKey::ALL.len());
    for k in ApiKey::ALL {
        assert_eq!(ApiKey::from_key(k.key()), Some(*k));
        assert!(!k.versions().is_empty(), "{k:?}");
    }
}

#[test]
fn versions_outside_the_range_are_refused_both_ways() {
    let err = ProduceRequest::default().encode(&mut BytesMut::new(), ApiVersion(12)).unwrap_err();
    assert_eq!(err, EncodeError::UnsupportedVersion { message: "ProduceRequest", version: ApiVersion(12) });
    let err = ProduceResponse::decode(&mut Bytes::new(), ApiVersion(-1)).unwrap_err();
    assert_eq!(err.kind(), &DecodeErrorKind::UnsupportedVersion);
    assert_eq!(err.message(), Some("ProduceResponse"));
}

#[test]
fn a_field_the_version_cannot_carry_is_an_error_not_a_silent_drop() {
    // TransactionalId exists from Produce v3.
    let req = ProduceRequest::default().with_transactional_id(Some("tx".into()));
    let err = req.encode(&mut BytesMut::new(), ApiVersion(2)).unwrap_err();
    assert_eq!(
        err,
        EncodeError::FieldNotInVersion { message: "ProduceRequest", field: "TransactionalId", version: ApiVersion(2) }
    );
    assert!(req.encode(&mut BytesMut::new(), ApiVersion(3)).is_ok());
    // Its default (null) is fine anywhere.
    assert!(ProduceRequest::default().encode(&mut BytesMut::new(), ApiVersion(2)).is_ok());

    // IsolationLevel (Fetch v4+) is "ignorable" in the schema; dropping it would turn a
    // read_committed fetch into read_uncommitted, so it is refused too.
    let fetch = FetchRequest::default().with_isolation_level(1);
    let err = fetch.encode(&mut BytesMut::new(), ApiVersion(3)).unwrap_err();
    assert!(matches!(err, EncodeError::FieldNotInVersion { field: "IsolationLevel", .. }), "{err}");

    // Nested structs are checked too: FetchPartition.CurrentLeaderEpoch exists from v9.
    let fetch = FetchRequest::default().with_topics(vec![FetchTopic::default()
        .with_topic("t".into())
        .with_partitions(vec![FetchPartition::default().with_current_leader_epoch(4)])]);
    let err = fetch.encode(&mut BytesMut::new(), ApiVersion(8)).unwrap_err();
    assert!(
        matches!(err, EncodeError::FieldNotInVersion { message: "FetchPartition", field: "CurrentLeaderEpoch", .. }),
        "{err}"
    );
}

#[test]
fn null_where_the_version_forbids_it_is_an_error() {
    // Metadata topics become nullable (null = all topics) in v1; in v0 all topics is [].
    let all = MetadataRequest::default().with_topics(None);
    let err = all.encode(&mut BytesMut::new(), ApiVersion(0)).unwrap_err();
    assert!(matches!(err, EncodeError::NullNotAllowed { field: "Topics", .. }), "{err}");
    assert!(all.encode(&mut BytesMut::new(), ApiVersion(1)).is_ok());
}

#[test]
fn unknown_tagged_fields_survive_a_round_trip_in_tag_order() {
    let mut req =
        MetadataRequest::default().with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some("a".into()))]));
    req.unknown_tagged_fields = vec![
        RawTaggedField { tag: 7, data: Bytes::from_static(b"\x01\x02") },
        RawTaggedField { tag: 900, data: Bytes::from_static(b"") },
    ];
    let bytes = req.encode_to_bytes(ApiVersion(12)).unwrap();
    let back = MetadataRequest::decode(&mut bytes.clone(), ApiVersion(12)).unwrap();
    assert_eq!(back, req);
    assert_eq!(back.encode_to_bytes(ApiVersion(12)).unwrap(), bytes);
    // Not flexible: unknown tagged fields cannot be carried.
    let err = req.encode(&mut BytesMut::new(), ApiVersion(8)).unwrap_err();
    assert!(matches!(err, EncodeError::FieldNotInVersion { field: "unknown_tagged_fields", .. }), "{err}");
}

#[test]
fn known_tagged_fields_are_written_only_when_not_default() {
    // FetchRequest.ClusterId is tagged field 0 from v12.
    let plain = FetchRequest::default().encode_to_bytes(ApiVersion(12)).unwrap();
    let tagged = FetchRequest::default().with_cluster_id(Some("c1".into())).encode_to_bytes(ApiVersion(12)).unwrap();
    // tag 0, size 3, compact string "c1" (length 2 + 1), plus the count going from 0 to 1.
    assert_eq!(tagged.len(), plain.len() + 5);
    let back = FetchRequest::decode(&mut tagged.clone(), ApiVersion(12)).unwrap();
    assert_eq!(back.cluster_id.as_deref(), Some("c1"));
    assert!(back.unknown_tagged_fields.is_empty());
}

#[test]
fn decode_errors_name_the_message_version_and_field() {
    // A MetadataResponse v12 cut off inside its first broker's host string.
    let resp = MetadataResponse::default().with_brokers(vec![metadata_response::MetadataResponseBroker::default()
        .with_node_id(1)
        .with_host("broker-1.example".into())
        .with_port(9092)]);
    let bytes = resp.encode_to_bytes(ApiVersion(12)).unwrap();
    // throttle (4), broker count (1), node id (4), host length (1), then 8 of the host's 16
    // bytes: enough input that the array-length check passes, so the host read fails.
    let err = MetadataResponse::decode(&mut bytes.slice(..18), ApiVersion(12)).unwrap_err();
    assert_eq!(err.message(), Some("MetadataResponse"));
    assert_eq!(err.version(), Some(ApiVersion(12)));
    assert_eq!(err.path(), "brokers.host");
    assert_eq!(
        err.to_string(),
        "decoding MetadataResponse v12 at brokers.host: unexpected end of input (needed 16 bytes, 8 left)"
    );
    // Too little input for even one broker: refused at the array, before reserving anything.
    let err = MetadataResponse::decode(&mut bytes.slice(..12), ApiVersion(12)).unwrap_err();
    assert_eq!((err.path().as_str(), err.kind()), ("brokers", &DecodeErrorKind::InvalidLength(1)));
}

#[test]
fn every_prefix_of_a_real_message_is_an_error_or_a_value_never_a_panic() {
    let resp = MetadataResponse::default().with_brokers(vec![
        metadata_response::MetadataResponseBroker::default()
            .with_host("h".into());
        3
    ]);
    for v in MetadataResponse::VERSIONS.iter() {
        let bytes = resp.encode_to_bytes(v).unwrap();
        for cut in 0..bytes.len() {
            assert!(MetadataResponse::decode(&mut bytes.slice(..cut), v).is_err(), "{v} cut at {cut}");
        }
    }
}

#[test]
fn error_codes_have_names_and_retriability_from_the_spec() {
    assert_eq!(ErrorCode::from_code(0), ErrorCode::None);
    assert!(ErrorCode::None.is_ok());
    let e = ErrorCode::from_code(6);
    assert_eq!(e, ErrorCode::NotLeaderOrFollower);
    assert_eq!(e.name(), "NOT_LEADER_OR_FOLLOWER");
    assert!(e.is_retriable());
    assert!(!ErrorCode::TopicAuthorizationFailed.is_retriable());
    assert_eq!(ErrorCode::from_code(-1), ErrorCode::UnknownServerError);
    assert_eq!(e.to_string(), "NOT_LEADER_OR_FOLLOWER (6)");
    let unknown = ErrorCode::from_code(9999);
    assert_eq!(unknown, ErrorCode::Unknown(9999));
    assert_eq!(unknown.code(), 9999);
    assert!(!unknown.is_retriable());
    for e in ErrorCode::ALL {
        assert_eq!(ErrorCode::from_code(e.code()), *e);
    }
    // One variant per row of the spec's error_codes.tsv.
    let tsv = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/kafka-protocol-spec/error_codes.tsv"
    ))
    .expect("the spec in ../shared/kafka-protocol-spec, beside the repository");
    let rows = tsv.lines().skip(1).filter(|l| !l.trim().is_empty()).count();
    assert_eq!(ErrorCode::ALL.len(), rows);
}
