"""What every benchmark part shares: the machine record, the query list, percentiles, the
JSON writer, the in-process recommender and the Kafka stack (broker, topics, catalog, one
worker), each built once per run and only when a part asks for it.

Imports in bench/ point one way: entry points (the scripts with a ``__main__`` block:
run_all, soak, workers, topology, catalog_scale) import library modules (this one, the
parts floor, e2e, freshness and index_scale, summary, plots), never the other way, and no
entry point imports another (tests/unit/test_bench_imports.py). One part alone:
``bench/run_all.py --only floor``."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import random
import shlex
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "bench"
_out = [OUT]


def out_dir() -> Path:
    """Where this run writes (docs/bench unless run_all --out says otherwise)."""
    return _out[0]


def set_out_dir(path: Path) -> None:
    _out[0] = path.resolve()


RUN_ID = f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"
SEED = 20240611
LAST_WORKER_LOG = Path(tempfile.gettempdir()) / "srec-bench-last-worker.log"
OPTIONS: dict[str, Any] = {}  # the run's command-line options, recorded in every JSON

# Natural-language movie queries: a fixed list, shuffled once with SEED and cycled.
_QUERIES = [
    "a funny animated film for children",
    "a space adventure with robots",
    "a scary haunted house movie",
    "romantic comedy set in new york",
    "gritty crime drama about the mafia",
    "a western with gunfights and outlaws",
    "war film about soldiers in world war two",
    "a musical with lots of singing and dancing",
    "documentary about nature and animals",
    "a heist movie with a clever twist",
    "superhero action with explosions",
    "a coming of age story about teenagers",
    "film noir detective mystery",
    "a love story that ends in tragedy",
    "zombies attacking a small town",
    "courtroom drama about a murder trial",
    "a road trip comedy with two friends",
    "historical epic about ancient rome",
    "a psychological thriller with a serial killer",
    "martial arts fighting movie",
    "a sports movie about an underdog team",
    "time travel science fiction",
    "alien invasion of earth",
    "a christmas family movie",
    "a disaster movie with a volcano or earthquake",
    "dark comedy about a dysfunctional family",
    "spy thriller with secret agents",
    "a fantasy quest with dragons and wizards",
    "a submarine or naval battle film",
    "a biography of a famous musician",
    "a prison escape drama",
    "vampires in a gothic horror film",
    "a teen slasher movie at summer camp",
    "an adaptation of a jane austen novel",
    "a buddy cop action comedy",
    "a movie about dinosaurs",
    "a gangster film set in the 1930s",
    "a sad drama about illness and family",
    "a silly parody of other movies",
    "a cartoon with talking animals",
    "cyberpunk future with hackers and virtual reality",
    "a boxing movie",
    "a political thriller about a conspiracy",
    "pirates on the high seas",
    "a movie about a dog",
    "a quirky independent comedy",
    "a thriller set on a plane",
    "a classic hollywood screwball comedy",
    "vietnam war drama",
    "a monster movie with a giant creature",
]


def queries(n: int, seed: int = SEED) -> list[str]:
    """``n`` query texts: the fixed list shuffled with ``seed`` and cycled."""
    order = list(_QUERIES)
    random.Random(seed).shuffle(order)
    return [order[i % len(order)] for i in range(n)]


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def pct(values: Iterable[float], *qs: float) -> dict[str, float | None]:
    """Percentiles as {"p50": ..}; None for an empty list."""
    arr = np.asarray(list(values), dtype=np.float64)
    out: dict[str, float | None] = {}
    for q in qs:
        key = f"p{q:g}"
        out[key] = round(float(np.percentile(arr, q)), 3) if arr.size else None
    return out


def median(values: Iterable[float]) -> float | None:
    vals = list(values)
    return round(statistics.median(vals), 3) if vals else None


def stage_medians(timings: Sequence[Any]) -> dict[str, float | None]:
    """Medians of the per-stage timings that replies carry (schemas.Timings)."""
    stages = ("queue_ms", "embed_ms", "search_ms", "rank_ms", "total_ms")
    return {s: median(getattr(t, s) for t in timings) for s in stages}


def rss_mb() -> float:
    """This process's resident set size (VmRSS) in MiB."""
    try:
        import psutil

        return float(psutil.Process().memory_info().rss) / 2**20
    except ImportError:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def machine() -> dict[str, Any]:
    import hnswlib
    import torch

    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "cpu_model": cpu,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "numpy": np.__version__,
        "hnswlib": getattr(hnswlib, "__version__", "0.8"),
        "platform": platform.platform(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "load_avg_at_write": [round(x, 2) for x in os.getloadavg()],
    }


