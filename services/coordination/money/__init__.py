"""Follow the money: the case's money-flow tree, and next-hop stop-payments proposed from query answers."""
