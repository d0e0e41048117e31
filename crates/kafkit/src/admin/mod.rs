//! The admin [`Client`]: topics, partitions, configs, consumer groups and their offsets,
//! the cluster, records, ACLs, SCRAM credentials, producers and transactions (Java's
//! `Admin`, franz-go's `kadm`, kafka-go's `Client`).
//!
//! Every call routes its request to the broker that must answer it, at the highest version
//! both kafkit and that broker speak (from its ApiVersions; an API it does not serve fails
//! with [`Error::UnsupportedByBroker`] before anything is sent). Whole requests are retried
//! through [`Cluster::retry`] with the cluster's backoff while their error is retriable, up
//! to [`ClusterConfig::retry_timeout`]; an error that is not (an authorization failure such
//! as `TOPIC_AUTHORIZATION_FAILED`, an invalid config) comes back at once. Where a request
//! covers many items, each item gets its own result.
//!
//! | call | API (versions kafkit sends; with Kafka 4.4) | sent to |
//! |---|---|---|
//! | [`Client::create_topics`] | CreateTopics v2-7 (v7) | the controller¹ |
//! | [`Client::delete_topics`] | DeleteTopics v1-6 (v6, by name) | the controller¹ |
//! | [`Client::create_partitions`] | CreatePartitions v0-3 (v3) | the controller¹ |
//! | [`Client::describe_configs`] | DescribeConfigs v1-4 (v4) | a broker's configs: that broker; a topic's: any broker |
//! | [`Client::incremental_alter_configs`] | IncrementalAlterConfigs v0-1 (v1, KIP-339) | as `describe_configs` |
//! | [`Client::list_groups`] | ListGroups v0-5 (v5) | every broker |
//! | [`Client::describe_groups`] | DescribeGroups v0-6 (v6) | each group's coordinator² |
//! | [`Client::delete_groups`] | DeleteGroups v0-3 (v3) | each group's coordinator² |
//! | [`Client::fetch_offsets`] | OffsetFetch v1-10 (v10 by topic id when the metadata knows every id; all partitions: v9) | the group's coordinator² |
//! | [`Client::alter_offsets`] | OffsetCommit v2-10 (v10 by topic id when the metadata knows every id) | the group's coordinator² |
//! | [`Client::delete_offsets`] | OffsetDelete v0 (KIP-496) | the group's coordinator² |
//! | [`Client::list_offsets`] | ListOffsets v1-11 (v11) | each partition leader, one request per leader |
//! | [`Client::delete_records`] | DeleteRecords v0-2 (v2) | each partition leader, one request per leader |
//! | [`Client::describe_producers`] | DescribeProducers v0 (KIP-664) | each partition leader, one request per leader |
//! | [`Client::describe_transactions`] | DescribeTransactions v0 (KIP-664) | each id's transaction coordinator² |
//! | [`Client::describe_cluster`] | DescribeCluster v0-2 (v2, KIP-700) | any broker |
//! | [`Client::elect_leaders`] | ElectLeaders v0-2 (v2, KIP-460) | the controller¹ |
//! | [`Client::describe_acls`] | DescribeAcls v1-3 (v3) | any broker |
//! | [`Client::create_acls`] | CreateAcls v1-3 (v3) | any broker |
//! | [`Client::delete_acls`] | DeleteAcls v1-3 (v3) | any broker |
//! | [`Client::describe_user_scram_credentials`] | DescribeUserScramCredentials v0 (KIP-554) | any broker |
//! | [`Client::alter_user_scram_credentials`] | AlterUserScramCredentials v0 (KIP-554) | the controller¹ |
//!
//! ¹ The broker the Metadata response names as the controller. On a KRaft cluster (every
//! Kafka 4) that is some live broker, which forwards the request to the active controller
//! of the quorum; NOT_CONTROLLER refreshes the metadata and tries again.
//! ² Found with FindCoordinator v0-6 (key type group or transaction; v4+ batched form, one
//! key) at any broker. Its failure, such as GROUP_AUTHORIZATION_FAILED, is that key's result.
//!
//! Brokers answer config, ACL and SCRAM requests from their metadata, which has a change a
//! moment after the controller took it: describing right after altering can show the old
//! state.
//!
//! # Cancellation
//! Dropping a call's future stops it; a request already sent may still be applied by the
//! broker (a topic created, offsets altered), as with any request whose answer was lost.

mod types;

pub use types::*;

use crate::cluster::{Cluster, ClusterConfig, CoordinatorType, Workload};
use crate::consumer::{assigned_partitions, group_by, offset_fetch, CommitCall, TopicPartition};
use crate::error::{Error, Result};
use crate::message::{from_millis, to_millis, Broker, TopicConfig};
use crate::net::{salted_password, Conn, IsolationLevel, SCRAM_MAX_ITERATIONS, SCRAM_MIN_ITERATIONS};
use kafkit_protocol::messages::*;
use kafkit_protocol::ErrorCode;
use std::collections::{BTreeMap, BTreeSet};

/// An admin client. A cheap `Clone`.
///
/// ```no_run
/// # async fn run() -> kafkit::Result<()> {
/// use kafkit::admin::Client;
/// use kafkit::{ClusterConfig, TopicConfig};
///
/// let admin = Client::new(&["localhost:9092"], ClusterConfig::default()).await?;
/// for (topic, result) in admin.create_topics(&[TopicConfig::new("orders", 6)], false).await? {
///     println!("{topic}: {result:?}");
/// }
/// for g in admin.list_groups().await? {
///     println!("group {} ({})", g.group_id, g.state);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Client {
    cluster: Cluster,
}

fn check(code: i16, message: Option<&str>, context: impl FnOnce() -> String) -> Result<()> {
    Error::check(code, message, context)
}

impl Client {
    /// Connects through `brokers`.
    ///
    /// # Errors
    /// As [`Cluster::connect`].
    pub async fn new(brokers: &[&str], config: ClusterConfig) -> Result<Client> {
        Ok(Client { cluster: Cluster::connect(brokers, config).await? })
    }

    /// An admin client on an existing cluster client.
    pub fn from_cluster(cluster: Cluster) -> Client {
        Client { cluster }
    }

    /// The cluster client underneath.
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// A health check: [`Cluster::ping`] (connect, ApiVersions, Metadata within `timeout`).
    ///
    /// # Errors
    /// As [`Cluster::ping`].
    pub async fn ping(&self, timeout: std::time::Duration) -> Result<crate::cluster::Ping> {
        self.cluster.ping(timeout).await
    }

