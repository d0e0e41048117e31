#!/usr/bin/env bash
# Apache Kafka for kafkit's tests: installs the pinned broker from Maven Central and starts and
# stops KRaft clusters of combined broker+controller nodes on loopback (docs/TEST-BROKERS.md).
#
#   scripts/kafka.sh install [VERSION]     # libs into $KAFKIT_CACHE/kafka-VERSION/libs when missing
#   scripts/kafka.sh libs [VERSION]        # prints that directory (installs first)
#   scripts/kafka.sh start DIR [OPTIONS]   # a new cluster in DIR (wiped); prints DIR/cluster.env
#       --nodes N          1 (default) or 3: replication factor min(N,3), min.insync.replicas 2 at 3
#       --version V        4.4.0 (default) or 3.9.2
#       --set KEY=VALUE    a broker setting (repeatable), e.g. --set producer.id.expiration.ms=5000
#       --proxied          every node gets a PROXIED listener (PLAINTEXT) advertising a port of its
#                          own for a proxy the test starts: NODEi_PROXIED (where the broker listens)
#                          and NODEi_PROXIED_ADVERTISED (where the proxy must listen)
#       --owner PID        stop the cluster when process PID exits (tests pass their own pid)
#       --jmx              every node serves JMX (no authentication, loopback) at NODEi_JMX, for
#                          `java scripts/kafka/Requests.java NODEi_JMX` (request counts per API)
#   scripts/kafka.sh stop DIR [KILL]       # stops every node (SIGTERM: controlled shutdown; KILL: at
#                                          # once), then removes DIR
#   scripts/kafka.sh start-node DIR I      # (re)starts node I (1-based) on its config and data
#   scripts/kafka.sh stop-node DIR I [SIG] # TERM (default; waits for the exit), KILL, STOP or CONT
#   scripts/kafka.sh shared [VERSION]      # the run's shared single node ($KAFKIT_CACHE/run/shared-V),
#                                          # started when not running; prints its cluster.env
#   scripts/kafka.sh stop-shared [VERSION]
#
# Listeners of every node (all on 127.0.0.1; cluster.env names each one's bootstrap list):
#   PLAINTEXT       no authentication (principal ANONYMOUS, a super user); inter-broker
#   SASL_PLAINTEXT  PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER (unsecured JWTs)
#   SSL             TLS, server certificate only
#   MTLS            TLS, a client certificate required (principal CN=kafkit-client, a super user)
#   SASL_SSL        the SASL mechanisms over TLS
#   REAUTH          as SASL_PLAINTEXT with connections.max.reauth.ms=3000 (KIP-368)
#   CONTROLLER      the KRaft quorum (not for clients)
# Users: admin/admin-secret and alice/alice-secret (super users), bob/bob-secret (no rights but
# what ACLs grant: the StandardAuthorizer decides for every principal that is not a super user).
# PLAIN knows all three; SCRAM-SHA-256 and SCRAM-SHA-512 credentials are made at format time.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${KAFKIT_CACHE:-$HOME/.cache/kafkit}
DEFAULT_VERSION=4.4.0

need_java() {
  local sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  if ! command -v java >/dev/null 2>&1 || ! command -v javac >/dev/null 2>&1; then
    echo "kafka.sh: installing Debian's openjdk-17-jdk-headless" >&2
    $sudo apt-get install -y -qq openjdk-17-jdk-headless >/dev/null 2>&1 \
      || { $sudo apt-get update -qq >/dev/null && $sudo apt-get install -y -qq openjdk-17-jdk-headless >/dev/null; }
  fi
  if ! command -v mvn >/dev/null 2>&1; then
    echo "kafka.sh: installing Debian's maven" >&2
    $sudo apt-get install -y -qq maven >/dev/null 2>&1 \
      || { $sudo apt-get update -qq >/dev/null && $sudo apt-get install -y -qq maven >/dev/null; }
  fi
}

libs_dir() { echo "$CACHE/kafka-$1/libs"; }

