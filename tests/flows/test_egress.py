"""Where a flow may make the server connect (flows.engine.egress): base URLs chosen by flows and tweaks.

There is no internet here: public-looking names are answered by the ``dns`` fixture, and the
``connections`` fixture takes public-only connections to a loopback port while recording the
address they were opened for.
"""

import ipaddress
import logging
import socket
import threading
from types import SimpleNamespace

import pytest
from django.core.exceptions import ImproperlyConfigured

from flows import services
from flows.engine import egress
from tests.flows.conftest import FakeModelServer
from tests.flows.graphs import chat_in, chat_out, edge, flow_data, node
from tests.flows.test_language_model import NODE, events_of, run

pytestmark = pytest.mark.django_db

NON_PUBLIC = "resolves to a non-public address; an administrator can allow it with MODEL_ALLOWED_BASE_URLS"


@pytest.fixture
def dns(monkeypatch):
    """Answer ``getaddrinfo`` for the names put in ``answers`` (host -> list of answers, one per
    lookup, the last one repeating; an answer is a list of addresses or an exception). Other
    names (IP literals, localhost) resolve for real."""
    state = SimpleNamespace(answers={}, lookups=[])
    real = socket.getaddrinfo

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
        if host not in state.answers:
            return real(host, port, family, type, proto, flags)
        state.lookups.append(host)
        pending = state.answers[host]
        answer = pending.pop(0) if len(pending) > 1 else pending[0]
        if isinstance(answer, Exception):
            raise answer
        return [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", (ip, port, 0, 0)) if ":" in ip
                else (socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port)) for ip in answer]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return state


@pytest.fixture
def connections(monkeypatch):
    """Record the address each public-only connection is opened to, and open it to
    127.0.0.1:``target`` instead, so no test traffic leaves the machine."""
    state = SimpleNamespace(opened=[], target=None)

    def dial(address, port):
        state.opened.append(address)
        assert state.target, "this connection would have left loopback"
        return "127.0.0.1", state.target

    monkeypatch.setattr(egress, "dial", dial)
    return state


