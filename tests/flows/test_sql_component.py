"""SQL Database (flows.engine.components.sql): read-only queries against the databases the
operator lists by name, with a row cap and a timeout. SQLite always; PostgreSQL when a server
is at BENCH_POSTGRES_URL (skipped otherwise, outside CI)."""

import asyncio
import json
import os
import sqlite3

import pytest

from flows import services
from flows.engine import FlowError, RunRequest, check_plan, compile_graph, plan_run, run_to_end
from flows.engine.components.sql import looks_like_url, parse_database
from tests.flows.graphs import chat_in, edge, flow_data, node

SQL = "SQLComponent-1"


def sql_flow(query="SELECT name, price FROM plans ORDER BY price", database="shop", **fields):
    return flow_data(
        chat_in(value=query),
        node(SQL, "SQLComponent", "SQL Database", **{"database_url": database, "query": "", "include_columns": True,
                                                     "add_error": False, **fields}),
        node("ChatOutput-1", "ChatOutput", "Chat Output", input_value="", data_template="{name}={price}"),
        edge("ChatInput-1", "message", SQL, "query"),
        edge(SQL, "run_sql_query", "ChatOutput-1", "input_value"),
    )


def run(data, **request):
    plan = plan_run(compile_graph(data), RunRequest(**request), flow_id="flow-1")

    async def both():
        await check_plan(plan)
        return await run_to_end(plan)

    return asyncio.run(both())


def rows_of(data, **request) -> list[dict]:
    """The SQL node's rows (the flow's output is the SQL node itself)."""
    result = run(data, output_component=SQL, **request)
    return result.outputs[0].value


def refusal(data, **request) -> FlowError:
    with pytest.raises(FlowError) as caught:
        run(data, **request)
    return caught.value


@pytest.fixture
def shop(tmp_path, settings):
    path = tmp_path / "shop.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE plans (name TEXT, price REAL, notes BLOB)")
        connection.executemany("INSERT INTO plans VALUES (?, ?, ?)",
                               [("basic", 9.5, b"\x00\x01"), ("pro", 29.0, None), ("team", 99.0, None)])
    connection.close()
    settings.SQL_DATABASES = {"shop": f"sqlite:///{path}"}
    settings.SQL_MAX_ROWS = 1000
    settings.SQL_TIMEOUT = 5.0
    return path


def plan_names(path) -> list[str]:
    with sqlite3.connect(path) as connection:
        names = [row[0] for row in connection.execute("SELECT name FROM plans ORDER BY price")]
    connection.close()
    return names


# --- Reading ----------------------------------------------------------------------------------------

def test_a_select_answers_its_rows_as_records_through_the_chat_output(shop):
    result = run(sql_flow())
    assert result.outputs[0].value.text == "basic=9.5\npro=29.0\nteam=99.0"


def test_rows_are_records_with_json_values(shop):
    rows = rows_of(sql_flow("SELECT * FROM plans ORDER BY price"))
    assert rows[0] == {"name": "basic", "price": 9.5, "notes": "\\x0001"}
    assert [row["name"] for row in rows] == ["basic", "pro", "team"]
    json.dumps(rows)


def test_the_schema_can_be_read(shop):
    rows = rows_of(sql_flow("SELECT name FROM sqlite_master WHERE type = 'table'"))
    assert rows == [{"name": "plans"}]
    columns = rows_of(sql_flow("PRAGMA table_info(plans)"))
    assert [column["name"] for column in columns] == ["name", "price", "notes"]


def test_an_empty_field_uses_the_only_listed_database(shop):
    assert len(rows_of(sql_flow(database=""))) == 3


def test_an_empty_field_is_refused_when_several_databases_are_listed(shop, settings):
    settings.SQL_DATABASES = {**settings.SQL_DATABASES, "other": f"sqlite:///{shop}"}
    error = refusal(sql_flow(database=""))
    assert SQL in str(error) and "SQL_DATABASES" in str(error) and "other, shop" in str(error)


# --- Read-only, enforced by the database -----------------------------------------------------------

