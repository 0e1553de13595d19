"""Running and measuring swapline: ``serve``, ``stack``, ``certs``,
``token``, ``bench`` and ``capacity``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from swapline.cli._common import DEFAULT_REPOSITORY, Subparsers
from swapline.config import DEFAULT_PORTS
from swapline.errors import SwaplineError


def register(sub: Subparsers) -> None:
    sv = sub.add_parser("serve", help="run one stage as a gRPC server")
    sv.add_argument("service", choices=list(DEFAULT_PORTS))
    sv.add_argument("--host", default=None, help="bind address (default [::])")
    sv.add_argument("--port", type=int, default=None, help="gRPC port")
    sv.add_argument("--metrics-port", type=int, default=None, help="Prometheus /metrics port")
    sv.set_defaults(func=run_serve)

    st = sub.add_parser("stack", help="the local stack: every service, Triton and Prometheus")
    st.add_argument("action", choices=["up", "down"])
    st.add_argument("--dir", default=".stack", help="state and logs (default .stack)")
    st.add_argument("--repository", default=DEFAULT_REPOSITORY, metavar="MODEL_REPO")
    st.add_argument(
        "--checkout",
        type=Path,
        default=Path.cwd(),
        help="the swapline checkout whose Prometheus rules the stack loads (default: here)",
    )
    st.set_defaults(func=run_stack)

    ce = sub.add_parser(
        "certs", help="a private CA and a service certificate for mutual TLS between services"
    )
    ce.add_argument("--out", required=True, help="folder for ca.pem, service.pem and their keys")
    ce.add_argument(
        "--name",
        action="append",
        default=[],
        help="a DNS name or IP address the services answer to (repeat; localhost is included)",
    )
    ce.add_argument("--days", type=int, default=365)
    ce.set_defaults(func=run_certs)

    to = sub.add_parser("token", help="a new API token and the line that grants it")
    to.add_argument("--owner", required=True, help="who the token's jobs belong to")
    to.add_argument("--admin", action="store_true", help="may see every job and train models")
    to.set_defaults(func=run_token)

    be = sub.add_parser("bench", help="the benchmark suite: a table and JSON")
    be.add_argument("--clip", action="append", help="clip to measure (default s18.mp4)")
    be.add_argument("--model", default="d6_to_d10")
    be.add_argument("--repository", default=DEFAULT_REPOSITORY, metavar="MODEL_REPO")
    be.add_argument("--json", default="out/bench.json")
    be.add_argument("--quick", action="store_true", help="leave out the 120 s clip")
    be.set_defaults(func=run_bench)

    ca = sub.add_parser("capacity", help="replicas and GPUs for N streams, from bench results")
    ca.add_argument("--bench", default="out/bench.json")
    ca.add_argument("--gpu", default=None, help="`make gpu-bench` JSON, if measured")
    ca.add_argument("--streams", default="1,10,50,100", help="comma-separated stream counts")
    ca.add_argument("--out", default="docs/capacity.md")
    ca.set_defaults(func=run_capacity)


def run_serve(args: argparse.Namespace) -> int:
    from swapline.config import ServerConfig
    from swapline.runtime.server import run_server

    config = ServerConfig.from_env(args.service)
    config = config.with_overrides(port=args.port, metrics_port=args.metrics_port, host=args.host)
    run_server(config)
    return 0


def run_stack(args: argparse.Namespace) -> int:
    from swapline.devtools import stack

    try:
        if args.action == "down":
            stopped = stack.down(args.dir)
            print(f"stopped {', '.join(stopped.pids)}")
            return 0
        running = stack.up(args.dir, args.repository, checkout=args.checkout)
    except FileNotFoundError as exc:
        raise SwaplineError(str(exc)) from None
    pki = Path(args.dir) / "pki"
    print(f"orchestrator  {running.orchestrator}   (swapline swap --remote {running.orchestrator})")
    print(
        f"credentials   export SWAPLINE_TOKEN_FILE={pki}/alice.token SWAPLINE_TLS_CA={pki}/ca.pem"
    )
    print(f"triton        {running.triton}")
    print(f"prometheus    {running.prometheus}   (rules: deploy/prometheus/rules)")
    print(f"logs          {args.dir}/*.log; stop with `make down`")
    return 0


def run_certs(args: argparse.Namespace) -> int:
    from swapline.runtime.pki import LOCAL_NAMES, write_certificates

    if args.days < 1:
        raise SwaplineError("--days must be at least 1")
    names = list(dict.fromkeys([*args.name, *LOCAL_NAMES]))
    tls = write_certificates(Path(args.out), names, args.days)
    print(f"wrote {tls.ca}, {tls.cert} and {tls.key} (for {', '.join(names)})")
    print(
        f"servers: SWAPLINE_TLS_CERT={tls.cert} SWAPLINE_TLS_KEY={tls.key} SWAPLINE_TLS_CA={tls.ca}"
    )
    return 0


def run_token(args: argparse.Namespace) -> int:
    from swapline.protocol.security import new_token
    from swapline.runtime.pki import token_line

    if not args.owner.strip() or any(c.isspace() for c in args.owner):
        raise SwaplineError("--owner must be one word")
    token = new_token()
    print(f"token (give it to {args.owner}; it is shown once): {token}")
    line = token_line(args.owner, "admin" if args.admin else "user", token)
    print(f"line for the token file (SWAPLINE_API_TOKENS): {line}")
    return 0


def run_bench(args: argparse.Namespace) -> int:
    from swapline.devtools.benchmarks import suite

    argv = ["--model", args.model, "--repository", args.repository, "--json", args.json]
    for clip in args.clip or []:
        argv += ["--clip", clip]
    return suite.main(argv + (["--quick"] if args.quick else []))


def run_capacity(args: argparse.Namespace) -> int:
    from swapline.evaluation.capacity import capacity_markdown

    try:
        bench = json.loads(Path(args.bench).read_text())
        gpu = json.loads(Path(args.gpu).read_text()) if args.gpu else None
    except (OSError, ValueError) as exc:
        raise SwaplineError(f"cannot read the measurements: {exc}") from None
    streams = tuple(int(n) for n in args.streams.split(","))
    text = capacity_markdown(bench, streams, gpu)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(f"wrote {args.out}")
    return 0
