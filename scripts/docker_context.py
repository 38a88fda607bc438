"""Gather what the image's build stage needs to reach the package index as pip does here, into
``.docker-build/`` (git-ignored; the final image stage copies none of it):

- ``pip.conf``: the index and extra indexes pip is configured with (``pip config list``),
  only those a container can reach (``file://`` ones are left out), and ``cert`` pointing at
- ``ca.crt``: the CA bundle pip trusts here (corporate proxies need theirs);
- ``wheels/``: wheels pip finds on this machine's ``find-links`` folders that the image
  installs pinned (PyTorch's CPU build, which a plain index would replace with a CUDA one).

    python scripts/docker_context.py .docker-build
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

WANTED = ("torch-2.13.0+cpu-",)


def pip_config() -> dict[str, str]:
    out = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True,
                         text=True, check=True).stdout
    config: dict[str, str] = {}
    for line in out.splitlines():
        key, _, value = line.partition("=")
        config[key.split(".", 1)[-1]] = value.strip().strip("'\"")
    return config


def main() -> None:
    target = Path(sys.argv[1] if len(sys.argv) > 1 else ".docker-build")
    shutil.rmtree(target, ignore_errors=True)
    (target / "wheels").mkdir(parents=True)
    config = pip_config()
    lines = ["[global]"]
    cert = config.get("cert")
    if cert and Path(cert).is_file():
        shutil.copyfile(cert, target / "ca.crt")
        lines.append("cert = /build/ca.crt")
    if config.get("index-url", "").startswith("http"):
        lines.append(f"index-url = {config['index-url']}")
    extra = [u for u in config.get("extra-index-url", "").split() if u.startswith("http")]
    if extra:
        lines.append("extra-index-url = " + " ".join(extra))
    (target / "pip.conf").write_text("\n".join(lines) + "\n")
    copied = []
    for folder in config.get("find-links", "").split():
        for wheel in Path(folder).glob("*.whl") if Path(folder).is_dir() else []:
            if wheel.name.startswith(WANTED):
                shutil.copyfile(wheel, target / "wheels" / wheel.name)
                copied.append(wheel.name)
    print(f"{target}: pip.conf ({len(lines) - 1} settings), "
          f"{'ca.crt, ' if (target / 'ca.crt').is_file() else ''}wheels: {copied or 'none'}")


if __name__ == "__main__":
    main()
