"""tuning/pgo.py's refusals, before anything is built (the recording itself runs on a real program
in tests/integration/test_end_to_end.py)."""

from types import SimpleNamespace

import pytest

from autopass_cc.tuning.pgo import NotRecorded, record, user_profile_option


@pytest.mark.parametrize("opt", ["-fprofile-instr-use=old.profdata", "-fprofile-use", "-fprofile-sample-use=x.prof",
                                 "-fprofile-instr-generate", "--coverage", "-fsanitize=address"])
def test_a_build_with_its_own_profile_or_instrumentation_is_left_alone(opt):
    tus = [SimpleNamespace(tu_id="a", rel="a.c", args=["-O3", "-c", "a.c"]),
           SimpleNamespace(tu_id="b", rel="src/b.c", args=["-O3", opt, "-c", "src/b.c"])]
    program = SimpleNamespace(tus=tus, link_config=lambda *a, **k: pytest.fail("nothing may be built"))
    with pytest.raises(NotRecorded, match=f"src/b.c is already compiled with {opt}"):
        record(program, ["a", "b"], run=None, check=None, workdir="/nonexistent")


def test_options_that_only_look_alike_are_not_taken_for_profiles():
    assert user_profile_option(["-O3", "-fprofile", "-fno-profile-arcs-x", "-c", "a.c"]) is None
    assert user_profile_option(["-fprofile-instr-use=p"]) == "-fprofile-instr-use=p"
