"""kcm's KMIP server (`[kmip_server]`) against PyKMIP's client, over real mutual TLS.

One kcm server for the module with a private PKI: a CA that issued the server's
certificate and two client certificates (each mapped by its SHA-256 fingerprint to a kcm
access key scoped to a system of its own), a trusted client certificate mapped to nothing,
and a client certificate of another CA. The server is started once to mint the access
keys, then again with the `[kmip_server]` table naming them.

What PyKMIP (0.11, `kmip.pie.client.ProxyKmipClient`) does here is what storage systems do:
Discover Versions, Query, Create an AES key with a Name, Locate it by Name, Get it (Raw),
Register keys, secret data and opaque objects, Get Attributes, Destroy; and what the
server refuses it refuses in KMIP's words (Operation Not Supported, Item Not Found).
"""

from __future__ import annotations

import json
import socket
import ssl
import time

import pytest
from kmip.core import enums
from kmip.pie import exceptions as kmip_exceptions
from kmip.pie import objects as kmip_objects

from kcmtest import LOADED_SLACK_S, cli_ok, kcm_cli
from kmip_harness import (Answer, Pki, call, client, enum, integer, name_attribute, send, start_kmip_server,
                          structure, text)

pytestmark = pytest.mark.timeout(120)

BOUND_MS = 500


# ----------------------------------------------------------------------------- the server

@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    return Pki(tmp_path_factory.mktemp("kmip-pki"))


@pytest.fixture(scope="module")
def kmip(tmp_path_factory, pki):
    """The server, its KMIP port, and the mapped clients: "storage-a" and "storage-b", each a
    key-user of a system of its own in the default tenant, and "elsewhere", of another tenant."""
    srv, port, clients = start_kmip_server(tmp_path_factory.mktemp("kmip"), pki,
                                           ("storage-a", "storage-b"), BOUND_MS,
                                           other_tenant_systems=("elsewhere",))
    yield srv, port, clients
    srv.stop()


@pytest.fixture()
def storage_a(kmip, pki):
    srv, port, clients = kmip
    c = client(pki, port, clients["storage-a"]["cert"], clients["storage-a"]["key"])
    yield c
    c.close()


# ----------------------------------------------------------------------------- the tests

@pytest.mark.parametrize("version", [enums.KMIPVersion.KMIP_1_2, enums.KMIPVersion.KMIP_1_4,
                                     enums.KMIPVersion.KMIP_2_0],
                         ids=["kmip-1.2", "kmip-1.4", "kmip-2.0"])
def test_create_locate_get_attributes_destroy(kmip, pki, version):
    srv, port, clients = kmip
    c = client(pki, port, clients["storage-a"]["cert"], clients["storage-a"]["key"], version)
    try:
        name = f"bucket-{version.name}-{time.time_ns()}"
        uid = c.create(enums.CryptographicAlgorithm.AES, 256, name=name)
        # As Ceph's RADOS Gateway asks for its key: Locate by Name, then Get.
        assert c.locate(attributes=[name_attribute(c, name)]) == [uid]
        key = c.get(uid)
        assert isinstance(key, kmip_objects.SymmetricKey)
        assert key.cryptographic_algorithm == enums.CryptographicAlgorithm.AES
        assert key.cryptographic_length == 256 and len(key.value) == 32
        assert c.get(uid).value == key.value, "a key reads back the same every time"
        got_uid, attributes = c.get_attributes(uid)
        assert got_uid == uid
        by_name = {a.attribute_name.value: a.attribute_value for a in attributes}
        assert by_name["Object Type"].value == enums.ObjectType.SYMMETRIC_KEY
        assert by_name["Name"].name_value.value == name
        assert by_name["Cryptographic Length"].value == 256
        assert by_name["State"].value == enums.State.ACTIVE
        c.destroy(uid)
        with pytest.raises(kmip_exceptions.KmipOperationFailure) as e:
            c.get(uid)
        assert e.value.reason == enums.ResultReason.ITEM_NOT_FOUND
        assert c.locate(attributes=[name_attribute(c, name)]) == []
    finally:
        c.close()


def test_register_each_object_type_and_get_it_back(storage_a):
    c = storage_a
    made = {
        "symmetric key": kmip_objects.SymmetricKey(enums.CryptographicAlgorithm.AES, 128, b"\x01" * 16,
                                                   name="registered-key"),
        "secret data": kmip_objects.SecretData(b"a passphrase", enums.SecretDataType.PASSWORD,
                                              name="registered-secret"),
        "opaque object": kmip_objects.OpaqueObject(b"\x00opaque\xff", enums.OpaqueDataType.NONE,
                                                   name="registered-opaque"),
    }
    for what, obj in made.items():
        uid = c.register(obj)
        back = c.get(uid)
        assert type(back) is type(obj), what
        assert back.value == obj.value, what
        c.destroy(uid)


