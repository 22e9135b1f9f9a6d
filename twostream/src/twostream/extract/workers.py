"""The extraction worker processes: how many, how each starts, how they are stopped at once."""

from __future__ import annotations

import multiprocessing
import os
import signal
from concurrent.futures import ProcessPoolExecutor

import cv2

from twostream.errors import OptionError

__all__ = ["init_worker", "stop_workers", "worker_count"]


def worker_count(workers: int | None) -> int:
    """``workers``, or one per CPU when None (:class:`OptionError` below 1)."""
    workers = (os.cpu_count() or 1) if workers is None else workers
    if workers < 1:
        raise OptionError(f"--workers must be at least 1, got {workers}")
    return workers


def init_worker() -> None:
    """Runs first in every worker process."""
    # One OpenCV thread per process: parallelism comes from the pool, not from oversubscribing.
    cv2.setNumThreads(1)
    # Ctrl-C reaches the whole process group: the parent alone handles it (and stops the
    # workers), so a worker never swallows it and moves on to its next queued clip.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:  # Linux: die with the parent, so `kill -9` of the run leaves no worker writing on.
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def stop_workers(pool: ProcessPoolExecutor, others: set) -> None:
    """Stop now (Ctrl-C, disk full): queued jobs are cancelled and the ones in progress killed;
    their half-written folders are hidden and removed by the next run. ``others`` are the
    child processes that existed before the pool, which are left alone."""
    pool.shutdown(wait=False, cancel_futures=True)
    for worker in set(multiprocessing.active_children()) - others:
        worker.terminate()
