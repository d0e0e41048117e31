//! The typed values of the admin [`Client`](super::Client): what it is asked for and what
//! it returns.

use crate::consumer::TopicPartition;
use crate::message::Broker;
pub use crate::net::ScramMechanism;
use kafkit_protocol::Uuid;
use std::time::SystemTime;

/// Per-item results: one failing item does not fail the others.
pub type ItemResults<K, T = ()> = std::collections::BTreeMap<K, crate::Result<T>>;

macro_rules! code_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $code:expr),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$vm])* $variant,)+
            /// A code kafkit does not know.
            Unknown(i8),
        }
        impl $name {
            /// The protocol code.
            pub fn code(self) -> i8 {
                match self { $($name::$variant => $code,)+ $name::Unknown(c) => c }
            }
            /// The value of a protocol code.
            pub fn from_code(c: i8) -> Self {
                match c { $($code => $name::$variant,)+ c => $name::Unknown(c) }
            }
        }
    };
}

code_enum! {
    /// The kind of an ACL's resource (Java `ResourceType`).
    ResourceType {
        /// Any kind (filters only).
        Any = 1,
        /// A topic.
        Topic = 2,
        /// A consumer group.
        Group = 3,
        /// The cluster.
        Cluster = 4,
        /// A transactional id.
        TransactionalId = 5,
        /// A delegation token.
        DelegationToken = 6,
        /// A user.
        User = 7,
    }
}

code_enum! {
    /// How an ACL's resource name matches (Java `PatternType`, KIP-290).
    PatternType {
        /// Any pattern (filters only).
        Any = 1,
        /// Literal or prefixed patterns that match a name (filters only).
        Match = 2,
        /// The name exactly (`*` for all).
        Literal = 3,
        /// Names starting with it.
        Prefixed = 4,
    }
}

code_enum! {
    /// The operation an ACL allows or denies (Java `AclOperation`).
    AclOperation {
        /// Any operation (filters only).
        Any = 1,
        /// All operations.
        All = 2,
        /// Read.
        Read = 3,
        /// Write.
        Write = 4,
        /// Create.
        Create = 5,
        /// Delete.
        Delete = 6,
        /// Alter.
        Alter = 7,
        /// Describe.
        Describe = 8,
        /// Cluster actions.
        ClusterAction = 9,
        /// Describe configs.
        DescribeConfigs = 10,
        /// Alter configs.
        AlterConfigs = 11,
        /// Idempotent write.
        IdempotentWrite = 12,
        /// Create delegation tokens.
        CreateTokens = 13,
        /// Describe delegation tokens.
        DescribeTokens = 14,
    }
}

code_enum! {
    /// Whether an ACL allows or denies (Java `AclPermissionType`).
    AclPermission {
        /// Either (filters only).
        Any = 1,
        /// Deny.
        Deny = 2,
        /// Allow.
        Allow = 3,
    }
}

code_enum! {
    /// Where a config value comes from (DescribeConfigs v1+ `config_source`).
    ConfigSource {
        /// Not given (DescribeConfigs v0).
        Unspecified = 0,
        /// Set on this topic.
        Topic = 1,
        /// Set on this broker, dynamically.
        DynamicBroker = 2,
        /// Set for all brokers, dynamically.
        DynamicDefaultBroker = 3,
        /// The broker's static config file.
        StaticBroker = 4,
        /// Kafka's default.
        Default = 5,
        /// Set for the broker's logger, dynamically.
        DynamicBrokerLogger = 6,
        /// Set on a client metrics resource.
        ClientMetrics = 7,
        /// Set on a group.
        Group = 8,
    }
}

/// An ACL (Java `AclBinding`): who may or may not do what to which resource.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Acl {
    /// The resource kind.
    pub resource_type: ResourceType,
    /// The resource name.
    pub resource_name: String,
    /// How the name matches.
    pub pattern_type: PatternType,
    /// The principal, such as `User:alice`.
    pub principal: String,
    /// The host (`*` for any).
    pub host: String,
    /// The operation.
    pub operation: AclOperation,
    /// Allow or deny.
    pub permission: AclPermission,
}

