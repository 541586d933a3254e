"""Traffic simulator: a synthetic population's telecom, bank and payment events, with labelled fraud."""
