"""The job page and the fragment its live refresh re-reads."""

from core import jobs


def test_the_live_fragment_is_the_card_alone_not_a_whole_page(operator_user, client, test_host):
    job = jobs.create(operator_user, "guest.start", host=test_host)
    client.force_login(operator_user)
    page = client.get(f"/jobs/{job.pk}/").content.decode()
    assert f'data-live-src="/jobs/{job.pk}/?partial=card"' in page
    fragment = client.get(f"/jobs/{job.pk}/?partial=card").content.decode()
    assert "Progress" in fragment and "<main" not in fragment and "<html" not in fragment