@pytest.fixture
def listener():
    """A loopback TCP server that records the first bytes of each connection, then hangs up."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.1)
    state = SimpleNamespace(port=server.getsockname()[1], received=[])
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except TimeoutError:
                continue
            with connection:
                connection.settimeout(2)
                try:
                    state.received.append(connection.recv(4096))
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield state
    stop.set()
    thread.join(timeout=5)
    server.close()


def tweak_base_url(api_client, flow, key, base_url, *, field="base_url", query=""):
    return run(api_client, flow, key, {"input_value": "hi", "tweaks": {NODE: {field: base_url}}}, query=query)


def assert_refused_naming_node_and_field(response, field="base_url"):
    assert response.status_code == 422, response.content
    body = response.json()
    assert body["detail"].startswith(f"Node {NODE}: '{field}' ")
    assert body["node_ids"] == [NODE]
    return body["detail"]


# --- Addresses ---------------------------------------------------------------------------------

@pytest.mark.parametrize("address", [
    "8.8.8.8", "1.1.1.1", "172.15.255.255", "172.32.0.1", "2606:4700:4700::1111",
    "::ffff:8.8.8.8", "2002:808:808::1", "64:ff9b::808:808",
])
def test_public_addresses_are_public(address):
    assert egress.is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", [
    "127.0.0.1", "127.255.255.254", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.0.1",
    "169.254.169.254", "100.64.0.1", "0.0.0.0", "224.0.0.1", "239.255.255.250", "255.255.255.255",
    "240.0.0.1", "192.0.2.1", "198.18.0.1",
    "::1", "::", "fc00::1", "fd00:ec2::254", "fe80::1", "fec0::1", "ff02::1", "2001:db8::1", "2001::1",
    "::ffff:127.0.0.1", "::ffff:169.254.169.254", "::ffff:10.0.0.1", "::7f00:1",
    "2002:7f00:1::", "2002:a00:1::", "64:ff9b::a9fe:a9fe", "64:ff9b::7f00:1",
])
def test_internal_special_and_embedded_internal_addresses_are_not_public(address):
    assert not egress.is_public(ipaddress.ip_address(address))


# --- Parsing and the allow list ----------------------------------------------------------------

def test_a_base_url_is_normalised_and_rebuilt_from_its_checked_parts():
    parsed = egress.parse_base_url("HTTP://Models.Example.COM.:80/v1/")
    assert parsed == egress.BaseUrl(scheme="http", host="models.example.com", port=80, path="/v1")
    assert parsed.url == "http://models.example.com/v1"
    assert egress.parse_base_url("https://[0:0::1]:8443/v1").url == "https://[::1]:8443/v1"
    assert egress.parse_base_url("http://bücher.example/v1").host == "xn--bcher-kva.example"


@pytest.mark.parametrize(("url", "problem"), [
    ("file:///etc/passwd", "must be an http(s) URL"),
    ("gopher://127.0.0.1:6379/_INFO", "must be an http(s) URL"),
    ("http:///v1", "must be an http(s) URL"),
    ("http://user:secret@models.example.com/v1", "must not contain a user name or password"),
    ("http://user@models.example.com/v1", "must not contain a user name or password"),
    ("http://:secret@models.example.com/v1", "must not contain a user name or password"),
    ("http://models.example.com/v1?next=http://127.0.0.1/", "without a query or a fragment"),
    ("http://evil.example#@127.0.0.1:11434/v1", "without a query or a fragment"),
    ("http://127.0.0.1:11434\\@evil.example/v1", "is not a valid URL"),
    ("http://models.example.com /v1", "is not a valid URL"),
    ("http://models.example.com\n/v1", "is not a valid URL"),
    ("http://127.0.0.1:11434.evil.example/v1", "is not a valid URL"),
    ("http://127.0.0.1:114340/v1", "is not a valid URL"),
    ("http://127.0.0.1:0/v1", "is not a valid URL"),
    ("http://[::1/v1", "is not a valid URL"),
    ("http://models.example.com/v1/../admin", "'.' or '..' path segments"),
    ("http://models.example.com/v1/%2e%2e/admin", "'.' or '..' path segments"),
    ("http://[fe80::1%25eth0]/v1", "invalid host name"),
    ("http://models_example.com%00/v1", "invalid host name"),
])
def test_base_urls_that_are_not_plain_http_base_urls_are_refused(url, problem):
    with pytest.raises(egress.Refused, match=problem.replace("(", r"\(").replace(")", r"\)")):
        egress.parse_base_url(url)


ALLOWED = ["http://127.0.0.1:11434/v1", "https://models.internal"]


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:11434/v1", "http://127.0.0.1:11434/v1/", "HTTP://127.0.0.1:11434/v1",
    "http://127.0.0.1:11434/v1/deployments/x", "https://models.internal/anything",
    "https://MODELS.internal:443/v1", "https://models.internal./v1",
])
def test_an_allowed_base_url_matches_on_scheme_host_port_and_path_prefix(settings, url):
    settings.MODEL_ALLOWED_BASE_URLS = ALLOWED
    assert egress.is_allowed(egress.parse_base_url(url))


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:11435/v1", "http://127.0.0.1:1143/v1", "http://127.0.0.1:1134/v1", "http://127.0.0.1/v1",
    "https://127.0.0.1:11434/v1", "http://127.0.0.1:11434/v2", "http://127.0.0.1:11434/v1x",
    "http://127.0.0.1:11434", "http://127.0.0.1:11434/V1", "http://localhost:11434/v1",
    "http://127.0.0.2:11434/v1", "http://2130706433:11434/v1", "http://127.0.0.1.evil.example:11434/v1",
    "http://models.internal/v1", "https://models.internal.evil.example/v1", "https://evil.example/models.internal",
    "https://models.internal:8443/v1",
])
def test_look_alike_base_urls_do_not_match_the_allow_list(settings, url):
    settings.MODEL_ALLOWED_BASE_URLS = ALLOWED
    assert not egress.is_allowed(egress.parse_base_url(url))


def test_a_malformed_allow_list_entry_stops_the_server_without_echoing_it():
    with pytest.raises(ImproperlyConfigured) as refused:
        egress.parse_allowed_base_urls(("http://127.0.0.1:11434/v1", "http://admin:hunter2@10.0.0.5/v1"))
    assert "entry 2" in str(refused.value) and "user name or password" in str(refused.value)
    assert "hunter2" not in str(refused.value)


# --- Resolution --------------------------------------------------------------------------------

def test_a_host_with_one_internal_address_among_public_ones_is_refused_and_only_the_log_has_it(dns, caplog):
    dns.answers["mixed.example.com"] = [["8.8.8.8", "10.0.0.7"]]
    with caplog.at_level(logging.WARNING, logger="flows.engine.egress"), pytest.raises(egress.Refused) as refused:
        egress.require_public("mixed.example.com", 443)
    assert "'mixed.example.com'" in str(refused.value) and "10.0.0.7" not in str(refused.value)
    assert "10.0.0.7" in caplog.text


def test_a_host_with_only_public_addresses_is_returned_with_them(dns):
    dns.answers["models.example.com"] = [["8.8.8.8", "2606:4700:4700::1111"]]
    found = egress.require_public("models.example.com", 443)
    assert [info[4][0] for info in found] == ["8.8.8.8", "2606:4700:4700::1111"]


def test_a_host_that_does_not_resolve_is_host_not_found(dns):
    dns.answers["nowhere.example.com"] = [socket.gaierror(socket.EAI_NONAME, "Name or service not known")]
    with pytest.raises(egress.HostNotFound):
        egress.require_public("nowhere.example.com", 443)


# --- Runs: the tweak path and the node's own fields --------------------------------------------

@pytest.fixture
def loopback_server():
    """A fake model server on loopback that no setting allows: nothing may reach it."""
    with FakeModelServer() as server:
        yield server


@pytest.mark.parametrize("host", [
    "127.0.0.1", "localhost", "localhost.", "2130706433", "0x7f.1", "0177.0.0.1", "127.1", "[::ffff:127.0.0.1]",
])
def test_every_spelling_of_loopback_in_a_tweak_is_a_422_and_nothing_is_sent(
        api_client, prompting_flow, key, model_server, loopback_server, host):
    port = loopback_server.httpd.server_address[1]
    response = tweak_base_url(api_client, prompting_flow, key, f"http://{host}:{port}/v1")
    detail = assert_refused_naming_node_and_field(response)
    assert NON_PUBLIC in detail
    assert loopback_server.requests == [] and model_server.requests == []


@pytest.mark.parametrize("base_url", [
    "http://10.0.0.8/v1", "http://172.16.5.4/v1", "http://192.168.1.1:8080/v1",
    "http://169.254.169.254/latest/meta-data", "http://[::1]:8080/v1", "http://[fc00::1]/v1",
    "http://[fd12:3456::1]/v1", "http://[fe80::1]/v1", "http://0.0.0.0:8080/v1", "http://[::]/v1",
    "http://100.64.0.1/v1", "http://224.0.0.1/v1", "http://[fec0::1]/v1",
    "http://[2002:a9fe:a9fe::]/v1", "http://[64:ff9b::a00:1]/v1",
])
def test_a_tweak_pointing_a_model_node_at_an_internal_address_is_a_422(api_client, prompting_flow, key, base_url):
    response = tweak_base_url(api_client, prompting_flow, key, base_url)
    assert NON_PUBLIC in assert_refused_naming_node_and_field(response)


def test_a_host_name_that_resolves_inside_is_refused_without_telling_the_address(
        api_client, prompting_flow, key, dns):
    dns.answers["intranet.example.com"] = [["10.20.30.40"]]
    response = tweak_base_url(api_client, prompting_flow, key, "https://intranet.example.com/v1")
    detail = assert_refused_naming_node_and_field(response)
    assert "'intranet.example.com' " + NON_PUBLIC in detail
    assert "10.20.30.40" not in response.content.decode()


def test_a_streamed_run_with_a_refused_base_url_answers_422_json_before_streaming(api_client, prompting_flow, key):
    response = tweak_base_url(api_client, prompting_flow, key, "http://169.254.169.254/v1", query="?stream=true")
    assert response["Content-Type"] == "application/json"
    assert NON_PUBLIC in assert_refused_naming_node_and_field(response)


def test_a_base_url_with_credentials_is_refused_without_echoing_them(api_client, prompting_flow, key):
    response = tweak_base_url(api_client, prompting_flow, key, "https://bob:s3cret@models.example.com/v1")
    assert "must not contain a user name or password" in assert_refused_naming_node_and_field(response)
    assert "s3cret" not in response.content.decode()


def test_an_openai_model_nodes_stored_api_base_is_checked_too(api_client, user, key, export):
    flow_data_ = export("basic_prompting.json")
    for item in flow_data_["data"]["nodes"]:
        if item["id"] == NODE:
            item["data"]["type"] = "OpenAIModel"
            item["data"]["node"]["template"]["openai_api_base"] = {"type": "str", "value": "http://169.254.169.254/v1"}
    [flow] = services.import_flows(user=user, payload=flow_data_)
    response = run(api_client, flow, key, {"input_value": "hi"})
    assert NON_PUBLIC in assert_refused_naming_node_and_field(response, field="openai_api_base")


def test_a_host_that_does_not_resolve_is_a_502_like_other_connection_failures(api_client, prompting_flow, key, dns):
    dns.answers["nowhere.example.com"] = [socket.gaierror(socket.EAI_NONAME, "Name or service not known")]
    response = tweak_base_url(api_client, prompting_flow, key, "https://nowhere.example.com/v1")
    assert response.status_code == 502
    assert response.json()["detail"] == f"Model call failed in node {NODE}: could not connect to the model server"


# --- The operator's base URLs ------------------------------------------------------------------

def test_the_servers_own_base_url_on_loopback_is_always_allowed(api_client, prompting_flow, key, model_server,
                                                                settings):
    assert settings.MODEL_ALLOWED_BASE_URLS == []
    assert run(api_client, prompting_flow, key, {"input_value": "hi"}).status_code == 200
    response = tweak_base_url(api_client, prompting_flow, key, model_server.base_url + "/")
    assert response.status_code == 200
    assert len(model_server.requests) == 2
    assert model_server.last["headers"]["Authorization"] == "Bearer server-side-key"


def test_an_allowed_loopback_base_url_is_called_with_the_flows_key_only(
        api_client, prompting_flow, key, model_server, second_model_server):
    response = run(api_client, prompting_flow, key,
                   {"input_value": "hi", "tweaks": {NODE: {"base_url": second_model_server.base_url + "/",
                                                           "api_key": "flow-key"}}})
    assert response.status_code == 200
    assert second_model_server.last["headers"]["Authorization"] == "Bearer flow-key"
    assert model_server.requests == []


def test_a_path_below_an_allowed_base_url_is_allowed(api_client, prompting_flow, key, second_model_server):
    response = tweak_base_url(api_client, prompting_flow, key, second_model_server.base_url + "/deployments/x")
    assert response.status_code == 502  # allowed, called, and the fake server knows no such route
    assert second_model_server.last["path"] == "/v1/deployments/x/chat/completions"


@pytest.mark.parametrize("variant", [
    "http://localhost:{port}/v1", "http://127.0.0.1:{port}/v2", "http://127.0.0.1:{port}/v1x",
    "http://127.0.0.1:{port}", "https://127.0.0.1:{port}/v1", "http://2130706433:{port}/v1",
])
def test_look_alikes_of_an_allowed_base_url_are_refused_and_never_reach_it(
        api_client, prompting_flow, key, second_model_server, variant):
    port = second_model_server.httpd.server_address[1]
    response = tweak_base_url(api_client, prompting_flow, key, variant.format(port=port))
    assert NON_PUBLIC in assert_refused_naming_node_and_field(response)
    assert second_model_server.requests == []


@pytest.mark.parametrize("variant", [
    "http://127.0.0.1:{port}.evil.example/v1", "http://127.0.0.1:{port}0/v1", "http://127.0.0.1:{port}@evil.example/v1",
])
def test_malformed_look_alikes_of_an_allowed_base_url_are_refused(
        api_client, prompting_flow, key, second_model_server, variant):
    port = second_model_server.httpd.server_address[1]
    response = tweak_base_url(api_client, prompting_flow, key, variant.format(port=port))
    assert_refused_naming_node_and_field(response)
    assert second_model_server.requests == []


@pytest.mark.parametrize("target", ["loopback", "http://169.254.169.254/latest/meta-data/"])
def test_a_redirect_from_the_model_server_is_never_followed(
        api_client, prompting_flow, key, second_model_server, loopback_server, target):
    second_model_server.mode = "redirect"
    second_model_server.redirect_to = loopback_server.base_url + "/chat/completions" if target == "loopback" else target
    response = tweak_base_url(api_client, prompting_flow, key, second_model_server.base_url)
    assert response.status_code == 502
    assert response.json()["detail"] == f"Model call failed in node {NODE}: the model server answered HTTP 307"
    assert len(second_model_server.requests) == 1 and loopback_server.requests == []


# --- The connection goes where the check said ------------------------------------------------

def test_a_public_host_is_connected_at_the_address_that_was_checked_under_its_own_name(
        api_client, prompting_flow, key, dns, connections, loopback_server, monkeypatch):
    port = loopback_server.httpd.server_address[1]
    connections.target = port
    dns.answers["models.example.com"] = [["8.8.4.4"]]
    for variable in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy"):
        monkeypatch.setenv(variable, "http://127.0.0.1:9")  # never used: flows' calls go direct
    response = tweak_base_url(api_client, prompting_flow, key, f"http://models.example.com:{port}/v1")
    assert response.status_code == 200
    assert connections.opened == ["8.8.4.4"]
    assert loopback_server.last["headers"]["Host"] == f"models.example.com:{port}"
    assert "Authorization" not in loopback_server.last["headers"]


def test_dns_rebinding_between_the_check_and_the_connection_is_refused(
        api_client, prompting_flow, key, dns, loopback_server):
    port = loopback_server.httpd.server_address[1]
    dns.answers["rebind.example.com"] = [["8.8.4.4"], ["127.0.0.1"]]  # public when checked, loopback after
    response = tweak_base_url(api_client, prompting_flow, key, f"http://rebind.example.com:{port}/v1")
    assert NON_PUBLIC in assert_refused_naming_node_and_field(response)
    assert dns.lookups == ["rebind.example.com", "rebind.example.com"]
    assert loopback_server.requests == []


def test_dns_rebinding_while_streaming_is_an_error_event_and_nothing_is_sent(
        api_client, prompting_flow, key, dns, loopback_server):
    port = loopback_server.httpd.server_address[1]
    dns.answers["rebind.example.com"] = [["8.8.4.4"], ["::1", "127.0.0.1"]]
    response = tweak_base_url(api_client, prompting_flow, key, f"http://rebind.example.com:{port}/v1",
                              query="?stream=true")
    events = events_of(response)
    assert events[-1]["event"] == "error" and events[-1]["data"]["status_code"] == 422
    assert NON_PUBLIC in events[-1]["data"]["error"]
    assert loopback_server.requests == []


def test_a_base_url_fed_by_an_edge_is_checked_when_the_call_connects(api_client, user, key, loopback_server):
    port = loopback_server.httpd.server_address[1]
    data = flow_data(
        chat_in(),
        node("TextInput-1", "TextInput", "Base URL", input_value=f"http://localhost:{port}/v1"),
        node(NODE, "LanguageModelComponent", "Language Model", input_value="", base_url="", model_name="m"),
        chat_out(),
        edge("ChatInput-1", "message", NODE, "input_value"),
        edge("TextInput-1", "text", NODE, "base_url"),
        edge(NODE, "text_output", "ChatOutput-1", "input_value"),
    )
    flow = services.create_flow(owner=user, name="Edge-fed base URL", data=data)
    response = run(api_client, flow, key, {"input_value": "hi"})
    assert "'localhost' " + NON_PUBLIC in assert_refused_naming_node_and_field(response)
    assert loopback_server.requests == []


def test_https_to_a_public_host_is_pinned_and_still_names_the_host_for_tls(
        api_client, prompting_flow, key, dns, connections, listener):
    connections.target = listener.port
    dns.answers["models.example.com"] = [["8.8.4.4"]]
    response = tweak_base_url(api_client, prompting_flow, key, "https://models.example.com/v1")
    assert response.status_code == 502  # the listener is no TLS server
    assert connections.opened == ["8.8.4.4"]
    assert listener.received and b"models.example.com" in listener.received[0]  # the ClientHello's SNI


def test_a_public_only_call_still_times_out(api_client, prompting_flow, key, dns, connections, loopback_server,
                                            settings):
    loopback_server.mode = "hang"
    settings.OPENAI_TIMEOUT = 0.3
    connections.target = loopback_server.httpd.server_address[1]
    dns.answers["models.example.com"] = [["8.8.4.4"]]
    response = tweak_base_url(api_client, prompting_flow, key, "http://models.example.com/v1")
    assert response.status_code == 502
    assert response.json()["detail"] == f"Model call failed in node {NODE}: the model server did not answer within 0.3 s"
    assert connections.opened == ["8.8.4.4"]


def test_a_public_ipv6_literal_is_connected_at_that_address(api_client, prompting_flow, key, connections,
                                                            loopback_server):
    connections.target = loopback_server.httpd.server_address[1]
    response = tweak_base_url(api_client, prompting_flow, key, "http://[2606:4700:4700::1111]:8080/v1")
    assert response.status_code == 200
    assert connections.opened == ["2606:4700:4700::1111"]
    assert loopback_server.last["headers"]["Host"] == "[2606:4700:4700::1111]:8080"


def test_a_malformed_allow_list_entry_stops_the_app_at_start(settings):
    from django.apps import apps

    settings.MODEL_ALLOWED_BASE_URLS = ["http://admin:hunter2@10.0.0.5/v1"]
    with pytest.raises(ImproperlyConfigured, match="entry 1") as refused:
        apps.get_app_config("flows").ready()
    assert "hunter2" not in str(refused.value)
