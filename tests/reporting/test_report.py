"""rewardgen-report on a real tiny run, checked in real headless Chromium (DevTools over a pipe)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rewardgen.errors import RunDirError
from rewardgen.reporting.report import (
    collect,
    main,
    render,
    report_at_end,
    tensorboard_components,
    write_report,
)
from rewardgen.runs.store import RunStore
from tests.reporting.test_export import tiny_run

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (make sysdeps installs it on Debian)")


@pytest.fixture(scope="module")
def report_run(tmp_path_factory):
    """A copy of the shared tiny run with its report (videos included) written."""
    run_dir = tmp_path_factory.mktemp("report") / "run"
    shutil.copytree(tiny_run(tmp_path_factory), run_dir)
    write_report(run_dir, video_steps=40)
    return run_dir


_TRAMPOLINE = (
    "import fcntl, os, sys\n"
    "high = [fcntl.fcntl(int(fd), fcntl.F_DUPFD, 10) for fd in sys.argv[1:3]]\n"
    "os.dup2(high[0], 3)\n"
    "os.dup2(high[1], 4)\n"
    "os.execv(sys.argv[3], sys.argv[3:])\n"
)


class Browser:
    """Headless Chromium driven by the DevTools protocol over --remote-debugging-pipe.

    Commands go to the browser's fd 3 and replies come from its fd 4, NUL-separated JSON, so no
    port is opened and no websocket library is needed.
    """

    def __init__(self, profile: Path) -> None:
        to_browser, self._cmd = os.pipe()
        self._out, from_browser = os.pipe()
        args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--remote-debugging-pipe", f"--user-data-dir={profile}",
                "--window-size=1280,2000", "about:blank"]
        # The browser must find the pipe on fds 3 and 4; move both out of the way first.
        self.proc = subprocess.Popen([sys.executable, "-c", _TRAMPOLINE, str(to_browser),
                                      str(from_browser), *args],
                                     pass_fds=(to_browser, from_browser),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_browser)
        os.close(from_browser)
        self._id = 0
        self._buffer = b""
        self.events: list[dict[str, Any]] = []

    def _read(self) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            chunk = os.read(self._out, 65536)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)  # type: ignore[no-any-return]

    def send(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params}
        if session:
            msg["sessionId"] = session
        os.write(self._cmd, json.dumps(msg).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})  # type: ignore[no-any-return]
            self.events.append(reply)

    def wait_for(self, method: str) -> None:
        while not any(e.get("method") == method for e in self.events):
            self.events.append(self._read())

    def open(self, url: str) -> str:
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        session = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Runtime", "Log", "Page"):
            self.send(f"{domain}.enable", session)
        self.events.clear()
        self.send("Page.navigate", session, url=url)
        self.wait_for("Page.loadEventFired")
        self.evaluate(session, "new Promise(r => setTimeout(r, 300))")  # late console messages
        return session

    def evaluate(self, session: str, expression: str) -> Any:
        result = self.send("Runtime.evaluate", session, expression=expression,
                           returnByValue=True, awaitPromise=True)
        return result["result"].get("value")

    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and failed loads (what DevTools shows in red)."""
        out = []
        for e in self.events:
            p = e.get("params", {})
            if e.get("method") == "Runtime.consoleAPICalled" and p.get("type") == "error":
                out.append(" ".join(str(a.get("value", a.get("description"))) for a in p["args"]))
            elif e.get("method") == "Runtime.exceptionThrown":
                details = p["exceptionDetails"]
                out.append(details.get("exception", {}).get("description") or details["text"])
            elif e.get("method") == "Log.entryAdded" and p["entry"]["level"] == "error":
                out.append(f"{p['entry']['text']} {p['entry'].get('url', '')}")
        return out

    def close(self) -> None:
        with contextlib.suppress(RuntimeError, OSError):
            self.send("Browser.close")
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        os.close(self._cmd)
        os.close(self._out)


@pytest.fixture
def browser(tmp_path):
    b = Browser(tmp_path / "profile")
    yield b
    b.close()


@needs_chromium
def test_browser_sees_console_errors(browser, tmp_path):
    """The error detector itself works: a broken page is caught."""
    page = tmp_path / "broken.html"
    page.write_text('<html><body><img src="missing.png"><script>console.error("boom");'
                    "undefinedFunction();</script></body></html>")
    browser.open(page.as_uri())
    errors = " | ".join(browser.errors())
    assert "boom" in errors and "undefinedFunction" in errors and "missing.png" in errors


