# bench/workload.py: the "real program" workload, run by python3 with the
# allocator under test preloaded. Fixed work (scaled by argv[1]): dicts of
# strings, lists of tuples, sorting, JSON round trips, string building —
# the object churn of ordinary Python code. Prints a checksum.
import json
import sys

scale = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
n = max(1, int(40000 * scale))
total = 0
for rnd in range(3):
    d = {f"key{i}-{rnd}": str(i) * (i % 7 + 1) for i in range(n)}
    rows = [(v, k, len(v)) for k, v in d.items()]
    rows.sort()
    text = json.dumps(rows[: n // 2])
    back = json.loads(text)
    parts = []
    for r in back[:: 3]:
        parts.append(r[1].upper() + ":" + r[0][:5])
    s = ",".join(parts)
    total += len(s) + len(back)
    del d, rows, text, back, parts, s
print("workload.py: checksum", total)
