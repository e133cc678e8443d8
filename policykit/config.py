"""Configuration from ``policykit.yaml`` or ``[tool.policykit]`` in pyproject.toml.

Looked up in the working directory and its parents (the first file found
wins; ``policykit.yaml`` before ``pyproject.toml`` in the same directory).
Relative paths in it are relative to the file's directory. Schema:
``schemas/config.schema.json``. Command-line flags override it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from policykit.errors import ConfigError, SourceLoc
from policykit.loader.lines import YamlLines
from policykit.resources import load_schema
from policykit.safeio import depth_excess, is_dir, is_file, load_yaml_node, read_text

CONFIG_FILE = "policykit.yaml"
WAIVERS_FILE = "policykit.waivers.yaml"
"""The waivers file a run reads when none is given (policykit.waivers)."""


@dataclass(slots=True)
class Config:
    packs: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    include: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    crds: list[str] = field(default_factory=list)  # CRD files or folders (absolute or cwd-relative)
    tests: list[str] = field(default_factory=list)  # what `policykit test` runs with no PATHS
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    fail_on: str | None = None
    base: Path = field(default_factory=Path.cwd)
    file: str | None = None
    lines: YamlLines | None = field(default=None, repr=False, compare=False)  # YAML files

    def loc(self, *path: str) -> SourceLoc | None:
        """Where the key ``path`` is written in the file: its line in a YAML
        file, else the file; None without a file."""
        if self.file is None:
            return None
        return SourceLoc(self.file, self.lines.key_line(*path) if self.lines is not None else 0)


def _validate(data: Any, file: str, lines: YamlLines | None = None) -> dict[str, Any]:
    if data is None:
        data = {}
    from policykit.ir.check import surely_valid

    schema = load_schema("config.schema.json")
    if surely_valid(schema, data):  # the usual case: no jsonschema (~130 ms) to import
        assert isinstance(data, dict)
        return data
    import jsonschema  # to find and word the error

    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        where = ".".join(str(x) for x in e.absolute_path) or "(top level)"
        line = lines.line(*e.absolute_path) if lines is not None else 0
        raise ConfigError(f"{where}: {e.message}", loc=SourceLoc(file, line))
    assert isinstance(data, dict)
    return data


def _from_dict(
    data: dict[str, Any], base: Path, file: str, lines: YamlLines | None = None
) -> Config:
    def rel(p: str) -> str:
        # module names stay as they are; file paths become relative to the config
        if p.endswith((".py", ".json")) or "/" in p or is_file(base / p) or is_dir(base / p):
            return str(base / p) if not Path(p).is_absolute() else p
        return p

    return Config(
        packs=[rel(p) for p in data.get("packs", [])],
        paths=[str(base / p) if not Path(p).is_absolute() else p for p in data.get("paths", [])],
        include=list(data.get("include", [])),
        exclude=list(data.get("exclude", [])),
        crds=[str(base / p) if not Path(p).is_absolute() else p for p in data.get("crds", [])],
        tests=[str(base / p) if not Path(p).is_absolute() else p for p in data.get("tests", [])],
        params={k: dict(v) for k, v in data.get("params", {}).items()},
        fail_on=data.get("fail_on"),
        base=base,
        file=file,
        lines=lines,
    )


def load_config_file(path: Path, parsed: dict[str, Any] | None = None) -> Config:
    """The configuration in ``path`` (``parsed``: a pyproject.toml's document,
    already read)."""
    file = str(path)
    text = read_text(path, error=ConfigError)  # its guards (size) even when parsed
    if path.name == "pyproject.toml":
        import tomllib

        try:
            doc = parsed if parsed is not None else tomllib.loads(text)
            tool = doc.get("tool")
            data = tool.get("policykit") if isinstance(tool, dict) else None
        except (tomllib.TOMLDecodeError, RecursionError, ValueError) as exc:
            raise ConfigError(
                f"malformed TOML: {' '.join(str(exc).split())}", loc=SourceLoc(file)
            ) from None
        if depth_excess(data):
            raise ConfigError("[tool.policykit] nested too deeply", loc=SourceLoc(file))
        lines = None
    else:
        data, node = load_yaml_node(text, file, error=ConfigError)
        lines = YamlLines.of_node(node) if node is not None else None
    return _from_dict(_validate(data, file, lines), path.parent, file, lines)


def find_config(start: Path | None = None) -> Config:
    """The nearest configuration, or an empty one."""
    here = (start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        candidate = d / CONFIG_FILE
        if is_file(candidate):
            return load_config_file(candidate)
        pyproject = d / "pyproject.toml"
        if is_file(pyproject):
            try:
                text = pyproject.read_text(encoding="utf-8")
                if "policykit" not in text:  # no [tool.policykit] table: skip the parse
                    continue
                import tomllib

                doc = tomllib.loads(text)
            except (OSError, ValueError, RecursionError):  # not ours to report
                continue
            tool = doc.get("tool")
            if isinstance(tool, dict) and "policykit" in tool:
                return load_config_file(pyproject, doc)  # parsed once
    return Config()
