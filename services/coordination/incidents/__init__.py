"""Incidents: the alerts of one mule account or one scam episode, seen and triaged as one."""