# Checks the jars SHA256SUMS names for this version.
verify() {
  local libs=$1 v=$2 line sum jar n=0
  while read -r sum jar; do
    case "$jar" in *-"$v".jar) ;; *) continue ;; esac
    n=$((n + 1))
    if ! echo "$sum  $libs/$jar" | sha256sum -c --status 2>/dev/null; then
      echo "kafka.sh: $jar: missing or its sha256 differs from scripts/kafka/SHA256SUMS" >&2
      return 1
    fi
  done <"$HERE/kafka/SHA256SUMS"
  [ "$n" -gt 0 ] || { echo "kafka.sh: no checksums for Kafka $v in scripts/kafka/SHA256SUMS" >&2; return 1; }
}

install() {
  local v=${1:-$DEFAULT_VERSION} libs
  libs=$(libs_dir "$v")
  if [ -f "$libs/.complete" ] && verify "$libs" "$v"; then return 0; fi
  need_java
  echo "kafka.sh: fetching Apache Kafka $v from Maven Central into $libs" >&2
  rm -rf "$libs.part"
  mvn -q -B -f "$HERE/kafka/pom.xml" -Dkafka.version="$v" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$libs.part" >&2
  verify "$libs.part" "$v"
  rm -rf "$libs" && mv "$libs.part" "$libs" && touch "$libs/.complete"
}

