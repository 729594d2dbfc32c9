"""The browser chat page's web client: converse.js, pinned, fetched from the
npm registry into the data directory (``xmpp-trio web-assets``), never
copied into the repository. docs/web.md "Browser chat page".

The pinned release's tarball is fetched with the ordinary client (``npm
pack``), checked against its registry integrity (SHA-512, pinned here), and
its ``dist/`` extracted to ``<data_dir>/web/converse/`` (members outside
``package/dist/``, links and special files are skipped). The http listener
serves it under ``/chat/converse/`` beside a page and a ``config.js`` made
for this server (``xmpp_sansio/http/chat.py``).
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Final

__all__ = ["CONVERSE_INTEGRITY", "CONVERSE_VERSION", "AssetError", "assets_dir", "fetch", "install"]

CONVERSE_VERSION: Final = "12.0.0"
#: the registry's ``dist.integrity`` of converse.js@12.0.0 (``npm view converse.js@12.0.0 dist``)
CONVERSE_INTEGRITY: Final = "sha512-HMY7GtzLbR8PjWxB7h4QX4MYnZEqjCMEc6oWAE9kQL6LKzvBcpNvnHACWy615Bmzss3zfnHAYYjT+z6mAiYgKg=="
_PREFIX: Final = "package/dist/"


class AssetError(Exception):
    """The assets could not be fetched or did not match the pinned checksum."""


def assets_dir(data_dir: Path) -> Path:
    """Where converse.js's ``dist/`` lives once installed."""
    return data_dir / "web" / "converse"


def integrity(data: bytes) -> str:
    """The npm ``integrity`` string (SRI, SHA-512) of a tarball."""
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def install(tarball: bytes, data_dir: Path, expected: str = CONVERSE_INTEGRITY) -> Path:
    """Check ``tarball`` against ``expected`` and extract its ``dist/``.

    Raises:
        AssetError: the checksum differs (nothing is written).
    """
    got = integrity(tarball)
    if got != expected:
        raise AssetError(f"checksum mismatch: expected {expected}, got {got}")
    dest = assets_dir(data_dir)
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".converse-", dir=dest.parent))
    try:
        with tempfile.TemporaryFile() as raw:
            raw.write(tarball)
            raw.seek(0)
            with tarfile.open(fileobj=raw, mode="r:gz") as archive:
                for member in archive.getmembers():
                    name = member.name
                    if not name.startswith(_PREFIX) or not member.isfile():
                        continue
                    rel = Path(name[len(_PREFIX) :])
                    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
                        continue
                    target = staging / rel
                    target.parent.mkdir(parents=True, exist_ok=True)
                    source = archive.extractfile(member)
                    if source is None:
                        continue
                    with source, target.open("wb") as out:
                        shutil.copyfileobj(source, out)
        (staging / "VERSION").write_text(CONVERSE_VERSION + "\n")
        if dest.exists():
            shutil.rmtree(dest)
        staging.rename(dest)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return dest


def fetch(data_dir: Path, *, npm: str = "npm", timeout: float = 600.0) -> Path:
    """``npm pack converse.js@<pinned>``, then :func:`install`.

    Raises:
        AssetError: npm is missing or failed, or the checksum differs.
    """
    if shutil.which(npm) is None:
        raise AssetError(f"{npm} not found: install Node.js and npm")
    with tempfile.TemporaryDirectory() as tmp:
        command = [npm, "pack", f"converse.js@{CONVERSE_VERSION}", "--silent"]
        command += ["--pack-destination", tmp]
        try:
            subprocess.run(command, check=True, timeout=timeout, capture_output=True, cwd=tmp)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            raise AssetError(f"npm pack failed: {exc}") from None
        tarball = Path(tmp) / f"converse.js-{CONVERSE_VERSION}.tgz"
        if not tarball.is_file():
            raise AssetError("npm pack wrote no tarball")
        return install(tarball.read_bytes(), data_dir)
