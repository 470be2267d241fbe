"""Peak memory of a worker's process tree, from ``/proc`` (``VmHWM`` is the kernel's own peak RSS)."""

from __future__ import annotations

from pathlib import Path


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found.extend(int(c) for c in (task / "children").read_text().split())
        except OSError:
            continue
    return found


def process_tree(root: int) -> list[int]:
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(_children(pid))
    return tree


def peak_rss_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


class TreeMemory:
    """Sampled: the highest ``VmHWM`` seen for each process of the tree under ``root``."""

    def __init__(self, root: int) -> None:
        self.root = root
        self.peaks: dict[int, int] = {}

    def sample(self) -> None:
        for pid in process_tree(self.root):
            peak = peak_rss_kb(pid)
            if peak is not None:
                self.peaks[pid] = max(peak, self.peaks.get(pid, 0))

    @property
    def largest_process_mb(self) -> float | None:
        return max(self.peaks.values()) / 1024 if self.peaks else None

    @property
    def tree_mb(self) -> float | None:
        """The sum of each process's peak: an upper bound (forked children share pages)."""
        return sum(self.peaks.values()) / 1024 if self.peaks else None

    @property
    def processes(self) -> int:
        return len(self.peaks)
