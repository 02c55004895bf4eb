"""Request-rate quotas per access key and per tenant (issue 14, §2).

One server with small quotas: each access key 1 request a second with bursts of 10,
each tenant 2 a second with bursts of 25. A caller that sends faster than its quota
is refused with AWS's ThrottlingException (HTTP 400, as AWS answers it) or `429
Throttled` on /v1; other access keys and other tenants keep their own quotas; requests
that fail authentication spend nobody's quota; a throttled request leaves no audit
record and is counted in /metrics.

Counts are checked against what the quota allows in the time the requests took
(burst + rate × elapsed), never against a timing.
"""

from __future__ import annotations

import math
import time

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from kcmtest import Server, start_or_fail, unique

from test_audit import fetch_chain

KEY_RATE, KEY_BURST = 1, 10
TENANT_RATE, TENANT_BURST = 2, 25


@pytest.fixture(scope="module")
def limited(tmp_root):
    srv = Server(tmp_root / "rate-limits" / "data", tmp_root / "rate-limits" / "logs", name="rate-limits",
                 env={
                     "KCM_ACCESS_KEY_REQUESTS_PER_SECOND": str(KEY_RATE),
                     "KCM_ACCESS_KEY_BURST": str(KEY_BURST),
                     "KCM_TENANT_REQUESTS_PER_SECOND": str(TENANT_RATE),
                     "KCM_TENANT_BURST": str(TENANT_BURST),
                     "KCM_METRICS": "public",
                 })
    start_or_fail(srv)
    yield srv
    srv.stop()


def patiently(call, seconds: float = 30.0):
    """`call()` (a requests.Response), sent again while it is throttled (429): for the
    set-up and inspection calls, which share the quotas they are testing."""
    deadline = time.monotonic() + seconds
    while True:
        r = call()
        if r.status_code != 429 or time.monotonic() > deadline:
            return r
        time.sleep(0.3)


def once(srv: Server, ak: dict):
    """A boto3 client for `ak` that sends every request exactly once, made afresh (the
    shared test clients are cached per server and key)."""
    return boto3.session.Session().client(
        "kms", endpoint_url=srv.url, region_name="us-east-1",
        aws_access_key_id=ak["access_key_id"], aws_secret_access_key=ak["secret_access_key"],
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}))


def new_tenant(srv: Server) -> dict:
    """A fresh tenant: its first access key, a boto3 client for it, and a key of it."""
    r = patiently(lambda: srv.v1("POST", "/v1/tenants", profile="system-admin",
                                 json_body={"name": unique("rl")}))
    assert r.status_code == 201, r.text
    ak = r.json()["access_key"]
    kms = once(srv, ak)
    key = kms.create_key(Description="rate limits")["KeyMetadata"]["KeyId"]
    return {"access_key": ak, "kms": kms, "key": key,
            "creds": (ak["access_key_id"], ak["secret_access_key"])}


def another_key(srv: Server, tenant: dict, role: str = "key-user") -> dict:
    r = patiently(lambda: srv.v1("POST", "/v1/access-keys", creds=tenant["creds"],
                                 json_body={"role": role}))
    assert r.status_code == 201, r.text
    ak = r.json().get("access_key", r.json())
    return {"access_key": ak, "kms": once(srv, ak),
            "creds": (ak["access_key_id"], ak["secret_access_key"])}


def flood(kms, key: str, n: int) -> tuple[int, list[ClientError], float]:
    """Sends `n` Encrypts as fast as one client can: (admitted, refusals, seconds)."""
    admitted, refusals = 0, []
    start = time.monotonic()
    for _ in range(n):
        try:
            kms.encrypt(KeyId=key, Plaintext=b"x")
            admitted += 1
        except ClientError as e:
            refusals.append(e)
    return admitted, refusals, time.monotonic() - start


def allowed(burst: int, rate: float, seconds: float) -> int:
    """The most a quota can admit in `seconds` from full."""
    return burst + math.ceil(rate * seconds) + 1


def test_an_access_key_over_its_quota_gets_throttling_exception(limited):
    t = new_tenant(limited)
    admitted, refusals, seconds = flood(t["kms"], t["key"], 60)
    # CreateKey took one request of the burst.
    assert KEY_BURST - 1 <= admitted <= allowed(KEY_BURST, KEY_RATE, seconds), (admitted, seconds)
    assert refusals, "60 requests in a burst of 10 were all admitted"
    for e in refusals:
        err = e.response["Error"]
        assert err["Code"] == "ThrottlingException", err
        assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert err["Message"].startswith("Rate exceeded: this access key may make 1 requests a second"), err
        assert "retry after" in err["Message"], err
    # Another tenant is untouched by this one's flood.
    other = new_tenant(limited)
    admitted, _, seconds = flood(other["kms"], other["key"], KEY_BURST - 1)
    assert admitted == KEY_BURST - 1


def test_the_quota_refills_at_its_rate(limited):
    t = new_tenant(limited)
    _, refusals, _ = flood(t["kms"], t["key"], 30)
    assert refusals
    time.sleep(1.5 / KEY_RATE)
    t["kms"].encrypt(KeyId=t["key"], Plaintext=b"x")


