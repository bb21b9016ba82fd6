"""Serving internals: the candidate index and the policy (the decision service is adengine.services.decisions)."""
