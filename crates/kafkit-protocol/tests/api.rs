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
    // Kafka 4.0 removed Produce v0-2 (KIP-896); v13 names topics by id (KIP-516).
    assert_eq!(ProduceRequest::VERSIONS, VersionRange::new(3, 13));
    assert_eq!(ProduceRequest::STABLE_VERSIONS, VersionRange::new(3, 13));
    assert_eq!(ProduceRequest::FLEXIBLE_VERSIONS, VersionRange::new(9, 13));
    assert_eq!(ProduceRequest::DEPRECATED_VERSIONS, VersionRange::NONE);
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
        assert_eq!(k.stable_versions().min, k.versions().min, "{k:?}");
    }
    // The ZooKeeper-era APIs Kafka 4.0 removed (no valid version left) are not here.
    for removed in [4, 5, 6, 7] {
        assert_eq!(ApiKey::from_key(removed), None, "{removed}");
    }
    assert_eq!(ApiKey::from_key(74), Some(ApiKey::ListConfigResources));
    assert_eq!(ApiKey::from_key(94), Some(ApiKey::UnregisterController));
}

#[test]
fn an_unstable_latest_version_is_never_negotiated() {
    // InitProducerId v6 (KIP-939) is `latestVersionUnstable` in Kafka 4.4: it encodes and
    // decodes, but a client's version range stops at v5, as the Java client's does.
    assert_eq!(InitProducerIdRequest::VERSIONS, VersionRange::new(0, 6));
    assert_eq!(InitProducerIdRequest::STABLE_VERSIONS, VersionRange::new(0, 5));
    assert_eq!(ApiKey::InitProducerId.stable_versions(), VersionRange::new(0, 5));
    assert_eq!(InitProducerIdRequest::STABLE_VERSIONS.highest_common(VersionRange::new(0, 6)), Some(ApiVersion(5)));
    let req = InitProducerIdRequest::default().with_enable2_pc(true);
    assert!(req.encode_to_bytes(ApiVersion(6)).is_ok());
    assert!(matches!(req.encode_to_bytes(ApiVersion(5)), Err(EncodeError::FieldNotInVersion { .. })));
}

#[test]
fn broker_internal_apis_are_named_but_built_only_with_their_feature() {
    assert_eq!(ApiKey::Vote.name(), "Vote");
    let decoded = kafkit_protocol::messages::RequestKind::decode(52, &mut Bytes::new(), ApiVersion(0));
    if cfg!(feature = "broker-internal") {
        // Built: an empty body is a decode error of the message itself.
        assert!(matches!(decoded.unwrap_err().kind(), DecodeErrorKind::UnexpectedEof { .. }));
    } else {
        assert_eq!(decoded.unwrap_err().kind(), &DecodeErrorKind::BrokerInternalApi(52));
    }
    // What admin tools send stays in every build.
    let _ = kafkit_protocol::messages::DescribeQuorumRequest::default();
    let _ = kafkit_protocol::messages::UnregisterBrokerRequest::default();
}

#[test]
fn versions_outside_the_range_are_refused_both_ways() {
    let err = ProduceRequest::default().encode(&mut BytesMut::new(), ApiVersion(14)).unwrap_err();
    assert_eq!(err, EncodeError::UnsupportedVersion { message: "ProduceRequest", version: ApiVersion(14) });
    // Removed in Kafka 4.0.
    let err = ProduceRequest::default().encode(&mut BytesMut::new(), ApiVersion(2)).unwrap_err();
    assert_eq!(err, EncodeError::UnsupportedVersion { message: "ProduceRequest", version: ApiVersion(2) });
    let err = ProduceResponse::decode(&mut Bytes::new(), ApiVersion(-1)).unwrap_err();
    assert_eq!(err.kind(), &DecodeErrorKind::UnsupportedVersion);
    assert_eq!(err.message(), Some("ProduceResponse"));
}

#[test]
fn a_field_the_version_cannot_carry_is_an_error_not_a_silent_drop() {
    // A topic's name goes up to Produce v12, its id from v13 (both "ignorable" in the schema:
    // dropping either would send the batch nowhere).
    let named = ProduceRequest::default().with_topic_data(vec![
        kafkit_protocol::messages::produce_request::TopicProduceData::default().with_name("t".into()),
    ]);
    let err = named.encode(&mut BytesMut::new(), ApiVersion(13)).unwrap_err();
    assert_eq!(
        err,
        EncodeError::FieldNotInVersion { message: "TopicProduceData", field: "Name", version: ApiVersion(13) }
    );
    assert!(named.encode(&mut BytesMut::new(), ApiVersion(12)).is_ok());
    // Its default (empty) is fine anywhere.
    assert!(ProduceRequest::default().encode(&mut BytesMut::new(), ApiVersion(13)).is_ok());

    // Fetch's HighWatermark (tagged, v18+, KIP-1166) is ignorable in the schema; it is
    // refused below v18 too.
    let fetch = FetchRequest::default().with_topics(vec![
        FetchTopic::default().with_partitions(vec![FetchPartition::default().with_high_watermark(5)])
    ]);
    let err = fetch.encode(&mut BytesMut::new(), ApiVersion(17)).unwrap_err();
    assert!(matches!(err, EncodeError::FieldNotInVersion { field: "HighWatermark", .. }), "{err}");
    assert!(fetch.encode(&mut BytesMut::new(), ApiVersion(18)).is_ok());

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
    // Kafka 4.4's Errors enum: -1 and 0 to 136, every one known.
    assert_eq!(ErrorCode::ALL.len(), 138);
    assert!((-1..=136).all(|c| !matches!(ErrorCode::from_code(c), ErrorCode::Unknown(_))));
    assert_eq!(ErrorCode::from_code(129), ErrorCode::RebootstrapRequired);
    assert_eq!(ErrorCode::from_code(136).name(), "CONTROLLER_ID_NOT_REGISTERED");
    assert!(ErrorCode::ShareSessionLimitReached.is_retriable());
    // The Java client's default messages come along.
    assert!(ErrorCode::UnknownTopicId.message().contains("topic ID"), "{}", ErrorCode::UnknownTopicId.message());
    assert_eq!(ErrorCode::None.message(), "");
}
