"""The provenance pack: a served model is traceable to a pinned, signed artifact.

It governs model-serving workloads — KServe ``InferenceService``s and
Deployments labelled ``policykit.dev/model-server: "true"`` — and Backstage
``Resource`` entities of type ``ml-model``. Every one of them states:

* the model reference (KServe ``spec.predictor.model.storageUri``, otherwise the
  annotation ``policykit.dev/model-uri``), from an allowed registry;
* the artifact's sha256 digest (``@sha256:`` in the reference, or the
  annotation ``policykit.dev/model-digest``);
* a signature reference (``policykit.dev/model-signature``) and the signer
  identity (``policykit.dev/model-signer``), from an allowed list;
* the training dataset ids (``policykit.dev/datasets``, comma-separated) and a
  model card link (``policykit.dev/model-card``);

and its containers run images pinned by digest from allowed registries.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from policykit.dsl import P, PackBuilder, Val, param, select
from policykit.dsl.k8s import containers

DIGEST_RE = r"^sha256:[a-f0-9]{64}$"
PINNED_RE = r"@sha256:[a-f0-9]{64}$"
MODEL_SERVER = ("policykit.dev/model-server", "true")

provenance = PackBuilder(
    "provenance",
    "1.0.0",
    description="Model provenance for serving workloads and ml-model catalog entries.",
    params={
        "model_registries": param(
            [
                "s3://models.example.com/",
                "gs://example-models/",
                "oci://registry.example.com/models/",
            ],
            {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1},
            "Prefixes a model reference must start with.",
        ),
        "signers": param(
            [
                "https://github.com/example/ml-platform/.github/workflows/release.yaml@refs/heads/main"
            ],
            {"type": "array", "items": {"type": "string", "minLength": 1}},
            "Signer identities (e.g. Sigstore certificate identities) allowed to sign models.",
        ),
        "image_registries": param(
            ["registry.example.com/", "ghcr.io/example/", "kserve/"],
            {"type": "array", "items": {"type": "string", "minLength": 1}},
            "Prefixes a serving container image must start with.",
        ),
        "dataset_pattern": param(
            r"^ds-[a-z0-9-]+(,ds-[a-z0-9-]+)*$",
            {"type": "string"},
            "Format of the comma-separated dataset id list.",
        ),
    },
)

SERVING = [
    select(source="kubernetes", kinds=["InferenceService"]),
    select(source="kubernetes", kinds=["Deployment"], labels=dict([MODEL_SERVER])),
    select(source="backstage", kinds=["Resource"], entity_types=["ml-model"]),
]


def model_ref(o: Val) -> Val:
    return o.spec.predictor.model.storageUri.default(
        o.metadata.annotations["policykit.dev/model-uri"]
    )


RuleFn = Callable[[Val], object]


def _each_kind(rule_id: str, **kw: Any) -> Callable[[RuleFn], RuleFn]:
    """The same rule for each kind of serving object: ``<id>`` (InferenceService),
    ``<id>-D`` (model-server Deployment), ``<id>-B`` (Backstage ml-model Resource)."""

    def decorate(fn: RuleFn) -> RuleFn:
        for suffix, sel in zip(("", "-D", "-B"), SERVING, strict=True):
            provenance.rule(rule_id + suffix, select=sel, **kw)(fn)
        return fn

    return decorate


@_each_kind(
    "PROV-001",
    title="Models come from an allowed registry",
    message="{kind} {metadata.name} serves model '{spec.predictor.model.storageUri}"
    "{metadata.annotations['policykit.dev/model-uri']}', not from one of {params.model_registries}",
    remediation="Publish the model to the model registry and reference it from there.",
    tags=["provenance", "ml"],
)
def allowed_registry(o: Val) -> object:
    ref = model_ref(o)
    return ~P("model_registries").any(lambda r: ref.startswith(r))


@_each_kind(
    "PROV-002",
    title="Model artifacts are pinned by sha256 digest",
    message="{kind} {metadata.name} does not pin its model by digest (@sha256:... in the "
    "reference, or the annotation policykit.dev/model-digest)",
    remediation="Reference the artifact by digest; a tag or a path can change under you.",
    tags=["provenance", "ml", "supply-chain"],
)
def pinned_model(o: Val) -> object:
    digest = o.metadata.annotations["policykit.dev/model-digest"]
    return ~model_ref(o).matches(PINNED_RE) & ~digest.matches(DIGEST_RE)


@_each_kind(
    "PROV-003",
    title="Models are signed by an allowed identity",
    message="{kind} {metadata.name} names no model signature, or its signer "
    "'{metadata.annotations['policykit.dev/model-signer']}' is not allowed",
    remediation="Sign the model in the release pipeline and record the signature reference "
    "and signer identity as annotations.",
    tags=["provenance", "ml", "supply-chain"],
)
def signed(o: Val) -> object:
    ann = o.metadata.annotations
    sig = ann["policykit.dev/model-signature"]
    return sig.absent() | (sig == "") | ~ann["policykit.dev/model-signer"].is_in(P("signers"))


@_each_kind(
    "PROV-004",
    title="Models name their datasets and a model card",
    severity="warn",
    message="{kind} {metadata.name} lacks dataset ids (policykit.dev/datasets) or a model card "
    "link (policykit.dev/model-card, https)",
    remediation="Record the training dataset ids and link the model card.",
    tags=["provenance", "ml", "compliance"],
)
def documented(o: Val) -> object:
    ann = o.metadata.annotations
    return ~ann["policykit.dev/datasets"].matches(P("dataset_pattern")) | ~ann[
        "policykit.dev/model-card"
    ].startswith("https://")


def _image_rule(rule_id: str, sel_index: int, each: object) -> None:
    @provenance.rule(
        rule_id,
        title="Serving containers run images pinned by digest from allowed registries",
        select=SERVING[sel_index],
        each=each,  # type: ignore[arg-type]
        message="container {c.name} of {kind} {metadata.name} runs image '{c.image}', not "
        "pinned by digest from one of {params.image_registries}",
        remediation="Use registry.example.com/...@sha256:<digest> (resolve the tag once, in CI).",
        tags=["provenance", "supply-chain"],
    )
    def image(o: Val, c: Val) -> object:
        img = c.image
        return img.exists() & (
            ~img.matches(PINNED_RE) | ~P("image_registries").any(lambda r: img.startswith(r))
        )


_image_rule("PROV-005", 0, lambda o: o.spec.predictor.containers)
_image_rule("PROV-005-D", 1, containers)
