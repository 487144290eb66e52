"""The ``medrag`` command: a thin layer over the Python API."""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from medrag.errors import MedRAGError
from medrag.settings import RETRIEVERS, Settings
from medrag.evaluation.cli import register as register_eval
from medrag.server.cli import register as register_server
from medrag.training.generator_cli import register as register_train_generator

log = logging.getLogger("medrag")


def _settings_args(parser: argparse.ArgumentParser, build: bool) -> None:
    parser.add_argument("--index", required=True, type=Path, help="index directory")
    parser.add_argument("--key-file", type=Path, help="an encrypted index's key: a file holding its passphrase "
                                                      "(default: $MEDRAG_INDEX_KEY)")
    parser.add_argument("--threads", type=int, help="CPU threads for torch and FAISS (default: all cores)")
    parser.add_argument("--set", dest="assignments", action="append", default=[], metavar="KEY=VALUE",
                        help="change one setting (repeatable), e.g. --set chunk_tokens=128")
    if build:
        parser.add_argument("--preset", default="default", help="named settings preset (default, hnsw, gpt2)")
        parser.add_argument("--embedder", help="sentence-transformers model name or directory")
        parser.add_argument("--index-type", help='FAISS factory string, e.g. "Flat" or "HNSW32"')
        parser.add_argument("--encrypt", action="store_true",
                            help="encrypt the new index at rest (AES-256-GCM; key from --key-file or "
                                 "$MEDRAG_INDEX_KEY; an encrypted index stays encrypted)")


def _passphrase(args: argparse.Namespace) -> str | None:
    """The index key from ``--key-file``, else ``$MEDRAG_INDEX_KEY``, else None."""
    from medrag.stores.sealed import passphrase

    return passphrase(args.key_file)


def _cmd_ingest(args: argparse.Namespace) -> int:
    from medrag import MedRAG
    from medrag.sources import PubMedQuery
    from medrag.sources.entrez import NCBI_EUTILS

    changes = {**Settings.parse_assignments(args.assignments), "embedder": args.embedder,
               "index_type": args.index_type, "threads": args.threads,
               "ingest.notes_already_deidentified": True if args.notes_already_deidentified else None,
               "ingest.deid_shift_dates": True if args.shift_dates else None}
    from medrag.deid import index_keyed
    from medrag.stores import layout
    from medrag.stores.sealed import IndexKeyError

    key = _passphrase(args)
    if args.encrypt and key is None:
        raise IndexKeyError("--encrypt needs a key: --key-file FILE or $MEDRAG_INDEX_KEY (any passphrase, e.g. "
                            "a random base64 string)")
    if (args.index / layout.MANIFEST).exists():
        if args.encrypt and not layout.is_encrypted(layout.read_manifest(args.index)):
            raise MedRAGError(f"index {args.index} is not encrypted, and encrypting it in place would leave its "
                              f"plaintext on the disk: ingest into a new directory with --encrypt")
        rag = MedRAG.load(args.index, key=key, **changes)
        log.info("adding to the existing index %s (%d chunks)", args.index, rag.chunks.count())
    else:
        rag = MedRAG(Settings.preset(args.preset, **changes), key=key if args.encrypt else None)
    if rag.key is not None and args.engine == "ray":
        raise MedRAGError("--engine ray writes plaintext embedding shards beside the index: ingest an encrypted "
                          "index with the local engine")
    pubmed = PubMedQuery(email=args.email or os.environ.get("NCBI_EMAIL"), download_dir=args.index / "downloads",
                         max_records=args.max, api_key=args.api_key or os.environ.get("NCBI_API_KEY"),
                         base_url=args.eutils_url or NCBI_EUTILS)
    if args.engine == "ray":
        from medrag.distributed import ingest_ray

        report = ingest_ray(rag, args.paths, args.index, address=args.address, workers=args.workers,
                            threads=args.threads, skip_bad=args.skip_bad, progress=not args.quiet, pubmed=pubmed)
    else:
        if args.address or args.workers:
            raise MedRAGError("--address and --workers apply to --engine ray")
        with index_keyed(rag.key):  # notes' pseudonyms keyed by the encrypted index's key: stable across runs
            report = rag.ingest(args.paths, save_to=args.index, skip_bad=args.skip_bad, progress=not args.quiet,
                                pubmed=pubmed)
    print(report.summary(), file=sys.stderr)
    print(f"index: {args.index} ({rag.chunks.count_documents()} documents, {rag.chunks.count()} chunks)")
    return 0


