"""Issue 14: no query may crash, wedge or exhaust the embedded FalkorDB, and its users survive a restart.

Each test reproduces one defect of the issue against the real embedded server; before the fix each failed
(the server died, the query ran for seconds, the agent answered with status=error, …).
"""

from __future__ import annotations

import os
import re
import signal
import threading

import pytest

from agent.core.errors import CypherExecutionError, QueryRefused, WriteRefused
from agent.factory import make_agent
from agent.graphdb import open_graph
from agent.graphdb.embedded import ServerInfo, ensure_running, running, stop
from agent.graphdb.loader import load_script
from agent.graphdb.readonly import guard_query
from agent.models.base import ScriptedGenerator
from tests.conftest import SHOP_SCRIPT

# --- defect 1: comments inside a procedure name crashed the server (signal 6 in its parser) ----------

CRASHERS = [
    "CALL db./**/labels()",
    "CALL db./* x */labels()",
    "CALL db.\n//x\nlabels()",
    "CALL db . /* a */ labels ( )",
]


@pytest.mark.parametrize("cypher", CRASHERS)
def test_a_comment_inside_a_procedure_name_does_not_crash_the_server(shop, cypher):
    pid = running_pid(shop)
    rows = shop.query(cypher).rows
    assert sorted(r[0] for r in rows) == ["Category", "Customer", "Order", "Product", "Supplier"]
    assert running_pid(shop) == pid  # the same process answered: it did not die and come back


def test_the_database_gets_the_canonical_text():
    assert guard_query("MATCH (n)  // who\n RETURN /* all */ n.name ;") == "MATCH (n) RETURN n.name"
    assert guard_query("CALL db.idx./**/fulltext.queryNodes('Product', 'lamp')") == (
        "CALL db.idx.fulltext.queryNodes('Product', 'lamp')")


@pytest.mark.parametrize("cypher", [
    "CALL dbms.procedures()",
    "CALL db.idx.fulltext./**/createNodeIndex('Product', 'name')",
    "CALL algo.nonexistent()",
    "CALL algo.labelPropagation({maxIterations: 100000000})",
    "CALL apoc.meta.graph()",
    "CALL `db`.`idx`.`fulltext`.`drop`('Product')",
])
def test_procedures_off_the_allow_list_are_refused(shop, cypher):
    with pytest.raises(QueryRefused):
        shop.query(cypher)


def test_allowed_procedures_still_run(shop):
    assert shop.query("CALL db.relationshipTypes() YIELD relationshipType RETURN count(*)").rows == [[6]]
    assert shop.query("CALL db.propertyKeys()").rows


# --- defect 8: a variable named like a keyword ------------------------------------------------------

@pytest.mark.parametrize("cypher", [
    "MATCH (create:Product) RETURN count(create)",
    "MATCH (set:Product) WITH set RETURN set.name ORDER BY set.name LIMIT 1",
    "UNWIND [1, 2] AS delete RETURN delete",
    "MATCH (merge:Customer) RETURN merge.name, count(merge) AS n ORDER BY n DESC LIMIT 1",
])
def test_a_variable_named_like_a_write_keyword_reads(shop, cypher):
    assert shop.query(cypher).rows


@pytest.mark.parametrize("cypher", [
    "MATCH (create) CREATE (x)",
    "MATCH (n) WITH n, count(*) AS c SET n.c = c",
    "MATCH (n) WITH n AS set DELETE set",
    "UNWIND [1] AS create CREATE (:Hacked)",
])
def test_a_keyword_named_variable_does_not_hide_a_write(cypher):
    with pytest.raises(WriteRefused):
        guard_query(cypher)


# --- defect 3: parsing is outside the timeout, so nesting is bounded before the database sees it -----