free_ports() {
  python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

# A CA, the brokers' certificate (localhost and 127.0.0.1), a client certificate, and another
# CA with a client certificate of its own (one the brokers refuse). EC P-256 keys, PKCS#8 PEM.
make_certs() {
  local d=$1
  mkdir -p "$d"
  (
    cd "$d"
    key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
    ca() { key "$1.key"; openssl req -x509 -new -key "$1.key" -out "$1.pem" -days 7 -subj "/CN=$2" 2>/dev/null; }
    leaf() { # name CN ca ext
      key "$1.key"
      openssl req -new -key "$1.key" -out "$1.csr" -subj "/CN=$2" 2>/dev/null
      openssl x509 -req -in "$1.csr" -CA "$3.pem" -CAkey "$3.key" -CAcreateserial -out "$1.pem" -days 7 \
        -extfile <(printf '%s\n' "$4") 2>/dev/null
      rm -f "$1.csr"
    }
    ca ca "kafkit test CA"
    ca other-ca "some other CA"
    leaf server localhost ca "subjectAltName=DNS:localhost,IP:127.0.0.1"
    leaf client kafkit-client ca "extendedKeyUsage=clientAuth"
    leaf stranger kafkit-stranger other-ca "extendedKeyUsage=clientAuth"
    cat server.key server.pem >server-keystore.pem
  )
}

jaas_lines() { # listener name, lower case
  local l=$1
  echo "listener.name.$l.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_admin=\"admin-secret\" user_alice=\"alice-secret\" user_bob=\"bob-secret\";"
  echo "listener.name.$l.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;"
  echo "listener.name.$l.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;"
  echo "listener.name.$l.oauthbearer.sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub=\"admin\";"
}

start_cluster() {
  local dir=$1; shift
  local nodes=1 v=$DEFAULT_VERSION owner="" proxied=0 jmx=0 sets=()
  while [ $# -gt 0 ]; do
    case "$1" in
      --nodes) nodes=$2; shift 2 ;;
      --version) v=$2; shift 2 ;;
      --set) sets+=("$2"); shift 2 ;;
      --proxied) proxied=1; shift ;;
      --jmx) jmx=1; shift ;;
      --owner) owner=$2; shift 2 ;;
      *) echo "kafka.sh start: unknown option $1" >&2; exit 2 ;;
    esac
  done
  case "$nodes" in 1 | 3) ;; *) echo "kafka.sh start: --nodes is 1 or 3" >&2; exit 2 ;; esac
  install "$v"
  local libs; libs=$(libs_dir "$v")
  # A cluster already in DIR goes first: its nodes must not outlive their directory.
  [ -f "$dir/cluster.env" ] && stop_cluster "$dir" KILL
  rm -rf "$dir" && mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  make_certs "$dir/tls"
  local per=7; [ "$proxied" = 1 ] && per=9
  [ "$jmx" = 1 ] && per=$((per + 1))
  local ports; read -r -a ports <<<"$(free_ports $((nodes * per)))"
  local rf=$((nodes < 3 ? nodes : 3)) isr=$((nodes < 3 ? 1 : 2)) voters="" i
  for i in $(seq 1 "$nodes"); do
    voters+="${voters:+,}$i@127.0.0.1:${ports[$(((i - 1) * per + 1))]}"
  done
  local env="$dir/cluster.env" b_plain="" b_sasl="" b_ssl="" b_mtls="" b_sasl_ssl="" b_reauth=""
  {
    echo "KAFKA_VERSION=$v"
    echo "NODES=$nodes"
    echo "TLS_DIR=$dir/tls"
  } >"$env"
  local cluster_id; cluster_id=$(java -cp "$libs/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)
  for i in $(seq 1 "$nodes"); do
    local o=$(((i - 1) * per)) nd="$dir/node$i"
    local p=${ports[$o]} c=${ports[$((o + 1))]} s=${ports[$((o + 2))]} t=${ports[$((o + 3))]}
    local m=${ports[$((o + 4))]} x=${ports[$((o + 5))]} r=${ports[$((o + 6))]}
    mkdir -p "$nd"
    local listeners="PLAINTEXT://127.0.0.1:$p,CONTROLLER://127.0.0.1:$c,SASL_PLAINTEXT://127.0.0.1:$s,SSL://127.0.0.1:$t,MTLS://127.0.0.1:$m,SASL_SSL://127.0.0.1:$x,REAUTH://127.0.0.1:$r"
    local advertised="PLAINTEXT://127.0.0.1:$p,SASL_PLAINTEXT://127.0.0.1:$s,SSL://127.0.0.1:$t,MTLS://127.0.0.1:$m,SASL_SSL://127.0.0.1:$x,REAUTH://127.0.0.1:$r"
    local protocols="PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,SSL:SSL,MTLS:SSL,SASL_SSL:SASL_SSL,REAUTH:SASL_PLAINTEXT"
    if [ "$proxied" = 1 ]; then
      local q=${ports[$((o + 7))]} qa=${ports[$((o + 8))]}
      listeners+=",PROXIED://127.0.0.1:$q"
      advertised+=",PROXIED://127.0.0.1:$qa"
      protocols+=",PROXIED:PLAINTEXT"
      echo "NODE${i}_PROXIED=127.0.0.1:$q" >>"$env"
      echo "NODE${i}_PROXIED_ADVERTISED=127.0.0.1:$qa" >>"$env"
    fi
    local jmx_flags=""
    if [ "$jmx" = 1 ]; then
      local j=${ports[$((o + per - 1))]}
      jmx_flags="-Dcom.sun.management.jmxremote.port=$j -Dcom.sun.management.jmxremote.rmi.port=$j"
      jmx_flags+=" -Dcom.sun.management.jmxremote.host=127.0.0.1 -Djava.rmi.server.hostname=127.0.0.1"
      jmx_flags+=" -Dcom.sun.management.jmxremote.authenticate=false -Dcom.sun.management.jmxremote.ssl=false"
      echo "NODE${i}_JMX=127.0.0.1:$j" >>"$env"
    fi
    {
      echo "# kafkit test cluster node $i of $nodes (Kafka $v), written by scripts/kafka.sh"
      echo "process.roles=broker,controller"
      echo "node.id=$i"
      echo "controller.quorum.voters=$voters"
      echo "listeners=$listeners"
      echo "advertised.listeners=$advertised"
      echo "listener.security.protocol.map=$protocols"
      echo "controller.listener.names=CONTROLLER"
      echo "inter.broker.listener.name=PLAINTEXT"
      echo "log.dirs=$nd/data"
      echo "default.replication.factor=$rf"
      echo "min.insync.replicas=$isr"
      echo "offsets.topic.replication.factor=$rf"
      echo "offsets.topic.num.partitions=10"
      echo "transaction.state.log.replication.factor=$rf"
      echo "transaction.state.log.min.isr=$isr"
      echo "transaction.state.log.num.partitions=10"
      echo "share.coordinator.state.topic.replication.factor=$rf"
      echo "share.coordinator.state.topic.min.isr=$isr"
      echo "group.initial.rebalance.delay.ms=0"
      # Tests write fixed timestamps from 2023 (to compare records byte for byte), older than
      # the default 7-day retention: the retention check (every 5 minutes) would delete a
      # topic's whole log between a test's write and its read.
      echo "log.retention.ms=-1"
      # Tests use session timeouts from 1 s (the default minimum is 6 s).
      echo "group.min.session.timeout.ms=1000"
      echo "sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER"
      jaas_lines sasl_plaintext
      jaas_lines sasl_ssl
      jaas_lines reauth
      echo "listener.name.reauth.connections.max.reauth.ms=3000"
      echo "ssl.keystore.type=PEM"
      echo "ssl.keystore.location=$dir/tls/server-keystore.pem"
      echo "ssl.truststore.type=PEM"
      echo "ssl.truststore.location=$dir/tls/ca.pem"
      echo "listener.name.mtls.ssl.client.auth=required"
      echo "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer"
      echo "super.users=User:ANONYMOUS;User:admin;User:alice;User:CN=kafkit-client"
      for kv in ${sets[@]+"${sets[@]}"}; do echo "$kv"; done
    } >"$nd/server.properties"
    local scram=()
    local u
    for u in admin alice bob; do
      scram+=(--add-scram "SCRAM-SHA-256=[name=$u,password=$u-secret]" --add-scram "SCRAM-SHA-512=[name=$u,password=$u-secret]")
    done
    if ! java -cp "$libs/*" kafka.tools.StorageTool format -t "$cluster_id" -c "$nd/server.properties" \
      "${scram[@]}" >"$nd/format.log" 2>&1; then
      cat "$nd/format.log" >&2; echo "kafka.sh: formatting node $i failed" >&2; exit 1
    fi
    {
      echo "NODE${i}_DIR=$nd"
      echo "NODE${i}_PLAINTEXT=127.0.0.1:$p"
      echo "NODE${i}_CONTROLLER=127.0.0.1:$c"
    } >>"$env"
    b_plain+="${b_plain:+,}127.0.0.1:$p"; b_sasl+="${b_sasl:+,}127.0.0.1:$s"; b_ssl+="${b_ssl:+,}127.0.0.1:$t"
    b_mtls+="${b_mtls:+,}127.0.0.1:$m"; b_sasl_ssl+="${b_sasl_ssl:+,}127.0.0.1:$x"; b_reauth+="${b_reauth:+,}127.0.0.1:$r"
    # The command that (re)starts this node.
    cat >"$nd/run.sh" <<EOF
#!/usr/bin/env bash
cd "$nd"
exec java ${KAFKA_HEAP_OPTS:--Xms256m -Xmx768m} -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \\
  -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true $jmx_flags \\
  -Dlog4j2.configurationFile="$HERE/kafka/log4j2.properties" -Dkafka.logs.dir="$nd" \\
  -cp "$libs/*" kafka.Kafka "$nd/server.properties"
EOF
    chmod +x "$nd/run.sh"
  done
  {
    echo "BOOTSTRAP_PLAINTEXT=$b_plain"
    echo "BOOTSTRAP_SASL_PLAINTEXT=$b_sasl"
    echo "BOOTSTRAP_SSL=$b_ssl"
    echo "BOOTSTRAP_MTLS=$b_mtls"
    echo "BOOTSTRAP_SASL_SSL=$b_sasl_ssl"
    echo "BOOTSTRAP_REAUTH=$b_reauth"
  } >>"$env"
  for i in $(seq 1 "$nodes"); do launch "$dir" "$i"; done
  for i in $(seq 1 "$nodes"); do await_started "$dir" "$i"; done
  if [ -n "$owner" ]; then
    # A watchdog: the cluster goes when its owner does, however the owner ends.
    nohup setsid bash -c "while kill -0 $owner 2>/dev/null && [ -d '$dir' ]; do sleep 1; done; '$0' stop '$dir'" \
      >/dev/null 2>&1 </dev/null 9>&- &
  fi
  echo "$env"
}

