"""The Kubernetes admission runtime (issue 18, item 4): kinds and the CRD
registry, matching, Kyverno's pod-controller autogen, PolicyExceptions, and
the evaluators that ``policykit verify`` and the runner for existing policies
(``policykit test``, ``check --policy``) share — ValidatingAdmissionPolicy,
Kyverno ValidatingPolicy and Gatekeeper templates."""