DEEP = {
    "parentheses": "RETURN " + "(" * 26 + "1" + ")" * 26,
    "lists": "RETURN " + "[" * 26 + "1" + "]" * 26,
    "maps": "RETURN " + "{a:" * 26 + "1" + "}" * 26,
    "case": "RETURN " + "CASE WHEN true THEN " * 26 + "1" + " END" * 26,
    "not": "RETURN " + "NOT " * 26 + "true",
    "minus": "RETURN " + "-" * 40 + "1",
    "comprehension": "RETURN " + "[x IN " * 26 + "[1]" + " | x]" * 26,
    "functions": "RETURN " + "abs(" * 26 + "1" + ")" * 26,
    "siblings": "RETURN " + ", ".join("(" * 9 + "1" + ")" * 9 + f" AS c{i}" for i in range(40)),
    "hops": "MATCH (a)" + "-[]->()" * 300 + " RETURN count(*)",
    "100k deep": "RETURN " + "(" * 100_000 + "1" + ")" * 100_000,
}


@pytest.mark.parametrize("name", DEEP)
def test_deep_nesting_is_refused_before_the_database(shop, name, monkeypatch):
    sent: list[str] = []
    monkeypatch.setattr(type(shop), "_reconnecting", lambda self, run, query=None: sent.append(query))
    with pytest.raises(QueryRefused):
        shop.query(DEEP[name])
    assert sent == []  # nothing reached the server


def test_nesting_a_person_writes_passes(shop):
    cypher = ("MATCH (c:Customer)-[:PLACED]->(o:Order) WHERE (c.city IN ['Berlin', 'Paris'] AND "
              "NOT (o.status = 'cancelled')) RETURN c.name, collect(CASE WHEN size([x IN [1, 2] | x]) > 1 "
              "THEN {n: (1 + (2 * 3))} ELSE null END)[0] AS m LIMIT 3")
    assert shop.query(cypher).rows


def test_a_long_query_is_refused(shop):
    with pytest.raises(QueryRefused, match="CYPHERLOOP_MAX_QUERY_CHARS"):
        shop.query("RETURN '" + "x" * 100_000 + "'")


# --- defects 4 and 5: the row cap runs in the database; huge lists are refused ------------------------

def test_the_row_cap_is_applied_in_the_database(shop):
    # the full result would fail at row 5000 (division by zero): the database stops at the cap first
    res = shop.query("UNWIND range(1, 10000) AS a UNWIND range(1, 100) AS b "
                     "RETURN 1 / (a * 100 + b - 5000) AS y", max_rows=1000)
    assert len(res.rows) == 1000 and res.truncated
    assert shop.query("UNWIND range(1, 1000) AS x RETURN x", max_rows=1000).truncated is False
    assert len(shop.query("UNWIND range(1, 50) AS x RETURN x LIMIT 7", max_rows=10).rows) == 7


def test_a_cartesian_product_stops_at_the_cap(shop):
    res = shop.query("UNWIND range(1, 1000) AS a UNWIND range(1, 1000) AS b "
                     "RETURN a, b, 1 / (a - 2) AS boom", max_rows=500)
    assert len(res.rows) == 500 and res.truncated


@pytest.mark.parametrize("cypher", [
    "UNWIND range(1, 100000000) AS x RETURN x",
    "RETURN size(range(0, 1000000000, 2))",
    "WITH 100000000 AS n UNWIND range(1, n) AS x RETURN count(x)",
    "UNWIND range(1, 10000) AS a UNWIND range(1, 10000) AS b RETURN count(*)",
])
def test_huge_ranges_are_refused(shop, cypher):
    with pytest.raises(QueryRefused, match="range"):
        shop.query(cypher)


@pytest.mark.parametrize("cypher", [
    "RETURN size(reduce(l = [1], x IN range(1, 40) | l + l))",  # 2^40 values: the kernel killed the server
    "RETURN reduce(s = 'x', x IN range(1, 40) | s + s)",
    "RETURN replace(replace(replace('aaaaaaaaaa', 'a', 'aaaaaaaaaa'), 'a', 'aaaaaaaaaa'), 'a', 'aaaaaaaaaa')",
])
def test_expressions_that_grow_past_every_limit_are_refused(shop, cypher):
    with pytest.raises(QueryRefused):
        shop.query(cypher)


# --- reduce() is read-only: it runs unless it could outgrow every limit ----------------------------------

