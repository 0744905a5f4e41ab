"""Finding this process's cgroups: /proc/self/cgroup joined with mountinfo (pure parsing)."""

from __future__ import annotations

from pathlib import Path

from pallet.agent.cgroups import locate, own_hierarchies, parse_mountinfo

# This repository's CI machine: v1 hierarchies for each controller, an empty v2 tree,
# and the memory cgroup of the job rather than the root.
HYBRID_MOUNTINFO = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
HYBRID_CGROUP = """\
9:name=systemd:/
8:pids:/
4:memory:/process_api/1d61
2:cpuacct:/
1:cpu:/
0::/
"""


def test_hybrid_machine() -> None:
    found = {
        (h.version, tuple(sorted(h.controllers))): h
        for h in locate(HYBRID_CGROUP, HYBRID_MOUNTINFO)
    }
    assert found[(1, ("memory",))].directory == Path("/sys/fs/cgroup/memory/process_api/1d61")
    assert found[(1, ("memory",))].cgroup == "/process_api/1d61"
    assert found[(1, ("cpu",))].directory == Path("/sys/fs/cgroup/cpu")
    assert found[(1, ("pids",))].directory == Path("/sys/fs/cgroup/pids")
    assert found[(2, ())].directory == Path("/sys/fs/cgroup/unified")
    assert found[(1, ("name=systemd",))].directory == Path("/sys/fs/cgroup/systemd")


def test_co_mounted_controllers_and_bind_mounted_subtree() -> None:
    # A container that sees only its own cgroup: the mount's root is that cgroup.
    mountinfo = (
        "50 40 0:29 /docker/abc /sys/fs/cgroup/cpu,cpuacct ro,nosuid - cgroup cgroup rw,cpu,cpuacct\n"
        "51 40 0:30 /docker/abc /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
    )
    cgroup = "3:cpu,cpuacct:/docker/abc/inner\n2:memory:/docker/abc\n1:pids:/docker/abc\n"
    found = {tuple(sorted(h.controllers)): h.directory for h in locate(cgroup, mountinfo)}
    assert found == {
        ("cpu", "cpuacct"): Path("/sys/fs/cgroup/cpu,cpuacct/inner"),
        ("memory",): Path("/sys/fs/cgroup/memory"),
        # pids is not mounted: left out
    }


def test_cgroup_outside_the_mounted_subtree_is_left_out() -> None:
    mountinfo = "51 40 0:30 /docker/abc /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
    assert locate("2:memory:/docker/other\n", mountinfo) == []


def test_pure_v2_and_escaped_mount_points() -> None:
    mountinfo = "29 23 0:26 / /sys/fs/my\\040cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
    (h,) = locate("0::/system.slice/pallet-agent.service\n", mountinfo)
    assert h.version == 2
    assert h.directory == Path("/sys/fs/my cgroup/system.slice/pallet-agent.service")


def test_mountinfo_ignores_other_filesystems_and_junk() -> None:
    text = "1 0 8:1 / / rw - ext4 /dev/sda1 rw\ngarbage\n" + HYBRID_MOUNTINFO
    mounts = parse_mountinfo(text)
    assert next(m.point for m in mounts) == "/sys/fs/cgroup/cpu"
    assert all(m.fstype in ("cgroup", "cgroup2") for m in mounts)


def test_own_hierarchies_reads_proc(tmp_path: Path) -> None:
    (tmp_path / "cgroup").write_text(HYBRID_CGROUP)
    (tmp_path / "mountinfo").write_text(HYBRID_MOUNTINFO)
    assert len(own_hierarchies(tmp_path)) == 6
    assert own_hierarchies(tmp_path / "missing") == []
