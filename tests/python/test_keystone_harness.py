"""The Keystone harness (keystone.py) that the Barbican door's tests stand on: kcm's service
user may validate other users' tokens, and the validation tells their roles and project."""

from __future__ import annotations

import pytest

from kcmtest import unique
from keystone import KeystoneError


@pytest.fixture(scope="module")
def project(keystone):
    """(domain id, domain name, project id, project name) of a fresh project."""
    name = unique("dom")
    domain = keystone.create_domain(name)
    return domain, name, keystone.create_project("p1", domain), "p1"


def test_service_user_validates_a_readers_token(keystone, project):
    domain, domain_name, project_id, project_name = project
    reader = keystone.create_user(unique("reader"), domain_id=domain)
    keystone.grant_role("reader", reader, project=project_id)
    service = keystone.create_service_user(unique("kcm"))

    body = keystone.validate_token(reader.token(project_name), service.token())["token"]

    assert [r["name"] for r in body["roles"]] == ["reader"]
    assert body["project"]["id"] == project_id
    assert body["project"]["domain"]["name"] == domain_name
    assert body["user"]["id"] == reader.id


def test_member_role_implies_reader_but_not_token_validation(keystone, project):
    domain, _, project_id, project_name = project
    member = keystone.create_user(unique("member"), domain_id=domain)
    keystone.grant_role("member", member, project=project_id)
    other = keystone.create_user(unique("other"), domain_id=domain)
    keystone.grant_role("reader", other, project=project_id)
    member_token = member.token(project_name)

    # A user may validate their own token (rule token_subject): roles include the implied reader.
    own = keystone.validate_token(member_token, member_token)["token"]
    assert sorted(r["name"] for r in own["roles"]) == ["member", "reader"]
    # ...but not somebody else's: that needs role service (or admin).
    with pytest.raises(KeystoneError, match="403"):
        keystone.validate_token(other.token(project_name), member_token)
