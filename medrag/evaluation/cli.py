"""``medrag eval``: question-answering and retrieval evaluation from the command line."""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from medrag.evaluation.datasets import DATASETS, RETRIEVAL_DATASETS


def _load(args: argparse.Namespace) -> Any:
    """The index, with ``--retriever`` and ``--set`` changes applied."""
    from medrag import MedRAG, Settings
    from medrag.stores import sealed

    changes: dict[str, Any] = {**Settings.parse_assignments(args.assignments), "threads": args.threads,
                               "retrieval.retriever": args.retriever}
    return MedRAG.load(args.index, key=sealed.passphrase(getattr(args, "key_file", None)), **changes)


def _extra(args: argparse.Namespace) -> dict[str, Any]:
    return {"index": str(Path(args.index).resolve())}


def _cmd_qa(args: argparse.Namespace) -> int:
    from medrag.evaluation.harness import evaluate

    metrics = evaluate(_load(args), args.dataset, args.data, args.out, generator=args.generator, k=args.k,
                       limit=args.limit, no_retrieval=args.no_retrieval, mode=args.mode, progress=not args.quiet,
                       extra_config=_extra(args))
    print(json.dumps(metrics, indent=2))
    return 0


def _cmd_retrieval(args: argparse.Namespace) -> int:
    from medrag.evaluation.harness import evaluate_retrieval

    metrics = evaluate_retrieval(_load(args), args.dataset, args.data, args.out, k=args.k, limit=args.limit,
                                 progress=not args.quiet, extra_config=_extra(args))
    print(json.dumps(metrics, indent=2))
    return 0


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, type=Path, help="the set's file or folder, in its own format")
    parser.add_argument("--index", required=True, type=Path, help="index directory")
    parser.add_argument("--key-file", type=Path, help="an encrypted index's passphrase file "
                                                     "(default: $MEDRAG_INDEX_KEY)")
    parser.add_argument("--out", required=True, type=Path,
                        help="output folder (predictions.jsonl, metrics.json, config.json, report.md); "
                             "re-running into it resumes")
    parser.add_argument("--retriever", help="dense, bm25 or hybrid (default: the index's setting)")
    parser.add_argument("--limit", type=int, help="only the first N questions")
    parser.add_argument("--threads", type=int, help="CPU threads for torch and FAISS (default: all cores)")
    parser.add_argument("--set", dest="assignments", action="append", default=[], metavar="KEY=VALUE",
                        help="change a query-time setting (repeatable), e.g. --set retrieval.reranker=DIR --set index.options.nprobe=32")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def register(subparsers: Any) -> None:
    """Add ``eval`` (``medrag eval DATASET ...`` and ``medrag eval retrieval ...``) to ``medrag``'s subcommands."""
    evaluate = subparsers.add_parser("eval", help="evaluate question answering or retrieval on a medical QA set")
    sets = evaluate.add_subparsers(dest="eval_target", required=True, metavar="{DATASET,retrieval,generator}")
    for name in DATASETS:
        qa = sets.add_parser(name, help=f"answer the {name} questions and score the answers")
        _common(qa)
        qa.add_argument("--generator", help="extractive, a Hugging Face model name, or a local model directory")
        qa.add_argument("--k", type=int, help="passages per question (default: the index's setting)")
        qa.add_argument("--no-retrieval", action="store_true", help="closed book: no passages in the prompt")
        qa.add_argument("--mode", choices=("loglik", "generate"), default="loglik",
                        help="multiple choice with a language model: most likely option (default) or parsed answer")
        qa.set_defaults(run=_cmd_qa, dataset=name)
    retrieval = sets.add_parser("retrieval", help="score the ranked PMIDs against the gold documents")
    retrieval.add_argument("--dataset", required=True, choices=RETRIEVAL_DATASETS)
    _common(retrieval)
    retrieval.add_argument("--k", type=int, default=100, help="passages retrieved per question (default 100)")
    retrieval.set_defaults(run=_cmd_retrieval)
    from medrag.evaluation.generator_cli import register_generator

    register_generator(sets)