@needs_chromium
def test_report_in_headless_chromium(report_run, browser):
    session = browser.open((report_run / "report.html").as_uri())
    assert browser.errors() == []
    plot = browser.evaluate(session, "(() => { const i = document.getElementById('fitness-plot');"
                                     " return [i.complete, i.naturalWidth, i.naturalHeight,"
                                     " i.getBoundingClientRect().width]; })()")
    assert plot[0] is True and plot[1] > 400 and plot[2] > 200 and plot[3] > 300
    rows = browser.evaluate(session, "Array.from(document.querySelectorAll("
                                     "'#candidates tbody tr')).map(r => r.innerText)")
    assert len(rows) == 4 and all("ok" in r for r in rows)
    assert sum("★" in r for r in rows) == 1
    broken = browser.evaluate(session, "Array.from(document.images).filter("
                                       "i => !(i.complete && i.naturalWidth > 0)).length")
    assert broken == 0
    videos = browser.evaluate(session, "Array.from(document.querySelectorAll('video'))"
                                       ".map(v => v.error ? v.error.code : 0)")
    assert len(videos) == 2 and videos == [0, 0]
    assert browser.evaluate(session, "document.querySelectorAll('.hl pre').length") >= 4


def test_report_contents(report_run):
    store = RunStore.open(report_run)
    data = collect(store)
    rows = [r for gen in data.generations for r in gen]
    assert len(rows) == 4 and data.best is not None
    assert [r.label for r in rows if r.is_best] == [data.best]
    assert all(r.parent is None for r in data.generations[0])
    assert {r.parent for r in data.generations[1]} == {
        max(data.generations[0], key=lambda r: r.record.result.fitness or 0).label}
    assert all("gen_" in r.diff_html for r in data.generations[1])
    assert data.usage["requests"] == 2 and data.final is not None
    plots = {p.name for p in (report_run / "plots").glob("*.png")}
    assert "fitness.png" in plots and any(p.startswith("components_") for p in plots)
    assert plots & {"human_normalised.png", "final_fitness.png"}
    html = (report_run / "report.html").read_text()
    links = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert links and not [u for u in links if re.match(r"(https?:)?//", u)]  # nothing remote
    assert "Offline baseline" in html and "data:image/png;base64," in html
    # inverted_pendulum's fitness is the episode's duration (its expression is unused)
    assert ("Fitness (trusted, used for selection): duration of the episode [s]: seconds the pole"
            in " ".join(html.split()))
    assert "<code>0.0</code>" not in html
    curves = tensorboard_components(store.cand_dir(0, 0))
    assert curves and all(len(points) >= 2 for points in curves.values())


def test_cli_and_failures(report_run, tmp_path, capsys):
    main([str(report_run), "--no-videos"])
    assert capsys.readouterr().out.strip().endswith("report.html")
    with pytest.raises(SystemExit):
        main([str(tmp_path)])
    assert "not a rewardgen run directory" in capsys.readouterr().err
    with pytest.raises(RunDirError, match="not a rewardgen run directory"):
        write_report(tmp_path)
    assert report_at_end(tmp_path) is None  # logged, not raised


