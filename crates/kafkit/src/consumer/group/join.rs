//! One JoinGroup/SyncGroup round (the leader runs the assignor), and the consumer-protocol
//! framing of subscriptions and assignments.

use super::*;

/// What a JoinGroup/SyncGroup round needs of the member, owned so the round can run while
/// the member answers the application.
pub(super) struct JoinCtx {
    pub(super) engine: Arc<Engine>,
    pub(super) cfg: GroupSettings,
    pub(super) member_id: String,
    pub(super) generation: i32,
    pub(super) owned: BTreeSet<TopicPartition>,
    pub(super) counts_seen: Arc<Mutex<BTreeMap<String, i32>>>,
}

impl JoinCtx {
    fn subscription(&self) -> Result<Bytes> {
        let owned = group_by(self.owned.iter().map(|tp| (tp.topic.as_str(), tp.partition)));
        let mut topics = self.cfg.topics.clone();
        topics.sort();
        topics.dedup();
        let sub = ConsumerProtocolSubscription::default()
            .with_topics(topics)
            .with_owned_partitions(
                owned
                    .into_iter()
                    .map(|(t, ps)| {
                        consumer_protocol_subscription::TopicPartition::default()
                            .with_topic(t.to_string())
                            .with_partitions(ps)
                    })
                    .collect(),
            )
            .with_generation_id(self.generation);
        versioned(&sub, 2)
    }

    /// JoinGroup then SyncGroup.
    pub(super) async fn join_round(self, conn: Conn) -> Result<Round> {
        let v = conn.version_for::<JoinGroupRequest>()?;
        if self.cfg.instance_id.is_some() && v.0 < 5 {
            return Err(Error::UnsupportedByBroker {
                addr: conn.addr().to_string(),
                api: kafkit_protocol::ApiKey::JoinGroup,
                broker: "static membership needs JoinGroup v5+".into(),
            });
        }
        let protocols: Vec<join_group_request::JoinGroupRequestProtocol> = {
            let sub = self.subscription()?;
            self.cfg
                .assignors
                .iter()
                .map(|a| {
                    join_group_request::JoinGroupRequestProtocol::default()
                        .with_name(a.name().to_string())
                        .with_metadata(sub.clone())
                })
                .collect()
        };
        let mut req = JoinGroupRequest::default()
            .with_group_id(self.cfg.group_id.clone())
            .with_session_timeout_ms(millis(self.cfg.session_timeout))
            .with_member_id(self.member_id.clone())
            .with_protocol_type("consumer".into())
            .with_protocols(protocols);
        if v.0 >= 1 {
            req = req.with_rebalance_timeout_ms(millis(self.cfg.rebalance_timeout));
        }
        if v.0 >= 5 {
            req = req.with_group_instance_id(self.cfg.instance_id.clone());
        }
        let wait = self.cfg.rebalance_timeout + conn.request_timeout();
        tracing::debug!(group = %self.cfg.group_id, member = %self.member_id, version = v.0, "JoinGroup");
        let resp = conn.request_within(&req, v, wait).await?;
        tracing::debug!(group = %self.cfg.group_id, code = resp.error_code, generation = resp.generation_id, member = %resp.member_id, leader = %resp.leader, members = resp.members.len(), "JoinGroup answered");
        let context = || format!("joining group {} at {}", self.cfg.group_id, conn.addr());
        match ErrorCode::from_code(resp.error_code) {
            ErrorCode::None => {}
            ErrorCode::MemberIdRequired => return Ok(Round::Retry { member_id: Some(resp.member_id) }),
            ErrorCode::UnknownMemberId => return Ok(Round::Retry { member_id: Some(String::new()) }),
            ErrorCode::RebalanceInProgress | ErrorCode::IllegalGeneration => {
                return Ok(Round::Retry { member_id: None })
            }
            code => return Err(broker_error(code, context())),
        }
        let protocol_name = resp.protocol_name.clone().unwrap_or_default();
        let assignor =
            self.cfg.assignors.iter().find(|a| a.name() == protocol_name).cloned().ok_or_else(|| {
                Error::UnknownAssignor { group: self.cfg.group_id.clone(), name: protocol_name.clone() }
            })?;
        // The JoinGroup gave this member its id: a SyncGroup that fails (the connection, a
        // coordinator move, an answer that does not decode) must not lose it, or the next
        // JoinGroup joins as a new member and the old one lingers in the group until its
        // session times out (the Java consumer keeps the id the JoinGroup gave it).
        let member_id = resp.member_id.clone();
        match self.sync_round(&conn, resp, assignor, wait).await {
            Ok(round) => Ok(round),
            Err(error) => Ok(Round::Interrupted { member_id, error }),
        }
    }

