"""Scorer: stateful stream processing of institution events into alerts."""

import os

# One OpenMP thread for the model, set before scikit-learn loads its OpenMP runtime (which reads this
# once): its worker threads spin-wait for work, and on cores shared with Kafka and the other services
# a prediction would wait for them. The scorer scales out by partitions.
os.environ.setdefault("OMP_NUM_THREADS", "1")
