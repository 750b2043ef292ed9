"""What a worker thread runs: its own ``requests.Session``, and one
``Transfer`` per job."""
from __future__ import annotations

import threading

from .events import Finished
from .failures import describe
from .plan import Job
from .results import Result
from .session import Requester, make_session
from .shared import Shared, Slot
from .transfer import Transfer


class Fetcher:
    """Runs jobs in worker threads, each with a Session of its own."""

    def __init__(self, shared: Shared) -> None:
        self.shared = shared
        self._local = threading.local()

    def __call__(self, job: Job, slot: Slot) -> Finished:
        requester = getattr(self._local, "requester", None)
        if requester is None:
            session = make_session(self.shared.settings, slot.handle)
            requester = self._local.requester = Requester(session)
        return Transfer(job, self.shared, slot, requester).run()

    def crashed(self, job: Job, slot: Slot, exc: BaseException) -> Finished:
        """A job that raised past ``Transfer.run`` still ends with a result."""
        if self.shared.cancelled.is_set():
            reason = self.shared.cancelled.reason
        else:
            reason = f"internal error: {describe(exc)}"
        return Finished(slot.number, job.index, Result(url=job.entry.url, error=reason),
                        job.key)

    def close(self, slot: Slot) -> None:
        """The worker is ending: close its Session (and its connections)."""
        requester = getattr(self._local, "requester", None)
        if requester is not None:
            self._local.requester = None
            requester.session.close()
