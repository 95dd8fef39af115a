"""check_cypher's own time over the public dev golds (movies 488, northwind 635): median and total, 5 passes."""
import json, pickle, statistics, sys, time
from agent.cleanup import clean_cypher
from agent.schema_check import check_cypher
schemas = pickle.load(open("/tmp/schema-check-cost.pkl", "rb"))
res = {}
for g in ("movies", "northwind"):
    qs = [json.loads(l)["cypher"] for l in open(f"/work/shared/bench/dev/{g}.jsonl") if l.strip()]
    per = []
    for _ in range(5):
        t0 = time.perf_counter()
        for q in qs:
            check_cypher(clean_cypher(q), schemas[g])
        per.append((time.perf_counter() - t0) * 1000 / len(qs))
    res[g] = {"n": len(qs), "ms_per_query_median_of_5": round(statistics.median(per), 3)}
print(json.dumps(res))
