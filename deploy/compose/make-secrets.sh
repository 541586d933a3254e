#!/bin/sh
# Creates the compose site's secrets under ./secrets (one file each; the directory is yours only), unless
# they exist: the PostgreSQL password and the services' database URL, a SCRAM password per Kafka principal,
# the Kafka cluster id, and the services' keys. What comes from elsewhere (the token issuer's public key,
# the OIDC client secret, the SMS and push gateways' secrets) is written as a placeholder to replace.
set -eu
cd "$(dirname "$0")"
mkdir -p secrets/kafka
# Compose (without Swarm) bind-mounts a secret's file with its owner and mode on this host: the services
# run as uid 10001 and Kafka as its image's user, so each file must be readable by them (0644); the
# directories (0700) keep everyone else on this host out.
chmod 700 secrets secrets/kafka
umask 022
random_hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }
random_b64() { head -c "$1" /dev/urandom | base64 | tr -d '\n'; }
put() {  # file value: written only if missing, so a re-run keeps what a running site uses
  if [ ! -s "secrets/$1" ]; then printf '%s' "$2" > "secrets/$1"; fi
}
put postgres-password "$(random_hex 24)"
put database-url "postgresql+asyncpg://stopline:$(cat secrets/postgres-password)@postgres:5432/stopline"
for principal in stopline-broker stopline-admin stopline-ingest stopline-scorer stopline-coordination \
  stopline-notifier stopline-blocklist; do
  put "kafka/$principal" "$(random_hex 24)"
done
# Kafka's cluster id: 16 random bytes, url-safe base64 without padding (what kafka-storage random-uuid makes).
put kafka-cluster-id "$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n' | sed 's/^-/A/')"
put pseudonym-key "$(random_b64 32)"
put notifier-payload-key "$(random_b64 32)"
put secrets-key "$(random_b64 32)"
put console-session-key "$(random_b64 32)"
put notifier-sms-secret "REPLACE: the secret shared with the SMS gateway"
put notifier-push-secret "REPLACE: the secret shared with the app-push provider"
put console-oidc-client-secret "REPLACE: the console's client secret at the OIDC provider"
put jwt-public-key "REPLACE: the PEM public key of the officers' token issuer"
echo "secrets in $(pwd)/secrets; replace the REPLACE placeholders:"
grep -l '^REPLACE' secrets/* 2>/dev/null || true
