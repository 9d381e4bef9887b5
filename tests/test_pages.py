"""What a person does in the browser, without JavaScript and with htmx."""
from __future__ import annotations

import re

import pytest

from conftest import make_migration, make_workload

HX = {"HX-Request": "true"}


def text(response) -> str:
    return response.get_data(as_text=True)


PASSWORD_SENT = "s3cret-typed-in-the-form"  # distinctive: a random CSRF token on the page cannot contain it


def workload_form(**changes) -> dict:
    form = {"ip": "10.0.0.7", "username": "admin", "password": PASSWORD_SENT, "domain": "",
            "storage-0-name": "C:\\", "storage-0-size": "40", "storage-1-name": "d:", "storage-1-size": "20",
            "storage-2-name": "", "storage-2-size": "", "save": "Save workload"}
    return {**form, **changes}


def test_create_a_workload_from_the_form(client):
    assert client.get("/workloads/new").status_code == 200
    response = client.post("/workloads/new", data=workload_form())
    assert response.status_code == 303 and response.headers["Location"].endswith("/workloads/")
    listing = text(client.get("/workloads/"))
    assert "10.0.0.7" in listing and "D:\\ 20 GiB" in listing and PASSWORD_SENT not in listing


@pytest.mark.parametrize("changes, message", [
    ({"ip": "nope"}, "Enter a valid IPv4 or IPv6 address."),
    ({"username": ""}, "Username is required."),
    ({"password": ""}, "Password is required."),
    ({"storage-1-size": "lots"}, "Size must be a whole number of GiB."),
    ({"storage-1-name": "c:"}, "Volume C:\\ is listed twice."),
])
def test_form_errors_appear_beside_their_field_and_nothing_is_saved(client, changes, message):
    response = client.post("/workloads/new", data=workload_form(**changes))
    assert response.status_code == 422
    page = text(response)
    assert re.search(r'class="field has-error"|<ul class="errors"', page)
    assert message.replace("\\", "\\") in page.replace("&#39;", "'").replace("&#34;", '"')
    assert client.get("/api/v1/workloads").json["total"] == 0


def test_duplicate_ip_is_reported_beside_the_ip_field(client):
    make_workload(client, ip="10.0.0.7")
    page = text(client.post("/workloads/new", data=workload_form()))
    assert "A workload with this IP address already exists." in page


def test_add_another_volume_row_without_saving(client):
    response = client.post("/workloads/new", data=workload_form(add_volume="Add another volume", save=""))
    assert response.status_code == 200
    assert 'name="storage-3-name"' in text(response)
    assert client.get("/api/v1/workloads").json["total"] == 0


def test_edit_shows_the_ip_read_only_and_a_blank_password_keeps_the_old_one(client):
    workload = make_workload(client)
    page = text(client.get(f"/workloads/{workload['id']}/edit"))
    assert 'name="ip"' not in page and "10.0.0.10" in page
    assert "s3cret" not in page
    response = client.post(f"/workloads/{workload['id']}/edit", data=workload_form(ip="10.9.9.9", password=""))
    assert response.status_code == 303
    updated = client.get(f"/api/v1/workloads/{workload['id']}").json
    assert updated["ip"] == "10.0.0.10" and updated["credentials"]["password_set"]
    assert [m["name"] for m in updated["storage"]] == ["C:\\", "D:\\"]


def test_delete_asks_first_and_refuses_a_workload_in_use(client):
    free, used = make_workload(client, ip="10.0.0.1"), make_workload(client, ip="10.0.0.2")
    make_migration(client, used["id"])
    assert "Delete workload" in text(client.get(f"/workloads/{free['id']}/delete"))
    assert client.post(f"/workloads/{free['id']}/delete").status_code == 303
    assert client.get(f"/api/v1/workloads/{free['id']}").status_code == 404
    assert "cannot be deleted" in text(client.get(f"/workloads/{used['id']}/delete"))
    assert "cannot be deleted" in text(client.post(f"/workloads/{used['id']}/delete"))
    assert client.get(f"/api/v1/workloads/{used['id']}").status_code == 200


def test_source_volumes_load_as_checkboxes_with_and_without_htmx(client):
    workload = make_workload(client)
    fragment = text(client.get(f"/migrations/volumes?source_id={workload['id']}", headers=HX))
    assert fragment.count('type="checkbox"') == 3 and "<html" not in fragment
    assert re.search(r'value="C:\\"\s+checked', fragment)  # the system volume starts selected
    page = text(client.get(f"/migrations/new?source_id={workload['id']}"))  # the no-JavaScript path
    assert page.count('name="selected_mount_points"') == 3
    assert 'hx-get="/migrations/volumes"' in page and 'hx-trigger="change from:#source_id"' in page


def migration_form(source_id: int, *volumes: str) -> dict:
    return {"source_id": str(source_id), "selected_mount_points": list(volumes), "cloud_type": "vsphere",
            "cloud_username": "vc", "cloud_password": "pw", "cloud_domain": "", "save": "Save migration"}