impl Acl {
    /// Whether this is an ACL rather than a filter: a concrete resource type, a literal or
    /// prefixed pattern, a concrete operation, allow or deny (Java's `ResourcePattern` and
    /// `AccessControlEntry` constructors refuse the rest).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) naming the field.
    pub(crate) fn check(&self) -> crate::Result<()> {
        let bad = |what: &str, v: &dyn std::fmt::Debug| {
            Err(crate::Error::InvalidArgument(format!("an ACL cannot have the {what} {v:?} (only a filter can)")))
        };
        match self {
            Acl { resource_type: ResourceType::Any | ResourceType::Unknown(_), .. } => {
                bad("resource type", &self.resource_type)
            }
            Acl { pattern_type: PatternType::Any | PatternType::Match | PatternType::Unknown(_), .. } => {
                bad("pattern type", &self.pattern_type)
            }
            Acl { operation: AclOperation::Any | AclOperation::Unknown(_), .. } => bad("operation", &self.operation),
            Acl { permission: AclPermission::Any | AclPermission::Unknown(_), .. } => {
                bad("permission", &self.permission)
            }
            _ => Ok(()),
        }
    }

    /// An ACL from a response's codes: (resource type, name, pattern type), (principal,
    /// host), (operation, permission type).
    pub(crate) fn from_codes(resource: (i8, &str, i8), who: (&str, &str), what: (i8, i8)) -> Acl {
        Acl {
            resource_type: ResourceType::from_code(resource.0),
            resource_name: resource.1.to_string(),
            pattern_type: PatternType::from_code(resource.2),
            principal: who.0.to_string(),
            host: who.1.to_string(),
            operation: AclOperation::from_code(what.0),
            permission: AclPermission::from_code(what.1),
        }
    }
}

/// A filter of ACLs (Java `AclBindingFilter`): `None` and the `Any` variants match all.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AclFilter {
    /// The resource kind.
    pub resource_type: ResourceType,
    /// The resource name.
    pub resource_name: Option<String>,
    /// How the name matches.
    pub pattern_type: PatternType,
    /// The principal.
    pub principal: Option<String>,
    /// The host.
    pub host: Option<String>,
    /// The operation.
    pub operation: AclOperation,
    /// Allow or deny.
    pub permission: AclPermission,
}

impl AclFilter {
    /// Matches every ACL.
    pub fn any() -> Self {
        AclFilter {
            resource_type: ResourceType::Any,
            resource_name: None,
            pattern_type: PatternType::Any,
            principal: None,
            host: None,
            operation: AclOperation::Any,
            permission: AclPermission::Any,
        }
    }
}

/// A resource whose configs are described or altered.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConfigResource {
    /// A topic.
    Topic(String),
    /// A broker, by node id.
    Broker(i32),
}

impl ConfigResource {
    /// The protocol's resource type (2 topic, 4 broker) and name.
    pub(crate) fn parts(&self) -> (i8, String) {
        match self {
            ConfigResource::Topic(t) => (2, t.clone()),
            ConfigResource::Broker(id) => (4, id.to_string()),
        }
    }
    /// The resource a response names.
    pub(crate) fn from_parts(resource_type: i8, name: &str) -> Self {
        if resource_type == 4 {
            ConfigResource::Broker(name.parse().unwrap_or(-1))
        } else {
            ConfigResource::Topic(name.to_string())
        }
    }
    /// The broker that must answer for this resource (its own configs), if any.
    pub(crate) fn broker(&self) -> Option<i32> {
        match self {
            ConfigResource::Broker(id) => Some(*id),
            ConfigResource::Topic(_) => None,
        }
    }
}

/// One config of a resource (DescribeConfigs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    /// The key, such as `retention.ms`.
    pub name: String,
    /// The value; `None` when sensitive or unset.
    pub value: Option<String>,
    /// Whether it cannot be altered.
    pub read_only: bool,
    /// Where the value comes from.
    pub source: ConfigSource,
    /// Whether the value is secret (then `value` is `None`).
    pub sensitive: bool,
}

/// A change to one config (IncrementalAlterConfigs, KIP-339).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlterConfigOp {
    /// Set the value.
    Set(String),
    /// Remove the setting, back to the default.
    Delete,
    /// Add to a list value.
    Append(String),
    /// Remove from a list value.
    Subtract(String),
}

