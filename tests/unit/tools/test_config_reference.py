"""tools/config_reference.py: the configuration reference page is what the packaged configs give."""

from __future__ import annotations

from tools import config_reference as tool


def test_the_committed_page_is_what_the_configs_give():
    page = tool.PAGE.read_text()
    assert page == tool.render(), "docs/reference/configuration.md is out of date: python tools/config_reference.py"
    for group in ("loss", "reward", "rollout", "model", "data", "trainer"):
        assert f"\n## {group}/\n" in page
    assert "| `loss.beta` | `0.04` |" in page and "| `rollout.group_size` |" in page


def test_a_file_gives_its_header_defaults_and_keys_with_the_comments_above_and_beside_them(tmp_path):
    (tmp_path / "loss").mkdir()
    path = tmp_path / "loss" / "mine.yaml"
    path.write_text(
        "# @package loss\n"
        "# My loss: <think> counts.\n"
        "#   audio-thinker train loss=mine\n"
        "defaults:\n"
        "  - grpo  # the base\n"
        "# The KL weight,\n"
        "# twice as strong.\n"
        "beta: 0.08  # k3\n"
        "server:  # only for vllm\n"
        "  tasks: [a, b]  # a | b\n"
        "  plugins:\n"
        "    - _target_: x.Y\n"
        "note: >-\n"
        "  folded\n"
        "  text\n"
        "quoted: '#not a comment'\n"
    )
    config = tool.read_config(path, tmp_path)
    assert config.package == "loss" and config.header == ["My loss: <think> counts.", "  audio-thinker train loss=mine"]
    assert config.defaults == [("grpo", "the base")]
    assert [(e.key, e.value, e.comment) for e in config.entries] == [
        ("loss.beta", "0.08", "The KL weight, twice as strong. k3"),
        ("loss.server", "", "only for vllm"),
        ("loss.server.tasks", "[a, b]", "a | b"),
        ("loss.server.plugins", "[{_target_: x.Y}]", ""),
        ("loss.note", "folded text", ""),
        ("loss.quoted", "'#not a comment'", ""),
    ]
    section = "\n".join(tool.file_markdown(config))
    assert "My loss: &lt;think&gt; counts." in section and "```text\naudio-thinker train loss=mine\n```" in section
    assert "| `loss.server.tasks` | `[a, b]` | a \\| b |" in section


def test_a_global_package_writes_keys_at_the_root(tmp_path):
    (tmp_path / "experiment").mkdir()
    path = tmp_path / "experiment" / "paper.yaml"
    path.write_text("# @package _global_\n# A preset.\nrollout:\n  group_size: 8\n")
    config = tool.read_config(path, tmp_path)
    assert config.package == "" and [e.key for e in config.entries] == ["rollout.group_size"]


def test_check_reports_a_stale_page(tmp_path, capsys):
    stale = tmp_path / "configuration.md"
    stale.write_text("# old\n")
    assert tool.main(["--check", "--out", str(stale)]) == 1 and "out of date" in capsys.readouterr().out
    assert tool.main(["--out", str(stale)]) == 0 and tool.main(["--check", "--out", str(stale)]) == 0
