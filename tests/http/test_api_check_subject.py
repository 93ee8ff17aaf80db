"""`subject` and `subject_fail` in check answers: the keywords while filter_subject is on, else ""."""

from __future__ import annotations


def test_subject_fields_follow_filter_subject(live):
    # Keywords set for the HTTP body filter only: the subject fields stay empty.
    check = live.create(success_kw="ok", failure_kw="bad", filter_http_body=True)
    assert (check["filter_subject"], check["success_kw"], check["failure_kw"]) == (False, "ok", "bad")
    assert (check["subject"], check["subject_fail"]) == ("", "")
    uuid = check["uuid"]
    listed = live.api("GET", "checks/").json()["checks"][0]
    assert (listed["subject"], listed["subject_fail"]) == ("", "")

    on = live.api("POST", f"checks/{uuid}", json={"filter_subject": True}).json()
    assert (on["subject"], on["subject_fail"]) == ("ok", "bad")
    assert (live.get_check(uuid)["subject"], live.get_check(uuid)["subject_fail"]) == ("ok", "bad")

    off = live.api("POST", f"checks/{uuid}", json={"filter_subject": False}).json()
    assert (off["subject"], off["subject_fail"], off["success_kw"], off["failure_kw"]) == ("", "", "ok", "bad")
