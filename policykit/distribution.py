"""What this project is called on the package index, and how to install this exact copy.

The import package and the command are ``policykit``; the distribution is
``platform-policy-kit``. The name ``policykit`` on the package index belongs to an
unrelated, older project (conftest utilities): nothing policykit writes or
documents may install it — a generated CI job would get the wrong code, and a
bare name is a dependency-confusion hole.

:func:`install_spec` is the pip requirement a generated workflow uses to install
the very version that generated it:

* once this version is on the package index (:data:`PUBLISHED`):
  ``platform-policy-kit==<version>``;
* else, when this copy was installed from a git repository (PEP 610's
  ``direct_url.json`` records the commit): ``platform-policy-kit @ git+<url>@<commit>``;
* else, when it was installed from a wheel or sdist at a remote URL: that URL,
  pinned by its hash when pip recorded one;
* else (an editable or local install): the project's repository at the tag of
  this version, ``platform-policy-kit @ git+<SOURCE_URL>@v<version>``.

``policykit init --install SPEC`` overrides it (a wheel in an artifact store, a
fork); a bare ``platform-policy-kit`` or ``policykit`` without a version pin is
refused there too.
"""

from __future__ import annotations

import json
import re
from importlib import metadata

from policykit import __version__

DIST_NAME = "platform-policy-kit"
SOURCE_URL = "https://github.com/policykit/policykit"
# Flip when this version is uploaded to the package index.
PUBLISHED = False

_NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(.*)", re.S)


def _direct_url() -> dict[str, object] | None:
    try:
        text = metadata.distribution(DIST_NAME).read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        return None
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def install_spec(direct_url: dict[str, object] | None = None, published: bool | None = None) -> str:
    """The pip requirement that installs exactly this version of this project."""
    if published if published is not None else PUBLISHED:
        return f"{DIST_NAME}=={__version__}"
    direct = direct_url if direct_url is not None else _direct_url()
    if direct is not None:
        url = direct.get("url")
        vcs = direct.get("vcs_info")
        if isinstance(url, str) and isinstance(vcs, dict) and vcs.get("vcs") == "git":
            commit = vcs.get("commit_id")
            if isinstance(commit, str) and re.fullmatch(r"[0-9a-f]{40}", commit):
                return f"{DIST_NAME} @ git+{url}@{commit}"
        archive = direct.get("archive_info")
        if isinstance(url, str) and url.startswith("https://") and isinstance(archive, dict):
            digest = archive.get("hash")
            if isinstance(digest, str) and "=" in digest:
                algo, value = digest.split("=", 1)
                return f"{DIST_NAME} @ {url}#{algo}={value}"
            return f"{DIST_NAME} @ {url}"
    return f"{DIST_NAME} @ git+{SOURCE_URL}@v{__version__}"


def check_install_spec(spec: str) -> str:
    """A user's ``--install`` requirement, refused when it names no exact copy."""
    spec = spec.strip()
    if not spec or "\n" in spec or '"' in spec:
        raise ValueError("an install requirement is one line with no double quotes")
    m = _NAME.fullmatch(spec)
    name = re.sub(r"[-_.]+", "-", m.group(1)).lower() if m else ""
    if name == "policykit":
        raise ValueError(
            f"{spec!r} installs 'policykit' from the package index, an unrelated project; "
            f"this one is {DIST_NAME}, e.g. {install_spec()!r}"
        )
    if m and name == DIST_NAME and not m.group(3):
        raise ValueError(f"{spec!r} names no version: pin one, e.g. {install_spec()!r}")
    return spec
