"""Configuration from ``policykit.yaml`` or ``[tool.policykit]`` in pyproject.toml.

Looked up in the working directory and its parents (the first file found
wins; ``policykit.yaml`` before ``pyproject.toml`` in the same directory).
Relative paths in it are relative to the file's directory. Schema:
``schemas/config.schema.json``. Command-line flags override it.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from policykit.errors import ConfigError, SourceLoc
from policykit.resources import load_schema

CONFIG_FILE = "policykit.yaml"


@dataclass(slots=True)
class Config:
    packs: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    include: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    fail_on: str | None = None
    base: Path = field(default_factory=Path.cwd)
    file: str | None = None


def _validate(data: Any, file: str) -> dict[str, Any]:
    if data is None:
        data = {}
    validator = jsonschema.Draft202012Validator(load_schema("config.schema.json"))
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        where = ".".join(str(x) for x in e.absolute_path) or "(top level)"
        raise ConfigError(f"{where}: {e.message}", loc=SourceLoc(file))
    assert isinstance(data, dict)
    return data


def _from_dict(data: dict[str, Any], base: Path, file: str) -> Config:
    def rel(p: str) -> str:
        # module names stay as they are; file paths become relative to the config
        if p.endswith((".py", ".json")) or "/" in p or (base / p).exists():
            return str(base / p) if not Path(p).is_absolute() else p
        return p

    return Config(
        packs=[rel(p) for p in data.get("packs", [])],
        paths=[str(base / p) if not Path(p).is_absolute() else p for p in data.get("paths", [])],
        include=list(data.get("include", [])),
        exclude=list(data.get("exclude", [])),
        params={k: dict(v) for k, v in data.get("params", {}).items()},
        fail_on=data.get("fail_on"),
        base=base,
        file=file,
    )


def load_config_file(path: Path) -> Config:
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", loc=SourceLoc(file)) from None
    if path.name == "pyproject.toml":
        try:
            data = tomllib.loads(text).get("tool", {}).get("policykit")
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"malformed TOML: {exc}", loc=SourceLoc(file)) from None
    else:
        try:
            data = yaml.load(text, Loader=yaml.CSafeLoader)
        except yaml.MarkedYAMLError as exc:
            line = exc.problem_mark.line + 1 if exc.problem_mark else 0
            raise ConfigError(f"malformed YAML: {exc.problem}", loc=SourceLoc(file, line)) from None
    return _from_dict(_validate(data, file), path.parent, file)


def find_config(start: Path | None = None) -> Config:
    """The nearest configuration, or an empty one."""
    here = (start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        candidate = d / CONFIG_FILE
        if candidate.is_file():
            return load_config_file(candidate)
        pyproject = d / "pyproject.toml"
        if pyproject.is_file():
            try:
                doc = tomllib.loads(pyproject.read_text(encoding="utf-8"))
            except (OSError, tomllib.TOMLDecodeError):
                continue
            if "policykit" in doc.get("tool", {}):
                return load_config_file(pyproject)
    return Config()
