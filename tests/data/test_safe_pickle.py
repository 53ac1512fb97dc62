import os
import pickle

import numpy as np
import pytest

from curator.data.problems import DataError
from curator.data.safe_pickle import load_pickle, loads_restricted


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_numpy_arrays_and_containers_round_trip(tmp_path):
    obj = {"data": np.arange(12, dtype=np.uint8).reshape(3, 4), "labels": [1, 2, 3], b"k": (1.5, "x", None, True)}
    for proto in (2, 4, 5):
        path = tmp_path / f"p{proto}.pkl"
        path.write_bytes(pickle.dumps(obj, protocol=proto))
        out = load_pickle(path)
        np.testing.assert_array_equal(out["data"], obj["data"])
        assert out["labels"] == [1, 2, 3] and out[b"k"] == (1.5, "x", None, True)


def test_crafted_reduce_calling_os_system_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({"data": _Evil(str(marker))}, protocol=2))
    with pytest.raises(DataError) as err:
        load_pickle(path)
    msg = str(err.value)
    assert "data_batch_1" in msg and "system" in msg and "refused" in msg
    assert not marker.exists()


@pytest.mark.parametrize("payload", [b"cos\nremove\n(S'x'\ntR.", b"csubprocess\nPopen\n(S'ls'\ntR.",
                                     b"cbuiltins\neval\n(S'1'\ntR.", b"cbuiltins\ngetattr\n."])
def test_other_globals_are_refused(payload):
    with pytest.raises(DataError, match="refused"):
        loads_restricted(payload, source="f.pkl")


def test_garbage_is_a_data_error(tmp_path):
    path = tmp_path / "junk"
    path.write_bytes(b"not a pickle at all")
    with pytest.raises(DataError, match="junk"):
        load_pickle(path)
    with pytest.raises(DataError, match="missing"):
        load_pickle(tmp_path / "nope")
