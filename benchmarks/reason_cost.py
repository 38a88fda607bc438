"""What a reason costs: one text answered with and without ``include_reasoning`` on each
tier given, median of repeats, on this machine's CPU.

    python benchmarks/reason_cost.py [--model default --model vader] [--repeats 7]
"""

from __future__ import annotations

import argparse
import statistics
import time

REVIEW = ("I bought this blender after reading a lot of reviews and I have to say it does "
          "everything it promises. It crushes ice in seconds, the jar is easy to clean and "
          "it is quieter than my old one. The only thing I would change is the short power "
          "cord, but for the price it is a great machine and I would buy it again.")


def median_ms(model, text: str, reasoning: bool, repeats: int) -> float:
    model.predict([text], batch_size=1, include_reasoning=reasoning)  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        model.predict([text], batch_size=1, include_reasoning=reasoning)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", dest="models")
    parser.add_argument("--runtime", choices=["auto", "onnx", "torch"])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    from polarity.evaluate.setup import cpu
    from polarity.predictor import load_classifier

    machine = cpu()
    print(f"{len(REVIEW.split())}-word review; CPU {machine['name']}, {machine['cores']} "
          f"cores, {', '.join(machine['extensions']) or 'no AVX2'}")
    print("| model | runtime | answer only, ms | with a reason, ms | ratio |")
    print("|---|---|---|---|---|")
    for name in args.models or ["default", "vader"]:
        model = load_classifier(name, runtime=args.runtime)
        plain = median_ms(model, REVIEW, False, args.repeats)
        reason = median_ms(model, REVIEW, True, args.repeats)
        print(f"| {name} | {model.info.backend} {model.info.dtype} | {plain:.1f} | "
              f"{reason:.1f} | {reason / plain:.0f}x |")


if __name__ == "__main__":
    main()
