"""The committed generated code must match protos/ (run `make proto`)."""

from __future__ import annotations

import filecmp
from pathlib import Path

from grpc_tools import protoc

REPO = Path(__file__).resolve().parents[2]


def test_generated_code_is_fresh(tmp_path: Path) -> None:
    protos = sorted(str(p.relative_to(REPO / "protos")) for p in (REPO / "protos").rglob("*.proto"))
    import grpc_tools

    include = Path(grpc_tools.__file__).parent / "_proto"
    code = protoc.main(
        [
            "protoc",
            f"-I{REPO / 'protos'}",
            f"-I{include}",
            f"--python_out={tmp_path}",
            f"--pyi_out={tmp_path}",
            f"--grpc_python_out={tmp_path}",
            *[str(REPO / "protos" / p) for p in protos],
        ]
    )
    assert code == 0
    generated = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.py*"))
    committed = REPO / "services"
    stale = [
        str(p) for p in generated if not filecmp.cmp(tmp_path / p, committed / p, shallow=False)
    ]
    assert len(generated) == 3 * len(protos)
    assert stale == [], f"stale generated code, run `make proto`: {stale}"
