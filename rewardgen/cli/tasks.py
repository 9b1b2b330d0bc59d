"""``rewardgen-tasks``: the task catalogue (a table, one task's State view, or docs/tasks.md)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rewardgen.cli.app import fail_in_one_line as fail
from rewardgen.errors import RewardGenError
from rewardgen.resources import resource_dir
from rewardgen.sandbox.contract import markup_safe


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def tasks_markdown(names: list[str]) -> str:
    """The task catalogue as Markdown (docs/tasks.md holds it under its walkthrough).

    One table of every task, then per task its goal, native reward and State view, all read from
    the task files, so the documentation cannot drift from what the LLM is shown.
    """
    from rewardgen.tasks.spec import load_task

    tasks = [load_task(name) for name in names]
    out = ["| task | env | fitness | success at | tags |", "|---|---|---|---|---|"]
    for t in tasks:
        fitness = (f"{t.fitness.aggregate}(`{_cell(t.fitness.expr)}`)"
                   if t.fitness.aggregate != "duration" else t.fitness.formula)
        fitness = f"{fitness} {t.fitness.unit}".strip()
        threshold = "-" if t.success_threshold is None else f"{t.success_threshold:g}"
        out.append(f"| [{t.name}](#{t.name}) | `{t.env_id}` | {fitness} | {threshold} | "
                   f"{', '.join(t.tags)} |")
    for t in tasks:
        out += ["", f"### {t.name}", "", _cell(t.description), ""]
        if t.native_reward:
            out += [f"Native reward (human baseline): {_cell(t.native_reward)}", ""]
        out += [f"Fitness: {_cell(t.fitness.doc or t.fitness.expr)}.", "",
                "| State field | source | unit | meaning |", "|---|---|---|---|"]
        out += [f"| `{f.name}` | `{_cell(f.source)}` | {_cell(f.unit)} | {_cell(f.doc)} |"
                for f in t.state]
    return "\n".join(out) + "\n"


def tasks_table(tasks: list[Any], width: int) -> Any:
    """The task list for a terminal ``width`` columns wide: names are never shortened (they are
    what one types); fitness is said in words with its unit (the expression is in
    ``rewardgen-tasks NAME``); below 120 columns the env id and description make room."""
    from rich.table import Table

    wide = width >= 120
    table = Table(title=markup_safe(f"rewardgen tasks ({resource_dir('envs')})"),
                  caption="rewardgen-tasks NAME shows a task's goal, fitness and State view")
    table.add_column("task", no_wrap=True, min_width=max(len(t.name) for t in tasks))
    if wide:
        table.add_column("env", overflow="fold", max_width=34)
    table.add_column("fitness", overflow="fold", ratio=1)
    table.add_column("success at", no_wrap=True)
    if wide:
        table.add_column("description", overflow="fold", ratio=2)
    for t in tasks:
        fitness = t.fitness.doc or t.fitness.formula
        fitness += f" [{t.fitness.unit}]" if t.fitness.unit else ""
        threshold = "-" if t.success_threshold is None else f"{t.success_threshold:g}"
        cells = [t.name, t.env_id, fitness, threshold, t.description[:160]] if wide else \
            [t.name, fitness, threshold]
        table.add_row(*(markup_safe(cell) for cell in cells))
    return table


def main(argv: list[str] | None = None) -> None:
    """``rewardgen-tasks``: list the tasks with their fitness and description."""
    from rich.console import Console

    from rewardgen.tasks.spec import load_task, task_names

    parser = argparse.ArgumentParser(prog="rewardgen-tasks", description=main.__doc__)
    parser.add_argument("name", nargs="?", help="show one task's State view in full")
    parser.add_argument("--markdown", action="store_true",
                        help="print the task catalogue as Markdown (the end of docs/tasks.md)")
    args = parser.parse_args(argv)
    console = Console()
    try:
        if args.markdown:
            sys.stdout.write(tasks_markdown([args.name] if args.name else task_names()))
            return
        if args.name:
            from rewardgen.methods.base import TaskPromptInfo

            task = load_task(args.name)
            about = markup_safe(f"({task.env_id})\n{task.description}")
            console.print(f"[bold]{markup_safe(task.name)}[/] {about}\n")
            console.print(markup_safe(f"fitness: {task.fitness.formula} "
                                      f"[{task.fitness.unit}] - {task.fitness.doc}"))
            # soft_wrap: code is never wrapped at the terminal's (or a pipe's 80) columns
            console.print(TaskPromptInfo.from_task(task).state_source, markup=False,
                          highlight=False, soft_wrap=True)
            return
        rows, tasks = [], []
        for name in task_names():
            task = load_task(name)
            tasks.append(task)
            fitness = f"{task.fitness.formula} {task.fitness.unit}".strip()
            threshold = "-" if task.success_threshold is None else f"{task.success_threshold:g}"
            rows.append((name, task.env_id, fitness, threshold, task.description))
        if not console.is_terminal:  # piped: one tab-separated line per task
            for row in rows:
                print("\t".join(row))
            return
        console.print(tasks_table(tasks, console.width))
    except RewardGenError as e:
        fail(e)