@pytest.mark.parametrize("cypher, rows", [
    ("RETURN reduce(total = 0, x IN [1, 2, 3] | total + x) AS n", [[6]]),
    ("MATCH (p:Product) WITH collect(p) AS ps RETURN reduce(n = 0, p IN ps | n + 1) AS n", [[12]]),
    ("RETURN reduce(s = '', x IN ['a', 'b', 'c'] | s + x) AS s", [["abc"]]),
    ("MATCH path = (:Customer {name: 'Alice Meyer'})-[:REFERRED]->(:Customer) "
     "RETURN reduce(s = '', n IN nodes(path) | s + n.name + ';') AS s", [["Alice Meyer;Claire Dubois;"]]),
    # the costliest shape the gate lets through: each step copies the list built so far (~1.5 s)
    ("RETURN size(reduce(l = [], x IN range(1, 10000) | l + [x])) AS n", [[10000]]),
    # over collected values a numeric accumulator adds numbers: numeric functions, CASE … THEN a number
    ("MATCH (c:Customer) WITH collect(c) AS l RETURN reduce(t = 0, x IN l | t + size(x.name)) AS n", [[134]]),
    ("MATCH (p:Product) WITH collect(p.price) AS l RETURN reduce(t = 0.0, x IN l | t + toFloat(x)) > 0",
     [[True]]),
    ("MATCH (c:Customer) WITH collect(c) AS l "
     "RETURN reduce(t = 0, x IN l | t + CASE WHEN x.city = 'Lyon' THEN 1 ELSE 0 END) AS n", [[1]]),
])
def test_a_read_only_reduce_runs(shop, cypher, rows):
    assert shop.query(cypher).rows == rows


@pytest.mark.parametrize("cypher, says", [
    ("RETURN reduce(l = [1], x IN range(1, 40) | l + l)", "uses its accumulator l 2 times"),
    ("RETURN reduce(s = 'x', x IN range(1, 40) | s + s)", "uses its accumulator s 2 times"),
    ("RETURN reduce(l = [1], x IN range(1, 40) | [y IN l | [y, y]])", "may not use a list comprehension"),
    ("RETURN reduce(s = 'x', x IN range(1, 40) | replace(s, 'x', 'xx'))", "may not use replace()"),
    ("RETURN reduce(s = 'x', x IN range(1, 40) | lpad(s, 1000, 'y'))", "may not use lpad()"),
    ("RETURN reduce(l = [1], x IN range(1, 40) | reduce(m = l, y IN [1] | m + y))", "may not use reduce()"),
    ("MATCH (c:Customer) WITH collect(c.name) AS l RETURN reduce(s = '', x IN l | s + x)",
     "must iterate over range(), a list literal"),
    ("RETURN reduce(l = [], x IN range(1, 10000) | l + [x, x, x])", "the limit is 6,000,000,000"),
    ("RETURN reduce(s = '', x IN range(1, 10000) | s + '" + "x" * 1000 + "')", "a character 1"),
    ("RETURN reduce(s = '', 'x')", "write reduce() as reduce(acc = initial, x IN list | expression)"),
    # 0 + 'a' is '0a': a "numeric" reduce over collected strings copies quadratically, past the timeout
    ("UNWIND range(1, 1000) AS a UNWIND range(1, 1000) AS b WITH collect(toString(a)) AS l "
     "RETURN reduce(t = 0, x IN l | t + x)", "may add only numbers to t"),
    ("MATCH (c:Customer) WITH collect(c.name) AS l RETURN reduce(t = 0, x IN l | t + x)", "toFloat()"),
    ("MATCH (c:Customer) WITH c, collect(c) AS l RETURN reduce(t = 0, x IN l | t + c.name)", "may add only"),
    ("MATCH (c:Customer) WITH collect([c.name]) AS l RETURN reduce(t = 0, x IN l | t + x)", "may add only"),
    ("MATCH (c:Customer) WITH collect(c) AS l RETURN reduce(t = 0, x IN l | t + toString(1))", "may add"),
    ("MATCH (c:Customer) WITH collect(c) AS l "
     "RETURN reduce(t = 0, x IN l | t + CASE x.city WHEN 'Lyon' THEN 1 ELSE x.name END)", "may add only"),
])
def test_a_reduce_that_could_outgrow_every_limit_is_refused(shop, cypher, says):
    with pytest.raises(QueryRefused, match=re.escape(says)):
        shop.query(cypher)


