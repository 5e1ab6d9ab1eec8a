"""Set-up pieces that need no kernel: pins in step, kernel build folders never shared."""
import os
import re

import yaml

import kernel_launcher
from conftest import REPO


def pins(lines) -> dict[str, str]:
    found = {}
    for line in lines:
        match = re.match(r"^\s*-?\s*([A-Za-z0-9_.-]+)\s*(==|=)\s*([0-9][^\s#]*)", line)
        if match:
            found[match.group(1).lower().replace("_", "-")] = match.group(3)
    return found


def test_environment_yml_pins_match_pip_pins():
    pip_pins = pins((REPO / "scripts" / "requirements.txt").read_text().splitlines())
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    conda_pins = pins(d for d in env["dependencies"] if isinstance(d, str))
    assert pip_pins, "no pins found in requirements.txt"
    for name, version in pip_pins.items():
        assert conda_pins.get(name) == version, f"{name}: pip pins {version}, environment.yml has {conda_pins.get(name)}"
    names = {d.split("=")[0] for d in env["dependencies"] if isinstance(d, str)}
    assert {"rust", "evcxr"} <= names


def test_each_live_kernel_gets_its_own_build_folder_and_a_freed_one_is_reused(tmp_path):
    first, first_fd = kernel_launcher.take_free_slot(tmp_path, reuse_wait_s=0)
    second, second_fd = kernel_launcher.take_free_slot(tmp_path, reuse_wait_s=0)
    assert first != second
    os.close(first_fd)
    again, again_fd = kernel_launcher.take_free_slot(tmp_path, reuse_wait_s=0)
    assert again == first
    for fd in (second_fd, again_fd):
        os.close(fd)


def test_all_slots_busy_is_a_clear_error(tmp_path):
    _, fd = kernel_launcher.take_free_slot(tmp_path, max_slots=1, reuse_wait_s=0)
    try:
        kernel_launcher.take_free_slot(tmp_path, max_slots=1, reuse_wait_s=0)
        raise AssertionError("a second kernel got a busy slot")
    except SystemExit as e:
        assert "in use" in str(e) and "Fix:" in str(e)
    finally:
        os.close(fd)
