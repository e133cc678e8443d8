"""Install real OPA for ``--engine opa``, ``verify`` and ``test --engine opa``:
``python -m policykit.engines.opa_install``.

OPA v1.20.2 comes embedded (Go, behind ctypes) in the wheel
``opa-golib-python-bindings==0.4.4``. The wheel declares Python 3.14 but runs
on 3.11 and later unpacked, so pip cannot install it: it is downloaded for
3.14, unpacked into ``<site-packages>/_policykit_opa`` of the running
environment, and put on ``sys.path`` by a ``.pth`` file. Idempotent.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import tempfile
import zipfile
from pathlib import Path

WHEEL = "opa-golib-python-bindings==0.4.4"


def default_dest() -> Path:
    """Where :func:`install` puts the bindings in the running environment."""
    return Path(sysconfig.get_paths()["purelib"]) / "_policykit_opa"


def install(dest: Path | None = None) -> Path:
    """Download and unpack the bindings; returns where they are."""
    purelib = Path(sysconfig.get_paths()["purelib"])
    dest = dest or default_dest()
    if (dest / "opa_bindings").is_dir():
        return dest
    with tempfile.TemporaryDirectory() as tmp:
        pip = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"]
        wanted = ["--python-version", "3.14", "--only-binary=:all:", WHEEL, "-d", tmp]
        subprocess.run([*pip, *wanted], check=True)
        wheel = next(Path(tmp).glob("*.whl"))
        staging = Path(tempfile.mkdtemp(prefix=".opa.", dir=dest.parent))
        zipfile.ZipFile(wheel).extractall(staging)
        if dest.exists():
            shutil.rmtree(dest)  # a partial earlier attempt
        staging.replace(dest)
    (purelib / "_policykit_opa.pth").write_text(f"{dest}\n", encoding="utf-8")
    return dest


def main() -> None:
    try:
        where = install()
    except (OSError, subprocess.CalledProcessError, StopIteration) as exc:
        sys.stderr.write(f"policykit: PK005 cannot install real OPA: {exc}\n")
        sys.exit(2)
    sys.path.insert(0, str(where))
    import opa_bindings

    print(f"real OPA ready: {Path(opa_bindings.__file__).parent}")


if __name__ == "__main__":
    main()
