"""The rule-author's API: plain Python that builds IR.

>>> from policykit.dsl import PackBuilder, select, P
>>> demo = PackBuilder("demo", "0.1.0")
>>> @demo.rule("DEMO-001", title="Deployments run two replicas",
...            select=select(kinds=["Deployment"]),
...            message="{metadata.name} runs {spec.replicas} replica(s)")
... def replicas(o):
...     return o.spec.replicas < 2
>>> len(demo.build().rules)
1
"""

from policykit.dsl.expr import Cond, Val, all_of, any_of, obj, objects, quantity
from policykit.dsl.pack import P, PackBuilder, param, parse_message, select

__all__ = [
    "Cond",
    "P",
    "PackBuilder",
    "Val",
    "all_of",
    "any_of",
    "obj",
    "objects",
    "param",
    "parse_message",
    "quantity",
    "select",
]
