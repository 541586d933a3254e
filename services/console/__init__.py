"""The web console: police operators, supervisors, auditors and institutions' staff work here.

It holds no privilege of its own: every page reads and every button acts through the coordination
and notifier APIs, with the signed-in person's own credential.
"""