    /// The SyncGroup after a successful JoinGroup (the leader runs the assignor first).
    async fn sync_round(
        &self,
        conn: &Conn,
        resp: kafkit_protocol::messages::JoinGroupResponse,
        assignor: Arc<dyn Assignor>,
        wait: Duration,
    ) -> Result<Round> {
        let leader = resp.leader == resp.member_id;
        let assignments = if leader { self.assign(&resp, assignor.as_ref()).await? } else { Vec::new() };
        let sv = conn.version_for::<SyncGroupRequest>()?;
        let mut sync = SyncGroupRequest::default()
            .with_group_id(self.cfg.group_id.clone())
            .with_generation_id(resp.generation_id)
            .with_member_id(resp.member_id.clone())
            .with_assignments(assignments);
        if sv.0 >= 3 {
            sync = sync.with_group_instance_id(self.cfg.instance_id.clone());
        }
        if sv.0 >= 5 {
            sync =
                sync.with_protocol_type(Some("consumer".into())).with_protocol_name(Some(assignor.name().to_string()));
        }
        let sresp = conn.request_within(&sync, sv, wait).await?;
        tracing::debug!(group = %self.cfg.group_id, code = sresp.error_code, bytes = sresp.assignment.len(), "SyncGroup answered");
        match ErrorCode::from_code(sresp.error_code) {
            ErrorCode::None => {}
            ErrorCode::UnknownMemberId => return Ok(Round::Retry { member_id: Some(String::new()) }),
            ErrorCode::RebalanceInProgress | ErrorCode::IllegalGeneration => {
                return Ok(Round::Retry { member_id: Some(resp.member_id) })
            }
            code => return Err(broker_error(code, format!("syncing group {} at {}", self.cfg.group_id, conn.addr()))),
        }
        let assignment = if sresp.assignment.is_empty() {
            BTreeSet::new()
        } else {
            assigned_partitions(&sresp.assignment, conn.addr())?.into_iter().collect()
        };
        Ok(Round::Assigned {
            generation: resp.generation_id,
            member_id: resp.member_id,
            leader,
            protocol: assignor.protocol(),
            assignment,
        })
    }

    /// The leader's part: decode the members' subscriptions, read the topics' partition
    /// counts, run the assignor.
    async fn assign(
        &self,
        resp: &kafkit_protocol::messages::JoinGroupResponse,
        assignor: &dyn Assignor,
    ) -> Result<Vec<sync_group_request::SyncGroupRequestAssignment>> {
        let mut members = Vec::new();
        for m in &resp.members {
            let from = format!("the subscription of member {} of group {}", m.member_id, self.cfg.group_id);
            let sub: ConsumerProtocolSubscription = unversioned(&m.metadata, &from)?;
            members.push(GroupMember {
                id: m.member_id.clone(),
                instance_id: m.group_instance_id.clone(),
                topics: sub.topics.clone(),
                owned: sub
                    .owned_partitions
                    .iter()
                    .flat_map(|t| t.partitions.iter().map(|p| TopicPartition::new(t.topic.clone(), *p)))
                    .collect(),
                generation: sub.generation_id,
            });
        }
        let counts =
            partition_counts(&self.engine.cluster, members.iter().flat_map(|m| m.topics.iter().cloned()).collect())
                .await?;
        let plan = assignor.assign(&members, &counts);
        let mut out = Vec::new();
        for m in &members {
            let mine = plan.get(&m.id).cloned().unwrap_or_default();
            let by_topic = group_by(mine.into_iter().map(|tp| (tp.topic, tp.partition)));
            let a = ConsumerProtocolAssignment::default().with_assigned_partitions(
                by_topic
                    .into_iter()
                    .map(|(t, ps)| {
                        consumer_protocol_assignment::TopicPartition::default().with_topic(t).with_partitions(ps)
                    })
                    .collect(),
            );
            out.push(
                sync_group_request::SyncGroupRequestAssignment::default()
                    .with_member_id(m.id.clone())
                    .with_assignment(versioned(&a, 0)?),
            );
        }
        *self.counts_seen.lock().unwrap_or_else(|e| e.into_inner()) = counts;
        Ok(out)
    }
}

