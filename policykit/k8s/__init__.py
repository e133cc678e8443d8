"""The Kubernetes admission runtime (issue 18, item 4): what ``policykit
verify`` (policykit's own generated manifests) and the runner for existing
policies (``policykit test``, ``check --policy``) share.

=====================  ========================================================
``kindtable``          the built-in kinds (``kinds.json``) and ``KindInfo``
``crds``               the CustomResourceDefinitions of a run (the registry in force)
``kinds``              ``lookup``/``for_object``: the CRDs first, then the built-ins
``request``            ``Context`` (operation, user, namespaces, exceptions) and
                       the ``request``/``object``/``namespaceObject`` variables
``matching``           matchConstraints, matchConditions, Kyverno match/exclude,
                       Gatekeeper ``spec.match``
``autogen``            Kyverno's pod-controller autogen (ClusterPolicy, ValidatingPolicy)
``exceptions``         PolicyExceptions: which apply, in Kyverno's order
``validating``         THE evaluators: ValidatingAdmissionPolicy, Kyverno ValidatingPolicy
``celcompat``          cel-go behaviours spelled for cel-cpp (Kyverno compiles with cel-go)
``gatekeeper``         the ConstraintTemplate runner (regopy, OPA, K8sNativeValidation)
``gatekeeper_source``  what a template runs, Gatekeeper's checks, policykit's own templates
``errors``             ``Unsupported`` (PK402): reported as skipped, never as a pass
=====================  ========================================================

Kyverno ClusterPolicy rules (``validate.cel`` and classic) stay in
:mod:`policykit.existing.kyverno` and :mod:`policykit.existing.kyverno_classic`.
"""
