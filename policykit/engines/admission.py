"""Moved to :mod:`policykit.k8s` (issue 18, item 4): the evaluators are in
:mod:`policykit.k8s.validating`, matching in :mod:`policykit.k8s.matching`,
exceptions in :mod:`policykit.k8s.exceptions`."""

# moved; importers updated at integration
from policykit.k8s.matching import constraints_match as constraints_match
from policykit.k8s.matching import label_selector_matches as label_selector_matches
from policykit.k8s.request import request_for as request_for
from policykit.k8s.validating import Decision as Decision
from policykit.k8s.validating import bind_variables as bind_variables
from policykit.k8s.validating import evaluate_kyverno as evaluate_kyverno
from policykit.k8s.validating import evaluate_vap as evaluate_vap
from policykit.k8s.validating import failed_validations as failed_validations
from policykit.k8s.validating import rule_of as rule_of
