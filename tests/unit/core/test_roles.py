from django.contrib.auth.models import Group

from core.policy import Action, can
from tests.conftest import make_user


def test_joining_the_admin_group_grants_the_admin_pages(db):
    user = make_user("newadmin", None)
    user.groups.add(Group.objects.get_or_create(name="admin")[0])
    user.refresh_from_db()
    assert user.is_staff and user.is_superuser and can(user, Action.ADMIN)
    user.groups.clear()
    user.refresh_from_db()
    assert not user.is_staff and not user.is_superuser


def test_roles_rank_viewer_below_operator_below_admin(viewer_user, operator_user, admin_user, outsider_user):
    assert can(viewer_user, Action.VIEW) and not can(viewer_user, Action.OPERATE)
    assert can(operator_user, Action.OPERATE) and not can(operator_user, Action.ADMIN)
    assert can(admin_user, Action.RAW_XML)
    assert not can(outsider_user, Action.VIEW)


def test_grants_open_one_host_or_one_guest_and_nothing_else(outsider_user, test_host):
    from core.models import Grant
    from core.policy import visible_guests, visible_hosts
    from guests.models import Guest
    from hosts.models import Host

    other = Host.objects.create(name="other", uri="test:///tmp/other.xml")
    mine = Guest.objects.create(host=other, uuid="u-mine", name="mine")
    Guest.objects.create(host=other, uuid="u-theirs", name="theirs")
    Grant.objects.create(user=outsider_user, role="operator", guest=mine)
    assert list(visible_guests(outsider_user)) == [mine]
    assert can(outsider_user, Action.OPERATE, mine)
    assert not can(outsider_user, Action.MANAGE, test_host)
    Grant.objects.create(user=outsider_user, role="viewer", host=test_host)
    assert set(visible_hosts(outsider_user)) == {test_host, other}
    assert can(outsider_user, Action.VIEW, test_host) and not can(outsider_user, Action.OPERATE, test_host)