def test_create_migration_then_preview_shows_the_target_and_the_c_rule(client):
    workload = make_workload(client)
    response = client.post("/migrations/new", data=migration_form(workload["id"], "D:\\"))
    assert response.status_code == 303
    page = text(client.get(response.headers["Location"]))
    assert "Preview of the target VM" in page and "D:\\ 100 GiB" in page
    assert "must be selected" in page
    assert "C:\\ 40 GiB" in page.split("Not migrated")[1]


def test_migration_form_errors_are_shown_beside_the_fields(client):
    workload = make_workload(client)
    response = client.post("/migrations/new", data={**migration_form(workload["id"]), "cloud_username": ""})
    assert response.status_code == 422
    page = text(response)
    assert "Select at least one volume." in page and "Username is required." in page


def test_run_and_poll_until_success_then_polling_stops(client, work):
    migration = make_migration(client, make_workload(client)["id"])
    url = f"/migrations/{migration['id']}"
    fragment = text(client.post(f"{url}/run", headers=HX))
    assert 'id="migration-status"' in fragment and "<html" not in fragment
    assert 'hx-trigger="every 1s"' in fragment and "Cancel" in fragment
    work()
    polled = client.get(url, headers=HX)
    assert "HX-Request" in polled.headers["Vary"]
    assert "success" in text(polled) and "hx-trigger" not in text(polled)
    assert "Target VM" in text(polled)


def test_run_without_javascript_redirects_with_a_message(client):
    migration = make_migration(client, make_workload(client)["id"], selected=("D:\\",))
    response = client.post(f"/migrations/{migration['id']}/run")
    assert response.status_code == 303
    page = text(client.get(response.headers["Location"]))
    assert "The system volume C:\\ must be selected." in page and "Retry" in page


def test_cancel_button_and_running_list_polls(client):
    migration = make_migration(client, make_workload(client)["id"])
    client.post(f"/migrations/{migration['id']}/run")
    listing = text(client.get("/migrations/"))
    assert 'hx-trigger="every 1s"' in listing
    fragment = text(client.post(f"/migrations/{migration['id']}/cancel", headers=HX))
    assert "cancelled" in fragment and "hx-trigger" not in fragment
    assert 'hx-trigger="every 1s"' not in text(client.get("/migrations/"))


def test_a_running_migration_cannot_be_edited_or_deleted_from_the_pages(client):
    migration = make_migration(client, make_workload(client)["id"])
    client.post(f"/migrations/{migration['id']}/run")
    assert client.get(f"/migrations/{migration['id']}/edit").status_code == 409
    response = client.post(f"/migrations/{migration['id']}/delete")
    assert response.status_code == 200 and "cancel it first" in text(response)


def test_edit_a_migration_keeps_its_source(client):
    workload = make_workload(client)
    migration = make_migration(client, workload["id"])
    page = text(client.get(f"/migrations/{migration['id']}/edit"))
    assert "cannot change" in page
    response = client.post(f"/migrations/{migration['id']}/edit", data=migration_form(999, "C:\\", "E:\\"))
    assert response.status_code == 303
    body = client.get(f"/api/v1/migrations/{migration['id']}").json
    assert body["source_id"] == workload["id"] and body["selected_mount_points"] == ["C:\\", "E:\\"]
    assert body["target"]["cloud_type"] == "vsphere"


@pytest.mark.parametrize("url", ["/", "/workloads/", "/migrations/", "/migrations/new", "/workloads/new"])
def test_pages_render_and_unknown_things_are_friendly_404s(client, url):
    assert client.get(url).status_code == 200
    missing = client.get("/migrations/424242")
    assert missing.status_code == 404 and "Not found" in text(missing) and "Traceback" not in text(missing)


def test_running_a_migration_from_the_page_notifies_whoever_pressed_run(client, as_role, work):
    """The Run form names nobody: the signed-in account is told when it ends (a name sent anyway is ignored)."""
    kim = as_role("operator", "ops-kim")
    migration = make_migration(client, make_workload(client)["id"])
    page = text(kim.get(f"/migrations/{migration['id']}"))
    assert "Run migration" in page and 'name="requested_by"' not in page
    response = kim.post(f"/migrations/{migration['id']}/run", data={"requested_by": "someone-else"})
    assert response.status_code == 303
    assert client.get(f"/api/v1/migrations/{migration['id']}").json["requested_by"] == "ops-kim"
    work()
    events = client.get("/api/v1/events?user_id=ops-kim").json["items"]
    assert [e["source"] for e in events] == ["migration"] and events[0]["link"] == f"/migrations/{migration['id']}"
    assert client.get("/api/v1/events?user_id=someone-else").json["total"] == 0
    assert client.get("/api/v1/events?user_id=admin").json["total"] == 0


def test_a_viewer_sees_a_migration_but_may_not_run_it(client, as_role):
    viewer = as_role("viewer")
    migration = make_migration(client, make_workload(client)["id"])
    assert viewer.get(f"/migrations/{migration['id']}").status_code == 200
    assert viewer.post(f"/migrations/{migration['id']}/run").status_code == 403
    assert client.get(f"/api/v1/migrations/{migration['id']}").json["state"] == "not_started"