/// A created topic (CreateTopics v5+ reports what the broker chose).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedTopic {
    /// The topic id (zero before v7).
    pub id: Uuid,
    /// Partitions (-1 before v5).
    pub num_partitions: i32,
    /// Replication factor (-1 before v5).
    pub replication_factor: i16,
}

/// A consumer group as ListGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedGroup {
    /// The group id.
    pub group_id: String,
    /// `consumer` for consumer groups.
    pub protocol_type: String,
    /// The state (ListGroups v4+; empty before).
    pub state: String,
    /// The broker that coordinates it.
    pub coordinator: i32,
}

/// A member of a described group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMemberDescription {
    /// Member id.
    pub member_id: String,
    /// Group instance id of a static member.
    pub instance_id: Option<String>,
    /// The member's client id.
    pub client_id: String,
    /// The member's host.
    pub client_host: String,
    /// Its assigned partitions (decoded from the consumer protocol; empty for other
    /// protocol types or when it does not decode).
    pub assignment: Vec<TopicPartition>,
}

/// A consumer group (DescribeGroups).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    /// The group id.
    pub group_id: String,
    /// `Stable`, `PreparingRebalance`, `CompletingRebalance`, `Empty`, `Dead`.
    pub state: String,
    /// `consumer` for consumer groups.
    pub protocol_type: String,
    /// The assignor in use.
    pub protocol: String,
    /// The members.
    pub members: Vec<GroupMemberDescription>,
}

/// Which offset [`Client::list_offsets`](super::Client::list_offsets) looks up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    /// The log start offset.
    Earliest,
    /// The high watermark (the last stable offset under read_committed).
    Latest,
    /// The offset of the record with the largest timestamp (ListOffsets v7+, KIP-734).
    MaxTimestamp,
    /// The first offset, in offset order, whose timestamp is at or after this time (-1
    /// when no record is that late).
    Time(SystemTime),
}

/// A ListOffsets answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListedOffset {
    /// The offset (-1 when no record matches a time).
    pub offset: i64,
    /// The timestamp of the record found, for time lookups.
    pub timestamp: Option<SystemTime>,
    /// The partition leader's epoch (-1 when unknown).
    pub leader_epoch: i32,
}

/// The cluster (DescribeCluster, KIP-700).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterDescription {
    /// The cluster id.
    pub cluster_id: String,
    /// The controller's node id.
    pub controller_id: i32,
    /// The brokers.
    pub brokers: Vec<Broker>,
}

/// Which leader an election picks (ElectLeaders, KIP-460).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElectionType {
    /// The preferred (first) replica.
    Preferred,
    /// Any replica when none in sync is alive.
    Unclean,
}

/// A SCRAM credential to create or replace (AlterUserScramCredentials, KIP-554). The
/// password is salted and hashed here; only the salted password travels.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramCredential {
    /// The user.
    pub user: String,
    /// The mechanism.
    pub mechanism: ScramMechanism,
    /// PBKDF2 iterations (Kafka takes 4096 to 16384).
    pub iterations: i32,
    /// The password (never shown by `Debug`).
    pub password: String,
}

impl std::fmt::Debug for ScramCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramCredential")
            .field("user", &self.user)
            .field("mechanism", &self.mechanism)
            .field("iterations", &self.iterations)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// An active producer of a partition (DescribeProducers, KIP-664).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerState {
    /// Producer id.
    pub producer_id: i64,
    /// Producer epoch.
    pub producer_epoch: i32,
    /// The last sequence written.
    pub last_sequence: i32,
    /// When it last wrote (-1 if unknown), ms since the epoch.
    pub last_timestamp: i64,
    /// The first offset of its open transaction (-1 for none).
    pub current_txn_start_offset: i64,
}

/// A transaction (DescribeTransactions, KIP-664).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionDescription {
    /// The state, such as `Ongoing`, `CompleteCommit`, `Empty`.
    pub state: String,
    /// Producer id.
    pub producer_id: i64,
    /// Producer epoch.
    pub producer_epoch: i16,
    /// The transaction timeout, ms.
    pub timeout_ms: i32,
    /// When the open transaction started (-1 for none), ms since the epoch.
    pub start_time_ms: i64,
    /// The partitions in the open transaction.
    pub partitions: Vec<TopicPartition>,
}