launch() {
  local dir=$1 i=$2 nd="$1/node$2"
  rm -f "$nd/server.log"
  # (fd 9 is the shared cluster's lock: the node must not hold it)
  setsid "$nd/run.sh" >"$nd/stdout.log" 2>&1 </dev/null 9>&- &
  echo $! >"$nd/pid"
}

await_started() {
  local nd="$1/node$2" pid deadline=$((SECONDS + 90))
  pid=$(cat "$nd/pid")
  until grep -q "Kafka Server started" "$nd/server.log" 2>/dev/null; do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 30 "$nd/server.log" "$nd/stdout.log" >&2 2>/dev/null || true
      echo "kafka.sh: node $2 exited while starting (logs in $nd)" >&2; exit 1
    fi
    if [ $SECONDS -ge $deadline ]; then
      echo "kafka.sh: node $2 did not start within 90 s (logs in $nd)" >&2; exit 1
    fi
    sleep 0.1
  done
}

node_count() { sed -n 's/^NODES=//p' "$1/cluster.env"; }

stop_node() {
  local dir=$1 i=$2 sig=${3:-TERM} nd="$1/node$2" pid
  [ -f "$nd/pid" ] || return 0
  pid=$(cat "$nd/pid")
  kill -s "$sig" "$pid" 2>/dev/null || return 0
  case "$sig" in
    TERM | KILL)
      # A controlled shutdown of the last nodes of a quorum can wait for controllers that are
      # gone: after 60 s it is killed.
      local deadline=$((SECONDS + 60))
      while kill -0 "$pid" 2>/dev/null; do
        if [ $SECONDS -ge $deadline ]; then kill -9 "$pid" 2>/dev/null || true; fi
        sleep 0.1
      done
      rm -f "$nd/pid" ;;
  esac
}

