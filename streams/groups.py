"""The consumer groups' names, each prefixed by the deployment's topic prefix. The services join them,
and the tools that look at them from outside (the fault suite, the live check) name them from here, so a
renamed group cannot leave a tool watching one nobody joins."""

SCORER_EVENTS = "scorer-events"  # stage one: each person's events, and the alerts it reads back
SCORER_ACCOUNTS = "scorer-accounts"  # stage two: money movements, keyed by account
INGEST_INTAKE = "ingest-intake"  # the events institutions produce straight to Kafka
COORDINATION_ALERTS = "coordination-alerts"
COORDINATION_RESPONSES = "coordination-responses"  # the institutions' answers
NOTIFIER_ALERTS = "notifier-alerts"
