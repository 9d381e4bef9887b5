"""Validation of a migrated target: Cutover runs this on the migration's test environment once the copy is done.

The target comes as environment variables (never a credential): CUTOVER_MIGRATION_ID, CUTOVER_TARGET_IP,
CUTOVER_TARGET_CLOUD and CUTOVER_TARGET_VOLUMES (a JSON list of {"name", "size"}). Run outside a migration
(no CUTOVER_MIGRATION_ID), every test here is skipped.
"""
import ipaddress
import json
import os
import re

import pytest

# each test is skipped (not the module: a run that collects no test ends in error)
pytestmark = pytest.mark.skipif("CUTOVER_MIGRATION_ID" not in os.environ,
                                reason="not a validation run: CUTOVER_MIGRATION_ID is not set")

CLOUDS = {"aws", "azure", "vsphere", "vcloud"}


@pytest.fixture(scope="module")
def volumes():
    return json.loads(os.environ["CUTOVER_TARGET_VOLUMES"])



def test_the_migration_id_is_a_number():
    assert os.environ["CUTOVER_MIGRATION_ID"].isdigit()


def test_the_volumes_are_a_well_formed_list(volumes):
    assert isinstance(volumes, list) and volumes
    for volume in volumes:
        assert set(volume) == {"name", "size"}, volume
        assert isinstance(volume["name"], str) and volume["name"]
        assert isinstance(volume["size"], int) and volume["size"] > 0
    names = [v["name"].upper() for v in volumes]
    assert len(names) == len(set(names)), f"a volume is listed twice: {names}"


def test_the_system_volume_is_present(volumes):
    assert "C:\\" in [v["name"].upper() for v in volumes]


def test_the_ip_is_well_formed():
    address = ipaddress.ip_address(os.environ["CUTOVER_TARGET_IP"])
    assert not address.is_unspecified


def test_the_cloud_is_known():
    assert os.environ["CUTOVER_TARGET_CLOUD"] in CLOUDS


def test_no_credential_reached_the_tests():
    secret = re.compile(r"PASS|SECRET|TOKEN|CREDENTIAL|KEY|USER", re.IGNORECASE)
    leaked = sorted(name for name in os.environ if secret.search(name))
    assert not leaked, f"credential-looking variables: {leaked}"


def test_show_the_target(volumes):
    print(f"migration #{os.environ['CUTOVER_MIGRATION_ID']}: {os.environ['CUTOVER_TARGET_IP']} on "
          f"{os.environ['CUTOVER_TARGET_CLOUD']} with " + ", ".join(f"{v['name']} {v['size']} GiB" for v in volumes))
