import pytest

from tfslm.errors import DataError
from tfslm.data.labels import LabelSpace, canonical_label, natural_key


def test_canonical_label():
    assert canonical_label(40.0) == "40"
    assert canonical_label("40.0") == "40"
    assert canonical_label(" pos ") == "pos"
    assert canonical_label(float("nan")) is None and canonical_label("") is None and canonical_label(None) is None
    assert canonical_label(7) == "7" and canonical_label(2.5) == "2.5"


def test_string_labels_sort_naturally():
    space = LabelSpace.infer(["class10", "class2", "class1", "class2"])
    assert space.names == ("class1", "class2", "class10")
    assert space.kind == "categorical" and not space.ordered
    assert sorted(["b10", "b9", "a"], key=natural_key) == ["a", "b9", "b10"]


def test_numeric_scores_sort_by_value_and_are_ordered():
    space = LabelSpace.infer([1000, 40, 0, 520, "80", 40.0])
    assert space.names == ("0", "40", "80", "520", "1000")
    assert space.kind == "numeric" and space.ordered
    assert space.values == [0.0, 40.0, 80.0, 520.0, 1000.0]


def test_declared_order_is_kept():
    space = LabelSpace.infer(["neg", "pos"], declared=["pos", "neutral", "neg"])
    assert space.names == ("pos", "neutral", "neg")
    assert space.encode(["neg", "pos"]) == [2, 0]
    assert space.id2label == {0: "pos", 1: "neutral", 2: "neg"} and space.label2id["neg"] == 2


def test_unknown_label_names_it_and_its_rows():
    space = LabelSpace.infer(["a", "b"])
    with pytest.raises(DataError) as info:
        space.encode(["a", "zzz", "b", "zzz"], where="val.csv", rows=[10, 11, 12, 13])
    message = str(info.value)
    assert "val.csv" in message and "'zzz'" in message and "11, 13" in message and "data.labels" in message


def test_numeric_label_type_rejects_words():
    with pytest.raises(DataError, match="not numbers"):
        LabelSpace.infer(["1", "two"], label_type="numeric")


def test_class_label_and_roundtrip(tmp_path):
    space = LabelSpace.infer(["x", "y", "z"], ordered=True)
    assert space.class_label().names == ["x", "y", "z"]
    space.save(tmp_path / "labels.json")
    assert LabelSpace.load(tmp_path / "labels.json") == space


def test_needs_two_labels():
    with pytest.raises(DataError, match="at least 2"):
        LabelSpace.infer(["only", "only"])
