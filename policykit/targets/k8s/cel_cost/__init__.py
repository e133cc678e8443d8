"""Parts of :mod:`policykit.targets.k8s.celcost`: the CEL parser."""