    /// Runs `op` against the controller, retried (NOT_CONTROLLER refreshes the metadata).
    async fn on_controller<T, F, Fut>(&self, op: F) -> Result<T>
    where
        F: Fn(Conn) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        self.cluster
            .retry(|| async {
                let conn = self.cluster.controller(Workload::Admin).await?;
                op(conn).await
            })
            .await
    }

    /// Runs a config request where it must go: a broker's configs to that broker
    /// (`target`), topic configs to any broker; retried.
    async fn on_config_target<T, F, Fut>(&self, target: Option<i32>, op: F) -> Result<T>
    where
        F: Fn(Conn) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        match target {
            Some(id) => {
                self.cluster.retry(|| async { op(self.cluster.broker(id, Workload::Admin).await?).await }).await
            }
            None => self.on_any(op).await,
        }
    }

    /// Runs `op` against any broker, retried.
    async fn on_any<T, F, Fut>(&self, op: F) -> Result<T>
    where
        F: Fn(Conn) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        self.cluster
            .retry(|| async {
                let conn = self.cluster.any_broker(Workload::Admin).await?;
                op(conn).await
            })
            .await
    }

    /// Runs `op` against the coordinator of `key`, retried (coordinator errors look it up
    /// again).
    async fn on_coordinator<T, F, Fut>(&self, key: &str, kind: CoordinatorType, op: F) -> Result<T>
    where
        F: Fn(Conn) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        self.cluster
            .retry(|| async {
                let conn = self.cluster.coordinator(key, kind, Workload::Admin).await?;
                op(conn).await
            })
            .await
    }

    /// The partition leaders of `parts`, from fresh metadata: leader id → partitions. A
    /// partition without a leader or topic comes back in the error list.
    async fn leaders_of(
        &self,
        parts: impl IntoIterator<Item = TopicPartition>,
    ) -> Result<(BTreeMap<i32, Vec<TopicPartition>>, Vec<(TopicPartition, Error)>)> {
        let parts: Vec<TopicPartition> = parts.into_iter().collect();
        let topics: BTreeSet<&str> = parts.iter().map(|tp| tp.topic.as_str()).collect();
        let topics: Vec<&str> = topics.into_iter().collect();
        let meta = self.cluster.refresh_metadata(Some(&topics)).await?;
        let mut by_leader: BTreeMap<i32, Vec<TopicPartition>> = BTreeMap::new();
        let mut missing = Vec::new();
        for tp in parts {
            let leader = meta
                .topics
                .get(&tp.topic)
                .filter(|t| t.error.is_none())
                .and_then(|t| t.partition(tp.partition))
                .map(|p| p.leader)
                .unwrap_or(-1);
            if leader < 0 {
                let code =
                    meta.topics.get(&tp.topic).and_then(|t| t.error).unwrap_or(ErrorCode::UnknownTopicOrPartition);
                missing.push((
                    tp.clone(),
                    Error::Broker { code, context: format!("finding the leader of {tp}"), message: None },
                ));
            } else {
                by_leader.entry(leader).or_default().push(tp);
            }
        }
        Ok((by_leader, missing))
    }

    // ----- topics -----

    /// Creates topics with their partitions, replication factor, configs and explicit
    /// replica assignments ([`TopicConfig`]): CreateTopics v2-7 to the controller. With
    /// `validate_only` (v1+) Kafka checks them and answers as for a creation (partitions,
    /// replication factor) but creates nothing.
    ///
    /// # Errors
    /// The request's own failure; per topic, its error: `TOPIC_ALREADY_EXISTS`,
    /// `INVALID_CONFIG` (a value Kafka cannot parse, a key it does not know),
    /// `INVALID_PARTITIONS`, `INVALID_REPLICATION_FACTOR`, `INVALID_TOPIC_EXCEPTION`,
    /// `TOPIC_AUTHORIZATION_FAILED` (no Create on the topic or the cluster).
    pub async fn create_topics(
        &self,
        topics: &[TopicConfig],
        validate_only: bool,
    ) -> Result<ItemResults<String, CreatedTopic>> {
        self.on_controller(|conn| async move {
            let req = crate::net::create_topics_request(topics, conn.timeout_ms()).with_validate_only(validate_only);
            let resp = conn.request(&req).await?;
            Ok(resp
                .topics
                .into_iter()
                .map(|t| {
                    let r = check(t.error_code, t.error_message.as_deref(), || format!("creating topic {}", t.name))
                        .map(|()| CreatedTopic {
                            id: t.topic_id,
                            num_partitions: t.num_partitions,
                            replication_factor: t.replication_factor,
                        });
                    (t.name, r)
                })
                .collect())
        })
        .await
    }

    /// Deletes topics by name: DeleteTopics v1-6 to the controller. Brokers drop a deleted
    /// topic from their metadata a moment after the answer.
    ///
    /// # Errors
    /// The request's own failure; per topic, its error (`UNKNOWN_TOPIC_OR_PARTITION`,
    /// `TOPIC_AUTHORIZATION_FAILED`).
    pub async fn delete_topics(&self, topics: &[&str]) -> Result<ItemResults<String>> {
        self.on_controller(|conn| async move {
            let resp = conn.request(&crate::net::delete_topics_request(&conn, topics)?).await?;
            Ok(resp
                .responses
                .into_iter()
                .map(|r| {
                    let name = r.name.clone().unwrap_or_default();
                    let res = check(r.error_code, r.error_message.as_deref(), || format!("deleting topic {name}"));
                    (name, res)
                })
                .collect())
        })
        .await
    }

    /// Raises topics' partition counts to the totals given, the controller placing the new
    /// partitions: CreatePartitions v0-3 to the controller. With `validate_only` it only
    /// checks. A consumer group sees the new partitions when its leader next reads the
    /// metadata ([`ReaderConfig::partition_watch_interval`](crate::ReaderConfig::partition_watch_interval)).
    ///
    /// # Errors
    /// The request's own failure ([`Error::UnsupportedByBroker`] where it is not served);
    /// per topic, its error (`INVALID_PARTITIONS` for a total not above the current count,
    /// `UNKNOWN_TOPIC_OR_PARTITION`, `TOPIC_AUTHORIZATION_FAILED` without Alter).
    pub async fn create_partitions(&self, totals: &[(&str, i32)], validate_only: bool) -> Result<ItemResults<String>> {
        self.on_controller(|conn| async move {
            let req = CreatePartitionsRequest::default()
                .with_timeout_ms(conn.timeout_ms())
                .with_validate_only(validate_only)
                .with_topics(
                    totals
                        .iter()
                        .map(|(t, n)| {
                            // Null assignments: the controller places the new partitions.
                            // An empty list would mean "these 0 assignments", which Kafka
                            // refuses with INVALID_REPLICA_ASSIGNMENT.
                            create_partitions_request::CreatePartitionsTopic::default()
                                .with_name(t.to_string())
                                .with_count(*n)
                                .with_assignments(None)
                        })
                        .collect(),
                );
            let resp = conn.request(&req).await?;
            Ok(resp
                .results
                .into_iter()
                .map(|r| {
                    let res = check(r.error_code, r.error_message.as_deref(), || {
                        format!("creating partitions of {}", r.name)
                    });
                    (r.name, res)
                })
                .collect())
        })
        .await
    }

    // ----- configs -----

    /// The configs of topics and brokers: DescribeConfigs v1-4, a broker's configs to that
    /// broker, topic configs to any broker. Kafka returns every config of the resource (not
    /// only those set), each with its [`ConfigSource`] (v1+) and secrets withheld
    /// (`sensitive`, value `None`); synonyms and documentation are not asked for.
    ///
    /// # Errors
    /// A request's own failure (`BROKER_NOT_AVAILABLE` for a broker the metadata does not
    /// list); per resource, its error (`UNKNOWN_TOPIC_OR_PARTITION`,
    /// `TOPIC_AUTHORIZATION_FAILED` or `CLUSTER_AUTHORIZATION_FAILED` without
    /// DescribeConfigs).
    pub async fn describe_configs(
        &self,
        resources: &[ConfigResource],
    ) -> Result<ItemResults<ConfigResource, Vec<ConfigEntry>>> {
        let mut out = BTreeMap::new();
        let by_target = group_by(resources.iter().map(|r| (r.broker(), r.clone())));
        for (target, list) in by_target {
            let run = |conn: Conn| {
                let list = list.clone();
                async move {
                    let req = DescribeConfigsRequest::default().with_resources(
                        list.iter()
                            .map(|r| {
                                let (t, n) = r.parts();
                                describe_configs_request::DescribeConfigsResource::default()
                                    .with_resource_type(t)
                                    .with_resource_name(n)
                                    .with_configuration_keys(None)
                            })
                            .collect(),
                    );
                    conn.request(&req).await
                }
            };
            let resp = self.on_config_target(target, run).await?;
            for r in resp.results {
                let key = ConfigResource::from_parts(r.resource_type, &r.resource_name);
                let res = check(r.error_code, r.error_message.as_deref(), || format!("describing configs of {key:?}"))
                    .map(|()| {
                        r.configs
                            .iter()
                            .map(|c| ConfigEntry {
                                name: c.name.clone(),
                                value: c.value.clone(),
                                read_only: c.read_only,
                                // DescribeConfigs v1+ always names the source (v0's
                                // IsDefault went with v0 in Kafka 4.0).
                                source: if c.config_source == -1 {
                                    ConfigSource::Unspecified
                                } else {
                                    ConfigSource::from_code(c.config_source)
                                },
                                sensitive: c.is_sensitive,
                            })
                            .collect()
                    });
                out.insert(key, res);
            }
        }
        Ok(out)
    }

    /// Changes configs one key at a time, leaving the others as they are:
    /// IncrementalAlterConfigs v0-1 (KIP-339), a broker's configs to that broker, topic
    /// configs to any broker (which forwards to the controller). `Append` and `Subtract` work
    /// on list values only (such as `cleanup.policy`); `Delete` goes back to the default.
    /// A resource's changes are applied all or none. With `validate_only` nothing is applied.
    ///
    /// # Errors
    /// A request's own failure; per resource, its error (`INVALID_CONFIG` for a value that
    /// does not parse, an unknown key or `Append` to a value that is not a list;
    /// `INVALID_REQUEST` for a broker config that cannot change at run time; the
    /// authorization failures of [`Client::describe_configs`] without AlterConfigs).
    pub async fn incremental_alter_configs(
        &self,
        changes: &[(ConfigResource, Vec<(String, AlterConfigOp)>)],
        validate_only: bool,
    ) -> Result<ItemResults<ConfigResource>> {
        let mut out = BTreeMap::new();
        let by_target = group_by(changes.iter().map(|(r, c)| (r.broker(), (r.clone(), c.clone()))));
        for (target, list) in by_target {
            let run = |conn: Conn| {
                let list = list.clone();
                async move {
                    let req =
                        IncrementalAlterConfigsRequest::default().with_validate_only(validate_only).with_resources(
                            list.iter()
                                .map(|(r, ops)| {
                                    let (t, n) = r.parts();
                                    incremental_alter_configs_request::AlterConfigsResource::default()
                                        .with_resource_type(t)
                                        .with_resource_name(n)
                                        .with_configs(
                                            ops.iter()
                                                .map(|(k, op)| {
                                                    let (code, value) = match op {
                                                        AlterConfigOp::Set(v) => (0, Some(v.clone())),
                                                        AlterConfigOp::Delete => (1, None),
                                                        AlterConfigOp::Append(v) => (2, Some(v.clone())),
                                                        AlterConfigOp::Subtract(v) => (3, Some(v.clone())),
                                                    };
                                                    incremental_alter_configs_request::AlterableConfig::default()
                                                        .with_name(k.clone())
                                                        .with_config_operation(code)
                                                        .with_value(value)
                                                })
                                                .collect(),
                                        )
                                })
                                .collect(),
                        );
                    conn.request(&req).await
                }
            };
            let resp = self.on_config_target(target, run).await?;
            for r in resp.responses {
                let key = ConfigResource::from_parts(r.resource_type, &r.resource_name);
                let res = check(r.error_code, r.error_message.as_deref(), || format!("altering configs of {key:?}"));
                out.insert(key, res);
            }
        }
        Ok(out)
    }

    // ----- groups -----

    /// Every group of every broker: ListGroups v0-5 to each broker in the metadata. Kafka
    /// lists the groups the principal may describe (all of them with Describe on the
    /// cluster).
    ///
    /// # Errors
    /// A broker's failure or error code.
    pub async fn list_groups(&self) -> Result<Vec<ListedGroup>> {
        let meta = self.cluster.refresh_metadata(None).await?;
        let mut out = Vec::new();
        for &id in meta.brokers.keys() {
            let resp = self
                .cluster
                .retry(|| async {
                    self.cluster.broker(id, Workload::Admin).await?.request(&ListGroupsRequest::default()).await
                })
                .await?;
            check(resp.error_code, None, || format!("listing the groups of broker {id}"))?;
            out.extend(resp.groups.into_iter().map(|g| ListedGroup {
                group_id: g.group_id,
                protocol_type: g.protocol_type,
                state: g.group_state,
                coordinator: id,
            }));
        }
        out.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        Ok(out)
    }

    /// Describes groups: state, assignor, members and their assignments: DescribeGroups
    /// v0-6, one request per group to its coordinator. A group Kafka does not know is
    /// `GROUP_ID_NOT_FOUND` from v6 (Kafka 4.x, KIP-1043), and described as `Dead`, with no
    /// members, before.
    ///
    /// # Errors
    /// Per group, its error, finding its coordinator included (`GROUP_AUTHORIZATION_FAILED`
    /// without Describe on it).
    pub async fn describe_groups(&self, groups: &[&str]) -> Result<ItemResults<String, GroupDescription>> {
        let mut out = BTreeMap::new();
        for g in groups {
            let resp = self
                .on_coordinator(g, CoordinatorType::Group, |conn| async move {
                    let resp = conn.request(&DescribeGroupsRequest::default().with_groups(vec![g.to_string()])).await?;
                    if let Some(d) = resp.groups.first() {
                        coordinator_moved(d.error_code, || format!("describing group {g}"))?;
                    }
                    Ok(resp)
                })
                .await;
            let Some(resp) = per_item(&mut out, g, resp) else { continue };
            for d in resp.groups {
                // DescribeGroups v6 explains the error (KIP-1043).
                let r = check(d.error_code, d.error_message.as_deref(), || format!("describing group {}", d.group_id))
                    .map(|()| GroupDescription {
                        group_id: d.group_id.clone(),
                        state: d.group_state.clone(),
                        protocol_type: d.protocol_type.clone(),
                        protocol: d.protocol_data.clone(),
                        members: d
                            .members
                            .iter()
                            .map(|m| GroupMemberDescription {
                                member_id: m.member_id.clone(),
                                instance_id: m.group_instance_id.clone(),
                                client_id: m.client_id.clone(),
                                client_host: m.client_host.clone(),
                                assignment: if d.protocol_type == "consumer" {
                                    decode_assignment(&m.member_assignment)
                                } else {
                                    Vec::new()
                                },
                            })
                            .collect(),
                    });
                out.insert(d.group_id, r);
            }
        }
        Ok(out)
    }

    /// Deletes groups that have no members, with their committed offsets: DeleteGroups
    /// v0-3, one request per group to its coordinator.
    ///
    /// # Errors
    /// Per group, its error, finding its coordinator included (`NON_EMPTY_GROUP`,
    /// `GROUP_ID_NOT_FOUND`, `GROUP_AUTHORIZATION_FAILED` without Delete on it).
    pub async fn delete_groups(&self, groups: &[&str]) -> Result<ItemResults<String>> {
        let mut out = BTreeMap::new();
        for g in groups {
            let resp = self
                .on_coordinator(g, CoordinatorType::Group, |conn| async move {
                    conn.request(&DeleteGroupsRequest::default().with_groups_names(vec![g.to_string()])).await
                })
                .await;
            let Some(resp) = per_item(&mut out, g, resp) else { continue };
            for r in resp.results {
                // DeleteGroups v3 explains the error.
                let res = check(r.error_code, r.error_message.as_deref(), || format!("deleting group {}", r.group_id));
                out.insert(r.group_id, res);
            }
        }
        Ok(out)
    }

    /// A group's committed offsets: of `parts`, or of every partition it has committed.
    /// OffsetFetch v1-10 to the group's coordinator, without `require_stable`. Partitions
    /// with nothing committed are left out.
    ///
    /// # Errors
    /// The request's failure or the group's error (`GROUP_AUTHORIZATION_FAILED`).
    pub async fn fetch_offsets(
        &self,
        group: &str,
        parts: Option<&[TopicPartition]>,
    ) -> Result<BTreeMap<TopicPartition, i64>> {
        let all = self
            .on_coordinator(group, CoordinatorType::Group, |conn| async move {
                offset_fetch(&conn, &self.cluster, group, parts, false).await
            })
            .await?;
        Ok(all.into_iter().filter(|(_, (o, _))| *o >= 0).map(|(tp, (o, _))| (tp, o)).collect())
    }

    /// Sets a group's committed offsets: OffsetCommit v2-10 to the group's coordinator, as
    /// an admin (generation -1, no member id). The coordinator accepts it only while the
    /// group has no members; a group that does not exist is created, empty.
    ///
    /// # Errors
    /// The request's failure (`GROUP_AUTHORIZATION_FAILED` finding the coordinator); per
    /// partition, its error (`UNKNOWN_MEMBER_ID` while the group has members,
    /// `GROUP_AUTHORIZATION_FAILED` without Read on the group).
    pub async fn alter_offsets(
        &self,
        group: &str,
        offsets: &BTreeMap<TopicPartition, i64>,
    ) -> Result<ItemResults<TopicPartition>> {
        let resp = self
            .on_coordinator(group, CoordinatorType::Group, |conn| async move {
                let mut call =
                    CommitCall::new(&conn, &self.cluster, group, offsets.iter().map(|(tp, o)| (tp, *o))).await?;
                if call.version.0 >= 1 {
                    call.req = call.req.with_generation_id_or_member_epoch(-1);
                }
                call.send(&conn).await
            })
            .await?;
        Ok(resp
            .into_iter()
            .map(|(tp, code)| {
                let r = check(code, None, || format!("setting the offset of {tp} for group {group}"));
                (tp, r)
            })
            .collect())
    }

    /// Deletes a group's committed offsets of partitions it no longer reads: OffsetDelete
    /// v0 (KIP-496) to the group's coordinator.
    ///
    /// # Errors
    /// The request's failure or the group's error; per partition, its error
    /// (`GROUP_SUBSCRIBED_TO_TOPIC`).
    pub async fn delete_offsets(&self, group: &str, parts: &[TopicPartition]) -> Result<ItemResults<TopicPartition>> {
        let resp = self
            .on_coordinator(group, CoordinatorType::Group, |conn| async move {
                let topics = group_by(parts.iter().map(|tp| (tp.topic.clone(), tp.partition)));
                let req = OffsetDeleteRequest::default().with_group_id(group.to_string()).with_topics(
                    topics
                        .into_iter()
                        .map(|(t, ps)| {
                            offset_delete_request::OffsetDeleteRequestTopic::default().with_name(t).with_partitions(
                                ps.into_iter()
                                    .map(|p| {
                                        offset_delete_request::OffsetDeleteRequestPartition::default()
                                            .with_partition_index(p)
                                    })
                                    .collect(),
                            )
                        })
                        .collect(),
                );
                let resp = conn.request(&req).await?;
                check(resp.error_code, None, || format!("deleting offsets of group {group}"))?;
                Ok(resp)
            })
            .await?;
        Ok(resp
            .topics
            .into_iter()
            .flat_map(|t| {
                t.partitions.into_iter().map(move |p| {
                    let tp = TopicPartition::new(t.name.clone(), p.partition_index);
                    let r = check(p.error_code, None, || format!("deleting the offset of {tp} for group {group}"));
                    (tp, r)
                })
            })
            .collect())
    }

    // ----- offsets and records -----

    /// Looks offsets up by [`OffsetSpec`]: ListOffsets v1-11, one request per partition
    /// leader (found in fresh metadata), with the isolation level. `Latest` is the
    /// high watermark, or the last stable offset under read_committed (an open transaction
    /// holds it back). `Time(t)` is the first offset, in offset order, whose timestamp is at
    /// or after `t`, with that record's timestamp; offset -1 (and no timestamp) when no
    /// record is that late. `MaxTimestamp` (Kafka answers it from v7) is the record with
    /// the largest timestamp.
    ///
    /// # Errors
    /// A request's own failure; per partition, its error (`UNKNOWN_TOPIC_OR_PARTITION`,
    /// `TOPIC_AUTHORIZATION_FAILED` without Describe).
    pub async fn list_offsets(
        &self,
        specs: &[(TopicPartition, OffsetSpec)],
        isolation: IsolationLevel,
    ) -> Result<ItemResults<TopicPartition, ListedOffset>> {
        let spec_of: BTreeMap<TopicPartition, OffsetSpec> = specs.iter().cloned().collect();
        let (by_leader, missing) = self.leaders_of(spec_of.keys().cloned()).await?;
        let mut out: ItemResults<TopicPartition, ListedOffset> =
            missing.into_iter().map(|(tp, e)| (tp, Err(e))).collect();
        for (leader, parts) in by_leader {
            let resp = self
                .cluster
                .retry(|| async {
                    let conn = self.cluster.broker(leader, Workload::Fetch).await?;
                    let v = conn.version_for::<ListOffsetsRequest>()?;
                    let topics = group_by(parts.iter().map(|tp| {
                        let ts = match spec_of[tp] {
                            OffsetSpec::Earliest => -2,
                            OffsetSpec::Latest => -1,
                            OffsetSpec::MaxTimestamp => -3,
                            OffsetSpec::Time(t) => to_millis(t),
                        };
                        let p = list_offsets_request::ListOffsetsPartition::default()
                            .with_partition_index(tp.partition)
                            .with_timestamp(ts);
                        (tp.topic.clone(), p)
                    }));
                    let mut req = ListOffsetsRequest::default().with_replica_id(-1).with_topics(
                        topics
                            .into_iter()
                            .map(|(t, ps)| {
                                list_offsets_request::ListOffsetsTopic::default().with_name(t).with_partitions(ps)
                            })
                            .collect(),
                    );
                    if v.0 >= 2 && isolation == IsolationLevel::ReadCommitted {
                        req = req.with_isolation_level(1);
                    }
                    if v.0 >= 10 {
                        // How long the broker may wait on remote (tiered) storage (KIP-1075).
                        req = req.with_timeout_ms(conn.timeout_ms());
                    }
                    conn.request_version(&req, v).await
                })
                .await?;
            for t in resp.topics {
                for p in t.partitions {
                    let tp = TopicPartition::new(t.name.clone(), p.partition_index);
                    let r = check(p.error_code, None, || format!("listing offsets of {tp}")).map(|()| ListedOffset {
                        offset: p.offset,
                        timestamp: (p.timestamp >= 0).then(|| from_millis(p.timestamp)).flatten(),
                        leader_epoch: p.leader_epoch,
                    });
                    out.insert(tp, r);
                }
            }
        }
        Ok(out)
    }

    /// Deletes records before the given offsets (-1: up to the high watermark): DeleteRecords
    /// v0-2, one request per partition leader. Returns each partition's new log start offset
    /// (its low watermark), which may fall inside a record batch: fetches from it return the
    /// whole batch, and readers leave out the records before it. A reader positioned behind
    /// it gets OFFSET_OUT_OF_RANGE and continues per its
    /// [`OffsetReset`](crate::OffsetReset).
    ///
    /// # Errors
    /// A request's own failure; per partition, its error (`OFFSET_OUT_OF_RANGE` for an offset
    /// past the high watermark, `TOPIC_AUTHORIZATION_FAILED` without Delete).
    pub async fn delete_records(
        &self,
        before: &BTreeMap<TopicPartition, i64>,
    ) -> Result<ItemResults<TopicPartition, i64>> {
        let (by_leader, missing) = self.leaders_of(before.keys().cloned()).await?;
        let mut out: ItemResults<TopicPartition, i64> = missing.into_iter().map(|(tp, e)| (tp, Err(e))).collect();
        for (leader, parts) in by_leader {
            let resp = self
                .cluster
                .retry(|| async {
                    let conn = self.cluster.broker(leader, Workload::Admin).await?;
                    let topics = group_by(parts.iter().map(|tp| {
                        (
                            tp.topic.clone(),
                            delete_records_request::DeleteRecordsPartition::default()
                                .with_partition_index(tp.partition)
                                .with_offset(before[tp]),
                        )
                    }));
                    let req = DeleteRecordsRequest::default().with_timeout_ms(conn.timeout_ms()).with_topics(
                        topics
                            .into_iter()
                            .map(|(t, ps)| {
                                delete_records_request::DeleteRecordsTopic::default().with_name(t).with_partitions(ps)
                            })
                            .collect(),
                    );
                    conn.request(&req).await
                })
                .await?;
            for t in resp.topics {
                for p in t.partitions {
                    let tp = TopicPartition::new(t.name.clone(), p.partition_index);
                    let r = check(p.error_code, None, || format!("deleting records of {tp}")).map(|()| p.low_watermark);
                    out.insert(tp, r);
                }
            }
        }
        Ok(out)
    }

    // ----- cluster -----

    /// The cluster id, controller and brokers: DescribeCluster v0-2 (KIP-700) to any
    /// broker, asking for brokers (not controllers). On a KRaft cluster the controller id is
    /// a live broker's, as in Metadata. Every principal may ask.
    ///
    /// # Errors
    /// The request's failure or error code.
    pub async fn describe_cluster(&self) -> Result<ClusterDescription> {
        self.on_any(|conn| async move {
            let resp = conn.request(&DescribeClusterRequest::default()).await?;
            check(resp.error_code, resp.error_message.as_deref(), || {
                format!("describing the cluster at {}", conn.addr())
            })?;
            Ok(ClusterDescription {
                cluster_id: resp.cluster_id,
                controller_id: resp.controller_id,
                brokers: resp
                    .brokers
                    .into_iter()
                    .map(|b| Broker { id: b.broker_id, host: b.host, port: b.port, rack: b.rack })
                    .collect(),
            })
        })
        .await
    }

    /// Elects partition leaders: ElectLeaders v0-2 (KIP-460; the election type from v1) to
    /// the controller, for `parts`, or for every partition when `None` (then Kafka reports
    /// only the partitions it elected a leader for). A preferred election makes the first
    /// replica the leader when it is alive and in sync.
    ///
    /// # Errors
    /// The request's failure or error code (`CLUSTER_AUTHORIZATION_FAILED` without Alter on
    /// the cluster); per partition, its error (`ELECTION_NOT_NEEDED` when the leader already
    /// is the one asked for, `PREFERRED_LEADER_NOT_AVAILABLE` while the preferred replica is
    /// down or out of sync). [`Error::InvalidArgument`] for an unclean election below v1.
    pub async fn elect_leaders(
        &self,
        kind: ElectionType,
        parts: Option<&[TopicPartition]>,
    ) -> Result<ItemResults<TopicPartition>> {
        let resp = self
            .on_controller(|conn| async move {
                let v = conn.version_for::<ElectLeadersRequest>()?;
                let topics = parts.map(|ps| {
                    group_by(ps.iter().map(|tp| (tp.topic.clone(), tp.partition)))
                        .into_iter()
                        .map(|(t, ps)| {
                            elect_leaders_request::TopicPartitions::default().with_topic(t).with_partitions(ps)
                        })
                        .collect()
                });
                let mut req =
                    ElectLeadersRequest::default().with_timeout_ms(conn.timeout_ms()).with_topic_partitions(topics);
                if v.0 >= 1 {
                    req = req.with_election_type(match kind {
                        ElectionType::Preferred => 0,
                        ElectionType::Unclean => 1,
                    });
                } else if kind == ElectionType::Unclean {
                    return Err(Error::InvalidArgument("unclean elections need ElectLeaders v1+".into()));
                }
                let resp = conn.request_version(&req, v).await?;
                check(resp.error_code, None, || "electing leaders".into())?;
                Ok(resp)
            })
            .await?;
        Ok(resp
            .replica_election_results
            .into_iter()
            .flat_map(|t| {
                t.partition_result.into_iter().map(move |p| {
                    let tp = TopicPartition::new(t.topic.clone(), p.partition_id);
                    let r = check(p.error_code, p.error_message.as_deref(), || format!("electing the leader of {tp}"));
                    (tp, r)
                })
            })
            .collect())
    }

    // ----- ACLs -----

    /// The ACLs matching `filter`: DescribeAcls v1-3 to any broker, which answers from its
    /// authorizer. [`PatternType::Match`] finds the ACLs that apply to a name (literal,
    /// prefixed and `*`); the other fields match exactly, or anything when `None`/`Any`.
    ///
    /// # Errors
    /// The request's failure or error code (`SECURITY_DISABLED` without an authorizer,
    /// `CLUSTER_AUTHORIZATION_FAILED` without Describe on the cluster).
    pub async fn describe_acls(&self, filter: &AclFilter) -> Result<Vec<Acl>> {
        self.on_any(|conn| async move {
            let req = DescribeAclsRequest::default()
                .with_resource_type_filter(filter.resource_type.code())
                .with_resource_name_filter(filter.resource_name.clone())
                .with_pattern_type_filter(filter.pattern_type.code())
                .with_principal_filter(filter.principal.clone())
                .with_host_filter(filter.host.clone())
                .with_operation(filter.operation.code())
                .with_permission_type(filter.permission.code());
            let resp = conn.request(&req).await?;
            check(resp.error_code, resp.error_message.as_deref(), || "describing ACLs".into())?;
            Ok(resp
                .resources
                .iter()
                .flat_map(|r| {
                    r.acls.iter().map(move |a| {
                        Acl::from_codes(
                            (r.resource_type, &r.resource_name, r.pattern_type),
                            (&a.principal, &a.host),
                            (a.operation, a.permission_type),
                        )
                    })
                })
                .collect())
        })
        .await
    }

    /// Creates ACLs: CreateAcls v1-3 to any broker (which forwards to the controller); one
    /// result per ACL, in order.
    ///
    /// An ACL holding a filter's value (resource type `Any`, pattern type `Any` or `Match`,
    /// operation or permission `Any`, or an `Unknown` code) is refused here with
    /// [`Error::InvalidArgument`] and not sent: Kafka 4.4 fails the whole request for one such
    /// ACL, every creation with UNKNOWN_SERVER_ERROR and no message (the Java client refuses
    /// them as it builds the `AclBinding`).
    ///
    /// # Errors
    /// The request's failure; per ACL, its error (`INVALID_REQUEST` for a principal that is
    /// not `Type:name`, `CLUSTER_AUTHORIZATION_FAILED` without Alter on the cluster).
    pub async fn create_acls(&self, acls: &[Acl]) -> Result<Vec<Result<()>>> {
        let checked: Vec<Result<()>> = acls.iter().map(Acl::check).collect();
        let valid: Vec<&Acl> = acls.iter().zip(&checked).filter(|(_, c)| c.is_ok()).map(|(a, _)| a).collect();
        let sent = if valid.is_empty() {
            Vec::new()
        } else {
            self.on_any(|conn| {
                let valid = &valid;
                async move {
                    let req = CreateAclsRequest::default().with_creations(
                        valid
                            .iter()
                            .map(|a| {
                                create_acls_request::AclCreation::default()
                                    .with_resource_type(a.resource_type.code())
                                    .with_resource_name(a.resource_name.clone())
                                    .with_resource_pattern_type(a.pattern_type.code())
                                    .with_principal(a.principal.clone())
                                    .with_host(a.host.clone())
                                    .with_operation(a.operation.code())
                                    .with_permission_type(a.permission.code())
                            })
                            .collect(),
                    );
                    Ok(conn.request(&req).await?.results)
                }
            })
            .await?
        };
        let mut answers = sent.into_iter();
        Ok(checked
            .into_iter()
            .map(|c| {
                c?;
                let r = answers.next().ok_or_else(|| Error::Broker {
                    code: ErrorCode::UnknownServerError,
                    context: "the CreateAcls response lacks a result for an ACL".into(),
                    message: None,
                })?;
                check(r.error_code, r.error_message.as_deref(), || "creating an ACL".into())
            })
            .collect())
    }

    /// Deletes the ACLs matching each filter: DeleteAcls v1-3 to any broker; per filter, in
    /// order, the ACLs it deleted (none when it matched none).
    ///
    /// # Errors
    /// The request's failure; per filter, its error (`CLUSTER_AUTHORIZATION_FAILED` without
    /// Alter on the cluster).
    pub async fn delete_acls(&self, filters: &[AclFilter]) -> Result<Vec<Result<Vec<Acl>>>> {
        self.on_any(|conn| async move {
            let req = DeleteAclsRequest::default().with_filters(
                filters
                    .iter()
                    .map(|f| {
                        delete_acls_request::DeleteAclsFilter::default()
                            .with_resource_type_filter(f.resource_type.code())
                            .with_resource_name_filter(f.resource_name.clone())
                            .with_pattern_type_filter(f.pattern_type.code())
                            .with_principal_filter(f.principal.clone())
                            .with_host_filter(f.host.clone())
                            .with_operation(f.operation.code())
                            .with_permission_type(f.permission.code())
                    })
                    .collect(),
            );
            let resp = conn.request(&req).await?;
            Ok(resp
                .filter_results
                .iter()
                .map(|r| {
                    check(r.error_code, r.error_message.as_deref(), || "deleting ACLs".into()).map(|()| {
                        r.matching_acls
                            .iter()
                            .map(|a| {
                                Acl::from_codes(
                                    (a.resource_type, &a.resource_name, a.pattern_type),
                                    (&a.principal, &a.host),
                                    (a.operation, a.permission_type),
                                )
                            })
                            .collect()
                    })
                })
                .collect())
        })
        .await
    }

    // ----- SCRAM credentials -----

    /// The SCRAM mechanisms and iteration counts of `users`, or of every user when `None`:
    /// DescribeUserScramCredentials v0 (KIP-554) to any broker.
    ///
    /// # Errors
    /// The request's failure or error code (`CLUSTER_AUTHORIZATION_FAILED` without Describe
    /// on the cluster); per user, its error (`RESOURCE_NOT_FOUND`).
    pub async fn describe_user_scram_credentials(
        &self,
        users: Option<&[&str]>,
    ) -> Result<ItemResults<String, Vec<(ScramMechanism, i32)>>> {
        self.on_any(|conn| async move {
            // Every user is an empty list, not null (both mean "all" to Kafka, but Kafka 4.4
            // fails on a null list when it refuses the request: a NullPointerException and no
            // answer at all, the connection stuck; the Java admin client sends an empty list).
            let names = users.unwrap_or_default();
            let req = DescribeUserScramCredentialsRequest::default().with_users(Some(
                names
                    .iter()
                    .map(|u| describe_user_scram_credentials_request::UserName::default().with_name(u.to_string()))
                    .collect(),
            ));
            let resp = conn.request(&req).await?;
            check(resp.error_code, resp.error_message.as_deref(), || "describing SCRAM credentials".into())?;
            Ok(resp
                .results
                .into_iter()
                .map(|r| {
                    let res = check(r.error_code, r.error_message.as_deref(), || {
                        format!("describing the credentials of {}", r.user)
                    })
                    .map(|()| {
                        r.credential_infos
                            .iter()
                            .map(|c| (ScramMechanism::from_code(c.mechanism), c.iterations))
                            .collect()
                    });
                    (r.user, res)
                })
                .collect())
        })
        .await
    }

    /// Creates or replaces SCRAM credentials and deletes others: AlterUserScramCredentials
    /// v0 (KIP-554) to the controller. Passwords are salted (32 random bytes) and hashed
    /// with PBKDF2 here, as RFC 5802 describes; only the salted password is sent. Brokers
    /// accept the new credential a moment after the answer.
    ///
    /// # Errors
    /// The request's failure; per user, its error (`UNACCEPTABLE_CREDENTIAL` outside 4096 to
    /// 16384 iterations, `RESOURCE_NOT_FOUND` deleting a credential the user lacks,
    /// `CLUSTER_AUTHORIZATION_FAILED` without Alter on the cluster).
    pub async fn alter_user_scram_credentials(
        &self,
        upserts: &[ScramCredential],
        deletions: &[(&str, ScramMechanism)],
    ) -> Result<ItemResults<String>> {
        let mut ups = Vec::new();
        for c in upserts {
            let mut salt = [0u8; 32];
            getrandom::fill(&mut salt).map_err(|e| Error::InvalidArgument(format!("no randomness for a salt: {e}")))?;
            // Outside Kafka's range the broker refuses the credential (UNACCEPTABLE_CREDENTIAL,
            // for this user alone): no PBKDF2 run for it, which could take any time.
            let salted = if (SCRAM_MIN_ITERATIONS..=SCRAM_MAX_ITERATIONS).contains(&c.iterations) {
                let (mechanism, password, iterations) = (c.mechanism, c.password.clone(), c.iterations);
                tokio::task::spawn_blocking(move || salted_password(mechanism, password.as_bytes(), &salt, iterations))
                    .await
                    .map_err(|e| Error::InvalidArgument(format!("computing a SCRAM salted password: {e}")))??
            } else {
                vec![0; 32]
            };
            ups.push(
                alter_user_scram_credentials_request::ScramCredentialUpsertion::default()
                    .with_name(c.user.clone())
                    .with_mechanism(c.mechanism.code())
                    .with_iterations(c.iterations)
                    .with_salt(bytes::Bytes::copy_from_slice(&salt))
                    .with_salted_password(salted.into()),
            );
        }
        let req = AlterUserScramCredentialsRequest::default().with_upsertions(ups).with_deletions(
            deletions
                .iter()
                .map(|(u, m)| {
                    alter_user_scram_credentials_request::ScramCredentialDeletion::default()
                        .with_name(u.to_string())
                        .with_mechanism(m.code())
                })
                .collect(),
        );
        let resp = self
            .on_controller(|conn| {
                let req = req.clone();
                async move { conn.request(&req).await }
            })
            .await?;
        Ok(resp
            .results
            .into_iter()
            .map(|r| {
                let res = check(r.error_code, r.error_message.as_deref(), || {
                    format!("altering the credentials of {}", r.user)
                });
                (r.user, res)
            })
            .collect())
    }

    // ----- producers and transactions -----

    /// The active producers of partitions, as the leader keeps them for idempotence and
    /// transactions: DescribeProducers v0 (KIP-664), one request per partition leader. A
    /// writer without a producer id (not idempotent) leaves none.
    ///
    /// # Errors
    /// A request's own failure; per partition, its error (`UNKNOWN_TOPIC_OR_PARTITION`,
    /// `TOPIC_AUTHORIZATION_FAILED` without Read).
    pub async fn describe_producers(
        &self,
        parts: &[TopicPartition],
    ) -> Result<ItemResults<TopicPartition, Vec<ProducerState>>> {
        let (by_leader, missing) = self.leaders_of(parts.iter().cloned()).await?;
        let mut out: ItemResults<TopicPartition, Vec<ProducerState>> =
            missing.into_iter().map(|(tp, e)| (tp, Err(e))).collect();
        for (leader, parts) in by_leader {
            let resp = self
                .cluster
                .retry(|| async {
                    let conn = self.cluster.broker(leader, Workload::Admin).await?;
                    let topics = group_by(parts.iter().map(|tp| (tp.topic.clone(), tp.partition)));
                    let req = DescribeProducersRequest::default().with_topics(
                        topics
                            .into_iter()
                            .map(|(t, ps)| {
                                describe_producers_request::TopicRequest::default()
                                    .with_name(t)
                                    .with_partition_indexes(ps)
                            })
                            .collect(),
                    );
                    conn.request(&req).await
                })
                .await?;
            for t in resp.topics {
                for p in t.partitions {
                    let tp = TopicPartition::new(t.name.clone(), p.partition_index);
                    let r =
                        check(p.error_code, p.error_message.as_deref(), || format!("describing the producers of {tp}"))
                            .map(|()| {
                                p.active_producers
                                    .iter()
                                    .map(|s| ProducerState {
                                        producer_id: s.producer_id,
                                        producer_epoch: s.producer_epoch,
                                        last_sequence: s.last_sequence,
                                        last_timestamp: s.last_timestamp,
                                        current_txn_start_offset: s.current_txn_start_offset,
                                    })
                                    .collect()
                            });
                    out.insert(tp, r);
                }
            }
        }
        Ok(out)
    }

    /// Describes transactions by transactional id: DescribeTransactions v0 (KIP-664), one
    /// request per id to its transaction coordinator. An open transaction is `Ongoing` with
    /// its partitions; once committed, `CompleteCommit` (Kafka 4.4) with none.
    ///
    /// # Errors
    /// Per id, its error, finding its coordinator included (`TRANSACTIONAL_ID_NOT_FOUND`,
    /// `TRANSACTIONAL_ID_AUTHORIZATION_FAILED` without Describe on it).
    pub async fn describe_transactions(&self, ids: &[&str]) -> Result<ItemResults<String, TransactionDescription>> {
        let mut out = BTreeMap::new();
        for id in ids {
            let resp = self
                .on_coordinator(id, CoordinatorType::Transaction, |conn| async move {
                    let resp = conn
                        .request(&DescribeTransactionsRequest::default().with_transactional_ids(vec![id.to_string()]))
                        .await?;
                    if let Some(s) = resp.transaction_states.first() {
                        coordinator_moved(s.error_code, || format!("describing transaction {id}"))?;
                    }
                    Ok(resp)
                })
                .await;
            let Some(resp) = per_item(&mut out, id, resp) else { continue };
            for s in resp.transaction_states {
                let r =
                    check(s.error_code, None, || format!("describing transaction {}", s.transactional_id)).map(|()| {
                        TransactionDescription {
                            state: s.transaction_state.clone(),
                            producer_id: s.producer_id,
                            producer_epoch: s.producer_epoch,
                            timeout_ms: s.transaction_timeout_ms,
                            start_time_ms: s.transaction_start_time_ms,
                            partitions: s
                                .topics
                                .iter()
                                .flat_map(|t| t.partitions.iter().map(|p| TopicPartition::new(t.topic.clone(), *p)))
                                .collect(),
                        }
                    });
                out.insert(s.transactional_id, r);
            }
        }
        Ok(out)
    }
}

