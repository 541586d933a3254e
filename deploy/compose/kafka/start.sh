#!/bin/sh
# One node of the compose site's Kafka cluster (broker and controller, KRaft): writes its configuration
# from the environment and the mounted secrets, formats its storage once with the broker's and the
# administrator's SCRAM credentials (the other principals are created by the kafka-setup job over the
# admin API), then runs Kafka. Mirrors deploy/local/kafka.py: SASL/SCRAM-SHA-512 for clients and between
# brokers, SASL/PLAIN on the controller listener, the StandardAuthorizer, nothing allowed without a grant.
set -eu
: "${KAFKA_NODE_ID:?}" "${KAFKA_VOTERS:?}"
# Where the image and the site put things (a test runs this script against Kafka's jars elsewhere).
kafka_home="${STOPLINE_KAFKA_DIST:-/opt/kafka}"
secrets="${STOPLINE_SECRETS_DIR:-/run/secrets}"
data="${STOPLINE_KAFKA_DATA:-/var/lib/kafka/data}"
work="${STOPLINE_KAFKA_WORK:-/tmp}"
broker_password="$(cat "$secrets/kafka/stopline-broker")"
admin_password="$(cat "$secrets/kafka/stopline-admin")"
cluster_id="$(cat "$secrets/kafka-cluster-id")"
conf="$work/server.properties"
umask 077
cat > "$conf" <<PROPERTIES
process.roles=broker,controller
node.id=${KAFKA_NODE_ID}
controller.quorum.voters=${KAFKA_VOTERS}
listeners=CLIENT://:9092,CONTROLLER://:9093
advertised.listeners=CLIENT://${HOSTNAME_ADVERTISED:-kafka-${KAFKA_NODE_ID}}:9092,CONTROLLER://${HOSTNAME_ADVERTISED:-kafka-${KAFKA_NODE_ID}}:9093
listener.security.protocol.map=CLIENT:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=CLIENT
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.client.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="stopline-broker" password="${broker_password}";
listener.name.controller.sasl.enabled.mechanisms=PLAIN
sasl.mechanism.controller.protocol=PLAIN
listener.name.controller.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="stopline-broker" password="${broker_password}" user_stopline-broker="${broker_password}";
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:stopline-broker;User:stopline-admin
allow.everyone.if.no.acl.found=false
# A connection must log in again 5 minutes after it did (KIP-368), else the broker closes it at its next
# request: a revoked or replaced SCRAM password then stops the connections already open with it within 5
# minutes, not never (Kafka's default, 0). The cost is one reconnection and one retried request per
# connection every 5 minutes (the Python clients do not log in again in place).
connections.max.reauth.ms=300000
log.dirs=${data}
num.partitions=3
default.replication.factor=3
min.insync.replicas=2
offsets.topic.replication.factor=3
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
share.coordinator.state.topic.replication.factor=3
share.coordinator.state.topic.min.isr=2
group.initial.rebalance.delay.ms=0
broker.session.timeout.ms=4000
broker.heartbeat.interval.ms=1000
auto.create.topics.enable=false
log.retention.hours=168
PROPERTIES
# The healthcheck's client: the broker's own principal.
cat > "$work/client.properties" <<PROPERTIES
security.protocol=SASL_PLAINTEXT
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="stopline-broker" password="${broker_password}";
PROPERTIES
"$kafka_home/bin/kafka-storage.sh" format --ignore-formatted -t "$cluster_id" -c "$conf" \
  --add-scram "SCRAM-SHA-512=[name=stopline-broker,password=${broker_password}]" \
  --add-scram "SCRAM-SHA-512=[name=stopline-admin,password=${admin_password}]"
exec "$kafka_home/bin/kafka-server-start.sh" "$conf"
