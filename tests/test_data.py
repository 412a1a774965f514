import json

import numpy as np
import pandas as pd
import pytest

from conftest import make_rows, needs_essays, ESSAYS, write_csv
from tfslm.config import DataConfig
from tfslm.data.loading import load_data
from tfslm.data.cleaning import clean_text
from tfslm.data.readers import read_table
from tfslm.data.splits import stratified_split
from tfslm.errors import DataError


def test_clean_text_joins_list_encoded_paragraphs():
    assert clean_text("['First one.', 'Second, with \"quotes\".']") == 'First one.\n\nSecond, with "quotes".'
    assert clean_text('["a", "b"]') == "a\n\nb"
    assert clean_text("[not a list") == "[not a list"
    assert clean_text("[1, 2]") == "[1, 2]"
    assert clean_text(["x ", " ", "y"]) == "x\n\ny"
    assert clean_text("  padded  ") == "padded"


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".json", ".jsonl", ".parquet"])
def test_reads_every_format(tmp_path, suffix):
    rows = make_rows(30)
    frame = pd.DataFrame(rows)
    path = tmp_path / f"t{suffix}"
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    elif suffix == ".tsv":
        frame.to_csv(path, index=False, sep="\t")
    elif suffix == ".json":
        path.write_text(json.dumps(rows))
    elif suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True)
    else:
        frame.to_parquet(path)
    data = load_data(DataConfig(train_file=str(path)), seed=0)
    assert data["train"].num_rows + data["validation"].num_rows == 30
    assert data.labels.names == ("food", "science", "sports")
    assert data["train"].features["label"].names == ["food", "science", "sports"]


def test_csv_cells_stay_text(tmp_path):
    path = write_csv(tmp_path / "t.csv", [{"text": "007", "label": "NA"}, {"text": "1e5", "label": "x"}])
    ds = read_table(path)
    assert ds["text"] == ["007", "1e5"] and ds["label"] == ["NA", "x"]


def test_validation_split_is_stratified_and_seeded(tmp_path):
    path = write_csv(tmp_path / "t.csv", make_rows(90))
    a = load_data(DataConfig(train_file=str(path), validation_split=0.2), seed=7)
    b = load_data(DataConfig(train_file=str(path), validation_split=0.2), seed=7)
    c = load_data(DataConfig(train_file=str(path), validation_split=0.2), seed=8)
    assert a["validation"]["text"] == b["validation"]["text"] != c["validation"]["text"]
    assert np.bincount(a["validation"]["label"]).tolist() == [6, 6, 6]
    assert set(a["train"]["text"]).isdisjoint(a["validation"]["text"])


def test_stratified_split_keeps_singletons_in_train():
    train, val = stratified_split([0, 0, 0, 0, 1], 0.5, seed=0)
    assert 4 in train and len(val) == 2


def test_bad_rows_error_names_file_rows_and_fix(tmp_path):
    rows = make_rows(20)
    rows[2]["text"] = "  "
    rows[5]["label"] = ""
    rows[9]["text"] = ""
    path = write_csv(tmp_path / "t.csv", rows)
    with pytest.raises(DataError) as info:
        load_data(DataConfig(train_file=str(path)))
    message = str(info.value)
    assert str(path) in message and "rows 3, 10" in message and "row 6" not in message and "(rows 6)" in message
    assert "data.on_bad_rows: skip" in message


def test_bad_rows_can_be_skipped(tmp_path):
    rows = make_rows(30)
    rows[0]["text"] = ""
    rows[1]["label"] = ""
    path = write_csv(tmp_path / "t.csv", rows)
    data = load_data(DataConfig(train_file=str(path), on_bad_rows="skip"))
    assert data.skipped == {"train": 2}
    assert data["train"].num_rows + data["validation"].num_rows == 28
    assert data.summary()["skipped_rows"] == {"train": 2}


def test_unknown_label_in_validation_file(tmp_path):
    train = write_csv(tmp_path / "train.csv", make_rows(30))
    val_rows = make_rows(6)
    val_rows[4]["label"] = "politics"
    val = write_csv(tmp_path / "val.csv", val_rows)
    with pytest.raises(DataError, match=r"val.csv: unknown label 'politics': 'politics' in rows 5"):
        load_data(DataConfig(train_file=str(train), validation_file=str(val)))


