"""Load on the web tutor: N sessions ask at once; every one must be answered.

    python scripts/load_web.py MODEL [--variant V] [--sessions 8] [--url http://127.0.0.1:7860/]

Starts the tutor on a free loopback port (or uses --url, a running `tracetutor web`), opens N
Gradio client sessions (each its own session state, as N browser tabs), loads the model in
each, then all press Solve at the same moment. Prints, over the sessions, p50 and p95 of the
time from pressing Solve to the first step on screen (the first update that shows step text)
and to the answer (the finished exchange). The engine answers one question at a time, so the
last session waits for the others: that queue is what this measures.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time

QUESTION = "Mia has 8 apples, gets 11 more and eats 4. How many are left?"


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


def shows_a_step(chat) -> bool:
    return any(m.get("role") == "assistant" and "Step 1" in str(m.get("content")) for m in chat or [])


def session(url: str, folder: str, variant: str, start: threading.Barrier, out: dict, i: int) -> None:
    from gradio_client import Client

    client = Client(url, verbose=False, analytics_enabled=False, download_files=False)
    client.predict(folder, variant, api_name="/load_model")
    start.wait()
    t0 = time.perf_counter()
    first = None
    job = client.submit(QUESTION, True, 1, 0.0, api_name="/solve")
    for update in job:
        if first is None and shows_a_step(update[0]):
            first = time.perf_counter() - t0
    chat = job.outputs()[-1][0]
    answered = any("Answer:" in str(m.get("content")) or "no answer" in str(m.get("content")) for m in chat)
    out[i] = {"first_step_s": first, "answer_s": time.perf_counter() - t0, "answered": answered}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", help="a recipe name, recipe file or model folder")
    p.add_argument("--variant", default=None, help="default: the model's preferred variant (GGUF first)")
    p.add_argument("--sessions", type=int, default=8)
    p.add_argument("--url", default=None, help="a running tutor (default: start one here)")
    args = p.parse_args()

    from tracetutor.apps.web import build_app, catalog_for, launch

    catalog, start, notice = catalog_for(args.model, args.variant)
    if notice or start is None:
        print(f"load_web: {notice or 'no model'}", file=sys.stderr)
        return 2
    folder, variant = start
    app = None
    url = args.url
    if url is None:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        app = build_app(catalog, start=start)
        url = launch(app, "127.0.0.1", port)
    results: dict[int, dict] = {}
    barrier = threading.Barrier(args.sessions)
    threads = [threading.Thread(target=session, args=(url, folder, variant, barrier, results, i))
               for i in range(args.sessions)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    if app is not None:
        app.close()

    answered = [r for r in results.values() if r["answered"]]
    firsts = [r["first_step_s"] for r in results.values() if r["first_step_s"] is not None]
    answers = [r["answer_s"] for r in results.values()]
    print(f"{len(answered)}/{args.sessions} sessions answered ({variant} of {folder}, {wall:.1f} s in all)")
    if firsts:
        print(f"time to first step: p50 {percentile(firsts, .5):.2f} s, p95 {percentile(firsts, .95):.2f} s "
              f"({len(firsts)} sessions showed a step)")
    if answers:
        print(f"time to the answer: p50 {percentile(answers, .5):.2f} s, p95 {percentile(answers, .95):.2f} s "
              f"(mean {statistics.mean(answers):.2f} s)")
    return 0 if len(answered) == args.sessions else 1


if __name__ == "__main__":
    sys.exit(main())