@pytest.mark.parametrize("query", [
    "INSERT INTO plans VALUES ('free', 0, NULL)",
    "UPDATE plans SET price = 0",
    "DELETE FROM plans",
    "DROP TABLE plans",
    "CREATE TABLE evil (a)",
    "CREATE TEMP TABLE evil (a)",
    "REPLACE INTO plans VALUES ('basic', 0, NULL)",
])
def test_a_write_fails_with_a_422_naming_the_node_and_changes_nothing(shop, query):
    error = refusal(sql_flow(query))
    assert error.status_code == 422
    assert SQL in str(error) and "readonly" in str(error)
    assert error.node_ids == (SQL,)
    assert plan_names(shop) == ["basic", "pro", "team"]


@pytest.mark.parametrize("query", [
    "PRAGMA query_only = OFF",
    "PRAGMA writable_schema = ON",
    "PRAGMA journal_mode = DELETE",
])
def test_pragmas_that_change_the_connection_are_refused(shop, query):
    error = refusal(sql_flow(query))
    assert SQL in str(error) and "not authorized" in str(error)


def test_no_other_file_can_be_attached_or_written(shop, tmp_path):
    target = tmp_path / "copy.db"
    for query in (f"ATTACH DATABASE '{shop}' AS other", f"VACUUM INTO '{target}'",
                  f"ATTACH DATABASE 'file:{target}?mode=rwc' AS other"):
        error = refusal(sql_flow(query))
        assert SQL in str(error)
    assert not target.exists()


def test_a_second_statement_is_refused_not_run(shop):
    error = refusal(sql_flow("SELECT 1; DELETE FROM plans"))
    assert SQL in str(error) and "one statement" in str(error)
    assert plan_names(shop) == ["basic", "pro", "team"]


def test_add_error_answers_the_error_as_a_record(shop):
    rows = rows_of(sql_flow("DELETE FROM plans", add_error=True))
    assert rows == [{"error": "attempt to write a readonly database", "query": "DELETE FROM plans"}]
    assert plan_names(shop) == ["basic", "pro", "team"]


def test_a_query_error_is_a_422_naming_the_node(shop):
    error = refusal(sql_flow("SELECT * FROM nowhere"))
    assert error.status_code == 422 and "no such table: nowhere" in str(error) and SQL in str(error)


def test_an_empty_query_is_refused(shop):
    error = refusal(sql_flow("   "))
    assert SQL in str(error) and "'query'" in str(error)


# --- Only the operator's databases -----------------------------------------------------------------

@pytest.mark.parametrize("value", [
    "sqlite:////etc/passwd.db",
    "sqlite:///data/db.sqlite3",
    "postgres://postgres@127.0.0.1:5432/postgres",
    "postgresql://u:p@10.0.0.1/db",
    "mysql://root@localhost/mysql",
    "file:/tmp/x.db",
])
def test_a_url_in_the_field_is_refused_naming_the_node_and_the_setting(shop, value):
    error = refusal(sql_flow(), tweaks={SQL: {"database_url": value}})
    assert error.status_code == 422
    assert SQL in str(error) and "holds a URL" in str(error) and "SQL_DATABASES" in str(error)


def test_an_unlisted_database_is_refused(shop):
    error = refusal(sql_flow(database="crm"))
    assert error.status_code == 422
    assert SQL in str(error) and "'crm'" in str(error) and "SQL_DATABASES (shop)" in str(error)


def test_nothing_is_listed_by_default(settings):
    settings.SQL_DATABASES = {}
    error = refusal(sql_flow(database=""))
    assert "SQL_DATABASES (none)" in str(error)


def test_a_missing_database_file_is_a_clear_error_and_is_not_created(tmp_path, settings):
    settings.SQL_DATABASES = {"gone": f"sqlite:///{tmp_path / 'gone.db'}"}
    error = refusal(sql_flow(database="gone"))
    assert "does not exist" in str(error)
    assert not (tmp_path / "gone.db").exists()