def test_label_outside_declared_set(tmp_path):
    path = write_csv(tmp_path / "t.csv", make_rows(30))
    with pytest.raises(DataError, match="unknown label 'sports'"):
        load_data(DataConfig(train_file=str(path), labels=["food", "science"]))


def test_non_numeric_score(tmp_path):
    rows = [{"text": f"text {i}", "label": str(40 * (i % 3))} for i in range(12)]
    rows[7]["label"] = "forty"
    path = write_csv(tmp_path / "t.csv", rows)
    with pytest.raises(DataError, match=r"non-numeric score 'forty' in column 'label' \(rows 8\)"):
        load_data(DataConfig(train_file=str(path), label_type="numeric"))


def test_numeric_scores_in_numeric_order(tmp_path):
    rows = [{"text": f"text {i}", "label": str(v)} for i, v in enumerate([1000, 40, 520, 0, 80, 40.0] * 4)]
    data = load_data(DataConfig(train_file=str(write_csv(tmp_path / "t.csv", rows))))
    assert data.labels.names == ("0", "40", "80", "520", "1000") and data.labels.ordered


@pytest.mark.parametrize(
    "setup, fragment",
    [
        (lambda p: None, "file not found"),
        (lambda p: p.write_bytes(b""), "file is empty"),
        (lambda p: p.write_text("text,label\n"), "has no data rows"),
        (lambda p: p.write_bytes("text,label\ncaf\xe9 ok,a\n".encode("latin-1")), "not valid utf-8 text (byte 0xe9 on line 2, offset 14)"),
        (lambda p: p.write_text("body,label\nhello,a\n"), "no column 'text'; columns are ['body', 'label']"),
    ],
)
def test_unreadable_files(tmp_path, setup, fragment):
    path = tmp_path / "t.csv"
    setup(path)
    with pytest.raises(DataError) as info:
        load_data(DataConfig(train_file=str(path)))
    assert fragment in str(info.value) and str(path) in str(info.value)


def test_latin1_file_reads_with_encoding(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes(("text,label\n" + "".join(f"café número {i},{'ab'[i % 2]}\n" for i in range(10))).encode("latin-1"))
    data = load_data(DataConfig(train_file=str(path), encoding="latin-1"))
    assert any("café" in t for t in data["train"]["text"])


def test_unsupported_suffix(tmp_path):
    path = tmp_path / "t.xlsx"
    path.write_text("x")
    with pytest.raises(DataError, match="unsupported file type '.xlsx'"):
        read_table(path)


@needs_essays
def test_shared_essays_paragraphs_and_scores():
    data = load_data(DataConfig(train_file=str(ESSAYS), text_column="essay", label_column="score"), seed=0)
    assert data["train"].num_rows + data["validation"].num_rows == 686
    assert data.labels.kind == "numeric" and data.labels.names[0] == "0"
    text = data["train"][0]["text"]
    assert "\n\n" in text and not text.startswith("[")


@pytest.mark.parametrize("content, fragment", [
    ("text;label\nhello;pos\n", "the header line is semicolon-separated, not comma-separated: save it comma-separated"),
    ("text\tlabel\nhello\tpos\n", "the header line is tab-separated, not comma-separated: rename it .tsv"),
    ("text,label\nhello,pos\n\"a,b\",neg,extra\n", "Expected 2 fields in line 3, saw 3"),
])
def test_a_csv_that_does_not_parse_is_one_line_naming_the_line_or_the_delimiter(tmp_path, capfd, content, fragment):
    from tfslm.data.readers import read_table

    path = tmp_path / "data.csv"
    path.write_text(content)
    with pytest.raises(DataError) as info:
        read_table(path, columns=["text", "label"], what="--input")
    assert str(path) in str(info.value) and fragment in str(info.value)
    assert "set data.text_column" not in str(info.value)  # not a key predict can change
    captured = capfd.readouterr()
    assert "Failed to read" not in captured.err + captured.out  # no library lines besides tfslm's error


def test_register_format_reads_a_new_suffix(tmp_path):
    from tfslm.data.readers import SUPPORTED_FORMATS, register_format, read_table

    path = tmp_path / "data.psv"
    path.write_text("text|label\nhello|pos\nbye|neg\n")
    try:
        register_format(".psv", "csv", sep="|")
        assert read_table(path, columns=["text", "label"])["label"] == ["pos", "neg"]
    finally:
        SUPPORTED_FORMATS.pop(".psv", None)
