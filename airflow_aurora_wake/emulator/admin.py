"""The admin routes under ``/_emulator/`` on the AWS endpoint: JSON in and out, for tests and scripts."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from airflow_aurora_wake.emulator.config import ClusterSpec
from airflow_aurora_wake.emulator.wire import Response, json_response, read_body

if TYPE_CHECKING:
    from airflow_aurora_wake.emulator.emulator import AuroraEmulator


class AdminRoutes:
    """Answers ``/_emulator/...`` requests through the emulator's public methods.

    :param emulator: the emulator to observe and change.
    """

    def __init__(self, emulator: AuroraEmulator) -> None:
        self.emulator = emulator

    def __call__(self, environ: dict[str, Any], path: str) -> Response:
        emulator = self.emulator
        method = environ.get("REQUEST_METHOD", "GET")
        parts = [part for part in path.split("/") if part][1:]
        try:
            payload = _json_body(environ) if method == "POST" else {}
            if method == "GET" and parts in ([], ["state"]):
                return json_response(emulator.state())
            if method == "GET" and parts == ["health"]:
                return json_response({"ok": True})
            if method == "GET" and parts == ["counters"]:
                return json_response(emulator.counters())
            if parts == ["faults"]:
                if method == "POST":
                    emulator.set_faults(emulator.faults.merged(payload))
                return json_response(emulator.faults.as_dict())
            if method == "POST" and parts == ["clusters"]:
                endpoint = emulator.add_cluster(ClusterSpec.from_mapping(payload))
                return json_response(endpoint.as_dict(), 201)
            if len(parts) >= 2 and parts[0] == "clusters":
                return self._cluster(method, parts[1], parts[2:], payload) or _no_route(method, path)
            if len(parts) >= 2 and parts[0] == "instances":
                return self._reader(method, parts[1], parts[2:], payload) or _no_route(method, path)
            return _no_route(method, path)
        except (ValueError, TypeError) as exc:
            return json_response({"error": str(exc)}, 400)

    def _cluster(
        self, method: str, identifier: str, verbs: list[str], payload: dict[str, Any]
    ) -> Response | None:
        emulator = self.emulator
        try:
            identifier = emulator.cluster(identifier).identifier
        except KeyError:
            return json_response({"error": f"no emulated cluster {identifier!r}"}, 404)
        if method == "POST" and len(verbs) == 1:
            verb = verbs[0]
            if verb == "pause":
                emulator.pause(identifier, paused_for=float(payload.get("paused_for", 0.0)))
            elif verb == "wake":
                emulator.wake(identifier)
            elif verb == "stop":
                emulator.stop_cluster(identifier)
            elif verb == "delete":
                emulator.delete(identifier)
            elif verb == "timings":
                emulator.set_timings(identifier, emulator.timings_of(identifier).merged(payload))
            elif verb == "rotate-master-password":
                return json_response(emulator.rotate_master_password(identifier, **payload))
            elif verb == "resume-answers":
                unknown = sorted(set(payload) - {"resume_answer", "data_api_resume_answer"})
                if unknown:
                    raise ValueError(f"unknown field(s) {unknown}: use resume_answer, data_api_resume_answer")
                emulator.set_resume_answers(identifier, **payload)
            else:
                return json_response({"error": f"unknown cluster action {verb!r}"}, 404)
        elif method == "GET" and verbs == ["master-user-secret"]:
            return json_response(emulator.master_user_secret_state(identifier))
        elif method != "GET" or verbs:
            return None
        return json_response(emulator.state()["clusters"][identifier])

    def _reader(
        self, method: str, instance: str, verbs: list[str], payload: dict[str, Any]
    ) -> Response | None:
        """``GET /_emulator/instances/<id>``; ``POST .../pause`` (``paused_for``) and ``.../wake``."""
        emulator = self.emulator
        try:
            reader = emulator.reader_state(instance)
        except KeyError:
            return json_response({"error": f"no emulated reader {instance!r}"}, 404)
        if method == "GET" and not verbs:
            return json_response(reader)
        if method == "POST" and verbs == ["pause"]:
            emulator.pause_instance(instance, paused_for=float(payload.get("paused_for", 0.0)))
        elif method == "POST" and verbs == ["wake"]:
            emulator.wake_instance(instance)
        else:
            return None
        return json_response(emulator.reader_state(instance))


def _no_route(method: str, path: str) -> Response:
    return json_response({"error": f"no admin route {method} {path}"}, 404)


def _json_body(environ: dict[str, Any]) -> dict[str, Any]:
    raw = read_body(environ)
    if not raw.strip():
        return {}
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise ValueError("the request body must be a JSON object")
    return data