/// A coordinator error inside an item (NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS,
/// COORDINATOR_NOT_AVAILABLE: the coordinator moved or is still loading its partition, as on a
/// cluster whose `__transaction_state` was just created) as an error, so that the lookup is
/// retried (the Java admin client does so per key); any other code is left to the item.
fn coordinator_moved(code: i16, context: impl FnOnce() -> String) -> Result<()> {
    match ErrorCode::from_code(code) {
        ErrorCode::NotCoordinator | ErrorCode::CoordinatorLoadInProgress | ErrorCode::CoordinatorNotAvailable => {
            check(code, None, context)
        }
        _ => Ok(()),
    }
}

/// The response for `key`, or `None` after recording its failure (finding its coordinator
/// included, such as GROUP_AUTHORIZATION_FAILED) as that key's result: one key's failure
/// does not fail the others (as the Java admin client's per-key futures).
fn per_item<T, R>(out: &mut ItemResults<String, T>, key: &str, resp: Result<R>) -> Option<R> {
    match resp {
        Ok(r) => Some(r),
        Err(e) => {
            out.insert(key.to_string(), Err(e));
            None
        }
    }
}

/// The partitions of a consumer-protocol assignment (empty when it does not decode).
pub(crate) fn decode_assignment(data: &bytes::Bytes) -> Vec<TopicPartition> {
    assigned_partitions(data, "a member's assignment").unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafkit_protocol::Message as _;

    #[test]
    fn scram_credentials_never_show_their_password() {
        let c = ScramCredential {
            user: "alice".into(),
            mechanism: ScramMechanism::Sha512,
            iterations: 8192,
            password: "hunter2-secret".into(),
        };
        let shown = format!("{c:?}");
        assert!(shown.contains("alice") && !shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn assignments_decode_from_the_consumer_protocol() {
        use bytes::BufMut;
        let a = ConsumerProtocolAssignment::default().with_assigned_partitions(vec![
            consumer_protocol_assignment::TopicPartition::default().with_topic("t".into()).with_partitions(vec![0, 2]),
        ]);
        for v in [0i16, 3] {
            let mut buf = bytes::BytesMut::new();
            buf.put_i16(v);
            a.encode(&mut buf, kafkit_protocol::ApiVersion(v)).unwrap();
            let got = decode_assignment(&buf.freeze());
            assert_eq!(got, [TopicPartition::new("t", 0), TopicPartition::new("t", 2)]);
        }
        assert!(decode_assignment(&bytes::Bytes::from_static(b"\x00")).is_empty());
        assert!(decode_assignment(&bytes::Bytes::from_static(b"\x00\x00\xff\xff\xff")).is_empty());
    }

    #[test]
    fn acl_codes_round_trip() {
        for c in 0..20 {
            assert_eq!(AclOperation::from_code(c).code(), c);
            assert_eq!(ResourceType::from_code(c).code(), c);
        }
        assert_eq!(AclOperation::Read.code(), 3);
        assert_eq!(PatternType::Prefixed.code(), 4);
    }
}