# --- a data-sized list searched once per item of another: every pair in one expression ------------------

XS = "MATCH (n) WITH collect(n) AS xs RETURN "


@pytest.mark.parametrize("cypher, says", [
    # 31,212 collected nodes: it held a server thread 40 s against a 2 s limit before
    ("MATCH (a), (b), (c:Customer) WITH collect(a) AS xs "
     "RETURN size([x IN xs | size([y IN xs WHERE y = x])])", "iterates over xs once for every x"),
    (XS + "size([x IN xs WHERE NOT x IN xs])", "searches xs once for every x"),
    (XS + "any(x IN xs WHERE any(y IN xs WHERE y = x))", "iterates over xs"),
    (XS + "reduce(t = 0, x IN xs | t + CASE WHEN x IN xs THEN 1 ELSE 0 END)", "searches xs"),
    (XS + "[x IN xs WHERE any(t IN x.tags WHERE t IN xs)]", "searches xs"),
    (XS + "[x IN xs WHERE x.id IN range(1, 5000)]", "range(1,5000)"),
    (XS + "[x IN xs WHERE x IN $ids]", "searches $ids"),
])
def test_a_data_sized_list_searched_for_every_item_of_another_is_refused(shop, cypher, says):
    with pytest.raises(QueryRefused, match=re.escape(says) + ".*MATCH or UNWIND one of the lists"):
        shop.query(cypher)


CS = "MATCH (c:Customer) WITH collect(c) AS cs "


@pytest.mark.parametrize("cypher, rows", [
    # one of the two lists is small or the item's own: linear work
    (CS + "RETURN size([c IN cs WHERE c.city IN ['Lyon', 'Paris']])", [[2]]),
    ("MATCH (c:Customer) WITH collect(c.city) AS cities RETURN all(x IN ['Lyon', 'Paris'] WHERE x IN cities)",
     [[True]]),
    (CS + "RETURN size([c IN cs WHERE any(k IN keys(c) WHERE k = 'city')])", [[12]]),
    # the same pairs as rows: the time limit applies between them
    (CS + "UNWIND cs AS x UNWIND cs AS y WITH x, y WHERE x = y RETURN count(*)", [[12]]),
])
def test_a_list_searched_within_linear_work_runs(shop, cypher, rows):
    assert shop.query(cypher).rows == rows


def test_range_limits_come_from_settings_and_their_errors_name_them(tmp_path, settings_for):
    big = "UNWIND range(1, 20000) AS x RETURN count(x)"
    limit = r"20000 values, the limit is 10000 \(CYPHERLOOP_MAX_QUERY_RANGE\)"
    with pytest.raises(QueryRefused, match=limit):
        guard_query(big)
    assert guard_query(big, settings_for(tmp_path, max_query_range=20_000).query_limits()) == big
    product = "UNWIND range(1, 2000) AS a UNWIND range(1, 1000) AS b RETURN count(*)"
    with pytest.raises(QueryRefused, match=r"the limit is 1000000 \(CYPHERLOOP_MAX_QUERY_RANGE_PRODUCT\)"):
        guard_query(product)
    assert guard_query(product, settings_for(tmp_path, max_query_range_product=2_000_000).query_limits())


def test_procedures_beyond_the_allow_list_are_opt_in_and_writes_never(tmp_path, settings_for):
    pagerank = "CALL algo.pageRank('Customer', 'REFERRED') YIELD node, score RETURN node.name, score"
    refusal = r"algo.pageRank .*ignore the query timeout.*CYPHERLOOP_ALLOWED_PROCEDURES"
    with pytest.raises(QueryRefused, match=refusal):
        guard_query(pagerank)
    opted_in = settings_for(tmp_path, allowed_procedures="algo.pageRank, db.idx.fulltext.drop, dbms.*")
    assert guard_query(pagerank, opted_in.query_limits()) == pagerank
    for write in ("CALL db.idx.fulltext.drop('Product')", "CALL dbms.killQueries(['q'])"):
        with pytest.raises(WriteRefused):
            guard_query(write, opted_in.query_limits())


