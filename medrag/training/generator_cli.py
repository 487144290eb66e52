"""``medrag train-generator``: teach a causal LM to write medrag's cited answers (or pretrain it on an index)."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from medrag.errors import MedRAGError

log = logging.getLogger(__name__)


def examples_for(args: argparse.Namespace, *, max_train: int, max_heldout: int, rag: Any = None,
                 splits: tuple[str, ...] = ("train", "heldout")) -> Any:
    """The ExampleSet of ``--examples FILE``, or one built from ``--data`` with ``--index``'s retriever."""
    from medrag.training.generator import ExampleSet, build_examples

    if args.examples and Path(args.examples).exists() and not args.data:
        return ExampleSet.load(args.examples)
    if not args.data:
        raise MedRAGError("give --data FILE|DIR... (BioASQ, PubMedQA or MedQuAD dev files) or --examples FILE")
    rag = rag or _index(args)
    examples = build_examples(rag, args.data, k=args.k, abstain_share=args.abstain_share,
                              heldout_share=args.heldout_share, max_train=max_train, max_heldout=max_heldout,
                              seed=args.seed, index=Path(args.index).resolve(), splits=splits, progress=True)
    if args.examples:
        examples.save(args.examples)
        print(f"examples: {args.examples}", file=sys.stderr)
    return examples


def _index(args: argparse.Namespace) -> Any:
    from medrag import MedRAG

    if not args.index:
        raise MedRAGError("give --index DIR: the index whose retriever finds the passages")
    return MedRAG.load(args.index, threads=args.threads)


def _cmd_train_generator(args: argparse.Namespace) -> int:
    from medrag.training.generator import ExampleSet, GeneratorConfig, corpus_texts, train_generator

    config = GeneratorConfig(base=args.base, from_scratch=args.from_scratch or "", objective=args.objective,
                             lora=args.lora, lora_r=args.lora_r, lora_targets=args.lora_targets, epochs=args.epochs,
                             max_steps=args.max_steps, max_seconds=args.max_minutes * 60, batch_size=args.batch_size,
                             grad_accum=args.grad_accum,
                             learning_rate=args.learning_rate, device=args.device or "", seed=args.seed,
                             threads=args.threads or 0, resume=args.resume, save_steps=args.save_steps,
                             progress=not args.quiet)
    if args.objective == "clm":
        if args.examples and Path(args.examples).exists() and not args.index:
            texts = ExampleSet.load(args.examples).texts
        else:
            texts = corpus_texts(_index(args), limit=args.max_examples, seed=args.seed)
        print(f"continued pretraining on {len(texts)} chunk texts", file=sys.stderr)
        out = train_generator(args.out, config, texts=texts)
    else:
        examples = examples_for(args, max_train=args.max_examples, max_heldout=200)
        print(f"training on {len(examples.train)} examples ({examples.sources('train')}), "
              f"{len(examples.heldout)} held out", file=sys.stderr)
        out = train_generator(args.out, config, examples)
    print(f"generator: {out} (use it with --generator {out})")
    return 0


def add_example_args(parser: argparse.ArgumentParser) -> None:
    """The options that choose and build examples (shared with ``medrag eval generator``)."""
    parser.add_argument("--index", type=Path, help="index directory: its retriever finds each question's passages")
    parser.add_argument("--data", nargs="+", type=Path,
                        help="BioASQ golden files, PubMedQA-format files, MedQuAD XML files, or folders (dev only)")
    parser.add_argument("--examples", type=Path,
                        help="examples file (.json or .json.gz): written when --data is given, read otherwise")
    parser.add_argument("--k", type=int, help="passages retrieved per question (default: the index's setting)")
    parser.add_argument("--abstain-share", type=float, default=0.15,
                        help="share of examples whose passages belong to another question (default 0.15)")
    parser.add_argument("--heldout-share", type=float, default=0.2,
                        help="share of questions held out (by a hash of their id) for evaluation (default 0.2)")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--threads", type=int, help="CPU threads for torch and FAISS (default: all cores)")


def register(subparsers: Any) -> None:
    """Add ``train-generator`` to ``medrag``'s subcommands."""
    parser = subparsers.add_parser(
        "train-generator", help="fine-tune a causal LM to write cited answers from medrag's own prompts")
    parser.add_argument("--base", required=True,
                        help="model name or directory to start from (with --from-scratch: its tokenizer)")
    parser.add_argument("--out", required=True, type=Path, help="model directory to write (use it as --generator)")
    add_example_args(parser)
    parser.add_argument("--objective", choices=("sft", "clm"), default="sft",
                        help="sft: cited answers (default); clm: continued pretraining on the index's chunk texts")
    parser.add_argument("--from-scratch", metavar="FIELDS",
                        help='random GPT-2 weights of these GPT2Config fields, e.g. "n_layer=6,n_embd=384,n_head=6"')
    parser.add_argument("--lora", action="store_true", help="train LoRA adapters, merged into the base when saved")
    parser.add_argument("--lora-r", type=int, default=16)
    parser.add_argument("--lora-targets", default="",
                        help="modules to adapt, e.g. q_proj,v_proj (default: peft's choice for the model type)")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--max-steps", type=int, default=0, help="stop after this many optimizer steps")
    parser.add_argument("--max-minutes", type=float, default=0.0, help="stop once training took this long")
    parser.add_argument("--max-examples", type=int, default=0,
                        help="train on at most this many examples (clm: chunk texts); default all")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--grad-accum", type=int, default=1, help="batches per optimizer step")
    parser.add_argument("--learning-rate", type=float, default=5e-5)
    parser.add_argument("--save-steps", type=int, default=200, help="checkpoint every N steps (for --resume)")
    parser.add_argument("--device", help="torch device, e.g. cpu or cuda (default: a GPU when there is one)")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run from its last checkpoint")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=_cmd_train_generator)
