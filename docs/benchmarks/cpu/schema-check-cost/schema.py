"""The public dev graphs' schemas, read from the embedded FalkorDB (CYPHERLOOP_HOME=/tmp/any), for time.py."""
import pickle, sys
from agent.core.settings import load_settings
from agent.graphdb import open_graph
from agent.graphdb.loader import load_script
s = load_settings()
out = {}
for g in ("movies", "northwind"):
    store = open_graph(s, g)
    load_script(store, f"/work/shared/bench/graphs/{g}.cypher", replace=True, progress=False)
    out[g] = store.schema()
    store.close()
pickle.dump(out, open("/tmp/schema-check-cost.pkl", "wb"))
print({g: len(x.labels) for g, x in out.items()})