stop_cluster() {
  local dir=$1 sig=${2:-TERM} i n
  [ -f "$dir/cluster.env" ] || { rm -rf "$dir"; return 0; }
  n=$(node_count "$dir")
  for i in $(seq 1 "$n"); do
    [ -f "$dir/node$i/pid" ] && kill -CONT "$(cat "$dir/node$i/pid")" 2>/dev/null || true
  done
  for i in $(seq 1 "$n"); do stop_node "$dir" "$i" "$sig" & done
  wait
  rm -rf "$dir"
}

running() {
  local dir=$1 i n
  [ -f "$dir/cluster.env" ] || return 1
  n=$(node_count "$dir")
  for i in $(seq 1 "$n"); do
    [ -f "$dir/node$i/pid" ] && kill -0 "$(cat "$dir/node$i/pid")" 2>/dev/null || return 1
  done
}

shared() {
  local v=${1:-$DEFAULT_VERSION} dir="$CACHE/run/shared-${1:-$DEFAULT_VERSION}"
  mkdir -p "$CACHE/run"
  exec 9>"$dir.lock"
  flock 9
  if ! running "$dir"; then
    stop_cluster "$dir" >/dev/null 2>&1 || true
    start_cluster "$dir" --version "$v" >/dev/null
  fi
  echo "$dir/cluster.env"
}

case "${1:-}" in
  install) install "${2:-}" ;;
  libs) install "${2:-}"; libs_dir "${2:-$DEFAULT_VERSION}" ;;
  start) shift; start_cluster "$@" ;;
  stop) stop_cluster "${2:?DIR}" "${3:-TERM}" ;;
  start-node) launch "${2:?DIR}" "${3:?node}"; await_started "$2" "$3" ;;
  stop-node) stop_node "${2:?DIR}" "${3:?node}" "${4:-TERM}" ;;
  shared) shared "${2:-}" ;;
  stop-shared) stop_cluster "$CACHE/run/shared-${2:-$DEFAULT_VERSION}" ;;
  *) sed -n '2,31p' "$0"; exit 2 ;;
esac