def test_discover_versions_and_query(storage_a):
    versions = storage_a.proxy.discover_versions().protocol_versions
    assert [(v.major, v.minor) for v in versions] == [(2, 1), (2, 0), (1, 4), (1, 3), (1, 2), (1, 1), (1, 0)]
    answer = storage_a.proxy.query(query_functions=[enums.QueryFunction.QUERY_OPERATIONS,
                                                    enums.QueryFunction.QUERY_OBJECTS,
                                                    enums.QueryFunction.QUERY_SERVER_INFORMATION])
    operations = {enums.Operation(o.value) for o in answer.operations}
    O = enums.Operation
    assert {O.CREATE, O.CREATE_KEY_PAIR, O.REGISTER, O.REKEY, O.LOCATE, O.GET, O.GET_ATTRIBUTES,
            O.GET_ATTRIBUTE_LIST, O.ADD_ATTRIBUTE, O.MODIFY_ATTRIBUTE, O.DELETE_ATTRIBUTE, O.SET_ATTRIBUTE,
            O.ACTIVATE, O.REVOKE, O.DESTROY, O.ENCRYPT, O.DECRYPT, O.SIGN, O.SIGNATURE_VERIFY, O.MAC,
            O.MAC_VERIFY, O.RNG_RETRIEVE, O.DISCOVER_VERSIONS, O.QUERY} == operations
    T = enums.ObjectType
    assert {T(o.value) for o in answer.object_types} == {
        T.CERTIFICATE, T.SYMMETRIC_KEY, T.PUBLIC_KEY, T.PRIVATE_KEY, T.SECRET_DATA, T.OPAQUE_DATA}
    assert answer.vendor_identification.startswith("kcm ")


def test_activate_and_the_attribute_list(storage_a):
    c = storage_a
    uid = c.create(enums.CryptographicAlgorithm.AES, 128, name="activated")
    c.activate(uid)  # kcm's objects are active from the start: activating confirms it
    names = c.get_attribute_list(uid)
    assert set(names) == {"Object Type", "Name", "Cryptographic Algorithm", "Cryptographic Length", "State"}, names
    c.destroy(uid)
    with pytest.raises(kmip_exceptions.KmipOperationFailure) as e:
        c.activate(uid)
    assert e.value.reason == enums.ResultReason.ITEM_NOT_FOUND


def test_rng_retrieve(kmip, pki):
    """RNG Retrieve, which PyKMIP's client lacks, written and read from the specification."""
    srv, port, clients = kmip
    answer = call(pki, port, clients["storage-a"], 0x25, integer(0x4200C4, 32), version=(1, 2)).ok()
    data = answer.one(0x4200C2)
    assert len(data) == 32 and data != b"\0" * 32
    refused = call(pki, port, clients["storage-a"], 0x25, integer(0x4200C4, 0), version=(1, 2))
    assert (refused.status, refused.reason) == (1, 0x07), refused.message  # Invalid Field


def test_the_maximum_response_size_is_kept(kmip, pki):
    """A request header's Maximum Response Size: a payload larger than it is Response Too
    Large, and none of it is sent."""
    srv, port, clients = kmip
    who = clients["storage-a"]
    header = lambda size: structure(0x420077, structure(0x420069, integer(0x42006A, 1), integer(0x42006B, 2)),
                                    integer(0x420050, size), integer(0x42000D, 1))
    rng = lambda size: structure(0x420078, header(size), structure(0x42000F, enum(0x42005C, 0x25),
                                                                   structure(0x420079, integer(0x4200C4, 512))))
    big = Answer(send(pki, port, who["cert"], who["key"], rng(100)))
    assert (big.status, big.reason) == (1, 0x02) and 0x4200C2 not in big.payload, big.message
    fits = Answer(send(pki, port, who["cert"], who["key"], rng(4096))).ok()
    assert len(fits.one(0x4200C2)) == 512