def test_an_sdk_with_retries_gets_through(limited):
    """AWS SDKs retry ThrottlingException with backoff by themselves (botocore's
    standard mode names it among the throttling errors): a throttled application
    sees a delay, not an error."""
    t = new_tenant(limited)
    flood(t["kms"], t["key"], 30)
    ak = t["access_key"]
    retrying = boto3.session.Session().client(
        "kms", endpoint_url=limited.url, region_name="us-east-1",
        aws_access_key_id=ak["access_key_id"], aws_secret_access_key=ak["secret_access_key"],
        config=Config(retries={"max_attempts": 10, "mode": "standard"}))
    assert retrying.encrypt(KeyId=t["key"], Plaintext=b"x")["CiphertextBlob"]


def test_the_kcm_cli_waits_out_a_throttle(limited, tmp_path):
    """The kcm CLI sends a throttled request again after a growing pause (up to six
    attempts), as AWS SDKs do: a throttled operator sees a delay, not an error."""
    from test_audit import kcm, write_creds

    t = new_tenant(limited)
    _, refusals, _ = flood(t["kms"], t["key"], 30)
    assert refusals
    creds = write_creds(tmp_path / "credentials", t["access_key"])
    cp = kcm(limited, "key", "describe", t["key"], creds_file=creds)
    assert cp.returncode == 0, cp.stderr.decode()
    assert t["key"] in cp.stdout.decode()


def test_a_tenant_quota_covers_all_its_access_keys(limited):
    t = new_tenant(limited)
    a = {"kms": t["kms"], "creds": t["creds"]}
    b = another_key(limited, t)
    c = another_key(limited, t)
    start = time.monotonic()
    total, tenant_refusals = 0, []
    for caller in (a, b, c):
        admitted, refusals, _ = flood(caller["kms"], t["key"], 2 * KEY_BURST)
        total += admitted
        tenant_refusals += [e for e in refusals if "this tenant may make" in e.response["Error"]["Message"]]
    seconds = time.monotonic() - start
    # Three keys could make 30 requests; the tenant (25, less CreateKey and two
    # CreateAccessKey) lets fewer through, and says so.
    assert total <= allowed(TENANT_BURST, TENANT_RATE, seconds), (total, seconds)
    assert tenant_refusals, "the third key was never refused by the tenant's quota"
    assert all(e.response["Error"]["Code"] == "ThrottlingException" for e in tenant_refusals)


def test_rest_answers_429(limited):
    t = new_tenant(limited)
    statuses = [limited.v1("GET", "/v1/systems", creds=t["creds"]) for _ in range(30)]
    throttled = [r for r in statuses if r.status_code == 429]
    assert throttled, [r.status_code for r in statuses]
    assert {r.status_code for r in statuses} <= {200, 429}
    body = throttled[0].json()
    assert body["error"]["code"] == "Throttled", body
    assert "Rate exceeded" in body["error"]["message"], body


def test_requests_that_fail_authentication_spend_no_quota(limited):
    t = new_tenant(limited)
    kid, _ = t["creds"]
    wrong = once(limited, {"access_key_id": kid, "secret_access_key": "not-the-secret-" + "x" * 25})
    for _ in range(3 * KEY_BURST):
        # Refused for the signature every time, never throttled.
        with pytest.raises(ClientError) as ei:
            wrong.encrypt(KeyId=t["key"], Plaintext=b"x")
        assert ei.value.response["Error"]["Code"] == "InvalidSignatureException", ei.value.response
        assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400, ei.value.response
    for _ in range(3 * KEY_BURST):
        r = limited.v1("GET", "/v1/systems", creds=(kid, "wrong"))
        assert r.status_code == 401, r.text
    # The key's whole burst is still there (CreateKey took one).
    admitted, refusals, _ = flood(t["kms"], t["key"], KEY_BURST - 1)
    assert admitted == KEY_BURST - 1, [e.response["Error"] for e in refusals]


def test_throttled_requests_are_counted_not_audited(limited):
    t = new_tenant(limited)
    auditor = another_key(limited, t, role="auditor")  # reads the audit log without spending t's key quota
    admitted, refusals, _ = flood(t["kms"], t["key"], 40)
    assert refusals
    kid = t["creds"][0]

    def audit_page():
        return limited.v1("GET", "/v1/audit?limit=1000", creds=auditor["creds"])

    r = patiently(audit_page)
    assert r.status_code == 200, r.text
    chain = fetch_chain(limited, creds=auditor["creds"]) if r.json().get("next_after") else r.json()["records"]
    encrypts = [rec for rec in chain if rec["principal"] == kid and rec["operation"] == "Encrypt"]
    assert len(encrypts) == admitted, (len(encrypts), admitted)
    assert all(rec["outcome"] == "success" for rec in encrypts)
    metrics = requests.get(limited.url + "/metrics", timeout=10).text
    lines = [line for line in metrics.splitlines() if line.startswith('kcm_requests_throttled_total{door="aws"}')]
    assert lines and int(lines[0].split()[-1]) >= len(refusals), lines
    # The log names the access key, once per quiet spell, with the count.
    log = limited.log_tail(2000)
    assert "request rate quota exceeded" in log and kid in log
