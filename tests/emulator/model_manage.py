"""An emulation of ModelOp Center's model-manage REST API (its jobs) and of an OAuth2 token endpoint, on loopback.

model-manage is where ModelOp Center keeps its jobs; its runtimes take CREATED jobs from it and write their
progress back to it (issue 24). This emulator serves the public shapes of that API so the bridge can be tested
without a ModelOp Center. Sources, each a public location (the same ones ``shared/CONTRACT.md`` cites in "The
model-manage side (the bridge)"):

* [submit]   github ``modelop/titanic-spark`` ``job_submit/submit.py`` (and the same script in
             ``modelop/german_credit_data_drift_detector_spark`` ``job_submitter/submit.py``): a job is created with
             ``POST <gateway>/model-manage/api/jobs`` and the JSON job document; the answer is the stored job, whose
             ``id`` the script reads.
* [backfill] github ``modelop/backfill_auditRecords`` ``preflight.py``, ``backfill_storedModel_auditRecords.py``:
             ModelOp's own scripts against model-manage: finders at ``/model-manage/api/<collection>/search/<name>``
             with ``page``/``size``, answers read as ``_embedded.<collection>`` and ``page.totalPages``, partial updates
             with ``PATCH /model-manage/api/<collection>/{id}`` and a plain JSON body, ``Authorization: Bearer``,
             documents with ``createdDate``, ``lastModifiedDate``, ``createdBy``, ``lastModifiedBy``.
* [example]  github ``modelop/lab-dashboard`` ``example_job.json`` (a stored MODEL_BATCH_TEST_JOB: ``id`` a UUID,
             ``version``, ``createdDate``/``lastModifiedDate`` as ISO-8601 with milliseconds and ``Z``, ``createdBy``/
             ``lastModifiedBy``, ``jobStatus``, ``jobResult``, ``jobMessages``; and ``_links.self`` and
             ``_links.modelBatchTestJob`` both ``<gateway>/model-manage/api/modelBatchTestJob/{id}``: the per-type
             self link), and the drift repo's ``response.json`` (a stored MODEL_BATCH_JOB: ``jobWaitTime``,
             ``jobRunTime``, ``jobEndTime`` in epoch ms, ``targetEngine`` as the whole runtime entity).
* [sdr-etag] Spring Data REST reference, "Conditional Operations with Headers"
             (docs.spring.io/spring-data/rest/reference/etags-and-other-conditionals.html): an entity with a
             ``@Version`` is served with an ``ETag`` holding its version; ``PUT``/``PATCH``/``DELETE`` with
             ``If-Match`` are carried out only if it matches; ``If-None-Match`` on GET answers 304 when unchanged.
* [sdr-412]  github ``spring-projects/spring-data-rest`` ``RepositoryRestExceptionHandler.java``: an ETag mismatch is
             ``412 Precondition Failed`` with no body and the current ``ETag`` header; an optimistic-locking
             failure is ``409 Conflict`` with ``{"cause", "message"}`` (``ExceptionMessage``); an unknown item
             ``404`` with no body; an unsupported method ``405`` with ``Allow``.
* [sdr-page] Spring Data REST reference, "Paging and Sorting" and "Repository resources": ``page`` (0-based,
             default 0), ``size`` (default 20), ``sort=prop,asc|desc``; paged answers carry ``page``
             ``{size, totalElements, totalPages, number}`` and ``first``/``prev``/``self``/``next``/``last`` links;
             a repository's query methods are listed as links at ``/<collection>/search`` and run at
             ``/<collection>/search/<name>``; POST answers ``201 Created`` with ``Location``, and a body when the
             request has an ``Accept`` header; PATCH ``200`` with a body when it has one, else ``204``.
* [sdr-merge] github ``spring-projects/spring-data-rest`` ``DomainObjectReader.java``: a PATCH with a JSON object
             is merged into the stored entity (nested objects recursively).
* [rfc6749]  RFC 6749 (OAuth 2.0) §4.4 client credentials grant (form body ``grant_type=client_credentials``,
             ``scope``), §2.3.1 client authentication (HTTP Basic, or ``client_id``/``client_secret`` in the body),
             §5.1 the token answer (``access_token``, ``token_type``, ``expires_in``, ``scope``;
             ``Cache-Control: no-store``), §5.2 errors (``{"error", "error_description"}``: ``invalid_request``,
             ``invalid_client`` 401 with ``WWW-Authenticate`` when Basic was tried, ``unsupported_grant_type``,
             ``invalid_scope``).
* [rfc6750]  RFC 6750 (Bearer tokens) §3: a request without a token answers 401 with ``WWW-Authenticate: Bearer``;
             an expired or unknown token 401 with ``error="invalid_token"``.
* [mo-auth]  ModelOp docs (Amazon Cognito / Okta / PingFederate / Entra ID pages, dv301/dv33): service clients
             use the client credentials grant, client ``internal-client``, scope ``modelop_client`` (Cognito:
             ``rs/modelop_client``).

What is not public, and so ASSUMED here (each one a command-line setting or marked below):

* The finder names and parameters for jobs (ASSUMED; ``--finder``, defaults below) and the path to GET/PATCH/DELETE
  one job: ``/model-manage/api/jobs/{id}`` (ASSUMED, Spring Data REST's item resource of the ``jobs`` collection);
  the per-type paths of the stored example (``/model-manage/api/modelBatchTestJob/{id}``) are served too, and
  ``modelBatchJob``/``modelBatchTrainingJob`` for the other two batch types (ASSUMED by analogy).
* The ``_embedded`` key of a page: ``jobs`` (the issue's reading). Spring HATEOAS groups embedded entities by the
  rel of their own class, so with job subclasses a real answer may read ``_embedded.modelBatchTestJobs`` etc.
  (ASSUMED); ``--embedded-rel per-type`` answers that way, so a client can be shown to read every ``_embedded`` list.
* PATCH details (ASSUMED simplifications of [sdr-merge]): a ``null`` removes the field (a MongoDB document does
  not keep nulls); an array replaces the stored one whole (Spring merges arrays of objects element by element);
  ``id``, ``createdDate``, ``createdBy`` in the body are ignored; a ``version`` in the body that differs from the
  stored one is an optimistic-locking failure, ``409`` ([sdr-412]). The version bumps by one per write, from 0.
* ``createdBy``/``lastModifiedBy``: the OAuth2 client id of the token (the stored examples say ``SYSTEM``: ModelOp's
  own writes; admin writes below use that).
* Token endpoint path ``/oauth/token`` (``--token-path``); opaque tokens; default lifetime 3600 s
  (``--token-lifetime``); default client ``internal-client`` / ``internal-client-secret`` (``--client``); any scope
  unless ``--scope`` lists the allowed ones. A 401 from the API has an empty body ([rfc6750] shows none).
* Errors not covered above answer Spring Boot's default error body ``{"timestamp", "status", "error", "path"}``
  (ASSUMED for model-manage and for a 503 in front of it).

API routes (all need ``Authorization: Bearer <token>``; ``{api}`` is ``/model-manage/api``):

    GET    {api}                                    root: ``_links.jobs``
    GET    {api}/jobs?page=&size=&sort=             paged HAL collection
    POST   {api}/jobs                               create: id (UUID unless given and unused), version 0,
                                                    createdDate/lastModifiedDate, createdBy/lastModifiedBy,
                                                    jobStatus CREATED if absent; 201, Location, ETag
    GET    {api}/jobs/search                        the finders, as links
    GET    {api}/jobs/search/<finder>?<params>&page=&size=&sort=
    GET    {api}/jobs/{id}   (or {api}/<perType>/{id})   one job, ETag "<version>"; If-None-Match -> 304
    PATCH  {api}/jobs/{id}   (or per type)          merge; If-Match -> 412 on mismatch; version+1,
                                                    lastModifiedDate, lastModifiedBy; 200 + body or 204
    DELETE {api}/jobs/{id}   (or per type)          If-Match honoured; 204
    POST   <token-path>                             OAuth2 client credentials

Finders (``--finder NAME=PARAM[:FIELD],...``, repeatable; FIELD is a dotted path into the job, PARAM by default;
a parameter given several times matches any of its values; all ASSUMED names):

    findAllByJobStatus=jobStatus
    findAllByJobStatusAndTargetEngineEngineType=jobStatus,engineType:targetEngine.engineType

Admin routes (JSON, no token; errors ``{"message"}`` with 400/404), for the tests:

``GET /_emulator/health``
    200 ``{"status": "ok"}``.
``GET /_emulator/model-manage/jobs``
    200 ``{"jobs": [every stored job, as stored, oldest first]}``.
``POST /_emulator/model-manage/jobs``
    Body: a job document, stored as given (``id`` generated if absent; ``version`` 0, dates, ``createdBy``
    ``SYSTEM`` and ``jobStatus`` CREATED if absent): ModelOp Center creating a job, or a document no API
    would accept (an oversized one, a malformed one). 200 with the stored job.
``GET|PATCH|DELETE /_emulator/model-manage/jobs/{id}``
    Read one job; merge a body into it as ModelOp Center would (version+1, ``lastModifiedBy`` ``SYSTEM``: a user
    cancelling a job in ModelOp); delete it. 404 for an unknown id.
``POST /_emulator/model-manage/faults``
    Body: one fault or ``{"faults": [...]}``; each is added to the list (first match wins). Kinds:
    ``{"kind": "status", "status": 503, "count"?: N, "method"?: "GET", "path"?: REGEX, "body"?: JSON,
    "retryAfter"?: S}``: answer that status (a Spring Boot error body unless given) instead of serving;
    ``{"kind": "delay", "ms": N, "count"?, "method"?, "path"?}``: wait that long, then serve;
    ``{"kind": "disconnect", "count"?, "method"?, "path"?}``: close the connection without answering;
    ``{"kind": "claim-race", "jobId"?: ID, "patch"?: JSON, "by"?: CLIENT, "count"?}``: the next PATCH of that job
    (of any job without ``jobId``) first applies a competing change (default ``{"jobStatus": "WAITING"}`` by
    ``other-runtime``: another runtime's claim, version+1), then is served, so its stale ``If-Match`` gets 412.
    ``count`` (default 1; ``null``: until cleared) counts the requests the fault hits; ``path`` is a regular
    expression searched in the request path (default: every API and token route; admin routes are never hit).
    200 ``{"faults": [the active faults]}``.
``GET /_emulator/model-manage/faults``, ``DELETE /_emulator/model-manage/faults``
    The active faults; clear them.
``GET /_emulator/model-manage/requests``, ``DELETE /_emulator/model-manage/requests``
    The request log, oldest first: ``{"requests": [{"method", "path", "query", "status", "clientId", "ifMatch",
    "fault", "at"}]}`` (admin routes are not logged); clear it.
``POST /_emulator/model-manage/tokens/revoke``
    Every token issued so far becomes invalid. 200 ``{"revoked": N}``.
``POST /_emulator/model-manage/config``
    Body ``{"tokenLifetimeSeconds"?: S, "embeddedRel"?: "jobs" | "per-type", "selfLinks"?: "per-type" | "jobs"}``:
    applies to what is issued or answered from then on. 200 with the settings.
``POST /_emulator/model-manage/reset``
    Clears jobs, faults and the request log; body ``{"tokens": true}`` also revokes the tokens. 200.

Usage:

    .venv/bin/python tests/emulator/model_manage.py --ready-file PATH [--port 0] [--quiet] [--token-lifetime S]
        [--client ID:SECRET ...] [--scope SCOPE ...] [--token-path /oauth/token] [--finder NAME=PARAM[:FIELD],...]
        [--embedded-rel jobs|per-type] [--self-links per-type|jobs]

Binds 127.0.0.1 only. Writes ``{"endpoint": "http://127.0.0.1:PORT", "token_url": ".../oauth/token", "pid": N}``
to PATH (atomically) and stdout once it answers; stops on SIGTERM/SIGINT and when its parent dies. In-process:
``Server(ModelManage(...)).start()``, ``.endpoint``, ``.token_url``, ``.stop()``.
"""