@pytest.mark.parametrize("reason, state", [
    (enums.RevocationReasonCode.CESSATION_OF_OPERATION, enums.State.DEACTIVATED),
    (enums.RevocationReasonCode.KEY_COMPROMISE, enums.State.COMPROMISED),
], ids=["cessation", "compromise"])
def test_a_revoked_object_is_never_active_again(storage_a, reason, state):
    c = storage_a
    uid = c.create(enums.CryptographicAlgorithm.AES, 256, name=f"revoked-{reason.name}")
    key = c.get(uid).value
    c.revoke(reason, uid)
    _, attributes = c.get_attributes(uid)
    assert {a.attribute_name.value: a.attribute_value for a in attributes}["State"].value == state
    # KMIP lets a deactivated or compromised key still be got, to process what it
    # protected; it is never active again.
    assert c.get(uid).value == key
    with pytest.raises(kmip_exceptions.KmipOperationFailure) as e:
        c.activate(uid)
    assert e.value.reason == enums.ResultReason.ILLEGAL_OPERATION, e.value
    c.destroy(uid)  # a revoked object can still be destroyed
    with pytest.raises(kmip_exceptions.KmipOperationFailure) as e:
        c.get_attributes(uid)
    assert e.value.reason == enums.ResultReason.ITEM_NOT_FOUND


def test_what_the_server_does_not_do_is_refused_in_kmips_words(kmip, pki, storage_a):
    srv, port, clients = kmip
    c = storage_a
    uid = c.create(enums.CryptographicAlgorithm.AES, 128, name="unsupported-ops")
    # Check, Derive Key, Archive, and Set Attribute, which is KMIP 2.x's: in 1.2 no operation.
    for operation in (0x09, 0x05, 0x15, 0x31):
        refused = call(pki, port, clients["storage-a"], operation, text(0x420094, uid), version=(1, 2))
        assert (refused.status, refused.reason) == (1, 0x05), (hex(operation), refused.message)
    for attempt in (lambda: c.create(enums.CryptographicAlgorithm.RSA, 2048),  # Create Key Pair makes those
                    lambda: c.create(enums.CryptographicAlgorithm.TRIPLE_DES, 192)):
        with pytest.raises(kmip_exceptions.KmipOperationFailure) as e:
            attempt()
        assert e.value.reason == enums.ResultReason.FEATURE_NOT_SUPPORTED
    with pytest.raises(kmip_exceptions.KmipOperationFailure) as e:
        c.get("not-an-object")
    assert e.value.reason == enums.ResultReason.ITEM_NOT_FOUND
    # None of it changed the key.
    assert len(c.get(uid).value) == 16
    c.destroy(uid)


def test_each_client_sees_only_its_own_systems_objects(kmip, pki):
    srv, port, clients = kmip
    a = client(pki, port, clients["storage-a"]["cert"], clients["storage-a"]["key"])
    b = client(pki, port, clients["storage-b"]["cert"], clients["storage-b"]["key"])
    try:
        uid = a.create(enums.CryptographicAlgorithm.AES, 256, name="a-only")
        assert b.locate(attributes=[name_attribute(b, "a-only")]) == []
        for attempt in (lambda: b.get(uid), lambda: b.destroy(uid), lambda: b.get_attributes(uid)):
            with pytest.raises(kmip_exceptions.KmipOperationFailure) as e:
                attempt()
            assert e.value.reason == enums.ResultReason.PERMISSION_DENIED, e.value
        assert len(a.get(uid).value) == 32, "b's attempts changed nothing"
        a.destroy(uid)
    finally:
        a.close()
        b.close()


def _handshake(pki: Pki, port: int, cert: str | None, key: str | None) -> bytes:
    """Opens TLS to the KMIP port with `cert` (or none) and tries one Discover Versions:
    what comes back (b"" when the server closed the connection)."""
    ctx = ssl.create_default_context(cafile=pki.ca_file)
    ctx.check_hostname = False
    if cert:
        ctx.load_cert_chain(cert, key)
    discover = bytes.fromhex(
        "42007801000000504200770100000038420069010000002042006a0200000004000000010000000042006b0200000004"
        "000000020000000042000d0200000004000000010000000042000f010000001042005c05000000040000001e00000000"
        "420079010000000000000000")  # a KMIP 1.2 Discover Versions, as PyKMIP writes it
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        try:
            with ctx.wrap_socket(raw) as tls:
                tls.sendall(discover)
                return tls.recv(4096)
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
            return b""


def test_a_client_without_a_mapped_trusted_certificate_is_refused(kmip, pki):
    srv, port, clients = kmip
    mapped = clients["storage-a"]
    assert _handshake(pki, port, mapped["cert"], mapped["key"]).startswith(bytes.fromhex("42007b01"))
    unmapped = pki.issue("unmapped-client")
    assert _handshake(pki, port, unmapped[0], unmapped[1]) == b""
    foreign = pki.foreign("foreign-client")
    assert _handshake(pki, port, foreign[0], foreign[1]) == b""
    assert _handshake(pki, port, None, None) == b""


