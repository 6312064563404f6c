"""The network actor pool policy: least-loaded placement, drop a dead replica, regrow later.

Ray does not restart a crashed network actor (a restart lands wherever Ray finds room, which
after a node loss can take the last CPUs that decode/write tasks need); the pool drops it, and
grows back only after ``regrow_after_s`` and when the cluster has room again.
"""
from __future__ import annotations

import time
from typing import Any, Callable


class ActorPool:
    """Replicas made by ``make()``; ``room(n)`` says whether the cluster fits ``n`` replicas now.

    Load is counted by the caller's in-flight work: ``pick(load)`` gets {actor: shards in flight}.
    """

    def __init__(self, make: Callable[[], Any], size: int, room: Callable[[int], bool],
                 kill: Callable[[Any], None], regrow_after_s: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self.make, self.size, self.room, self.kill = make, size, room, kill
        self.regrow_after_s, self.clock = regrow_after_s, clock
        self.actors: list[Any] = [make() for _ in range(size)]
        self.regrow_at = 0.0

    def pick(self, load: dict[int, int]) -> Any:
        """The least loaded replica (``load`` maps id(actor) to its shards in flight)."""
        return min(self.actors, key=lambda a: load.get(id(a), 0))

    def __contains__(self, actor: Any) -> bool:
        return any(actor is a for a in self.actors)

    def drop(self, actor: Any) -> None:
        """Remove a dead (or dying) replica once; an empty pool gets a fresh replica at once."""
        if actor not in self:
            return
        self.actors = [a for a in self.actors if a is not actor]
        self.kill(actor)
        if self.actors:
            self.regrow_at = self.clock() + self.regrow_after_s
        else:
            self.actors.append(self.make())

    def maybe_regrow(self) -> bool:
        """Add one replica when the pool is below size, the wait is over and the cluster has room."""
        if len(self.actors) < self.size and self.clock() >= self.regrow_at and self.room(len(self.actors) + 1):
            self.actors.append(self.make())
            return True
        return False

    def close(self) -> None:
        """Kill every replica."""
        for a in self.actors:
            self.kill(a)
        self.actors = []