def _cmd_ask(args: argparse.Namespace) -> int:
    from medrag import MedRAG

    if not args.question.strip():
        raise MedRAGError('empty question: ask something, e.g. medrag ask "What causes anemia?" --index DIR')
    rag = MedRAG.load(args.index, **Settings.parse_assignments(args.assignments), embedder=args.embedder,
                      threads=args.threads, openai_base_url=args.base_url, key=_passphrase(args))
    streamed = False

    def show(piece: str) -> None:
        nonlocal streamed
        if not streamed:
            print("(generating, unchecked)\n", file=sys.stderr, flush=True)
            streamed = True
        print(piece, end="", flush=True, file=sys.stderr if args.json else sys.stdout)

    answer = rag.ask(args.question, k=args.k, generator=args.generator, where=args.filter, retriever=args.retriever,
                     context=args.context, strict=args.strict or None, on_token=show if args.stream else None)
    if streamed and not args.json:
        print("\n\n--- checked answer ---")
    print(answer.to_json() if args.json else answer.render())
    return 0


def _cmd_case(args: argparse.Namespace) -> int:
    from medrag import MedRAG

    note = sys.stdin.read() if str(args.note) == "-" else _read_note(args.note)
    key = _passphrase(args)  # --similar-index is opened with the same key
    rag = MedRAG.load(args.index, **Settings.parse_assignments(args.assignments), threads=args.threads, key=key)
    notes = MedRAG.load(args.similar_index, threads=args.threads, key=key) if args.similar_index else None
    found = rag.case(note, k=args.k, similar=args.similar, strict=args.strict or None, similar_from=notes)
    print(json.dumps(found.to_dict(), ensure_ascii=False) if args.json else found.render())
    return 0


def _read_note(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MedRAGError(f"cannot read the note {path}: {exc}") from exc


def _cmd_info(args: argparse.Namespace) -> int:
    from medrag import MedRAG

    info = MedRAG.load(args.index, threads=args.threads, key=_passphrase(args)).info(speed=True)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"index:     {args.index}\ndocuments: {info['documents']}\nchunks:    {info['chunks']}\n"
          f"embedder:  {info['embedder']}\nembedding: {info['embedding']['path']} (runs here as "
          f"{info['embedding']['runs_as']}, {info['embedding']['texts_per_second']:.0f} texts/s on this CPU, class "
          f"{info['embedding']['cpu_class']})\nindex type: {info['index_type']}"
          + ("" if info["index_trained"] else " (too few vectors to train yet: searched exactly)")
          + f"\nsegments:  {info['segments']} ({info['deleted_vectors']} deleted vectors awaiting 'medrag compact')"
          + "\nsources:")
    for kind, counts in sorted(info["sources"].items()):
        print(f"  {kind}: {counts['documents']} documents, {counts['chunks']} chunks")
    print("settings:", json.dumps(info["settings"], sort_keys=True))
    return 0