def write_json(part: str, results: dict[str, Any], settings: dict[str, Any]) -> Path:
    """docs/bench/<part>.json with the machine, the settings and the command."""
    out_dir().mkdir(parents=True, exist_ok=True)
    doc = {
        "part": part,
        "run_id": RUN_ID,
        "command": " ".join(shlex.quote(a) for a in [Path(sys.executable).name, *sys.argv]),
        "machine": machine(),
        "settings": settings,
        "bench_options": OPTIONS,
        "results": results,
    }
    path = out_dir() / f"{part}.json"
    path.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    log(f"wrote {path}")
    return path


def read_json(part: str) -> dict[str, Any] | None:
    path = out_dir() / f"{part}.json"
    return json.loads(path.read_text()) if path.exists() else None


def settings_record(settings: Any) -> dict[str, Any]:
    """Every setting of the run (credentials left out)."""
    secret = {"sasl_username", "sasl_password", "ssl_cafile"}
    return dict(settings.model_dump(mode="json", exclude=secret))


class Context:
    """Lazily built, shared by the parts of one run; ``close()`` stops what it started."""

    def __init__(
        self,
        quick: bool = False,
        torch_threads: int | None = None,
        model_settings: dict[str, str] | None = None,
    ) -> None:
        self.quick = quick
        self.torch_threads = torch_threads  # None: the package's default (all cores)
        # settings for the in-process pipeline AND the worker (the worker's environment
        # drops SREC_* variables, so --set is the way to change them)
        self.model_settings = dict(model_settings or {})
        self._stack = ExitStack()
        self._tmp = Path(tempfile.mkdtemp(prefix="srec-bench-"))
        self._movies: list[Any] | None = None
        self._settings: Any = None
        self._recommender: Any = None
        self._client: Any = None
        self.worker: Any = None
        self.results: dict[str, dict[str, Any]] = {}

    # --- data and settings -----------------------------------------------------------------
    def movies(self) -> list[Any]:
        if self._movies is None:
            from streaming_rec_dev.datasets.movielens import load_movies

            self._movies = load_movies("ml-1m")
        return self._movies

    def settings(self, bootstrap: str | None = None) -> Any:
        """Settings with a unique topic prefix; the bootstrap is set once the broker is up."""
        from streaming_rec.config import load_settings
        from streaming_rec_dev.devstack import free_port_pair

        if self._settings is None or bootstrap is not None:
            bootstrap = bootstrap or "127.0.0.1:9"  # no broker needed in process
            tag = RUN_ID.rsplit("-", 1)[1]
            self._settings = load_settings(
                **self.model_settings,
                bootstrap_servers=bootstrap,
                topic_prefix=f"bench{tag}.",
                app_id=f"srec-bench-{tag}",
                data_dir=self._tmp / "worker",
                web_port=free_port_pair(),
            )
        return self._settings

    # --- the in-process pipeline -----------------------------------------------------------
    def recommender(self) -> Any:
        """build_recommender(settings) with the ML-1M catalog embedded and indexed in process,
        the same item text and metadata as the worker builds from the `items` messages."""
        if self._recommender is None:
            from streaming_rec.bootstrap import build_recommender, limit_blas_threads
            from streaming_rec.core.catalog import ItemMeta, item_text

            log("in-process recommender: loading the model and embedding the catalog")
            if self.torch_threads:
                import torch

                torch.set_num_threads(self.torch_threads)
            limit_blas_threads(self.settings())  # as the worker does (SREC_BLAS_THREADS)
            rec = build_recommender(self.settings())
            movies = self.movies()
            started = time.perf_counter()
            vectors = rec.embed_items([item_text(m.title, "", m.genres) for m in movies])
            metas = [
                ItemMeta(m.item_id, m.title, tuple(m.genres), {"year": m.year} if m.year else {})
                for m in movies
            ]
            # (meta, v_c, v_f) while the service carries collaborative factors, else (meta, v)
            with_factors = hasattr(rec, "factor_dim")
            pairs = zip(metas, vectors, strict=True)
            rec.apply_items([(m, v, None) if with_factors else (m, v) for m, v in pairs])
            log(f"catalog of {len(movies)} embedded in {time.perf_counter() - started:.1f} s")
            self._recommender = rec
        return self._recommender

    # --- the Kafka stack -------------------------------------------------------------------
    def client(self) -> Any:
        """A warm RecClient on a stack of our own (broker unless KAFKA_BOOTSTRAP_SERVERS,
        topics with a unique prefix, the ML-1M catalog, ONE worker process)."""
        if self._client is None:
            self._start_stack()
        return self._client

    def _start_stack(self) -> None:
        from streaming_rec.edge.admin import ensure_topics
        from streaming_rec.edge.client import RecClient
        from streaming_rec.topics import TopicCatalog
        from streaming_rec_dev.devstack import WorkerProcess, local_broker, worker_env

        log("starting the broker (or using KAFKA_BOOTSTRAP_SERVERS)")
        bootstrap = self._stack.enter_context(local_broker(self._tmp / "kafka"))
        settings = self.settings(bootstrap)
        ensure_topics(settings, TopicCatalog.load())
        client = self._stack.enter_context(RecClient(settings))
        movies = self.movies()
        for movie in movies:
            client.upsert_item(movie.as_item())
        client.flush()
        log(f"published {len(movies)} movies to {settings.topic('items')}; starting one worker")
        extra = {}
        if self.torch_threads:
            extra = {k: str(self.torch_threads) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
        extra.update({f"SREC_{k.upper()}": str(v) for k, v in self.model_settings.items()})
        env = worker_env(settings, "bench-worker", **extra)
        worker = WorkerProcess(env, self._tmp / "worker.log", settings.web_port)
        worker.start()
        self._stack.callback(self._stop_worker, worker)
        started = time.monotonic()
        worker.wait_ready(min_items=len(movies), timeout=600)
        log(f"worker ready with the catalog in {time.monotonic() - started:.1f} s")
        self.worker = worker
        self._client = client
        # warm the path once (model, partitions, producer metadata)
        client.ask("bench-warm", "a warm-up query", timeout=60)

    @staticmethod
    def _stop_worker(worker: Any) -> None:
        if worker.alive():
            log("stopping the worker")
            try:
                worker.stop(timeout=30)
            except RuntimeError as exc:
                log(str(exc))

    def worker_log_tail(self, lines: int = 30) -> str:
        return self.worker.log_tail(lines) if self.worker is not None else ""

    def stop_stack(self) -> None:
        """Stop the worker, the client and the broker (before the parts that need no Kafka)."""
        self._stack.close()
        self._client = None

    def close(self) -> None:
        self._stack.close()
        import shutil

        log_file = self._tmp / "worker.log"
        if log_file.exists():  # kept outside the repo for a look after the run
            shutil.copy(log_file, LAST_WORKER_LOG)
            log(f"worker log kept in {LAST_WORKER_LOG}")

        shutil.rmtree(self._tmp, ignore_errors=True)