def test_final_comparison_with_intervals_and_an_undefined_score(report_run, tmp_path):
    """A final phase of five hand-made seeds (the least with an interval): IQM [CI], P(generated > native), the budget and
    seeds beside them; then native ≈ sparse, where the score is undefined with its reason."""
    from rewardgen.runs.atomic import atomic_write_json
    from rewardgen.runs.records import CandidateResult
    from rewardgen.search.final import final_summary

    run_dir = tmp_path / "run"
    shutil.copytree(report_run, run_dir)
    seeds = [1000, 2000, 3000, 4000, 5000]

    def variant(values: list[float]) -> list[CandidateResult]:
        return [CandidateResult(status="ok", fitness=f, seed=s) for s, f in zip(seeds, values,
                                                                               strict=True)]

    final = final_summary("gen_001/cand_00", 300_000, seeds, [0], {
        "generated": variant([1.0, 2.0, 3.0, 100.0, 2.5]),
        "native": variant([1.0, 1.2, 0.8, 1.0, 1.0]), "sparse": variant([0.0] * 5)})
    atomic_write_json(run_dir / "final" / "summary.json", final)
    html = (write_report(run_dir, videos=False)).read_text()
    assert "seeds 1000, 2000, 3000, 4000, 5000" in html and "300,000" in html
    assert "the search trained with seed 0" in html
    low, high = final["variants"]["generated"]["fitness_iqm_ci"]
    assert f"2.5 [{low:.3g}, {high:.3g}]" in html  # IQM of 1, 2, 2.5, 3, 100 is mean(2, 2.5, 3)
    assert "P(generated &gt; native) over seeds: <b>0.9 [" in html  # 22.5 of 25 pairs
    assert "(generated − sparse) / |native − sparse| of seed means: <b>21.7</b>" in html
    assert (run_dir / "plots" / "human_normalised.png").is_file()

    final = final_summary("gen_001/cand_00", 300_000, seeds[:2], [0], {
        "generated": variant([0.5, 0.7, 0.0, 0.0, 0.0])[:2],
        "native": variant([-0.04, 0.12, 0, 0, 0])[:2],
        "sparse": variant([-0.05, 0.29, 0.0, 0.0, 0.0])[:2]})
    atomic_write_json(run_dir / "final" / "summary.json", final)
    (run_dir / "plots" / "human_normalised.png").unlink()
    html = (write_report(run_dir, videos=False)).read_text()
    assert "human-normalised score: <b>undefined</b> (native and sparse are within their spread" in html
    assert "0.08 &lt;= 0.17" in html
    assert "no 95% CI with 2 seeds: needs at least 5" in html  # the interval it no longer shows
    assert not (run_dir / "plots" / "human_normalised.png").exists()  # the plain fitness plot
    assert (run_dir / "plots" / "final_fitness.png").is_file()


@needs_chromium
def test_diffs_wrap_open_and_fitness_has_units(report_run, browser, tmp_path):
    """A 300-character line in a program: its diff wraps instead of scrolling sideways, every
    diff is open without a click, and fitness values carry the task's unit."""
    run_dir = tmp_path / "run"
    shutil.copytree(report_run, run_dir)
    long_line = "    bonus = " + " + ".join(f"0.001 * state.pole_angle ** {k}" for k in range(12))
    for cand in sorted(run_dir.glob("gen_001/cand_*")):
        source = (cand / "reward.py").read_text()
        (cand / "reward.py").write_text(source.replace("\n", f"\n{long_line}\n", 1))
    html = write_report(run_dir, videos=False).read_text()
    assert "fitness [s]</th>" in html  # inverted_pendulum: seconds upright
    session = browser.open((run_dir / "report.html").as_uri())
    assert browser.errors() == []
    diffs = browser.evaluate(session, "Array.from(document.querySelectorAll('.diff pre')).map("
                                      "p => [p.scrollWidth, p.clientWidth, p.getClientRects().length,"
                                      " p.innerText.length])")
    assert len(diffs) == 2  # gen_001's two candidates
    for scroll_width, width, shown, chars in diffs:
        assert shown > 0  # rendered: its <details> is open
        assert chars > 300 and scroll_width <= width + 1  # wrapped, no sideways scrolling
    page_width = browser.evaluate(session, "[document.documentElement.scrollWidth, innerWidth]")
    assert page_width[0] <= page_width[1]


def test_headline_card_is_the_fresh_seed_final_and_the_search_peak_is_labelled(report_run):
    """Issue 26: the card said ``best fitness 3.41 s``, the search's single-seed peak."""
    data = collect(RunStore.open(report_run))
    assert data.final is not None
    iqm = data.final["variants"]["generated"]["fitness_iqm"]
    html = " ".join(render(data).split())
    headline = re.search(r'<div class="card" id="headline">(.*?)</div></div>', html)
    assert headline is not None, html[:3000]
    card = re.sub(r"<[^>]+>", " ", headline.group(1))
    assert "final fitness [s]: IQM over 1 fresh seed" in " ".join(card.split())
    assert f"{iqm:.3g} s" in card and "no 95% CI with 1 seed: needs at least 5" in card
    assert 'id="search-peak"' in html and "search peak, 1 seed [s]" in html
    assert "best fitness" not in html
    data.final = None  # no final phase: the search peak is all there is, and it says so
    html = " ".join(render(data).split())
    assert 'id="headline"' not in html and "no final phase retrained it on fresh seeds" in html