def _cmd_compact(args: argparse.Namespace) -> int:
    from medrag import MedRAG

    rag = MedRAG.load(args.index, threads=args.threads, key=_passphrase(args))
    done = rag.compact(args.index)
    print(f"compacted {args.index}: {done['segments_before']} vector segments -> {done['segments_after']}, "
          f"{done['chunks']} chunks")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from medrag import training

    config = training.TrainConfig(base=args.base, epochs=args.epochs, batch_size=args.batch_size,
                                  learning_rate=args.learning_rate, max_pairs=args.max_pairs, seed=args.seed,
                                  threads=args.threads or 0, negatives=getattr(args, "negatives", 1),
                                  hard_negatives=getattr(args, "hard_negatives", 0),
                                  loss=getattr(args, "loss", "mnrl"), max_seq_length=args.max_seq_length,
                                  device=args.device or "")
    pairs = training.training_pairs(args.data)
    print(f"training on {min(len(pairs), args.max_pairs or len(pairs))} of {len(pairs)} question-passage pairs",
          file=sys.stderr)
    train = training.train_embedder if args.kind == "embedder" else training.train_reranker
    out = train(pairs, args.out, config)
    use = f"--embedder {out}" if args.kind == "embedder" else f"--set reranker={out}"
    print(f"{args.kind}: {out} (use it with {use})")
    return 0


