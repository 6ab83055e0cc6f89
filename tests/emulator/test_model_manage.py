"""Tests of the model-manage emulator (model_manage.py): real HTTP over loopback, with urllib.

    .venv/bin/python -m pytest -q tests/emulator/test_model_manage.py
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import model_manage  # noqa: E402

API = "/model-manage/api"
CLIENT, SECRET = "internal-client", "internal-client-secret"
BRIDGE, BRIDGE_SECRET = "bridge-client", "bridge-secret"
MM = "/_emulator/model-manage"


def scoring_job(**over) -> dict:
    """Shaped as modelop/titanic-spark job_submit/titanic_scoring_job.json, for this runtime."""
    job = {
        "jobType": "MODEL_BATCH_JOB",
        "jobStatus": "CREATED",
        "model": {"storedModel": {"modelAssets": [{"name": "titanic.py", "assetType": "SOURCE_CODE",
                                                   "primaryModelSource": True, "initFunction": "init",
                                                   "scoreFunction": "score", "sourceCode": "def score(): pass"}],
                                  "modelMetaData": {"type": "UNKNOWN"}}},
        "jobParameters": {"--executor-memory": "512MB"},
        "inputData": [{"assetType": "EXTERNAL_FILE", "assetRole": "COMPARATOR_DATA",
                       "fileUrl": "s3://bucket/test.csv", "filename": "test.csv", "fileFormat": "CSV"}],
        "outputData": [],
        "targetEngine": {"engineType": "SPARK_SERVERLESS_RUNTIME", "name": "spark-serverless-1"},
    }
    job.update(over)
    return job


class Response:
    def __init__(self, status: int, headers, raw: bytes) -> None:
        self.status, self.headers, self.raw = status, headers, raw

    @property
    def json(self):
        return json.loads(self.raw)


def call(method: str, url: str, body=None, token: str | None = None, headers: dict | None = None,
         form: dict | None = None, accept: bool = True) -> Response:
    hdrs = dict(headers or {})
    data = None
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        hdrs.setdefault("Content-Type", "application/x-www-form-urlencoded")
    elif body is not None:
        data = json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    if token:
        hdrs["Authorization"] = f"Bearer {token}"
    if accept:
        hdrs.setdefault("Accept", "application/hal+json, application/json")
    request = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return Response(r.status, r.headers, r.read())
    except urllib.error.HTTPError as e:
        return Response(e.code, e.headers, e.read())


@pytest.fixture(scope="module")
def server():
    mm = model_manage.ModelManage(clients={CLIENT: SECRET, BRIDGE: BRIDGE_SECRET})
    srv = model_manage.Server(mm).start()
    yield srv
    srv.stop()


@pytest.fixture
def mm(server):
    call("POST", server.endpoint + MM + "/reset", {})
    yield server
    call("POST", server.endpoint + MM + "/reset", {})


def token(srv, client: str = CLIENT, secret: str = SECRET, scope: str = "modelop_client") -> str:
    r = call("POST", srv.token_url, form={"grant_type": "client_credentials", "client_id": client,
                                          "client_secret": secret, "scope": scope})
    assert r.status == 200, r.raw
    return r.json["access_token"]


def post_job(srv, tok: str, job: dict | None = None) -> dict:
    r = call("POST", srv.endpoint + API + "/jobs", job or scoring_job(), tok)
    assert r.status == 201, r.raw
    return r.json


def requests_log(srv) -> list[dict]:
    return call("GET", srv.endpoint + MM + "/requests").json["requests"]


# ---- OAuth2


def test_token_with_form_credentials(mm):
    r = call("POST", mm.token_url, form={"grant_type": "client_credentials", "client_id": CLIENT,
                                         "client_secret": SECRET, "scope": "modelop_client"})
    assert r.status == 200
    body = r.json
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600 and body["scope"] == "modelop_client"
    assert body["access_token"]
    assert r.headers["Cache-Control"] == "no-store"


def test_token_with_basic_client_auth(mm):
    basic = base64.b64encode(f"{BRIDGE}:{BRIDGE_SECRET}".encode()).decode()
    r = call("POST", mm.token_url, form={"grant_type": "client_credentials"}, headers={"Authorization": f"Basic {basic}"})
    assert r.status == 200, r.raw
    assert "scope" not in r.json
    assert call("GET", mm.endpoint + API + "/jobs", token=r.json["access_token"]).status == 200


def test_bad_secret_is_invalid_client(mm):
    r = call("POST", mm.token_url, form={"grant_type": "client_credentials", "client_id": CLIENT,
                                         "client_secret": "wrong"})
    assert r.status == 401
    assert r.json["error"] == "invalid_client"
    basic = base64.b64encode(f"{CLIENT}:wrong".encode()).decode()
    r = call("POST", mm.token_url, form={"grant_type": "client_credentials"}, headers={"Authorization": f"Basic {basic}"})
    assert r.status == 401 and r.json["error"] == "invalid_client"
    assert r.headers["WWW-Authenticate"].startswith("Basic")
    r = call("POST", mm.token_url, form={"grant_type": "client_credentials", "client_id": "nobody",
                                         "client_secret": SECRET})
    assert r.status == 401 and r.json["error"] == "invalid_client"


def test_token_request_errors(mm):
    r = call("POST", mm.token_url, form={"client_id": CLIENT, "client_secret": SECRET})
    assert (r.status, r.json["error"]) == (400, "invalid_request")
    r = call("POST", mm.token_url, form={"grant_type": "password", "client_id": CLIENT, "client_secret": SECRET})
    assert (r.status, r.json["error"]) == (400, "unsupported_grant_type")
    r = call("POST", mm.token_url, body={"grant_type": "client_credentials"})
    assert (r.status, r.json["error"]) == (400, "invalid_request")


def test_scopes_can_be_restricted():
    srv = model_manage.Server(model_manage.ModelManage(scopes=["modelop_client"])).start()
    try:
        base = {"grant_type": "client_credentials", "client_id": CLIENT, "client_secret": SECRET}
        assert call("POST", srv.token_url, form={**base, "scope": "modelop_client"}).status == 200
        r = call("POST", srv.token_url, form={**base, "scope": "admin"})
        assert (r.status, r.json["error"]) == (400, "invalid_scope")
    finally:
        srv.stop()


def test_every_api_route_needs_a_bearer_token(mm):
    tok = token(mm)
    job = post_job(mm, tok)
    routes = [("GET", "/jobs"), ("POST", "/jobs"), ("GET", "/jobs/search"),
              ("GET", "/jobs/search/findAllByJobStatus?jobStatus=CREATED"), ("GET", f"/jobs/{job['id']}"),
              ("PATCH", f"/jobs/{job['id']}"), ("DELETE", f"/jobs/{job['id']}"),
              ("GET", f"/modelBatchJob/{job['id']}"), ("GET", "")]
    for method, route in routes:
        body = {} if method in ("POST", "PATCH") else None
        r = call(method, mm.endpoint + API + route, body)
        assert r.status == 401, (method, route)
        assert r.headers["WWW-Authenticate"].startswith("Bearer"), (method, route)
        assert r.raw == b""
        r = call(method, mm.endpoint + API + route, body, token="not-a-token")
        assert r.status == 401 and 'error="invalid_token"' in r.headers["WWW-Authenticate"], (method, route)
    r = call("GET", mm.endpoint + API + "/jobs", headers={"Authorization": f"Basic {tok}"})
    assert r.status == 401
    # Nothing was changed by the refused requests.
    assert call("GET", mm.endpoint + API + f"/jobs/{job['id']}", token=tok).json["version"] == 0


def test_token_expiry():
    srv = model_manage.Server(model_manage.ModelManage(token_lifetime=0.4)).start()
    try:
        r = call("POST", srv.token_url, form={"grant_type": "client_credentials", "client_id": CLIENT,
                                              "client_secret": SECRET})
        assert r.json["expires_in"] == 1  # whole seconds, rounded up
        tok = r.json["access_token"]
        assert call("GET", srv.endpoint + API + "/jobs", token=tok).status == 200
        time.sleep(0.6)
        r = call("GET", srv.endpoint + API + "/jobs", token=tok)
        assert r.status == 401 and 'error="invalid_token"' in r.headers["WWW-Authenticate"]
        assert call("GET", srv.endpoint + API + "/jobs", token=token(srv)).status == 200
    finally:
        srv.stop()


def test_revoked_tokens_are_refused(mm):
    tok = token(mm)
    assert call("POST", mm.endpoint + MM + "/tokens/revoke", {}).json["revoked"] >= 1
    assert call("GET", mm.endpoint + API + "/jobs", token=tok).status == 401


# ---- jobs


def test_post_then_get_as_submit_py_does(mm):
    tok = token(mm)
    r = call("POST", mm.endpoint + API + "/jobs", scoring_job(), tok)
    assert r.status == 201
    job = r.json
    job_id = job["id"]  # what submit.py reads back
    assert len(job_id) == 36 and job["version"] == 0 and job["jobStatus"] == "CREATED"
    assert job["createdBy"] == CLIENT == job["lastModifiedBy"]
    assert job["createdDate"].endswith("Z") and len(job["createdDate"]) == 24  # 2023-12-20T07:35:53.943Z
    assert job["targetEngine"]["engineType"] == "SPARK_SERVERLESS_RUNTIME"
    assert r.headers["ETag"] == '"0"'
    # The stored example's per-type self link.
    self_href = f"{mm.endpoint}{API}/modelBatchJob/{job_id}"
    assert job["_links"]["self"]["href"] == self_href == r.headers["Location"]
    assert job["_links"]["modelBatchJob"]["href"] == self_href

    for url in (f"{mm.endpoint}{API}/jobs/{job_id}", self_href):
        got = call("GET", url, token=tok)
        assert got.status == 200 and got.headers["ETag"] == '"0"'
        assert got.headers["Content-Type"] == "application/hal+json"
        assert got.json == job
    stored = call("GET", mm.endpoint + MM + f"/jobs/{job_id}").json
    assert "_links" not in stored and stored["model"] == scoring_job()["model"]


def test_post_defaults_and_ids(mm):
    tok = token(mm)
    job = scoring_job(jobType="MODEL_BATCH_TEST_JOB", version=7, createdBy="someone")
    del job["jobStatus"]
    created = post_job(mm, tok, job)
    assert created["jobStatus"] == "CREATED" and created["version"] == 0 and created["createdBy"] == CLIENT
    assert "/modelBatchTestJob/" in created["_links"]["self"]["href"]
    given = post_job(mm, tok, scoring_job(id="007"))
    assert given["id"] == "007"
    r = call("POST", mm.endpoint + API + "/jobs", scoring_job(id="007"), tok)
    assert r.status == 409
    # Without an Accept header: 201, Location and ETag, no body (Spring Data REST's returnBodyOnCreate default).
    r = call("POST", mm.endpoint + API + "/jobs", scoring_job(), tok, accept=False)
    assert r.status == 201 and r.raw == b"" and r.headers["ETag"] == '"0"'
    assert call("GET", r.headers["Location"], token=tok).status == 200
    r = call("POST", mm.endpoint + API + "/jobs", [1, 2], tok)
    assert r.status == 400


def test_paging(mm):
    tok = token(mm)
    ids = [post_job(mm, tok)["id"] for _ in range(45)]
    first = call("GET", mm.endpoint + API + "/jobs", token=tok).json  # Spring's default size, 20
    assert first["page"] == {"size": 20, "totalElements": 45, "totalPages": 3, "number": 0}
    assert [j["id"] for j in first["_embedded"]["jobs"]] == ids[:20]
    assert set(first["_links"]) == {"self", "next", "last", "search"}
    last = call("GET", first["_links"]["last"]["href"], token=tok).json
    assert last["page"]["number"] == 2 and len(last["_embedded"]["jobs"]) == 5
    assert {"first", "prev", "self"} <= set(last["_links"]) and "next" not in last["_links"]

    # preflight.py's loop: page by page until page >= totalPages - 1.
    seen, page = [], 0
    while True:
        body = call("GET", f"{mm.endpoint}{API}/jobs?page={page}&size=10", token=tok).json
        batch = body.get("_embedded", {}).get("jobs", [])
        if not batch:
            break
        seen.extend(j["id"] for j in batch)
        if page >= body["page"]["totalPages"] - 1:
            break
        page += 1
    assert seen == ids

    beyond = call("GET", f"{mm.endpoint}{API}/jobs?page=9&size=10", token=tok).json
    assert beyond["_embedded"]["jobs"] == [] and beyond["page"]["number"] == 9
    big = call("GET", f"{mm.endpoint}{API}/jobs?size=5000", token=tok).json
    assert big["page"]["size"] == 1000 and len(big["_embedded"]["jobs"]) == 45
    desc = call("GET", f"{mm.endpoint}{API}/jobs?size=3&sort=id,desc", token=tok).json
    assert [j["id"] for j in desc["_embedded"]["jobs"]] == sorted(ids, reverse=True)[:3]
    # Any field sorts, objects included (compared as JSON), and a sort is kept in the page links.
    by_engine = call("GET", f"{mm.endpoint}{API}/jobs?size=10&sort=targetEngine&sort=createdDate,asc", token=tok).json
    assert len(by_engine["_embedded"]["jobs"]) == 10 and "sort=targetEngine" in by_engine["_links"]["next"]["href"]


def test_empty_collection(mm):
    body = call("GET", mm.endpoint + API + "/jobs", token=token(mm)).json
    assert body["_embedded"] == {"jobs": []}
    assert body["page"] == {"size": 20, "totalElements": 0, "totalPages": 0, "number": 0}


def test_etag_if_match_412(mm):
    tok = token(mm)
    job = post_job(mm, tok)
    url = f"{mm.endpoint}{API}/jobs/{job['id']}"
    assert call("GET", url, token=tok, headers={"If-None-Match": '"0"'}).status == 304
    r = call("PATCH", url, {"jobStatus": "WAITING"}, tok, headers={"If-Match": '"0"'})
    assert r.status == 200 and r.headers["ETag"] == '"1"' and r.json["jobStatus"] == "WAITING"
    stale = call("PATCH", url, {"jobStatus": "RUNNING"}, tok, headers={"If-Match": '"0"'})
    assert stale.status == 412 and stale.raw == b"" and stale.headers["ETag"] == '"1"'
    got = call("GET", url, token=tok)
    assert got.json["jobStatus"] == "WAITING" and got.json["version"] == 1
    assert call("GET", url, token=tok, headers={"If-None-Match": '"0"'}).status == 200
    # Unquoted and weak forms of the same version match too.
    assert call("PATCH", url, {"jobStatus": "RUNNING"}, tok, headers={"If-Match": "1"}).status == 200
    assert call("PATCH", url, {"jobStatus": "COMPLETE"}, tok, headers={"If-Match": 'W/"2"'}).status == 200
    assert call("DELETE", url, token=tok, headers={"If-Match": '"1"'}).status == 412
    assert call("DELETE", url, token=tok, headers={"If-Match": '"3"'}).status == 204
    assert call("GET", url, token=tok).status == 404
    assert call("PATCH", url, {"jobStatus": "X"}, tok).status == 404


def test_patch_merges_and_bumps_version(mm):
    tok = token(mm)
    bridge = token(mm, BRIDGE, BRIDGE_SECRET)
    job = post_job(mm, tok, scoring_job(jobMessages=["2021/3/11 14:40:45 batch job received"]))
    url = f"{mm.endpoint}{API}/jobs/{job['id']}"
    time.sleep(0.01)
    patch = {"jobStatus": "WAITING", "jobWaitTime": 1615473645393, "targetEngine": {"name": "other-name"},
             "jobMessages": ["one", "two"], "jobParameters": None, "id": "hijack", "createdDate": "1970",
             "_links": {"self": {"href": "x"}}}
    r = call("PATCH", url, patch, bridge)
    assert r.status == 200
    after = r.json
    assert after["id"] == job["id"] and after["createdDate"] == job["createdDate"] and after["createdBy"] == CLIENT
    assert after["version"] == 1 and after["lastModifiedBy"] == BRIDGE
    assert after["lastModifiedDate"] > job["lastModifiedDate"]
    assert after["targetEngine"] == {"engineType": "SPARK_SERVERLESS_RUNTIME", "name": "other-name"}
    assert after["jobMessages"] == ["one", "two"]
    assert "jobParameters" not in after
    assert after["model"] == job["model"] and after["jobWaitTime"] == 1615473645393
    # Without an Accept header: 204 and the new ETag.
    r = call("PATCH", url, {"jobResult": "UNKNOWN"}, bridge, accept=False)
    assert r.status == 204 and r.raw == b"" and r.headers["ETag"] == '"2"'
    # A version in the body that is not the stored one: optimistic locking, 409.
    r = call("PATCH", url, {"jobStatus": "RUNNING", "version": 0}, bridge)
    assert r.status == 409 and "optimistic locking" in r.json["message"]
    assert call("PATCH", url, {"jobStatus": "RUNNING", "version": 2}, bridge).json["version"] == 3
    assert call("PATCH", url, "not an object", bridge).status == 400
    assert call("PATCH", url, [{"op": "replace"}], bridge,
                headers={"Content-Type": "application/json-patch+json"}).status == 415


def test_per_type_paths_and_links(mm):
    tok = token(mm)
    for job_type, segment in model_manage.PER_TYPE_PATHS.items():
        job = post_job(mm, tok, scoring_job(jobType=job_type))
        url = f"{mm.endpoint}{API}/{segment}/{job['id']}"
        assert job["_links"]["self"]["href"] == url
        assert call("PATCH", url, {"jobStatus": "WAITING"}, tok, headers={"If-Match": '"0"'}).json["version"] == 1
    other = post_job(mm, tok, scoring_job(jobType="MODEL_TEST_JOB"))
    assert other["_links"]["self"]["href"] == f"{mm.endpoint}{API}/jobs/{other['id']}"
    call("POST", mm.endpoint + MM + "/config", {"selfLinks": "jobs"})
    try:
        again = call("GET", f"{mm.endpoint}{API}/modelBatchTestJob/{other['id']}", token=tok).json
        assert again["_links"]["self"]["href"].endswith(f"/jobs/{other['id']}")
    finally:
        call("POST", mm.endpoint + MM + "/config", {"selfLinks": "per-type"})


def test_embedded_rel_per_type(mm):
    tok = token(mm)
    post_job(mm, tok, scoring_job(jobType="MODEL_BATCH_JOB"))
    post_job(mm, tok, scoring_job(jobType="MODEL_BATCH_TEST_JOB"))
    assert call("POST", mm.endpoint + MM + "/config", {"embeddedRel": "per-type"}).status == 200
    try:
        body = call("GET", mm.endpoint + API + "/jobs", token=tok).json
        assert sorted(body["_embedded"]) == ["modelBatchJobs", "modelBatchTestJobs"]
        assert body["page"]["totalElements"] == 2
    finally:
        call("POST", mm.endpoint + MM + "/config", {"embeddedRel": "jobs"})
    assert call("POST", mm.endpoint + MM + "/config", {"embeddedRel": "bogus"}).status == 400


# ---- finders


def test_finder_listing(mm):
    r = call("GET", mm.endpoint + API + "/jobs/search", token=token(mm))
    assert r.status == 200
    links = r.json["_links"]
    assert links["self"]["href"] == f"{mm.endpoint}{API}/jobs/search"
    assert links["findAllByJobStatus"] == {
        "href": f"{mm.endpoint}{API}/jobs/search/findAllByJobStatus{{?jobStatus,page,size,sort}}", "templated": True}
    assert links["findAllByJobStatusAndTargetEngineEngineType"]["href"].endswith(
        "/findAllByJobStatusAndTargetEngineEngineType{?jobStatus,engineType,page,size,sort}")
    assert set(links) == {"self", "findAllByJobStatus", "findAllByJobStatusAndTargetEngineEngineType"}
    assert call("GET", mm.endpoint + API + "/jobs", token=token(mm)).json["_links"]["search"]["href"] == links["self"]["href"]


def test_finder_query(mm):
    tok = token(mm)
    created = [post_job(mm, tok)["id"] for _ in range(5)]
    other_engine = post_job(mm, tok, scoring_job(targetEngine={"engineType": "SPARK_RUNTIME"}))["id"]
    running = post_job(mm, tok, scoring_job(jobStatus="RUNNING"))["id"]
    base = f"{mm.endpoint}{API}/jobs/search"

    body = call("GET", f"{base}/findAllByJobStatus?jobStatus=CREATED&page=0&size=4", token=tok).json
    assert body["page"] == {"size": 4, "totalElements": 6, "totalPages": 2, "number": 0}
    assert [j["id"] for j in body["_embedded"]["jobs"]] == created[:4]
    nxt = body["_links"]["next"]["href"]
    assert "jobStatus=CREATED" in nxt and "page=1" in nxt
    assert [j["id"] for j in call("GET", nxt, token=tok).json["_embedded"]["jobs"]] == [created[4], other_engine]

    body = call("GET", f"{base}/findAllByJobStatusAndTargetEngineEngineType?jobStatus=CREATED"
                       f"&engineType=SPARK_SERVERLESS_RUNTIME&size=50", token=tok).json
    assert [j["id"] for j in body["_embedded"]["jobs"]] == created
    body = call("GET", f"{base}/findAllByJobStatus?jobStatus=CREATED&jobStatus=RUNNING&size=50", token=tok).json
    assert body["page"]["totalElements"] == 7 and running in [j["id"] for j in body["_embedded"]["jobs"]]
    assert call("GET", f"{base}/findAllByJobStatus?jobStatus=ERROR", token=tok).json["_embedded"]["jobs"] == []
    assert call("GET", f"{base}/findByNothing?jobStatus=CREATED", token=tok).status == 404


def test_finder_names_are_configurable():
    mm = model_manage.ModelManage(finders=["byStatus=status:jobStatus"])
    srv = model_manage.Server(mm).start()
    try:
        tok = token(srv)
        post_job(srv, tok)
        links = call("GET", srv.endpoint + API + "/jobs/search", token=tok).json["_links"]
        assert set(links) == {"self", "byStatus"}
        body = call("GET", srv.endpoint + API + "/jobs/search/byStatus?status=CREATED", token=tok).json
        assert body["page"]["totalElements"] == 1
        assert call("GET", srv.endpoint + API + "/jobs/search/findAllByJobStatus?jobStatus=CREATED",
                    token=tok).status == 404
    finally:
        srv.stop()
    with pytest.raises(ValueError):
        model_manage.ModelManage(finders=["no-equals"])


# ---- faults


def test_503_fault_for_the_next_requests(mm):
    tok = token(mm)
    r = call("POST", mm.endpoint + MM + "/faults", {"kind": "status", "status": 503, "count": 2, "path": "/jobs",
                                                     "retryAfter": 1})
    assert r.status == 200 and r.json["faults"][0]["count"] == 2
    first = call("GET", mm.endpoint + API + "/jobs", token=tok)
    assert first.status == 503 and first.json["error"] == "Service Unavailable" and first.headers["Retry-After"] == "1"
    assert call("POST", mm.endpoint + API + "/jobs", scoring_job(), tok).status == 503
    assert call("GET", mm.endpoint + API + "/jobs", token=tok).status == 200
    assert call("GET", mm.endpoint + MM + "/faults").json["faults"] == []
    log = requests_log(mm)
    assert [(e["method"], e["status"], e["fault"]) for e in log[-3:]] == [
        ("GET", 503, "status"), ("POST", 503, "status"), ("GET", 200, None)]
    assert log[-1]["clientId"] == CLIENT and log[-1]["path"] == API + "/jobs"
    assert call("GET", mm.endpoint + MM + "/jobs").json["jobs"] == []  # the refused POST stored nothing


def test_fault_for_a_route_until_cleared(mm):
    tok = token(mm)
    job = post_job(mm, tok)
    call("POST", mm.endpoint + MM + "/faults", {"kind": "status", "status": 502, "count": None, "method": "PATCH"})
    url = f"{mm.endpoint}{API}/jobs/{job['id']}"
    for _ in range(3):
        assert call("PATCH", url, {"jobStatus": "WAITING"}, tok).status == 502
    assert call("GET", url, token=tok).status == 200
    call("DELETE", mm.endpoint + MM + "/faults")
    assert call("PATCH", url, {"jobStatus": "WAITING"}, tok).status == 200
    # The token route can be hit too.
    call("POST", mm.endpoint + MM + "/faults", {"kind": "status", "status": 503, "path": "^/oauth/token$"})
    r = call("POST", mm.token_url, form={"grant_type": "client_credentials", "client_id": CLIENT,
                                         "client_secret": SECRET})
    assert r.status == 503
    assert token(mm)


def test_delay_and_disconnect_faults(mm):
    tok = token(mm)
    call("POST", mm.endpoint + MM + "/faults", {"faults": [{"kind": "delay", "ms": 300, "path": "/jobs$"},
                                                           {"kind": "disconnect", "path": "/search$"}]})
    started = time.monotonic()
    assert call("GET", mm.endpoint + API + "/jobs", token=tok).status == 200
    assert time.monotonic() - started >= 0.3
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError, urllib.error.URLError)):
        call("GET", mm.endpoint + API + "/jobs/search", token=tok)
    assert call("GET", mm.endpoint + API + "/jobs/search", token=tok).status == 200
    faults = [e["fault"] for e in requests_log(mm)[-3:]]
    assert faults == ["delay", "disconnect", None]


def test_claim_race(mm):
    tok = token(mm, BRIDGE, BRIDGE_SECRET)
    job = post_job(mm, tok)
    bystander = post_job(mm, tok)
    url = f"{mm.endpoint}{API}/jobs/{job['id']}"
    etag = call("GET", url, token=tok).headers["ETag"]
    call("POST", mm.endpoint + MM + "/faults", {"kind": "claim-race", "jobId": job["id"]})
    # A PATCH of another job is not raced.
    assert call("PATCH", f"{mm.endpoint}{API}/jobs/{bystander['id']}", {"jobStatus": "WAITING"}, tok,
                headers={"If-Match": '"0"'}).status == 200
    r = call("PATCH", url, {"jobStatus": "WAITING", "jobWaitTime": 1}, tok, headers={"If-Match": etag})
    assert r.status == 412 and r.headers["ETag"] == '"1"'
    stored = call("GET", mm.endpoint + MM + f"/jobs/{job['id']}").json
    assert stored["jobStatus"] == "WAITING" and stored["lastModifiedBy"] == "other-runtime" and stored["version"] == 1
    assert "jobWaitTime" not in stored
    assert requests_log(mm)[-1]["fault"] == "claim-race"
    # Used up: the next PATCH with the current ETag is served.
    assert call("PATCH", url, {"jobMessages": ["mine"]}, tok, headers={"If-Match": '"1"'}).status == 200
    # A custom competing change, on any job.
    call("POST", mm.endpoint + MM + "/faults", {"kind": "claim-race", "patch": {"jobStatus": "CANCELLED"}, "by": "user"})
    r = call("PATCH", url, {"jobStatus": "RUNNING"}, tok, headers={"If-Match": '"2"'})
    assert r.status == 412
    assert call("GET", url, token=tok).json["jobStatus"] == "CANCELLED"


def test_bad_fault_specs(mm):
    for spec in ({"kind": "nope"}, {"kind": "delay"}, {"kind": "status", "count": 0}, {"kind": "status", "path": "("}):
        assert call("POST", mm.endpoint + MM + "/faults", spec).status == 400, spec
    assert call("GET", mm.endpoint + MM + "/faults").json["faults"] == []


# ---- admin


def test_admin_jobs_and_reset(mm):
    tok = token(mm)
    seeded = call("POST", mm.endpoint + MM + "/jobs", {"id": "seed-1", "jobType": "MODEL_BATCH_JOB", "version": 4,
                                                        "jobStatus": "CREATED"}).json
    assert seeded["version"] == 4 and seeded["createdBy"] == "SYSTEM"
    assert call("GET", f"{mm.endpoint}{API}/jobs/seed-1", token=tok).headers["ETag"] == '"4"'
    # ModelOp Center cancels the job.
    cancelled = call("PATCH", mm.endpoint + MM + "/jobs/seed-1", {"jobStatus": "CANCELLED"}).json
    assert cancelled["version"] == 5 and cancelled["lastModifiedBy"] == "SYSTEM"
    assert [j["id"] for j in call("GET", mm.endpoint + MM + "/jobs").json["jobs"]] == ["seed-1"]
    assert call("DELETE", mm.endpoint + MM + "/jobs/seed-1").status == 200
    assert call("GET", f"{mm.endpoint}{API}/jobs/seed-1", token=tok).status == 404
    assert call("GET", mm.endpoint + MM + "/jobs/seed-1").status == 404
    post_job(mm, tok)
    call("POST", mm.endpoint + MM + "/faults", {"kind": "delay", "ms": 10})
    assert call("POST", mm.endpoint + MM + "/reset", {}).status == 200
    assert call("GET", mm.endpoint + MM + "/jobs").json["jobs"] == []
    assert call("GET", mm.endpoint + MM + "/faults").json["faults"] == []
    assert requests_log(mm) == []
    assert call("GET", mm.endpoint + API + "/jobs", token=tok).status == 200  # tokens survive a plain reset
    call("POST", mm.endpoint + MM + "/reset", {"tokens": True})
    assert call("GET", mm.endpoint + API + "/jobs", token=tok).status == 401
    assert call("GET", mm.endpoint + "/_emulator/health").json == {"status": "ok"}
    assert call("GET", mm.endpoint + MM + "/nothing").status == 404


def test_command_line(tmp_path):
    ready = tmp_path / "ready.json"
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, "model_manage.py"), "--ready-file", str(ready),
                             "--quiet", "--token-lifetime", "30", "--client", "runtime-a:secret-a",
                             "--finder", "jobsByStatus=jobStatus"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while not ready.exists():
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        info = json.loads(ready.read_text())
        assert info["endpoint"].startswith("http://127.0.0.1:")
        assert info["token_url"] == info["endpoint"] + "/oauth/token"
        r = call("POST", info["token_url"], form={"grant_type": "client_credentials", "client_id": "runtime-a",
                                                  "client_secret": "secret-a"})
        assert r.status == 200 and r.json["expires_in"] == 30
        tok = r.json["access_token"]
        links = call("GET", info["endpoint"] + API + "/jobs/search", token=tok).json["_links"]
        assert set(links) == {"self", "jobsByStatus"}
        assert call("POST", info["token_url"], form={"grant_type": "client_credentials", "client_id": CLIENT,
                                                     "client_secret": SECRET}).status == 401
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        proc.stdout.close()
        proc.stderr.close()


def test_command_line_rejects_bad_settings(tmp_path):
    for extra in (["--client", "no-secret"], ["--finder", "x"], ["--token-lifetime", "0"]):
        r = subprocess.run([sys.executable, os.path.join(HERE, "model_manage.py"), "--ready-file",
                            str(tmp_path / "r.json"), *extra], capture_output=True, timeout=20)
        assert r.returncode == 2, extra