from __future__ import annotations

import argparse
import base64
import copy
import datetime as dt
import json
import math
import os
import re
import secrets
import signal
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler
from typing import Any, Callable

from http_endpoint import HOST, Endpoint, write_ready_file

_PARENT_PID = os.getppid()

ADMIN = "/_emulator"
ADMIN_MM = ADMIN + "/model-manage"
API = "/model-manage/api"  # [submit], [backfill]
COLLECTION = "jobs"  # [submit]: POST {api}/jobs
DEFAULT_TOKEN_PATH = "/oauth/token"  # ASSUMED (the customer's identity provider decides)
DEFAULT_TOKEN_LIFETIME = 3600.0  # seconds, ASSUMED
DEFAULT_CLIENTS = {"internal-client": "internal-client-secret"}  # [mo-auth] names the client; the secret is ASSUMED
SYSTEM_USER = "SYSTEM"  # [example]: createdBy/lastModifiedBy of ModelOp's own writes
OTHER_RUNTIME = "other-runtime"  # the competing claimant of a claim-race fault (ASSUMED name)
DEFAULT_PAGE_SIZE = 20  # [sdr-page]
MAX_PAGE_SIZE = 1000  # Spring Data REST's RepositoryRestConfiguration.maxPageSize default (ASSUMED for model-manage)
# [example]: the per-type item path of a stored MODEL_BATCH_TEST_JOB; the other two by analogy (ASSUMED).
PER_TYPE_PATHS = {
    "MODEL_BATCH_JOB": "modelBatchJob",
    "MODEL_BATCH_TEST_JOB": "modelBatchTestJob",
    "MODEL_BATCH_TRAINING_JOB": "modelBatchTrainingJob",
}
ITEM_SEGMENTS = (COLLECTION, *PER_TYPE_PATHS.values())
# ASSUMED finder names and parameters (not public): NAME -> [(query parameter, dotted field)].
DEFAULT_FINDERS = (
    "findAllByJobStatus=jobStatus",
    "findAllByJobStatusAndTargetEngineEngineType=jobStatus,engineType:targetEngine.engineType",
)
# Fields a PATCH body cannot change (ASSUMED): identity and creation audit.
READ_ONLY_FIELDS = ("id", "createdDate", "createdBy")
REASONS = {200: "OK", 201: "Created", 204: "No Content", 304: "Not Modified", 400: "Bad Request",
           401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 409: "Conflict",
           412: "Precondition Failed", 415: "Unsupported Media Type", 429: "Too Many Requests",
           500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}