@pytest.mark.parametrize(("url", "kind", "target"), [
    ("sqlite:////srv/data/shop.db", "sqlite", "/srv/data/shop.db"),
    ("sqlite:///data/shop.db", "sqlite", "data/shop.db"),
    ("postgres://reader:pw@db:5432/crm?sslmode=require", "postgresql", "postgresql://reader:pw@db:5432/crm?sslmode=require"),
])
def test_listed_urls_are_parsed(url, kind, target):
    database = parse_database("x", url)
    assert (database.kind, database.target) == (kind, target)


@pytest.mark.parametrize("url", ["sqlite://:memory:", "sqlite://", "mysql://root@h/db", "shop.db"])
def test_unusable_listed_urls_are_refused(url):
    with pytest.raises(ValueError):
        parse_database("x", url)


@pytest.mark.parametrize(("value", "is_url"), [("shop", False), ("my_db-2", False), ("sqlite:x.db", True),
                                               ("a://b", True), ("POSTGRES:x", True)])
def test_names_are_told_from_urls(value, is_url):
    assert looks_like_url(value) is is_url


# --- Bounds ----------------------------------------------------------------------------------------

def test_at_most_sql_max_rows_are_read(shop, settings):
    settings.SQL_MAX_ROWS = 2
    assert [row["name"] for row in rows_of(sql_flow("SELECT name FROM plans ORDER BY price"))] == ["basic", "pro"]


def test_a_huge_result_stops_at_the_cap_quickly(shop, settings):
    settings.SQL_MAX_ROWS = 5
    query = ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT i FROM n")
    assert rows_of(sql_flow(query)) == [{"i": i} for i in range(1, 6)]


def test_a_query_past_sql_timeout_is_stopped(shop, settings):
    settings.SQL_TIMEOUT = 0.3
    query = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n"
    error = refusal(sql_flow(query))
    assert error.status_code == 422
    assert SQL in str(error) and "SQL_TIMEOUT (0.3 s)" in str(error)


def test_rows_count_against_the_runs_value_limit(shop, settings):
    settings.FLOW_MAX_VALUE_BYTES = 200
    query = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n LIMIT 500) SELECT i, 'abcdefgh' AS t FROM n"
    error = refusal(sql_flow(query))
    assert SQL in str(error) and "FLOW_MAX_VALUE_BYTES" in str(error)


# --- Over HTTP -------------------------------------------------------------------------------------

@pytest.mark.django_db
@pytest.mark.parametrize("stream", [False, True])
def test_over_the_api_a_write_or_a_url_is_a_422_naming_the_node(api_client, user, key, shop, stream):
    [flow] = services.import_flows(user=user, payload={"name": "SQL", "data": sql_flow()})
    url = f"/api/v1/run/{flow.pk}" + ("?stream=true" if stream else "")
    response = api_client.post(url, {"input_value": "DROP TABLE plans"}, format="json", HTTP_X_API_KEY=key)
    if stream:  # the query runs after the stream started: the error is its last event
        body = b"".join(response).decode()
        assert "readonly" in body and SQL in body
    else:
        assert response.status_code == 422
        assert SQL in response.json()["detail"] and "readonly" in response.json()["detail"]
    tweaks = {SQL: {"database_url": "sqlite:////etc/passwd"}}
    response = api_client.post(url, {"input_value": "SELECT 1", "tweaks": tweaks}, format="json", HTTP_X_API_KEY=key)
    assert response.status_code == 422  # refused before the run, streamed or not
    assert SQL in response.json()["detail"] and "SQL_DATABASES" in response.json()["detail"]
    assert plan_names(shop) == ["basic", "pro", "team"]


# --- PostgreSQL ------------------------------------------------------------------------------------