def test_the_embedded_server_runs_with_its_limits(settings):
    info = ensure_running(settings)
    client = info.redis()
    try:
        config = dict(client.execute_command("GRAPH.CONFIG", "GET", "*"))
    finally:
        client.close()
    assert config["TIMEOUT_DEFAULT"] == 10_000 and config["TIMEOUT_MAX"] == 3_600_000
    assert config["RESULTSET_SIZE"] == 100_000
    assert config["QUERY_MEM_CAPACITY"] == 1024 * 1024 * 1024
    assert config["THREAD_COUNT"] == 8  # more than the cores: a short read is not queued behind long ones


def server_config(info: ServerInfo) -> dict[str, object]:
    client = info.redis()
    try:
        config = dict(client.execute_command("GRAPH.CONFIG", "GET", "*"))
        config["maxmemory"] = int(client.config_get("maxmemory")["maxmemory"])
        return config
    finally:
        client.close()


def test_a_running_server_takes_the_limits_of_the_process_that_connects(tmp_path, settings_for, caplog):
    first = settings_for(tmp_path)
    info = ensure_running(first)
    tight = settings_for(tmp_path, query_timeout_s=2.0, db_write_timeout_s=5.0, db_resultset_size=7,
                         db_query_memory_mb=64, db_max_memory_mb=512, db_query_threads=3)
    try:
        with caplog.at_level("WARNING", logger="agent.graphdb.embedded"):
            assert ensure_running(tight).pid == info.pid  # the same server, not restarted
        config = server_config(info)
        # TIMEOUT_MAX fell below the old TIMEOUT_DEFAULT: the default had to move first
        assert (config["TIMEOUT_DEFAULT"], config["TIMEOUT_MAX"]) == (2_000, 5_000)
        assert config["RESULTSET_SIZE"] == 7 and config["QUERY_MEM_CAPACITY"] == 64 * 1024 * 1024
        assert config["maxmemory"] == 512 * 1024 * 1024
        assert config["THREAD_COUNT"] == first.db_query_threads  # FalkorDB sets it only at start …
        [warning] = [r.getMessage() for r in caplog.records]  # … and says so, once, in one line
        assert "THREAD_COUNT" in warning and "CYPHERLOOP_DB_QUERY_THREADS" in warning
        assert "`cypherloop graph stop`" in warning and "\n" not in warning

        store = open_graph(tight, "limits")
        store.write("CREATE (:X)")
        assert len(store.query("UNWIND range(1, 20) AS x RETURN x").rows) == 7  # the new RESULTSET_SIZE
        store.close()

        ensure_running(first)  # and back up: TIMEOUT_MAX rises before TIMEOUT_DEFAULT
        config = server_config(info)
        assert (config["TIMEOUT_DEFAULT"], config["TIMEOUT_MAX"]) == (10_000, 3_600_000)
        assert config["RESULTSET_SIZE"] == 100_000 and config["maxmemory"] == 0
    finally:
        stop(first)


# --- defect 5: a timed-out query is not run again ----------------------------------------------------

SLOW = "MATCH (a), (b), (c), (d), (e), (f) RETURN count(*)"  # 51^6 rows of the shop graph


def test_a_timed_out_query_ends_the_question(settings, shop):
    gen = ScriptedGenerator([SLOW, SLOW, SLOW])
    with make_agent(settings.model_copy(update={"query_timeout_s": 0.5}), graph_store=shop,
                    generator=gen) as agent:
        out = agent.ask("How many pairs of numbers are there?")
    assert out.status == "failed" and "time limit" in (out.error or "")
    assert len(gen.calls) == 1  # the model was not asked to try again at full cost
    assert [a["stage"] for a in out.attempts] == ["execute"]


# --- defect 2: a restarted server --------------------------------------------------------------------

def running_pid(store) -> int:
    client = ServerInfo(store._host, store._port, store._password, 0).redis()
    try:
        return int(client.info("server")["process_id"])
    finally:
        client.close()


