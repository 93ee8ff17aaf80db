def test_status_and_ping(live):
    assert live.client.get("/api/v3/status/").text == "OK"
    check = live.create(name="Backup")
    r = live.ping(f"/ping/{check['uuid']}")
    assert r.status_code == 200 and r.text == "OK"
    assert live.get_check(check["uuid"])["n_pings"] == 1
