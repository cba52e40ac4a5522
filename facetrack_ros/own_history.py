"""The fleet node's link to this robot's own frame_history, over the history's services.

Searches (peers' requests, this robot's fleet searches and enrolments) go through its
backtrack_search; a search nothing matches, now and then, tells what it spans (for the
presence); forget_person forgets the faces the fleet withdrew, one at a time until each is
confirmed; its get_parameters tells its max_age, to warn while the fleet keeps a withdrawn
face for less. The rules (when to probe, which forget is next, when to ask again) are the
core's (HistoryProbe, PeopleSync).
"""

import threading
import time

from rcl_interfaces.msg import ParameterType
from rcl_interfaces.srv import GetParameters
from rclpy.node import Node
from rclpy.task import Future

from facetrack_ros.conversions import time_to_ns
from facetrack_ros.core.embedding import DLIB_EMBEDDING_DIM
from facetrack_ros.core.fleet import (FleetCode, FORGET_RETRY_S, HistoryProbe, PeopleSync,
                                      PersonRecord)
from facetrack_ros.srv import BacktrackSearch, ForgetPerson

#: What /diagnostics and the log say while this robot's history keeps faces longer than the
#: fleet keeps a withdrawn one.
SHORT_FACE_AGE = ('withdrawn_face_age ({:g} s) is below this robot\'s frame_history max_age '
                  '({:g} s): a robot away longer than withdrawn_face_age when someone is '
                  'forgotten keeps their faces; give withdrawn_face_age at least max_age')
#: A search over all history with a threshold nothing reaches: its answer's window is the span.
SPAN_PROBE = BacktrackSearch.Request(
    query_type=BacktrackSearch.Request.QUERY_EMBEDDING,
    embedding=[1.0] + [0.0] * (DLIB_EMBEDDING_DIM - 1), window_width=0.0, min_similarity=1.0,
    max_results=1)


class OwnHistory:
    """This robot's frame_history as the fleet node uses it (backtrack_search, forget_person)."""

    def __init__(self, node: Node, people: PeopleSync, withdrawn_face_age_s: float) -> None:
        """Create the clients on node; forgets come from people, checked against the age."""
        self.probe = HistoryProbe()
        self.face_age_warning = ''   # set while the history's max_age is the longer
        self._node, self._people, self._face_age_s = node, people, withdrawn_face_age_s
        self._search = node.create_client(BacktrackSearch, 'backtrack_search')
        self._forget = node.create_client(ForgetPerson, 'forget_person')
        self._parameters = node.create_client(GetParameters, 'frame_history/get_parameters')
        # The pending span probe, forget and max_age read: dropped when asked again unanswered.
        self._pending: dict[str, Future | None] = dict.fromkeys(('span', 'forget', 'max_age'))

    def ready(self) -> bool:
        """Return whether the history's backtrack_search is there."""
        return self._search.service_is_ready()

    def search(self, request: BacktrackSearch.Request) -> Future:
        """Start a search; give it up with drop()."""
        return self._search.call_async(request)

    def drop(self, search: Future) -> None:
        """Give up a search nobody waits for any more."""
        self._search.remove_pending_request(search)

    def call(self, request: BacktrackSearch.Request,
             timeout_s: float) -> BacktrackSearch.Response | None:
        """Return the history's answer to request, or None if none came in timeout_s.

        Waits: for the service threads, while the executor's thread takes the answer.
        """
        if timeout_s <= 0 or not self.ready():
            return None
        done = threading.Event()
        future = self.search(request)
        future.add_done_callback(lambda _: done.set())
        if not done.wait(timeout_s):
            self.drop(future)
            return None
        return future.result()

    def refresh(self, now_s: float) -> None:
        """Ask what the history spans and its max_age, when due (HistoryProbe)."""
        if not self.ready():
            self.probe.answered(False, None)
            return
        if not self.probe.due(now_s):
            return
        self._ask('span', self._search, SPAN_PROBE, self._on_span)
        if self._parameters.service_is_ready():
            self._ask('max_age', self._parameters, GetParameters.Request(names=['max_age']),
                      self._on_max_age)

    def forget_next(self) -> None:
        """Ask the history to forget the next face the fleet withdrew, if any is due."""
        if not self._forget.service_is_ready():
            return
        record = self._people.next_forget(time.monotonic())
        if record is not None:
            self._ask('forget', self._forget, ForgetPerson.Request(
                query_type=ForgetPerson.Request.QUERY_EMBEDDING,
                embedding=list(record.embedding)),
                lambda future: self._on_forget(future, record))

    def _ask(self, what: str, client, request, on_answer) -> None:
        """Call client, dropping the previous call of the same kind if still unanswered."""
        if self._pending[what] is not None:   # never answered: the history went away
            client.remove_pending_request(self._pending[what])
        future = self._pending[what] = client.call_async(request)
        future.add_done_callback(on_answer)

    def _on_span(self, future: Future) -> None:
        self._pending['span'] = None
        response = future.result()
        self.probe.answered(
            response is not None and response.result != FleetCode.ERROR,
            None if response is None else (time_to_ns(response.searched_from),
                                           time_to_ns(response.searched_to)))

    def _on_max_age(self, future: Future) -> None:
        """Warn while the history keeps faces longer than withdrawn faces are kept here."""
        self._pending['max_age'] = None
        response = future.result()
        values = [] if response is None else response.values
        if len(values) != 1 or values[0].type != ParameterType.PARAMETER_DOUBLE:
            return   # not a facetrack frame_history: nothing to compare
        max_age = values[0].double_value
        warning = SHORT_FACE_AGE.format(self._face_age_s, max_age) \
            if max_age > self._face_age_s else ''
        if warning and warning != self.face_age_warning:
            self._node.get_logger().warning(warning)
        self.face_age_warning = warning

    def _on_forget(self, future: Future, record: PersonRecord) -> None:
        """Take the history's answer to a forget; ask the next one (or this one later)."""
        self._pending['forget'] = None
        response = future.result()
        codes, log = ForgetPerson.Response, self._node.get_logger()
        result = None if response is None else response.result
        # A request the history calls invalid will not become valid when asked again.
        done = result in (codes.RESULT_OK, codes.RESULT_NOT_FOUND, codes.RESULT_INVALID_REQUEST)
        # How much, never whose (an OK message names the ids): the log must not keep them.
        face = f'a face withdrawn by {record.robot_id}'
        if result == codes.RESULT_OK:
            log.info(f'forgot {face}: {response.faces_removed} faces, '
                     f'{response.frames_blurred} frames pixelated')
        elif result == codes.RESULT_NOT_FOUND:
            log.info(f'{face}: nothing of it stored here')
        elif result == codes.RESULT_INVALID_REQUEST:
            log.error(f'forget_person refused {face}: {response.message}')
        else:
            why = 'no answer' if response is None else response.message
            log.warning(f'forget_person failed for {face} ({why}); asked again in '
                        f'{FORGET_RETRY_S:g} s')
        self._people.forget_answered(record, done, time.monotonic())
        self.forget_next()