def kill9(info: ServerInfo) -> None:
    """SIGKILL the server and wait until every thread of it has exited. The thread-group leader of a
    multi-threaded server turns zombie while its other threads are still exiting, and the process's sockets
    close only with the last one; a query sent in that gap is written to a live socket and reset while read
    back, as if the server had died running it (and is then rightly refused from then on)."""
    os.kill(info.pid, signal.SIGKILL)
    while running_or_zombie(info.pid) or threads_left(info.pid):
        threading.Event().wait(0.05)


def threads_left(pid: int) -> bool:
    """Whether any thread of ``pid`` is still running (not a zombie, not gone)."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return False
    return any(running_or_zombie(int(t)) for t in tasks if int(t) != pid)


def running_or_zombie(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture
def own_home(tmp_path, settings_for):
    """A home with its own embedded server and the shop graph (stopped afterwards)."""
    s = settings_for(tmp_path / "home")
    store = open_graph(s)
    load_script(store, SHOP_SCRIPT, replace=True)
    store.close()
    yield s
    stop(s)


def test_an_agent_answers_after_the_server_is_killed(own_home):
    gen = ScriptedGenerator(lambda q, fb, n: "MATCH (c:Customer) RETURN count(c)")
    with make_agent(own_home, generator=gen) as agent:
        assert agent.ask("How many customers are there?").rows == [[12]]
        before = running(own_home)
        kill9(before)
        out = agent.ask("How many customers are there?")
        assert out.status == "ok" and out.rows == [[12]], out.error
    after = running(own_home)
    assert after.pid != before.pid and after.port == before.port  # restarted, on the same port


def test_a_query_running_when_the_server_dies_is_not_run_again(own_home):
    store = open_graph(own_home)
    info = running(own_home)
    outcome: list[BaseException | None] = []

    def ask() -> None:
        try:
            store.query(SLOW, timeout_s=600)
            outcome.append(None)
        except BaseException as e:  # noqa: BLE001 - handed to the test thread
            outcome.append(e)

    worker = threading.Thread(target=ask)
    worker.start()
    watcher = info.redis()
    try:  # wait until the server is running the query, then kill it
        while not any("graph.RO_QUERY" in str(c.get("cmd", "")) or "graph.ro_query" in str(c.get("cmd", ""))
                      for c in watcher.client_list()):
            threading.Event().wait(0.02)
    finally:
        watcher.close()
    kill9(info)
    worker.join()
    assert isinstance(outcome[0], CypherExecutionError) and "stopped while this query ran" in str(outcome[0])
    with pytest.raises(QueryRefused, match="running when the database stopped"):
        store.query(SLOW)
    assert store.query("MATCH (p:Product) RETURN count(p)").rows == [[12]]
    store.close()


def test_the_chat_answers_after_the_server_is_killed(own_home, tmp_path):
    from feedback_store.chroma import ChromaFeedbackStore
    from ui.app import ChatController

    store = ChromaFeedbackStore(own_home)
    gen = ScriptedGenerator(lambda q, fb, n: "MATCH (c:Customer) RETURN c.name AS name ORDER BY name LIMIT 3")
    with make_agent(own_home, generator=gen, feedback_store=store) as agent:
        chat = ChatController(agent, store, own_home)
        *_, (msgs, _, frame, _) = chat.respond("Who are our customers?", None)
        assert len(frame) == 3
        before = running(own_home)
        kill9(before)
        *_, (msgs, _, frame, status) = chat.respond("Who are our customers?", None)
        assert len(frame) == 3 and frame.iloc[0]["name"] == "Alice Meyer", (msgs[-1], status)
    assert running(own_home).pid != before.pid
    store.close()


def test_a_huge_reply_is_refused_before_it_is_read(settings, shop):
    gen = ScriptedGenerator(lambda q, fb, n: "RETURN " + "(" * 100_000 + "1" + ")" * 100_000)
    with make_agent(settings, graph_store=shop, generator=gen) as agent:
        out = agent.ask("How deep can you go?")
    assert out.status == "failed" and "characters long" in out.error
    assert all(len(a["cypher"]) <= 200 for a in out.attempts)
