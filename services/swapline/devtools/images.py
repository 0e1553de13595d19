"""``make images``: swapline's container images, built without a daemon.

A Debian bookworm base made with debootstrap (kept in local image storage
and reused), the wheels of swapline and its pinned dependencies gathered on
this machine, then the runtime image and the Triton image for CPU nodes
built from ``deploy/images/Containerfile`` with buildah (chroot isolation,
the vfs storage driver: no daemon, no user namespaces). ``report`` prints
each image's size and layers; :class:`Container` runs commands in one, for
the smoke test.

    python -m swapline.devtools.images build [--refresh-base]
    python -m swapline.devtools.images report
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from swapline import __version__

BASE = "localhost/swapline-base:bookworm"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
STORAGE = ["--storage-driver", "vfs"]
MISSING_TOOLS = "make images needs buildah and debootstrap: apt-get install buildah debootstrap"


@dataclass(frozen=True)
class Image:
    """One image `make images` builds: its name and the extras installed."""

    repository: str
    tag: str
    extras: str = ""

    @property
    def name(self) -> str:
        return f"{self.repository}:{self.tag}"


# The chart's defaults name these (image.repository, triton.cpu.image).
RUNTIME = Image("ghcr.io/swapline/swapline", __version__)
TRITON_CPU = Image("ghcr.io/swapline/swapline-triton", f"{__version__}-cpu", "[triton]")
IMAGES = (RUNTIME, TRITON_CPU)


class ImageError(RuntimeError):
    """A build step failed, or a tool is missing; the message says which."""


def require_tools() -> None:
    if not (shutil.which("buildah") and shutil.which("debootstrap")):
        raise ImageError(MISSING_TOOLS)


def buildah(*args: str, capture: bool = True, timeout: float = 1800) -> str:
    result = subprocess.run(
        ["buildah", *STORAGE, *args], capture_output=capture, text=True, timeout=timeout
    )
    if result.returncode != 0:
        detail = (result.stderr or "").strip().splitlines()[-5:] if capture else []
        raise ImageError(f"buildah {args[0]} failed: " + " / ".join(detail))
    return result.stdout or ""


def exists(name: str) -> bool:
    result = subprocess.run(
        ["buildah", *STORAGE, "inspect", "--type", "image", name],
        capture_output=True,
        text=True,
    )
    return result.returncode == 0


def build_base(refresh: bool = False) -> None:
    """Debian bookworm (minbase) from Debian's archive, as a local image;
    kept between runs unless ``refresh``."""
    if exists(BASE) and not refresh:
        return
    with tempfile.TemporaryDirectory(prefix="swapline-base-") as tmp:
        root = Path(tmp) / "rootfs"
        subprocess.run(
            ["debootstrap", "--variant=minbase", "bookworm", str(root), DEBIAN_MIRROR],
            check=True,
            capture_output=True,
        )
        for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for item in (root / cache).glob("*"):
                if item.is_file():
                    item.unlink()
        archive = Path(tmp) / "rootfs.tar"
        subprocess.run(["tar", "-C", str(root), "-cf", str(archive), "."], check=True)
        container = buildah("from", "scratch").strip()
        try:
            buildah("add", container, str(archive), "/")
            path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
            buildah("config", "--env", f"PATH={path}", "--cmd", "/bin/bash", container)
            buildah("commit", "-q", "--rm", container, BASE)
        except ImageError:
            subprocess.run(["buildah", *STORAGE, "rm", container], capture_output=True)
            raise


def gather_wheels(checkout: Path, context: Path) -> None:
    """swapline's wheel (from this checkout) and every pinned dependency of
    the images, so that the build installs with no network."""
    wheels = context / "wheels"
    for old in wheels.glob("swapline-*.whl"):
        old.unlink()
    extras = sorted({e.strip("[]") for image in IMAGES for e in [image.extras] if e})
    target = f"{checkout}[{','.join(extras)}]" if extras else str(checkout)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "-c",
            str(checkout / "constraints.txt"),
            "-w",
            str(wheels),
            target,
        ],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise ImageError("gathering wheels failed: " + result.stderr.strip()[-800:])


INPUTS_LABEL = "io.swapline.inputs"


def inputs_digest(checkout: Path, image: Image) -> str:
    """What an image is made of: the package's sources, its pins, the
    Containerfile and the extras (an image whose label matches is current)."""
    digest = hashlib.sha256(image.extras.encode())
    files = [checkout / "pyproject.toml", checkout / "constraints.txt"]
    files += [checkout / "deploy" / "images" / "Containerfile"]
    files += sorted((checkout / "services" / "swapline").rglob("*.py*"))
    for path in files:
        if "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(checkout)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def label(name: str, key: str) -> str:
    info = json.loads(buildah("inspect", "--type", "image", name))
    return str((info["OCIv1"]["config"].get("Labels") or {}).get(key, ""))


def build(checkout: Path, context: Path, refresh_base: bool = False) -> list[str]:
    """Builds the base (if missing) and every image not already built from
    these sources; the names of those it built."""
    require_tools()
    build_base(refresh_base)
    containerfile = checkout / "deploy" / "images" / "Containerfile"
    stale = [
        image
        for image in IMAGES
        if refresh_base
        or not exists(image.name)
        or label(image.name, INPUTS_LABEL) != inputs_digest(checkout, image)
    ]
    if stale:
        gather_wheels(checkout, context)
    for image in stale:
        buildah(
            "bud",
            "--isolation",
            "chroot",
            "--layers",
            "-q",
            "--build-arg",
            f"BASE={BASE}",
            "--build-arg",
            f"EXTRAS={image.extras}",
            "--label",
            f"{INPUTS_LABEL}={inputs_digest(checkout, image)}",
            "-t",
            image.name,
            "-f",
            str(containerfile),
            str(context),
        )
    # Intermediate build stages are not kept (vfs stores every layer whole).
    subprocess.run(["buildah", *STORAGE, "rmi", "--prune"], capture_output=True)
    return [image.name for image in stale]


@dataclass(frozen=True)
class Layer:
    size: int
    created_by: str


def layers(name: str) -> list[Layer]:
    """The image's layers (uncompressed sizes) with the steps that made them."""
    info = json.loads(buildah("inspect", "--type", "image", name))
    sizes = [int(layer.get("size", 0)) for layer in json.loads(info["Manifest"])["layers"]]
    steps = [h.get("created_by", "") for h in info["Docker"]["history"] if not h.get("empty_layer")]
    return [Layer(s, c) for s, c in zip(sizes, steps, strict=False)]


