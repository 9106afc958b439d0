"""Where the bundled third-party weights come from, and the command that re-checks them.

camlib trains its course models itself (``python -m camlib.training``), but O-Net's weights
(``camlib/weights/onet.pt``) were trained by MTCNN's authors and are copied byte for byte from
a published wheel. ``weights.json`` records, for such a file, its SHA-256 and a ``source``:
the package, its version, the wheel's file name and SHA-256, and the member path inside it.
This module re-extracts that member from a wheel (a zip file) and checks that it is
byte-identical to the bundled file::

    pip download --no-deps facenet-pytorch==2.6.0 -d /tmp/fn
    python -m camlib.provenance onet /tmp/fn/facenet_pytorch-2.6.0-py3-none-any.whl

It prints what it compared and exits with status 0 when the member, the bundled file and the
record agree, 1 otherwise. ``--restore`` writes the member into the weights folder when it
matches the recorded SHA-256 (to repair a damaged installation). Nothing is downloaded by
camlib; fetching the wheel is the ``pip download`` step above, which needs internet access.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from . import models as _models

__all__ = ["WheelCheck", "check_wheel", "restore_from_wheel", "main"]


@dataclass(frozen=True)
class WheelCheck:
    """The outcome of :func:`check_wheel` (all digests are hex SHA-256).

    Attributes:
        name: the model (a key of ``weights.json``), e.g. ``"onet"``.
        wheel: the wheel that was read.
        member: the path inside the wheel.
        member_sha256: digest of the member's bytes.
        recorded_sha256: the weight file's digest recorded in ``weights.json``.
        bundled_sha256: digest of the bundled file, ``None`` if it is missing.
        identical: the member's bytes equal the bundled file's bytes.
        wheel_sha256: digest of the wheel file.
        wheel_is_recorded: the wheel's digest equals the one recorded in ``weights.json`` (a
            different wheel can still hold an identical member: what counts is ``ok``).
    """

    name: str
    wheel: Path
    member: str
    member_sha256: str
    recorded_sha256: str
    bundled_sha256: str | None
    identical: bool
    wheel_sha256: str
    wheel_is_recorded: bool

    @property
    def ok(self) -> bool:
        """The member, the bundled file and the record all agree."""
        return self.identical and self.member_sha256 == self.recorded_sha256

    def report(self) -> str:
        """A few human-readable lines saying what was compared."""
        wheel_note = ("the wheel recorded in weights.json" if self.wheel_is_recorded
                      else "NOT the wheel recorded in weights.json (only the member counts)")
        bundled = self.bundled_sha256 or "missing"
        verdict = ("OK: the bundled file is byte-identical to the wheel's member and to the "
                   "record" if self.ok else "MISMATCH: see the digests above")
        return "\n".join([
            f"{self.name}: {self.wheel} ({wheel_note})",
            f"  wheel    sha256 {self.wheel_sha256}",
            f"  member   {self.member}",
            f"  member   sha256 {self.member_sha256}",
            f"  bundled  sha256 {bundled}",
            f"  recorded sha256 {self.recorded_sha256}",
            f"  {verdict}",
        ])


def _source(name: str, weights_dir: str | os.PathLike | None) -> tuple[dict, dict]:
    info = _models.weights_info(weights_dir)
    entry = info.get(name)
    if not isinstance(entry, dict) or not isinstance(entry.get("source"), dict):
        known = sorted(k for k, v in info.items() if isinstance(v, dict) and "source" in v)
        raise ValueError(f"weights.json records no wheel source for {name!r}; models with "
                         f"one: {known}")
    return info, entry


def _read_member(wheel: str | os.PathLike, member: str) -> bytes:
    wheel = Path(wheel)
    if not wheel.is_file():
        raise FileNotFoundError(f"no wheel at {wheel}; fetch it with the 'fetch' command "
                                f"recorded in weights.json (pip download --no-deps ...)")
    if not zipfile.is_zipfile(wheel):
        raise ValueError(f"{wheel} is not a wheel (a zip file)")
    with zipfile.ZipFile(wheel) as zf:
        try:
            return zf.read(member)
        except KeyError as err:
            raise ValueError(f"{wheel} has no member {member!r}; is it the right package "
                             f"and version?") from err


def check_wheel(
    name: str, wheel: str | os.PathLike, weights_dir: str | os.PathLike | None = None
) -> WheelCheck:
    """Re-extract ``name``'s recorded member from ``wheel`` and compare it with the bundled file.

    Reads only; writes nothing. ``weights_dir`` defaults to ``camlib/weights``.
    """
    info, entry = _source(name, weights_dir)
    member = entry["source"]["member"]
    data = _read_member(wheel, member)
    path = _models.weights_path(name, weights_dir, info)
    bundled = path.read_bytes() if path.is_file() else None
    wheel_digest = _models.sha256_file(wheel)
    return WheelCheck(
        name=name,
        wheel=Path(wheel),
        member=member,
        member_sha256=hashlib.sha256(data).hexdigest(),
        recorded_sha256=entry["sha256"],
        bundled_sha256=hashlib.sha256(bundled).hexdigest() if bundled is not None else None,
        identical=bundled is not None and bundled == data,
        wheel_sha256=wheel_digest,
        wheel_is_recorded=wheel_digest == entry["source"].get("wheel_sha256"),
    )


def restore_from_wheel(
    name: str, wheel: str | os.PathLike, weights_dir: str | os.PathLike | None = None
) -> Path:
    """Write ``name``'s member from ``wheel`` into the weights folder; return the file's path.

    Refuses (``ValueError``) unless the member's SHA-256 equals the one recorded in
    ``weights.json``, so it can only put back the recorded file, never another.
    """
    info, entry = _source(name, weights_dir)
    data = _read_member(wheel, entry["source"]["member"])
    digest = hashlib.sha256(data).hexdigest()
    if digest != entry["sha256"]:
        raise ValueError(f"the wheel's {entry['source']['member']} has SHA-256 {digest}, not "
                         f"the recorded {entry['sha256']}: refusing to write it")
    path = _models.weights_path(name, weights_dir, info)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return path


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m camlib.provenance NAME WHEEL [--restore] [--weights DIR]``."""
    parser = argparse.ArgumentParser(
        prog="python -m camlib.provenance",
        description="Check that a bundled third-party weight file is byte-identical to the "
                    "file inside the wheel it was copied from.")
    parser.add_argument("name", help="model name in weights.json, e.g. onet")
    parser.add_argument("wheel", help="path of the downloaded wheel (a zip file)")
    parser.add_argument("--restore", action="store_true",
                        help="write the wheel's member into the weights folder if it matches "
                             "the recorded SHA-256")
    parser.add_argument("--weights", default=None,
                        help="weights folder (default: camlib/weights)")
    args = parser.parse_args(argv)
    try:
        if args.restore:
            path = restore_from_wheel(args.name, args.wheel, args.weights)
            print(f"restored {path}")
        result = check_wheel(args.name, args.wheel, args.weights)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(result.report())
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
