"""The trained GRM as a reward from the command line.

`grm score`: score responses to a query (optionally meta-RM-guided voting) and print JSON: the final score
per response, the best index, and each sample's principles, critique and scores.
`grm serve`: the same scoring as an HTTP endpoint on 127.0.0.1 (see flows/serving.py)."""

from __future__ import annotations

import argparse
import json
import sys

from flows.cli_args import add_model_arguments, add_store, model_folder


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "score",
        help="score responses to a query with a trained GRM",
        description="Sample k judgments (shuffled response order, temperature 0.5; k=1 is greedy), vote, and print "
        "JSON. --model is a model folder, or the name of a model in the store (e.g. grm).",
    )
    add_model_arguments(p)
    p.add_argument("--query", required=True, help="the user's query")
    p.add_argument("--system", help="an optional system message before the query")
    p.add_argument("--response", action="append", required=True, metavar="TEXT", help="a response (repeat for each)")
    p.add_argument("--raw", action="store_true", help="also print each sample's full generated text")
    add_store(p)
    p.set_defaults(func=_score)

    s = sub.add_parser(
        "serve",
        help="serve GRM scoring over HTTP (127.0.0.1 by default)",
        description="POST /v1/score {\"items\": [{\"query\" | \"conversation\", \"responses\"}]} -> voted scores. "
        "Concurrent requests are batched onto the backend; oversized or malformed requests get a 4xx.",
    )
    add_model_arguments(s)
    s.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1: this machine only)")
    s.add_argument("--port", type=int, default=8321)
    s.add_argument("--max-body-bytes", type=int, default=1_000_000)
    s.add_argument("--max-items", type=int, default=64, help="items per request")
    s.add_argument("--max-responses", type=int, default=16, help="responses per item")
    s.add_argument("--max-chars", type=int, default=50_000, help="characters per message or response")
    s.add_argument("--max-queue", type=int, default=1024, metavar="ITEMS",
                   help="items waiting or being scored; past it a request gets 503 and Retry-After (default 1024)")
    s.add_argument("--max-connections", type=int, default=256,
                   help="concurrent connections; past it a request gets 503 (default 256)")
    s.add_argument("--token-env", default="GRM_SERVE_TOKEN", metavar="NAME",
                   help="environment variable holding the bearer token every request must carry (required when "
                   "--host is not loopback; used on loopback too when set). Default GRM_SERVE_TOKEN")
    add_store(s)
    s.set_defaults(func=_serve)


def _model_path(name: str, store_dir: str | None, kind: str) -> str:
    """A model folder (cli_args.model_folder's rule), else the newest published model of that name in the store."""
    folder = model_folder(kind, name)
    if folder is not None:
        return str(folder)
    from storage import Store

    ref = Store.resolve(store_dir).newest("models", name)
    if ref is None:
        raise FileNotFoundError(f"{kind} {name!r} is neither a model folder (with a config.json) nor a model in the store")
    return ref.path


def _build_scorer(args: argparse.Namespace, who: str):
    """(backend, reward) from the shared model arguments; None after printing why on a bad argument."""
    from grm.config import GenerationConfig
    from grm.generation import BackendError, make_backend
    from grm.model_loading import ModelTrust
    from grm.reward import GRMReward, HFMetaScorer

    if args.k < 1 or (args.k_meta is not None and not 1 <= args.k_meta <= args.k):
        print(f"grm {who}: need k >= 1 and 1 <= k-meta <= k", file=sys.stderr)
        return None
    try:
        model = _model_path(args.model, args.store, "model")
        meta = _model_path(args.meta_rm, args.store, "meta RM") if args.meta_rm else None
        trust = ModelTrust(args.allow_pickle, args.trust_remote_code)
        backend = make_backend(model, GenerationConfig(device=args.device, max_new_tokens=args.max_new_tokens), trust=trust)
    except (FileNotFoundError, ValueError, BackendError) as e:
        print(f"grm {who}: {e}", file=sys.stderr)
        return None
    meta_scorer = HFMetaScorer(meta, device=args.device, trust=trust) if meta else None
    reward = GRMReward(backend, k=args.k, k_meta=args.k_meta, meta_scorer=meta_scorer, temperature=args.temperature,
                     max_new_tokens=args.max_new_tokens, seed=args.seed)
    return backend, reward


def _score(args: argparse.Namespace) -> int:
    from grm.generation import BackendError
    from grm.reward import JudgeInputError

    built = _build_scorer(args, "score")
    if built is None:
        return 2
    backend, reward = built
    conversation = ([{"role": "system", "content": args.system}] if args.system else []) + [
        {"role": "user", "content": args.query}
    ]
    with backend:
        try:
            [result] = reward.score([(conversation, args.response)])
        except (JudgeInputError, BackendError) as e:
            print(f"grm score: {e}", file=sys.stderr)
            return 2
    out = result.to_dict()
    out["method"] = reward.tag
    if not args.raw:
        for s in out["samples"]:
            s.pop("text")
    print(json.dumps(out, indent=1, ensure_ascii=False))
    return 0


def loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to any address
        return False


def _serve(args: argparse.Namespace) -> int:
    import logging
    import os

    import uvicorn

    from flows.serving import Limits, create_app

    token = os.environ.get(args.token_env) or None
    if token is None and not loopback(args.host):
        print(f"grm serve: --host {args.host} is reachable from other machines: set a bearer token in the environment "
              f"variable {args.token_env} (or name another with --token-env); clients send 'Authorization: Bearer "
              "<token>'", file=sys.stderr)
        return 2
    built = _build_scorer(args, "serve")
    if built is None:
        return 2
    backend, reward = built
    limits = Limits(max_body_bytes=args.max_body_bytes, max_items=args.max_items, max_responses=args.max_responses,
                    max_chars=args.max_chars, max_queue_items=args.max_queue)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(name)s: %(message)s")  # outcomes, never bodies
    with backend:
        uvicorn.run(create_app(reward, limits, token=token), host=args.host, port=args.port, log_level="info",
                    limit_concurrency=args.max_connections)
    return 0
