"""Emergency hover and disarm answer at once whatever is pending (the fake drone never acknowledges
take-off or landing, `flight_ack_timeout` 2 s).

1 s into a take-off's or a landing's wait, while flying, the operator presses emergency hover or disarm;
then with take-off and landing each pressed twice (four requests that would all wait: before, they held
every executor thread and the hover answered only when the first take-off timed out, ~1.1 s later).
The answer must come within 0.2 s, a zero PCMD reach the drone at once and the PCMDs stop; a repeated
take-off / landing is answered at once, the others "not acknowledged" after their timeout.
"""

from __future__ import annotations

import pytest
from olympe_helpers import run_in_netns

ANSWER_S = 0.2  # the requirement; measured here a few ms (figures with pytest -s)
REACH_S = 0.25  # zero PCMD at the drone: Olympe's 25 ms tick, DDS, under load
STOPPED_S = 0.5  # stop_piloting runs on the drone thread right after (Olympe sleeps 0.1 s in it)


@pytest.fixture(scope="module")
def pending(olympe_venv, tmp_path_factory) -> dict:
    res = run_in_netns(["pending"], tmp_path_factory.mktemp("pending"), timeout=300)
    print(f"pending: {res}")
    return res


def cases(res: dict, action: str) -> list[dict]:
    got = [c for c in res["cases"] if c["action"] == action]
    assert len(got) == 3, res
    return got


@pytest.mark.parametrize(
    ("action", "answer"),
    [("emergency_hover", [True, "hovering, piloting disarmed"]), ("disarm", [True, "disarmed"])],
)
def test_answers_at_once_whatever_is_pending(pending, action, answer):
    for c in cases(pending, action):
        # the drone was being steered just before (any moving PCMD: their rate drops on a loaded machine)
        assert c["arm"] == [True, "armed"] and c["moving_before"] > 0, c
        assert c["answer"] == answer, c
        assert c["answer_s"] is not None and c["answer_s"] < ANSWER_S, (c["pending"], c["answer_s"])
        assert c["zero_reached_s"] is not None and c["zero_reached_s"] < REACH_S, c
        assert c["moving_after_s"] == [], c
        assert c["last_pcmd_s"] < STOPPED_S, f"piloting must stop after {action}: {c}"


def test_pending_commands_get_their_own_answers(pending):
    for c in pending["cases"]:
        names = c["pending"].split(",")
        assert c["drone_got"] == {"TakeOff": int("takeoff" in names), "Landing": int("land" in names)}, c
        first = {}
        for name, ok, message, took in c["commands"]:
            word = {"takeoff": "TakeOff", "land": "Landing"}[name]
            assert ok is False, c
            if name not in first:
                first[name] = took
                assert message.startswith(f"{word} not acknowledged within 2 s"), message
                assert took >= 2.0, took
            else:  # pressed again while the first waits: answered at once, not sent twice
                assert message.startswith(f"{word} already sent, still waiting"), message
                assert took < 1.0, took