def _train_parser(sub: argparse._SubParsersAction, kind: str, help_text: str, batch_size: int,
                  learning_rate: float) -> argparse.ArgumentParser:
    parser = sub.add_parser(f"train-{kind}", help=help_text)
    parser.add_argument("--data", required=True, nargs="+", type=Path,
                        help="BioASQ golden files and PubMedQA-format files (training splits only), or folders")
    parser.add_argument("--out", required=True, type=Path, help="model directory to write")
    parser.add_argument("--base", default="all-MiniLM-L6-v2", help="model to start from (name or directory)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=batch_size)
    parser.add_argument("--learning-rate", type=float, default=learning_rate)
    parser.add_argument("--max-pairs", type=int, default=0, help="train on a random sample of this many pairs")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--max-seq-length", type=int, default=128, help="tokens per text while training (default 128)")
    parser.add_argument("--threads", type=int, help="CPU threads for torch (default: all cores)")
    parser.add_argument("--device", help="torch device, e.g. cpu or cuda (default: a GPU when there is one)")
    parser.set_defaults(run=_cmd_train, kind=kind)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="medrag", description="Offline medical question answering with citations.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    sub = parser.add_subparsers(dest="command", required=True)

    ingest = sub.add_parser("ingest", help="add files, folders or corpus recipes to an index")
    ingest.add_argument("paths", nargs="+", help="files, folders or corpora/*.toml recipes")
    _settings_args(ingest, build=True)
    ingest.add_argument("--skip-bad", action="store_true", help="skip unreadable files and list them at the end")
    ingest.add_argument("--quiet", action="store_true", help="no progress bars")
    notes = ingest.add_argument_group("clinical notes (always de-identified before anything is stored)")
    notes.add_argument("--notes-already-deidentified", action="store_true",
                       help="the notes carry no protected health information: do not de-identify them "
                            "(recorded in the index's settings)")
    notes.add_argument("--shift-dates", action="store_true",
                       help="shift each patient's dates by a keyed offset instead of removing them "
                            "(intervals stay meaningful; key from $MEDRAG_DEID_KEY)")
    dist = ingest.add_argument_group("distributed embedding (pip install 'medrag[ray]')")
    dist.add_argument("--engine", choices=("local", "ray"), default="local",
                      help="local (default), or ray: embed shards on a Ray pool, then merge into the index")
    dist.add_argument("--address", help="ray: join the cluster at this address (default: start a local Ray)")
    dist.add_argument("--workers", type=int, help="ray: embedding actors (default: one per two local cores)")
    live = ingest.add_argument_group("live PubMed (paths of the form pubmed:QUERY)")
    live.add_argument("--max", type=int, default=1000, help="most citations to fetch per query (default 1000)")
    live.add_argument("--email", help="your email, sent to NCBI as E-utilities require (or $NCBI_EMAIL)")
    live.add_argument("--api-key", help="NCBI API key: 10 requests/s instead of 3 (or $NCBI_API_KEY)")
    live.add_argument("--eutils-url", help="E-utilities base URL (default: NCBI's; a mirror, or a test server)")
    ingest.set_defaults(run=_cmd_ingest)

    ask = sub.add_parser("ask", help="answer a question from an index, with citations")
    ask.add_argument("question")
    _settings_args(ask, build=False)
    ask.add_argument("--k", type=int, help="passages to retrieve (default: the index's setting)")
    ask.add_argument("--generator", help="extractive, a Hugging Face model name, or a local model directory")
    ask.add_argument("--retriever", choices=RETRIEVERS, help="dense, bm25 or hybrid (default: the index's setting)")
    ask.add_argument("--filter", help='metadata filter, e.g. "year>=2015,source_type=pubmed|guideline,journal=Lancet"')
    ask.add_argument("--embedder", help="must be the embedder the index was built with")
    ask.add_argument("--context", help='patient context, e.g. "72-year-old woman, CKD stage 3, on metformin" '
                                       "(used for retrieval and the prompt, stored nowhere)")
    ask.add_argument("--strict", action="store_true", help="drop answer sentences their citations do not support")
    ask.add_argument("--json", action="store_true", help="print the answer as one JSON object")
    ask.add_argument("--stream", action="store_true",
                     help="print a language model's text as it is generated (then the checked, cited answer)")
    ask.add_argument("--base-url", help="openai:MODEL generators: the chat-completions server, e.g. "
                                        "http://localhost:8000/v1 (key from $OPENAI_API_KEY)")
    ask.set_defaults(run=_cmd_ask)

    case = sub.add_parser("case", help="a clinical note's problems with cited evidence (de-identified in memory, "
                                       "stored nowhere)")
    case.add_argument("note", type=Path, help="the note's text file, or - to read it from standard input")
    _settings_args(case, build=False)
    case.add_argument("--k", type=int, help="passages per problem (default: the index's setting)")
    case.add_argument("--similar", type=int, default=0, metavar="N", help="also list the N most similar notes")
    case.add_argument("--similar-index", type=Path, help="the notes index to find similar notes in (default: --index)")
    case.add_argument("--strict", action="store_true", help="drop answer sentences their citations do not support")
    case.add_argument("--json", action="store_true", help="print the analysis as one JSON object")
    case.set_defaults(run=_cmd_case)

    info = sub.add_parser("info", help="what an index holds and how it was built")
    _settings_args(info, build=False)
    info.add_argument("--json", action="store_true", help="print as JSON")
    info.set_defaults(run=_cmd_info)

    compact = sub.add_parser("compact", help="merge an index's vector segments into one, without deleted vectors "
                                             "(atomic; also converts an index of the previous format)")
    _settings_args(compact, build=False)
    compact.set_defaults(run=_cmd_compact)

    embedder = _train_parser(sub, "embedder", "fine-tune the embedder on question-passage pairs (in-batch negatives)",
                             batch_size=64, learning_rate=5e-5)
    embedder.add_argument("--hard-negatives", type=int, default=0,
                          help="BM25-mined negatives per pair beside the in-batch ones (default 0)")
    embedder.add_argument("--loss", choices=("mnrl", "gist"), default="mnrl",
                          help="mnrl (default), or gist: the base model masks likely false in-batch negatives")
    reranker = _train_parser(sub, "reranker", "train a cross-encoder reranker on question-passage pairs",
                             batch_size=32, learning_rate=5e-5)
    reranker.add_argument("--negatives", type=int, default=1, help="BM25-mined negatives per pair (default 1)")
    register_train_generator(sub)

    register_eval(sub)
    register_server(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.run(args)
    except MedRAGError as exc:
        print(f"medrag: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `medrag ask ... | head`
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        return 0
    except KeyboardInterrupt:
        print("medrag: interrupted; the last saved state of the index is intact", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
