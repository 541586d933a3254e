"""`python -m services.notifier`: the notifier API with its consumer, delivery worker and escalation job."""

from services.notifier.app import main

main()