def user(name: str) -> str:
    info = json.loads(buildah("inspect", "--type", "image", name))
    return str(info["OCIv1"]["config"].get("User", ""))


def report() -> str:
    lines = []
    for image in (BASE, *(i.name for i in IMAGES)):
        if not exists(image):
            lines.append(f"{image}: not built")
            continue
        parts = layers(image)
        total = sum(layer.size for layer in parts)
        who = user(image) or "root"
        lines.append(f"{image}: {total / 1e6:.0f} MB in {len(parts)} layers, user {who}")
        for layer in parts:
            step = " ".join(layer.created_by.replace("/bin/sh -c ", "").split())
            lines.append(f"  {layer.size / 1e6:8.1f} MB  {step[:110]}")
    return "\n".join(lines)


class Container:
    """A working container of an image: commands run in it with chroot
    isolation, sharing this machine's network (servers answer on loopback),
    with host folders mounted at the same paths."""

    def __init__(self, image: str, mounts: Sequence[Path] = ()) -> None:
        self.image = image
        self.mounts = [Path(m).absolute() for m in mounts]
        self.id = buildah("from", "-q", image).strip()

    def command(self, args: list[str], env: dict[str, str]) -> list[str]:
        """The argv that runs ``swapline ARGS`` in this container with the
        swapline settings of ``env`` (nothing else of this machine's)."""
        settings = [f"--env={k}={v}" for k, v in env.items() if k.startswith("SWAPLINE_")]
        volumes = [f"--volume={m}:{m}" for m in self.mounts]
        return [
            "buildah",
            *STORAGE,
            "run",
            "--isolation",
            "chroot",
            *settings,
            *volumes,
            self.id,
            "--",
            "swapline",
            *args,
        ]

    def run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        """Runs ``argv`` in the container and waits."""
        volumes = [f"--volume={m}:{m}" for m in self.mounts]
        return subprocess.run(
            ["buildah", *STORAGE, "run", "--isolation", "chroot", *volumes, self.id, "--", *argv],
            capture_output=True,
            text=True,
            timeout=300,
        )

    def remove(self) -> None:
        subprocess.run(["buildah", *STORAGE, "rm", self.id], capture_output=True)


@contextlib.contextmanager
def container(image: str, mounts: Sequence[Path] = ()) -> Iterator[Container]:
    made = Container(image, mounts)
    try:
        yield made
    finally:
        made.remove()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m swapline.devtools.images")
    sub = parser.add_subparsers(dest="action", required=True)
    build_parser = sub.add_parser("build", help="the base (once), the runtime and Triton images")
    build_parser.add_argument("--refresh-base", action="store_true")
    build_parser.add_argument("--context", default="build/images", help="build folder")
    sub.add_parser("report", help="sizes, layers and users of the built images")
    args = parser.parse_args(argv)
    try:
        require_tools()
        if args.action == "build":
            checkout = Path.cwd()
            context = Path(args.context).absolute()
            context.mkdir(parents=True, exist_ok=True)
            built = build(checkout, context, args.refresh_base)
            for image in IMAGES:
                print(f"{image.name}: {'built' if image.name in built else 'up to date'}")
        print(report())
    except ImageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as exc:
        step = " ".join(map(str, exc.cmd[:2]))
        print(f"error: {step} failed (exit {exc.returncode})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