def iso_now(now: float | None = None) -> str:
    """[example]: ``2023-12-20T07:35:53.943Z``."""
    moment = dt.datetime.fromtimestamp(time.time() if now is None else now, dt.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_finder(spec: str) -> tuple[str, list[tuple[str, str]]]:
    """``NAME=PARAM[:FIELD],...`` -> (NAME, [(PARAM, FIELD)])."""
    name, sep, params = spec.partition("=")
    name = name.strip()
    if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) or not params.strip():
        raise ValueError(f"a finder is NAME=PARAM[:FIELD],... not {spec!r}")
    out = []
    for item in params.split(","):
        param, _, field = item.strip().partition(":")
        if not param:
            raise ValueError(f"empty parameter in finder {spec!r}")
        out.append((param, field or param))
    return name, out


def parse_client(spec: str) -> tuple[str, str]:
    client, sep, secret = spec.partition(":")
    if not sep or not client or not secret:
        raise ValueError(f"a client is ID:SECRET, not {spec!r}")
    return client, secret


def field_value(doc: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(doc, dict):
            return None
        doc = doc.get(part)
    return doc


def merge(target: dict, patch: dict) -> None:
    """[sdr-merge], with the ASSUMED simplifications of the module docstring: objects merge recursively, a null
    removes the field, anything else (arrays included) replaces it."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def etag_of(version: int) -> str:
    return f'"{version}"'  # [sdr-etag]: the version, quoted as an entity tag


def etag_matches(header: str, version: int) -> bool:
    """``If-Match``/``If-None-Match``: a list of entity tags, ``*`` for any; weak tags compared by their value."""
    for tag in header.split(","):
        tag = tag.strip()
        if tag == "*":
            return True
        if tag.startswith("W/"):
            tag = tag[2:]
        if tag.strip('"') == str(version):
            return True
    return False


class Fault:
    KINDS = ("status", "delay", "disconnect", "claim-race")

    def __init__(self, spec: dict) -> None:
        if not isinstance(spec, dict):
            raise ValueError("a fault is a JSON object")
        self.kind = spec.get("kind")
        if self.kind not in self.KINDS:
            raise ValueError(f"fault kind must be one of {', '.join(self.KINDS)}, not {self.kind!r}")
        self.count = spec.get("count", 1)
        if self.count is not None and (not isinstance(self.count, int) or self.count < 1):
            raise ValueError("count must be a whole number >= 1, or null (until cleared)")
        self.method = spec.get("method")
        self.method = self.method.upper() if isinstance(self.method, str) else None
        self.path = spec.get("path")
        self.path_re = re.compile(self.path) if self.path else None
        self.status = int(spec.get("status", 503))
        if self.kind == "status" and not 100 <= self.status <= 599:
            raise ValueError("status must be an HTTP status")
        self.body = spec.get("body")
        self.retry_after = spec.get("retryAfter")
        self.ms = float(spec.get("ms", 0))
        if self.kind == "delay" and not self.ms > 0:
            raise ValueError("a delay needs ms > 0")
        self.job_id = spec.get("jobId")
        self.patch = spec.get("patch", {"jobStatus": "WAITING"})
        if self.kind == "claim-race" and not isinstance(self.patch, dict):
            raise ValueError("a claim-race patch is a JSON object")
        self.by = spec.get("by", OTHER_RUNTIME)
        self.spec = spec

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method != method:
            return False
        return not self.path_re or bool(self.path_re.search(path))

    def spend(self) -> bool:
        """One hit; True when it is used up."""
        if self.count is None:
            return False
        self.count -= 1
        return self.count <= 0

    def view(self) -> dict:
        return {**self.spec, "count": self.count}


class ApiError(Exception):
    def __init__(self, status: int, body: Any = None, headers: dict | None = None) -> None:
        super().__init__(status)
        self.status, self.body, self.headers = status, body, headers or {}
        self.fault: str | None = None  # a fault played before the error (claim-race), for the request log


class ModelManage:
    """The state: jobs (insertion order, as MongoDB's natural order), clients, tokens, faults, the request log."""

    def __init__(self, clients: dict[str, str] | None = None, token_lifetime: float = DEFAULT_TOKEN_LIFETIME,
                 scopes: list[str] | None = None, finders: list[str] | tuple[str, ...] = DEFAULT_FINDERS,
                 token_path: str = DEFAULT_TOKEN_PATH, embedded_rel: str = "jobs", self_links: str = "per-type",
                 clock: Callable[[], float] = time.time) -> None:
        self.lock = threading.RLock()
        self.clients = dict(DEFAULT_CLIENTS if clients is None else clients)
        self.token_lifetime = float(token_lifetime)
        self.scopes = list(scopes) if scopes else None
        self.finders = dict(parse_finder(f) for f in finders)
        self.token_path = token_path if token_path.startswith("/") else "/" + token_path
        self.embedded_rel = embedded_rel
        self.self_links = self_links
        self.clock = clock
        self.jobs: dict[str, dict] = {}
        self.tokens: dict[str, dict] = {}
        self.faults: list[Fault] = []
        self.log: list[dict] = []
        self._check_settings()

    def _check_settings(self) -> None:
        if self.embedded_rel not in ("jobs", "per-type"):
            raise ValueError("embeddedRel must be jobs or per-type")
        if self.self_links not in ("jobs", "per-type"):
            raise ValueError("selfLinks must be per-type or jobs")
        if not self.token_lifetime > 0:
            raise ValueError("the token lifetime must be > 0 seconds")

    # ---- OAuth2 [rfc6749]
    def issue_token(self, client_id: str, scope: str | None) -> dict:
        token = secrets.token_urlsafe(32)
        with self.lock:
            self.tokens[token] = {"clientId": client_id, "scope": scope, "expiresAt": self.clock() + self.token_lifetime}
        out = {"access_token": token, "token_type": "Bearer", "expires_in": int(math.ceil(self.token_lifetime))}
        if scope:
            out["scope"] = scope
        return out

    def token_client(self, token: str) -> str | None:
        with self.lock:
            entry = self.tokens.get(token)
            if entry is None:
                return None
            if self.clock() >= entry["expiresAt"]:
                return None
            return entry["clientId"]

    def revoke_tokens(self) -> int:
        with self.lock:
            n = len(self.tokens)
            self.tokens.clear()
            return n

    # ---- jobs
    def create_job(self, body: dict, by: str, admin: bool = False) -> dict:
        with self.lock:
            job = copy.deepcopy(body)
            job_id = job.get("id")
            if job_id is None or job_id == "":
                job_id = str(uuid.uuid4())
            elif not isinstance(job_id, str):
                job_id = str(job_id)
            if job_id in self.jobs:
                # [sdr-412]: MongoDB's duplicate key is a DataIntegrityViolationException -> 409 (ASSUMED message).
                raise ApiError(409, {"cause": None, "message": f"a job with id {job_id} already exists"})
            now = iso_now(self.clock())
            job["id"] = job_id
            if not admin or not isinstance(job.get("version"), int):
                job["version"] = 0  # Spring Data MongoDB's first @Version
            if not admin or "createdDate" not in job:
                job["createdDate"] = now
            if not admin or "lastModifiedDate" not in job:
                job["lastModifiedDate"] = now
            if not admin or "createdBy" not in job:
                job["createdBy"] = by
            if not admin or "lastModifiedBy" not in job:
                job["lastModifiedBy"] = by
            job.setdefault("jobStatus", "CREATED")
            job.pop("_links", None)
            job.pop("_embedded", None)
            self.jobs[job_id] = job
            return copy.deepcopy(job)

    def get_job(self, job_id: str) -> dict:
        with self.lock:
            job = self.jobs.get(job_id)
            if job is None:
                raise ApiError(404)
            return copy.deepcopy(job)

    def _write(self, job: dict, patch: dict, by: str) -> None:
        merge(job, {k: v for k, v in patch.items() if k not in READ_ONLY_FIELDS and k != "version"
                    and not k.startswith("_")})
        job["version"] = int(job.get("version", 0)) + 1
        job["lastModifiedDate"] = iso_now(self.clock())
        job["lastModifiedBy"] = by

    def patch_job(self, job_id: str, patch: dict, by: str, if_match: str | None) -> tuple[dict, str | None]:
        """Returns the job after the patch, and a note when a claim race was played first."""
        with self.lock:
            job = self.jobs.get(job_id)
            if job is None:
                raise ApiError(404)
            race = self._take_claim_race(job_id)
            note = None
            if race is not None:
                self._write(job, race.patch, race.by)
                note = "claim-race"
            error = None
            if if_match is not None and not etag_matches(if_match, job["version"]):
                error = ApiError(412, None, {"ETag": etag_of(job["version"])})
            elif "version" in patch and patch["version"] is not None and patch["version"] != job["version"]:
                error = ApiError(409, {"cause": None, "message": f"Object of class [Job] with identifier [{job_id}]: "
                                                                 f"optimistic locking failed"})
            if error is not None:
                error.fault = note
                raise error
            self._write(job, patch, by)
            return copy.deepcopy(job), note

    def delete_job(self, job_id: str, if_match: str | None) -> None:
        with self.lock:
            job = self.jobs.get(job_id)
            if job is None:
                raise ApiError(404)
            if if_match is not None and not etag_matches(if_match, job["version"]):
                raise ApiError(412, None, {"ETag": etag_of(job["version"])})
            del self.jobs[job_id]

    def all_jobs(self) -> list[dict]:
        with self.lock:
            return copy.deepcopy(list(self.jobs.values()))

    def select(self, finder: str | None, query: dict[str, list[str]]) -> list[dict]:
        with self.lock:
            jobs = list(self.jobs.values())
            if finder is not None:
                for param, field in self.finders[finder]:
                    wanted = query.get(param)
                    if not wanted:
                        # A derived query with a null argument matches fields that are null (ASSUMED: MongoDB's
                        # {field: null}).
                        jobs = [j for j in jobs if field_value(j, field) is None]
                    else:
                        jobs = [j for j in jobs if str(field_value(j, field)) in wanted]
            return copy.deepcopy(jobs)

    # ---- faults
    def add_faults(self, specs: list[dict]) -> None:
        faults = [Fault(s) for s in specs]
        with self.lock:
            self.faults.extend(faults)

    def fault_for(self, method: str, path: str) -> Fault | None:
        """The first status/delay/disconnect fault matching the request; spends one of its hits."""
        with self.lock:
            for fault in self.faults:
                if fault.kind != "claim-race" and fault.matches(method, path):
                    if fault.spend():
                        self.faults.remove(fault)
                    return fault
        return None

    def _take_claim_race(self, job_id: str) -> Fault | None:
        for fault in self.faults:
            if fault.kind == "claim-race" and (fault.job_id is None or fault.job_id == job_id):
                if fault.spend():
                    self.faults.remove(fault)
                return fault
        return None

    def fault_views(self) -> list[dict]:
        with self.lock:
            return [f.view() for f in self.faults]

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    # ---- request log
    def record(self, entry: dict) -> None:
        with self.lock:
            self.log.append(entry)

    def requests(self) -> list[dict]:
        with self.lock:
            return copy.deepcopy(self.log)

    def clear_requests(self) -> None:
        with self.lock:
            self.log.clear()

    def reset(self, tokens: bool = False) -> None:
        with self.lock:
            self.jobs.clear()
            self.faults.clear()
            self.log.clear()
            if tokens:
                self.tokens.clear()

    def settings(self) -> dict:
        return {"tokenLifetimeSeconds": self.token_lifetime, "embeddedRel": self.embedded_rel,
                "selfLinks": self.self_links, "finders": {n: [f"{p}:{f}" for p, f in ps] for n, ps in self.finders.items()},
                "tokenPath": self.token_path, "clients": sorted(self.clients), "scopes": self.scopes}

    def configure(self, body: dict) -> dict:
        with self.lock:
            old = (self.token_lifetime, self.embedded_rel, self.self_links)
            if "tokenLifetimeSeconds" in body:
                self.token_lifetime = float(body["tokenLifetimeSeconds"])
            self.embedded_rel = body.get("embeddedRel", self.embedded_rel)
            self.self_links = body.get("selfLinks", self.self_links)
            try:
                self._check_settings()
            except ValueError:
                self.token_lifetime, self.embedded_rel, self.self_links = old
                raise
            return self.settings()


def _sort_key(value: Any) -> tuple:
    """Numbers before strings before anything else (compared as JSON), so any field can be sorted on."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, value, "")
    if isinstance(value, str):
        return (1, 0, value)
    return (2, 0, json.dumps(value, sort_keys=True))


def _error_body(status: int, path: str, message: str | None = None) -> dict:
    """Spring Boot's default error attributes (ASSUMED for model-manage)."""
    body = {"timestamp": iso_now(), "status": status, "error": REASONS.get(status, "Error"), "path": path}
    if message:
        body["message"] = message
    return body


def make_handler(mm: ModelManage, quiet: bool) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out in two writes (see emr_serverless.py)

        def log_message(self, format: str, *args: Any) -> None:
            if not quiet:
                sys.stderr.write("model-manage: " + (format % args) + "\n")

        # ---- plumbing
        def _raw_body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length > 0 else b""

        def _send(self, status: int, body: Any = None, headers: dict | None = None,
                  content_type: str = "application/json") -> None:
            payload = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
            self._status = status
            # The request is in the log before its answer leaves: a client that read the answer
            # finds it there (logged after, a test reading the log at once could miss it).
            entry, self._entry = getattr(self, "_entry", None), None
            if entry is not None:
                entry["status"] = status
                entry["clientId"] = self._client
                mm.record(entry)
            self.send_response(status, REASONS.get(status))
            if payload:
                self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            if payload and self.command != "HEAD":
                self.wfile.write(payload)

        def _base(self) -> str:
            return f"http://{self.headers.get('Host') or f'{HOST}:{self.server.server_port}'}"

        def _handle(self, method: str) -> None:
            parsed = urllib.parse.urlsplit(self.path)
            path = urllib.parse.unquote(parsed.path)
            query = urllib.parse.parse_qs(parsed.query, keep_blank_values=True)
            raw = self._raw_body()
            if path == ADMIN or path.startswith(ADMIN + "/"):
                try:
                    status, out = self._admin(method, path, raw)
                except (ValueError, KeyError, TypeError, re.error) as exc:
                    status, out = 400, {"message": f"{type(exc).__name__}: {exc}"}
                self._send(status, out)
                return
            self._status = 0
            self._client: str | None = None
            entry = {"method": method, "path": path, "query": parsed.query, "status": None, "clientId": None,
                     "ifMatch": self.headers.get("If-Match"), "fault": None, "at": iso_now()}
            self._entry = entry
            try:
                fault = mm.fault_for(method, path)
                if fault is not None and fault.kind == "delay":
                    entry["fault"] = "delay"
                    time.sleep(fault.ms / 1000)
                    fault = None
                if fault is not None:
                    entry["fault"] = fault.kind
                    if fault.kind == "disconnect":
                        entry["status"] = None
                        self.close_connection = True
                        return
                    headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
                    body = fault.body if fault.body is not None else _error_body(fault.status, path)
                    self._send(fault.status, body, headers)
                    return
                self._serve(method, path, query, raw, entry)
            except ApiError as exc:
                if exc.fault:
                    entry["fault"] = exc.fault
                self._send(exc.status, exc.body, exc.headers)
            except Exception as exc:  # noqa: BLE001
                self._send(500, _error_body(500, path, str(exc)))
            finally:
                if self._entry is not None:  # no answer was sent (a disconnect fault)
                    self._entry = None
                    entry["clientId"] = self._client
                    mm.record(entry)

        # ---- the API
        def _serve(self, method: str, path: str, query: dict, raw: bytes, entry: dict) -> None:
            if path == mm.token_path:
                if method != "POST":
                    raise ApiError(405, None, {"Allow": "POST"})
                self._token(raw)
                return
            if path != API and not path.startswith(API + "/"):
                raise ApiError(404, _error_body(404, path))
            self._client = self._authenticate()
            rest = path[len(API):].strip("/")
            parts = rest.split("/") if rest else []
            if not parts:
                if method != "GET":
                    raise ApiError(405, None, {"Allow": "GET"})
                self._send(200, {"_links": {COLLECTION: {"href": f"{self._base()}{API}/{COLLECTION}{{?page,size,sort}}",
                                                         "templated": True}}}, content_type="application/hal+json")
                return
            if parts == [COLLECTION]:
                if method == "GET":
                    self._page(mm.select(None, query), query, f"{API}/{COLLECTION}")
                elif method == "POST":
                    self._create(raw)
                else:
                    raise ApiError(405, None, {"Allow": "GET, POST"})
                return
            if parts == [COLLECTION, "search"]:
                if method != "GET":
                    raise ApiError(405, None, {"Allow": "GET"})
                base = f"{self._base()}{API}/{COLLECTION}/search"
                links = {name: {"href": f"{base}/{name}{{?{','.join([p for p, _ in params] + ['page', 'size', 'sort'])}}}",
                                "templated": True} for name, params in mm.finders.items()}
                links["self"] = {"href": base}
                self._send(200, {"_links": links}, content_type="application/hal+json")
                return
            if len(parts) == 3 and parts[:2] == [COLLECTION, "search"]:
                if parts[2] not in mm.finders:
                    raise ApiError(404)
                if method != "GET":
                    raise ApiError(405, None, {"Allow": "GET"})
                self._page(mm.select(parts[2], query), query, f"{API}/{COLLECTION}/search/{parts[2]}",
                           [p for p, _ in mm.finders[parts[2]]])
                return
            if len(parts) == 2 and parts[0] in ITEM_SEGMENTS:
                self._item(method, parts[1], raw, entry)
                return
            raise ApiError(404, _error_body(404, path))

        def _authenticate(self) -> str:
            header = self.headers.get("Authorization") or ""
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise ApiError(401, None, {"WWW-Authenticate": 'Bearer realm="model-manage"'})  # [rfc6750]
            client = mm.token_client(token.strip())
            if client is None:
                raise ApiError(401, None, {"WWW-Authenticate": 'Bearer realm="model-manage", error="invalid_token", '
                                                               'error_description="The access token expired or is not valid"'})
            return client

        def _token(self, raw: bytes) -> None:
            def error(status: int, code: str, description: str, basic: bool = False) -> ApiError:
                headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
                if basic:
                    headers["WWW-Authenticate"] = 'Basic realm="oauth"'
                return ApiError(status, {"error": code, "error_description": description}, headers)

            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if ctype != "application/x-www-form-urlencoded":
                raise error(400, "invalid_request", "the token request must be application/x-www-form-urlencoded")
            form = urllib.parse.parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
            one = {k: v[0] for k, v in form.items()}
            auth = self.headers.get("Authorization") or ""
            basic = auth[:6].lower() == "basic "
            if basic:
                try:
                    decoded = base64.b64decode(auth[6:].strip(), validate=True).decode()
                    client_id, _, secret = decoded.partition(":")
                    client_id, secret = urllib.parse.unquote_plus(client_id), urllib.parse.unquote_plus(secret)
                except (ValueError, UnicodeDecodeError):
                    raise error(401, "invalid_client", "malformed HTTP Basic client authentication", True)
            else:
                client_id, secret = one.get("client_id", ""), one.get("client_secret", "")
            grant = one.get("grant_type")
            if not grant:
                raise error(400, "invalid_request", "grant_type is missing")
            if not client_id or mm.clients.get(client_id) is None or not secrets.compare_digest(
                    mm.clients[client_id].encode(), secret.encode()):
                raise error(401, "invalid_client", "client authentication failed", basic)
            if grant != "client_credentials":
                raise error(400, "unsupported_grant_type", f"grant_type {grant} is not supported")
            scope = one.get("scope") or None
            if scope and mm.scopes is not None and any(s not in mm.scopes for s in scope.split()):
                raise error(400, "invalid_scope", f"scope {scope} is not allowed for this client")
            self._client = client_id
            self._send(200, mm.issue_token(client_id, scope), {"Cache-Control": "no-store", "Pragma": "no-cache"})

        def _json_object(self, raw: bytes) -> dict:
            try:
                body = json.loads(raw) if raw.strip() else None
            except ValueError as exc:
                raise ApiError(400, {"cause": None, "message": f"Could not read payload: {exc}"})
            if not isinstance(body, dict):
                raise ApiError(400, {"cause": None, "message": "Could not read payload: a JSON object is expected"})
            return body

        def _wants_body(self) -> bool:
            return self.headers.get("Accept") is not None  # [sdr-page]: a body when the request has an Accept header

        def _job_resource(self, job: dict) -> dict:
            segment = PER_TYPE_PATHS.get(job.get("jobType")) if mm.self_links == "per-type" else None
            href = f"{self._base()}{API}/{segment or COLLECTION}/{urllib.parse.quote(job['id'], safe='')}"
            out = dict(job)
            out["_links"] = {"self": {"href": href}, (segment or "job"): {"href": href}}  # [example]
            return out

        def _create(self, raw: bytes) -> None:
            body = self._json_object(raw)
            job = mm.create_job(body, self._client or SYSTEM_USER)
            resource = self._job_resource(job)
            headers = {"Location": resource["_links"]["self"]["href"], "ETag": etag_of(job["version"])}
            self._send(201, resource if self._wants_body() else None, headers, "application/hal+json")

        def _item(self, method: str, job_id: str, raw: bytes, entry: dict) -> None:
            if method in ("GET", "HEAD"):
                job = mm.get_job(job_id)
                headers = {"ETag": etag_of(job["version"])}
                none_match = self.headers.get("If-None-Match")
                if none_match is not None and etag_matches(none_match, job["version"]):
                    self._send(304, None, headers)
                    return
                self._send(200, self._job_resource(job), headers, "application/hal+json")
            elif method == "PATCH":
                ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
                if ctype == "application/json-patch+json":
                    raise ApiError(415, _error_body(415, self.path, "JSON Patch is not emulated (ASSUMED unused)"))
                body = self._json_object(raw)
                job, note = mm.patch_job(job_id, body, self._client or SYSTEM_USER, self.headers.get("If-Match"))
                if note:
                    entry["fault"] = note
                headers = {"ETag": etag_of(job["version"])}
                if self._wants_body():
                    self._send(200, self._job_resource(job), headers, "application/hal+json")
                else:
                    self._send(204, None, headers)
            elif method == "DELETE":
                mm.delete_job(job_id, self.headers.get("If-Match"))
                self._send(204)
            else:
                raise ApiError(405, None, {"Allow": "GET, HEAD, PATCH, DELETE"})

        def _page(self, jobs: list[dict], query: dict, path: str, keep: list[str] | None = None) -> None:
            def number(name: str, default: int) -> int:
                try:
                    return int(query.get(name, [""])[0])
                except ValueError:
                    return default

            page = max(number("page", 0), 0)
            size = number("size", DEFAULT_PAGE_SIZE)
            size = DEFAULT_PAGE_SIZE if size < 1 else min(size, MAX_PAGE_SIZE)
            for spec in reversed(query.get("sort", [])):
                field, _, direction = spec.partition(",")
                if field:
                    present = [j for j in jobs if field_value(j, field) is not None]
                    absent = [j for j in jobs if field_value(j, field) is None]
                    present.sort(key=lambda j: _sort_key(field_value(j, field)), reverse=direction.lower() == "desc")
                    jobs = present + absent
            total = len(jobs)
            pages = math.ceil(total / size)
            content = jobs[page * size:(page + 1) * size]
            resources = [self._job_resource(j) for j in content]
            if mm.embedded_rel == "per-type":
                embedded: dict[str, list] = {}
                for resource in resources:
                    rel = PER_TYPE_PATHS.get(resource.get("jobType"))
                    embedded.setdefault(f"{rel}s" if rel else COLLECTION, []).append(resource)
                if not embedded:
                    embedded[COLLECTION] = []
            else:
                embedded = {COLLECTION: resources}

            params = [(k, v) for k in (keep or []) for v in query.get(k, [])] + [("sort", s) for s in query.get("sort", [])]

            def href(n: int) -> str:
                return f"{self._base()}{path}?" + urllib.parse.urlencode(params + [("page", n), ("size", size)])

            links: dict[str, Any] = {}
            if page > 0 and pages > 0:
                links["first"] = {"href": href(0)}
                links["prev"] = {"href": href(min(page - 1, pages - 1))}
            links["self"] = {"href": href(page)}
            if page + 1 < pages:
                links["next"] = {"href": href(page + 1)}
                links["last"] = {"href": href(pages - 1)}
            if path == f"{API}/{COLLECTION}":
                links["search"] = {"href": f"{self._base()}{API}/{COLLECTION}/search"}
            self._send(200, {"_embedded": embedded, "_links": links,
                             "page": {"size": size, "totalElements": total, "totalPages": pages, "number": page}},
                       content_type="application/hal+json")

        # ---- admin
        def _admin(self, method: str, path: str, raw: bytes) -> tuple[int, Any]:
            body = json.loads(raw) if raw.strip() else None
            route = path[len(ADMIN):]
            if route == "/health" and method == "GET":
                return 200, {"status": "ok"}
            if not path.startswith(ADMIN_MM + "/"):
                return 404, {"message": f"no admin route {method} {path}"}
            route = path[len(ADMIN_MM):]
            if route == "/jobs":
                if method == "GET":
                    return 200, {"jobs": mm.all_jobs()}
                if method == "POST":
                    if not isinstance(body, dict):
                        raise ValueError("the body is a job document (a JSON object)")
                    try:
                        return 200, mm.create_job(body, SYSTEM_USER, admin=True)
                    except ApiError as exc:
                        return exc.status, {"message": (exc.body or {}).get("message", "conflict")}
            if m := re.fullmatch(r"/jobs/([^/]+)", route):
                job_id = m.group(1)
                try:
                    if method == "GET":
                        return 200, mm.get_job(job_id)
                    if method == "PATCH":
                        if not isinstance(body, dict):
                            raise ValueError("the body is a JSON object")
                        with mm.lock:
                            job = mm.jobs.get(job_id)
                            if job is None:
                                raise ApiError(404)
                            mm._write(job, body, SYSTEM_USER)
                            return 200, copy.deepcopy(job)
                    if method == "DELETE":
                        mm.delete_job(job_id, None)
                        return 200, {"deleted": job_id}
                except ApiError as exc:
                    return exc.status, {"message": f"no job {job_id}"}
            if route == "/faults":
                if method == "GET":
                    return 200, {"faults": mm.fault_views()}
                if method == "POST":
                    specs = body.get("faults") if isinstance(body, dict) and "faults" in body else [body]
                    if not isinstance(specs, list):
                        raise ValueError("faults is a list")
                    mm.add_faults(specs)
                    return 200, {"faults": mm.fault_views()}
                if method == "DELETE":
                    mm.clear_faults()
                    return 200, {"faults": []}
            if route == "/requests":
                if method == "GET":
                    return 200, {"requests": mm.requests()}
                if method == "DELETE":
                    mm.clear_requests()
                    return 200, {"requests": []}
            if route == "/tokens/revoke" and method == "POST":
                return 200, {"revoked": mm.revoke_tokens()}
            if route == "/config":
                if method == "GET":
                    return 200, mm.settings()
                if method == "POST":
                    return 200, mm.configure(body or {})
            if route == "/reset" and method == "POST":
                mm.reset(tokens=bool((body or {}).get("tokens")))
                return 200, {"status": "reset"}
            return 404, {"message": f"no admin route {method} {path}"}

        def do_GET(self) -> None:
            self._handle("GET")

        def do_HEAD(self) -> None:
            self._handle("HEAD")

        def do_POST(self) -> None:
            self._handle("POST")

        def do_PATCH(self) -> None:
            self._handle("PATCH")

        def do_PUT(self) -> None:
            self._handle("PUT")

        def do_DELETE(self) -> None:
            self._handle("DELETE")

    return Handler


class Server(Endpoint):
    """The endpoint, in-process: ``Server(ModelManage()).start()``; ``.endpoint``, ``.token_url``; ``.stop()``."""

    def __init__(self, mm: ModelManage | None = None, port: int = 0, quiet: bool = True) -> None:
        self.mm = mm or ModelManage()
        super().__init__(make_handler(self.mm, quiet), "model-manage", port)

    @property
    def token_url(self) -> str:
        return self.endpoint + self.mm.token_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ready-file", required=True, help="where to write the endpoint JSON")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free)")
    parser.add_argument("--quiet", action="store_true", help="don't log each request to stderr")
    parser.add_argument("--token-lifetime", type=float, default=DEFAULT_TOKEN_LIFETIME, metavar="SECONDS",
                        help=f"access token lifetime (default {DEFAULT_TOKEN_LIFETIME:g}; ASSUMED)")
    parser.add_argument("--client", action="append", metavar="ID:SECRET",
                        help="an OAuth2 client (repeatable; default internal-client:internal-client-secret)")
    parser.add_argument("--scope", action="append", metavar="SCOPE",
                        help="an allowed scope (repeatable; default: any scope)")
    parser.add_argument("--token-path", default=DEFAULT_TOKEN_PATH, help=f"(default {DEFAULT_TOKEN_PATH}; ASSUMED)")
    parser.add_argument("--finder", action="append", metavar="NAME=PARAM[:FIELD],...",
                        help="a jobs finder (repeatable; replaces the ASSUMED defaults: "
                             + "; ".join(DEFAULT_FINDERS) + ")")
    parser.add_argument("--embedded-rel", choices=("jobs", "per-type"), default="jobs",
                        help="the _embedded key of a page: jobs, or one per job type (default jobs)")
    parser.add_argument("--self-links", choices=("per-type", "jobs"), default="per-type",
                        help="a job's self link: /modelBatchTestJob/{id} as in the stored example, or /jobs/{id}")
    args = parser.parse_args(argv)
    try:
        clients = dict(parse_client(c) for c in args.client) if args.client else None
        mm = ModelManage(clients=clients, token_lifetime=args.token_lifetime, scopes=args.scope,
                         finders=args.finder or DEFAULT_FINDERS, token_path=args.token_path,
                         embedded_rel=args.embedded_rel, self_links=args.self_links)
    except ValueError as exc:
        parser.error(str(exc))

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    server = Server(mm, args.port, args.quiet).start()
    try:
        line = json.dumps({"endpoint": server.endpoint, "token_url": server.token_url, "pid": os.getpid()})
        write_ready_file(args.ready_file, line)
        print(line, flush=True)
        while not stop.wait(0.5):
            if os.getppid() != _PARENT_PID:
                break
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
