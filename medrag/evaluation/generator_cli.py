"""``medrag eval generator``: a trained answer writer against its base model on held-out cited answers."""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from medrag.errors import MedRAGError


def _cmd_eval_generator(args: argparse.Namespace) -> int:
    from medrag import MedRAG
    from medrag.evaluation.generator import evaluate_generator
    from medrag.safety import SUPPORT_THRESHOLD, SupportChecker
    from medrag.training.generator import index_setting
    from medrag.training.generator_cli import examples_for

    if not args.index:
        raise MedRAGError("give --index DIR: its embedder checks the answers' citations")
    rag = MedRAG.load(args.index, threads=args.threads)
    cached = args.out / "examples.json.gz"
    if not args.data and not args.examples and cached.exists():
        args.examples = cached  # a re-run into the same --out resumes on the same examples
    examples = examples_for(args, max_train=0, max_heldout=args.limit or 0, rag=rag, splits=("heldout",))
    args.out.mkdir(parents=True, exist_ok=True)
    if not cached.exists():
        examples.save(cached)
    checker = SupportChecker(rag.embedder, index_setting(rag.settings, "support_threshold", SUPPORT_THRESHOLD))
    metrics = evaluate_generator(args.generator, examples, args.out, base=args.base, checker=checker,
                                 limit=args.limit, device=args.device or "", threads=args.threads or 0,
                                 predict_only=args.predict_only, progress=not args.quiet,
                                 extra_config={"index": str(Path(args.index).resolve())})
    print(json.dumps(metrics, indent=2))
    return 0


def register_generator(sets: Any) -> None:
    """Add ``generator`` to ``medrag eval``'s targets (``sets``: the eval subcommand's subparsers)."""
    from medrag.training.generator_cli import add_example_args

    parser = sets.add_parser("generator", help="score a trained answer writer (and its base) on held-out cited answers")
    parser.add_argument("--generator", required=True, help="the trained model directory (or any HF causal LM)")
    parser.add_argument("--base", help="the model it was trained from, scored on the same examples (base_* keys)")
    parser.add_argument("--out", required=True, type=Path,
                        help="output folder (metrics.json, config.json, predictions.jsonl, report.md); "
                             "re-running into it resumes")
    add_example_args(parser)
    parser.add_argument("--limit", type=int, help="only the first N held-out examples")
    parser.add_argument("--device", help="torch device for the likelihoods (answers are generated as medrag ask does)")
    parser.add_argument("--predict-only", action="store_true",
                        help="skip the support checker and ROUGE (a later run into the same --out adds them)")
    parser.add_argument("--quiet", action="store_true", help="no progress log")
    parser.set_defaults(run=_cmd_eval_generator)