def test_the_kill_switch_cuts_kmip_off_within_the_bound(kmip, pki):
    srv, port, clients = kmip
    # storage-a's system was made below the tenant's default root key: its switch.
    default_root = srv.default_root_id()
    c = client(pki, port, clients["storage-a"]["cert"], clients["storage-a"]["key"])
    try:
        uid = c.create(enums.CryptographicAlgorithm.AES, 256, name="kill-switch")
        assert len(c.get(uid).value) == 32
        cli_ok(kcm_cli(srv, "root-key", "disable", default_root))
        try:
            start = time.monotonic()
            bound = BOUND_MS / 1000 + LOADED_SLACK_S
            while True:
                try:
                    c.get(uid)
                except kmip_exceptions.KmipOperationFailure as e:
                    assert e.reason == enums.ResultReason.ILLEGAL_OPERATION, e
                    break
                assert time.monotonic() - start < bound, "Get still served after the bound"
                time.sleep(0.05)
            with pytest.raises(kmip_exceptions.KmipOperationFailure):
                c.create(enums.CryptographicAlgorithm.AES, 256, name="under-a-disabled-root")
        finally:
            cli_ok(kcm_cli(srv, "root-key", "enable", default_root))
        deadline = time.monotonic() + BOUND_MS / 1000 + LOADED_SLACK_S
        while True:
            try:
                assert len(c.get(uid).value) == 32
                break
            except kmip_exceptions.KmipOperationFailure:
                assert time.monotonic() < deadline, "Get still refused after the root key was enabled"
                time.sleep(0.05)
        c.destroy(uid)
    finally:
        c.close()


def test_every_operation_is_audited_as_the_kmip_door(kmip, storage_a):
    srv, port, clients = kmip
    uid = storage_a.create(enums.CryptographicAlgorithm.AES, 256, name="audited")
    storage_a.get(uid)
    storage_a.destroy(uid)
    principal = clients["storage-a"]["access_key_id"]
    out = cli_ok(kcm_cli(srv, "audit", "export", "--principal", principal, output_json=False)).stdout
    records = [json.loads(line) for line in out.decode().splitlines() if line.strip()]
    records = [r for r in records if r.get("type", "record") == "record"]
    assert records and all(r["front_door"] == "kmip" for r in records), records
    ops = [r["operation"] for r in records]
    for op in ("CreateObject", "GetObjectPayload", "DeleteObject"):
        assert op in ops, ops
    assert cli_ok(kcm_cli(srv, "audit", "verify", output_json=False)).returncode == 0


def test_a_batch_of_several_items_is_answered_item_by_item(kmip, pki):
    """A request of three batch items (Discover Versions, a Get of nothing, Query), each
    with its Unique Batch Item ID, written and read by PyKMIP's message classes. By the
    Batch Error Continuation Option: Stop (the default) answers up to the failed item and
    runs nothing after it; Continue runs and answers every item; Undo, which kcm cannot
    do (each item commits as it runs), is refused whole before any item runs."""
    from kmip.core import utils
    from kmip.core.messages import contents, messages, payloads

    srv, port, clients = kmip
    a = clients["storage-a"]

    def batch(option):
        items = [
            messages.RequestBatchItem(operation=contents.Operation(enums.Operation.DISCOVER_VERSIONS),
                                      unique_batch_item_id=contents.UniqueBatchItemID(b"1"),
                                      request_payload=payloads.DiscoverVersionsRequestPayload()),
            messages.RequestBatchItem(operation=contents.Operation(enums.Operation.GET),
                                      unique_batch_item_id=contents.UniqueBatchItemID(b"2"),
                                      request_payload=payloads.GetRequestPayload(unique_identifier="no-such-object")),
            messages.RequestBatchItem(operation=contents.Operation(enums.Operation.QUERY),
                                      unique_batch_item_id=contents.UniqueBatchItemID(b"3"),
                                      request_payload=payloads.QueryRequestPayload(
                                          query_functions=[enums.QueryFunction.QUERY_OBJECTS])),
        ]
        header = messages.RequestHeader(
            protocol_version=contents.ProtocolVersion(1, 2), batch_count=contents.BatchCount(len(items)),
            batch_error_cont_option=None if option is None else contents.BatchErrorContinuationOption(option))
        stream = utils.BytearrayStream()
        messages.RequestMessage(request_header=header, batch_items=items).write(stream)
        response = messages.ResponseMessage()
        response.read(utils.BytearrayStream(send(pki, port, a["cert"], a["key"], bytes(stream.buffer))))
        assert response.response_header.batch_count.value == len(response.batch_items)
        return [(i.unique_batch_item_id.value if i.unique_batch_item_id else None, i.result_status.value,
                 i.result_reason.value if i.result_reason else None) for i in response.batch_items]

    ok, failed = enums.ResultStatus.SUCCESS, enums.ResultStatus.OPERATION_FAILED
    stopped = [(b"1", ok, None), (b"2", failed, enums.ResultReason.ITEM_NOT_FOUND)]
    assert batch(None) == stopped
    assert batch(enums.BatchErrorContinuationOption.STOP) == stopped
    assert batch(enums.BatchErrorContinuationOption.CONTINUE) == stopped + [(b"3", ok, None)]
    ((_, status, reason),) = batch(enums.BatchErrorContinuationOption.UNDO)
    assert (status, reason) == (failed, enums.ResultReason.FEATURE_NOT_SUPPORTED)