/// Partition counts of `topics` from fresh metadata (topics that do not exist are left out).
///
/// # Errors
/// `TOPIC_AUTHORIZATION_FAILED` when the principal may not describe one of them: Kafka
/// answers so for a topic without Describe, and leaving it out would give the group an
/// assignment without it and a reader that waits forever (the Java consumer throws
/// `TopicAuthorizationException` from `poll` instead).
pub(super) async fn partition_counts(
    cluster: &crate::Cluster,
    mut topics: Vec<String>,
) -> Result<BTreeMap<String, i32>> {
    topics.sort();
    topics.dedup();
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    let meta = cluster.refresh_metadata(Some(&names)).await?;
    let denied: Vec<&str> = names
        .iter()
        .copied()
        .filter(|t| meta.topics.get(*t).and_then(|m| m.error) == Some(ErrorCode::TopicAuthorizationFailed))
        .collect();
    if !denied.is_empty() {
        return Err(broker_error(
            ErrorCode::TopicAuthorizationFailed,
            format!("metadata for the subscribed topics {}", denied.join(", ")),
        ));
    }
    Ok(topics
        .iter()
        .filter_map(|t| {
            meta.topics.get(t).filter(|m| m.error.is_none()).map(|m| (t.clone(), m.partitions.len() as i32))
        })
        .collect())
}

pub(super) enum Round {
    Assigned {
        generation: i32,
        member_id: String,
        leader: bool,
        protocol: RebalanceProtocol,
        assignment: BTreeSet<TopicPartition>,
    },
    Retry {
        member_id: Option<String>,
    },
    /// The JoinGroup succeeded and what followed failed: keep the member id, then handle
    /// the error.
    Interrupted {
        member_id: String,
        error: Error,
    },
}

pub(super) fn millis(d: Duration) -> i32 {
    d.as_millis().min(i32::MAX as u128) as i32
}

/// A consumer-protocol struct with its version in front (how JoinGroup metadata and
/// SyncGroup assignments are framed).
pub(super) fn versioned<M: kafkit_protocol::Message>(m: &M, version: i16) -> Result<Bytes> {
    let mut buf = BytesMut::new();
    buf.put_i16(version);
    m.encode(&mut buf, ApiVersion(version))
        .map_err(|source| Error::Encode { addr: "consumer protocol".into(), source })?;
    Ok(buf.freeze())
}

/// Reads a versioned consumer-protocol struct; versions newer than kafkit knows are read as
/// the newest it knows (fields are only ever appended).
fn unversioned<M: kafkit_protocol::Message>(data: &Bytes, from: &str) -> Result<M> {
    let mut buf = data.clone();
    if buf.remaining() < 2 {
        return Err(Error::Malformed {
            broker: from.to_string(),
            what: format!("consumer protocol data of {} bytes, too short for its version", buf.len()),
        });
    }
    let v = buf.get_i16().clamp(M::VERSIONS.min, M::VERSIONS.max);
    M::decode(&mut buf, ApiVersion(v)).map_err(|source| Error::Decode { addr: from.to_string(), source })
}

/// The partitions of a versioned `ConsumerProtocolAssignment` (a SyncGroup answer, or a
/// member's assignment in DescribeGroups).
pub(crate) fn assigned_partitions(data: &Bytes, from: &str) -> Result<Vec<TopicPartition>> {
    let a: ConsumerProtocolAssignment = unversioned(data, from)?;
    Ok(a.assigned_partitions
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| TopicPartition::new(t.topic.clone(), *p)))
        .collect())
}
