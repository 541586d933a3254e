"""`python -m services.blocklist`: the blocklist API with its Kafka feed and expiry job."""

from services.blocklist.app import main

main()