def test_a_message_that_is_not_kmip_is_answered_invalid_message(kmip, pki):
    srv, port, clients = kmip
    a = clients["storage-a"]
    # A structure whose tag is a Response Message: well-formed TTLV, not a request.
    answer = send(pki, port, a["cert"], a["key"], bytes.fromhex("42007b0100000000"))
    from kmip.core import utils
    from kmip.core.messages import messages
    response = messages.ResponseMessage()
    response.read(utils.BytearrayStream(answer))
    (item,) = response.batch_items
    assert item.result_status.value == enums.ResultStatus.OPERATION_FAILED
    assert item.result_reason.value == enums.ResultReason.INVALID_MESSAGE


def test_concurrent_clients(kmip, pki):
    """Eight clients at once, each creating, reading and destroying its own keys: every
    answer is its own key, and nothing fails."""
    import threading

    srv, port, clients = kmip
    a = clients["storage-a"]
    failures: list[str] = []

    def worker(n: int) -> None:
        try:
            c = client(pki, port, a["cert"], a["key"])
            try:
                for i in range(5):
                    uid = c.create(enums.CryptographicAlgorithm.AES, 256, name=f"concurrent-{n}-{i}")
                    assert c.locate(attributes=[name_attribute(c, f"concurrent-{n}-{i}")]) == [uid]
                    assert len(c.get(uid).value) == 32
                    c.destroy(uid)
            finally:
                c.close()
        except Exception as e:  # collected: a thread's assertion would otherwise be lost
            failures.append(f"client {n}: {type(e).__name__}: {e}")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a client did not finish within a minute"
    assert not failures, failures


def test_username_and_password_must_name_the_certificates_access_key(kmip, pki):
    """Some clients send a Username and Password credential (RGW can): the access key id and
    its secret, which must be the access key the client certificate maps to."""
    srv, port, clients = kmip
    a, b = clients["storage-a"], clients["storage-b"]
    good = client(pki, port, a["cert"], a["key"], username=a["access_key_id"], password=a["secret"])
    try:
        uid = good.create(enums.CryptographicAlgorithm.AES, 256, name="with-credentials")
        assert len(good.get(uid).value) == 32
    finally:
        good.close()
    for username, password in ((a["access_key_id"], "wrong"), (b["access_key_id"], b["secret"])):
        c = client(pki, port, a["cert"], a["key"], username=username, password=password)
        try:
            with pytest.raises(kmip_exceptions.KmipOperationFailure) as e:
                c.get(uid)
            assert e.value.reason == enums.ResultReason.AUTHENTICATION_NOT_SUCCESSFUL, e.value
        finally:
            c.close()


def test_another_tenants_objects_are_invisible(kmip, pki):
    """A client of another tenant finds nothing of this tenant's, and asking for an object
    by its identifier is answered as for one that does not exist, word for word."""
    srv, port, clients = kmip
    a = client(pki, port, clients["storage-a"]["cert"], clients["storage-a"]["key"])
    other = client(pki, port, clients["elsewhere"]["cert"], clients["elsewhere"]["key"])
    try:
        uid = a.create(enums.CryptographicAlgorithm.AES, 256, name="tenant-a-key")
        assert other.locate(attributes=[name_attribute(other, "tenant-a-key")]) == []
        missing = "00000000-0000-4000-8000-000000000000"

        def refusals(target: str) -> list[str]:
            said = []
            for attempt in (other.get, other.get_attributes, other.destroy):
                with pytest.raises(kmip_exceptions.KmipOperationFailure) as e:
                    attempt(target)
                assert e.value.reason == enums.ResultReason.ITEM_NOT_FOUND, e.value
                said.append(str(e.value).replace(target, "<id>"))
            return said

        assert refusals(uid) == refusals(missing), "an existing object is told apart from a missing one"
        assert len(a.get(uid).value) == 32, "the other tenant's attempts changed nothing"
        a.destroy(uid)
    finally:
        a.close()
        other.close()
