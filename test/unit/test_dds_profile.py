"""dds_profile.apply: the package's Fast DDS profile is used unless the user set one or chose
another middleware; the file says what it should."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from dynlearn_ros.dds_profile import ENV, apply, profile_path


def test_the_profile_is_set_when_nothing_is():
    env: dict[str, str] = {}
    line = apply(env)
    assert env[ENV] == profile_path() and "type propagation off" in line
    root = ET.parse(env[ENV]).getroot()
    ns = {"d": "http://www.eprosima.com"}
    part = root.find("d:profiles/d:participant", ns)
    assert part is not None and part.get("is_default_profile") == "true"
    props = {p.findtext("d:name", namespaces=ns): p.findtext("d:value", namespaces=ns)
             for p in part.iterfind("d:rtps/d:propertiesPolicy/d:properties/d:property", ns)}
    assert props == {"fastdds.type_propagation": "disabled"}   # Fast DDS compares the lower-case word


def test_ours_set_by_a_parent_is_ours():
    env = {ENV: profile_path()}
    assert apply(env).endswith("(type propagation off)")


def test_a_users_profile_is_kept():
    env = {ENV: "/etc/my_fastdds.xml"}
    assert "set by the user" in apply(env) and env[ENV] == "/etc/my_fastdds.xml"


def test_another_middleware_gets_nothing():
    env = {"RMW_IMPLEMENTATION": "rmw_cyclonedds_cpp"}
    assert "not applied" in apply(env) and ENV not in env
    env = {"RMW_IMPLEMENTATION": "rmw_fastrtps_cpp"}
    apply(env)
    assert env[ENV] == profile_path()
