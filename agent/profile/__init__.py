"""Activity profiles: what a workload normally does, learned from resolved
event documents, kept as readable YAML, and turned into anomaly rules by a
policy's ``profiles:`` (see agent/profile/rules.py)."""
