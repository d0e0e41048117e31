//! Which schemas go behind kafkit-protocol's non-default `broker-internal` feature.
//!
//! These are the APIs that only brokers and controllers send to one another, and the record
//! schemas that only they write; no client, admin tool included, ever sends or reads them, so
//! a client build need not compile them (they are about a fifth of the generated code). The
//! list is curated by hand from each schema's `listeners` and from who sends it in Apache
//! Kafka: an API whose only listener is `controller` is sent by brokers and controllers,
//! except the quorum APIs that admin tools send (DescribeQuorum, AddRaftVoter,
//! RemoveRaftVoter, which listen on brokers too). Everything an admin tool sends stays in the
//! default build (DescribeQuorum, AddRaftVoter, RemoveRaftVoter, UnregisterBroker,
//! UnregisterController, UpdateFeatures, the log-dir and reassignment APIs, ...).
//!
//! `ApiKey` keeps every API either way, so ApiVersions answers can be named in full; only the
//! message types and their `RequestKind`/`ResponseKind` variants are left out.

use crate::model::Msg;

/// Requests (their responses follow) that brokers and controllers send to one another.
const APIS: &[(&str, &str)] = &[
    // KRaft: voting, leadership and snapshots between controllers (KIP-595, KIP-630, KIP-853).
    ("Vote", "KRaft leader election"),
    ("BeginQuorumEpoch", "KRaft: a new leader tells the voters"),
    ("EndQuorumEpoch", "KRaft: a leader resigns"),
    ("FetchSnapshot", "KRaft: a replica fetches the metadata snapshot"),
    ("UpdateRaftVoter", "KRaft: a voter updates its own endpoints (KIP-853)"),
    // Broker and controller lifecycle (KIP-631, KIP-919).
    ("BrokerRegistration", "a broker registers with the controller"),
    ("BrokerHeartbeat", "a broker's lease with the controller"),
    ("ControllerRegistration", "a controller registers with the active controller"),
    // Replication and metadata changes brokers ask the controller for.
    ("AlterPartition", "a partition leader changes the ISR (KIP-497)"),
    ("AssignReplicasToDirs", "JBOD directory assignment (KIP-858)"),
    ("AllocateProducerIds", "a broker takes a block of producer ids (KIP-730)"),
    ("Envelope", "a broker forwards a client request to the controller (KIP-590)"),
    // Transactions: the transaction coordinator writes the commit/abort markers.
    ("WriteTxnMarkers", "the transaction coordinator to partition leaders"),
    // Share groups: the share-partition leader and the share coordinator (KIP-932).
    ("InitializeShareGroupState", "share coordinator state"),
    ("ReadShareGroupState", "share coordinator state"),
    ("WriteShareGroupState", "share coordinator state"),
    ("DeleteShareGroupState", "share coordinator state"),
    ("ReadShareGroupStateSummary", "share coordinator state"),
];

/// Record schemas only brokers and controllers write or read (the KRaft log's control
/// records, snapshots, the transaction index, the principal an Envelope carries).
const DATA: &[&str] = &[
    "VotersRecord",
    "KRaftVersionRecord",
    "LeaderChangeMessage",
    "SnapshotHeaderRecord",
    "SnapshotFooterRecord",
    "AbortedTxn",
    "DefaultPrincipalData",
];

/// Why an API (by request name without `Request`) is internal, if it is.
pub fn reason(api: &str) -> Option<&'static str> {
    APIS.iter().find(|(n, _)| *n == api).map(|(_, r)| *r)
}

pub fn is_internal(m: &Msg) -> bool {
    let api = m.name.strip_suffix("Request").or_else(|| m.name.strip_suffix("Response"));
    match (m.kind.as_str(), api) {
        ("request" | "response", Some(a)) => APIS.iter().any(|(n, _)| *n == a),
        _ => DATA.contains(&m.name.as_str()),
    }
}

/// Names in the lists above that no schema has (a rename upstream would otherwise quietly
/// move an API into the default build).
pub fn unknown_names(all: &[Msg]) -> Vec<String> {
    let mut out = Vec::new();
    for (a, _) in APIS {
        if !all.iter().any(|m| m.name == format!("{a}Request")) {
            out.push(format!("{a}Request"));
        }
    }
    for d in DATA {
        if !all.iter().any(|m| m.name == *d) {
            out.push((*d).to_string());
        }
    }
    out
}
