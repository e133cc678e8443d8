"""Line numbers of the nodes of a YAML document, by path (for messages that
point at the field a user wrote)."""

from __future__ import annotations

import yaml

try:
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]


class YamlLines:
    """The 1-based lines of document ``index`` of ``text`` (0 when the text
    does not parse)."""

    def __init__(self, text: str, index: int = 0) -> None:
        try:
            docs = list(yaml.compose_all(text, Loader=_Loader))
        except yaml.YAMLError:
            docs = []
        self.root: yaml.Node | None = docs[index] if index < len(docs) else None

    @classmethod
    def of_node(cls, node: yaml.Node) -> YamlLines:
        """The lines of a document already composed (no second parse)."""
        lines = cls("")
        lines.root = node
        return lines

    def line(self, *path: str | int) -> int:
        """The line of the node at ``path`` (keys and list indexes), or of the
        deepest node on the way that exists."""
        node = self.root
        best = node.start_mark.line + 1 if node is not None else 0
        for step in path:
            if isinstance(node, yaml.MappingNode) and isinstance(step, str):
                node = next((v for k, v in node.value if k.value == step), None)
            elif isinstance(node, yaml.SequenceNode) and isinstance(step, int):
                node = node.value[step] if step < len(node.value) else None
            else:
                node = None
            if node is None:
                break
            best = node.start_mark.line + 1
        return best

    def key_line(self, *path: str) -> int:
        """The line of the last key of ``path`` (mapping keys), or of the
        deepest node on the way that exists (:meth:`line`)."""
        node = self.root
        for i, step in enumerate(path):
            if not isinstance(node, yaml.MappingNode):
                break
            pair = next(((k, v) for k, v in node.value if k.value == step), None)
            if pair is None:
                break
            if i == len(path) - 1:
                return int(pair[0].start_mark.line) + 1
            node = pair[1]
        return self.line(*path)