@pytest.fixture
def postgres_shop(settings):
    from tests.harness.postgres import postgres_database

    admin_url = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    try:
        url, drop = postgres_database(admin_url)
    except Exception as error:  # noqa: BLE001 - psycopg's many connection errors
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no PostgreSQL at {admin_url}: {error}")
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("CREATE TABLE plans (name text, price numeric(8, 2), added date)")
        connection.execute("INSERT INTO plans VALUES ('basic', 9.50, '2024-01-02'), ('pro', 29, NULL)")
    settings.SQL_DATABASES = {"crm": url}
    settings.SQL_MAX_ROWS = 1000
    settings.SQL_TIMEOUT = 5.0
    yield url
    drop()


def pg_names(url) -> list[str]:
    import psycopg

    with psycopg.connect(url) as connection:
        return [row[0] for row in connection.execute("SELECT name FROM plans ORDER BY name")]


def test_postgresql_answers_rows_with_json_values(postgres_shop):
    rows = rows_of(sql_flow("SELECT * FROM plans ORDER BY name", database="crm"))
    assert rows == [{"name": "basic", "price": 9.5, "added": "2024-01-02"},
                    {"name": "pro", "price": 29, "added": None}]


@pytest.mark.parametrize("query", [
    "INSERT INTO plans VALUES ('free', 0, NULL)",
    "DROP TABLE plans",
    "SELECT 1; DELETE FROM plans",
    "COMMIT; DELETE FROM plans",
    "SET TRANSACTION READ WRITE",
    "WITH gone AS (DELETE FROM plans RETURNING *) SELECT * FROM gone",
])
def test_postgresql_refuses_every_write_with_a_422_naming_the_node(postgres_shop, query):
    error = refusal(sql_flow(query, database="crm"))
    assert error.status_code == 422 and SQL in str(error)
    assert pg_names(postgres_shop) == ["basic", "pro"]


def test_postgresql_stops_at_the_row_cap_and_the_timeout(postgres_shop, settings):
    settings.SQL_MAX_ROWS = 3
    endless = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT i FROM n"
    rows = rows_of(sql_flow(endless, database="crm"))
    assert rows == [{"i": 1}, {"i": 2}, {"i": 3}]
    settings.SQL_TIMEOUT = 0.3
    error = refusal(sql_flow("SELECT pg_sleep(5)", database="crm"))
    assert "SQL_TIMEOUT (0.3 s)" in str(error) and SQL in str(error)


def test_an_unreachable_postgresql_is_a_502_without_its_url(settings):
    from tests.flows.conftest import closed_port

    settings.SQL_DATABASES = {"crm": f"postgres://reader:hunter2@127.0.0.1:{closed_port()}/crm"}
    error = refusal(sql_flow("SELECT 1", database="crm"))
    assert error.status_code == 502 and SQL in str(error) and "hunter2" not in str(error)


# --- As the Agent's tool: the SaaS Pricing starter -----------------------------------------------

@pytest.mark.django_db
def test_saas_pricing_the_agent_queries_the_listed_database_and_a_write_is_told_to_the_model(
        api_client, user, key, shop, settings):
    from tests.flows.scripted_model import ScriptedModelServer, calls, final
    from tests.flows.test_loop import starter_export

    export = starter_export("SaaS Pricing.json")
    [flow] = services.import_flows(user=user, payload=export)
    with ScriptedModelServer() as scripted:
        settings.OPENAI_BASE_URL = scripted.base_url
        scripted.script = [
            calls(("run_sql_query", {"query": "SELECT name, price FROM plans WHERE name = 'pro'"})),
            calls(("run_sql_query", {"query": "DELETE FROM plans"})),
            final("Pro costs 29."),
        ]
        response = api_client.post(f"/api/v1/run/{flow.pk}", {"input_value": "Price of pro?"}, format="json",
                                   HTTP_X_API_KEY=key)
        assert response.status_code == 200, response.content
        assert response.json()["outputs"][0]["outputs"][0]["results"]["message"]["text"] == "Pro costs 29."
        tools = [m for m in scripted.requests[2]["messages"] if m["role"] == "tool"]
    assert json.loads(tools[0]["content"]) == [{"name": "pro", "price": 29.0}]
    assert "readonly" in tools[1]["content"]  # the failure went to the model, not to the caller
    assert plan_names(shop) == ["basic", "pro", "team"]
