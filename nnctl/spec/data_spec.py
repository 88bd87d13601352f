"""The `data:` section of a spec: where the examples come from and how they are split and scaled."""

from __future__ import annotations

from typing import Literal, Optional, Union

from pydantic import Field, PositiveInt, field_validator, model_validator

from nnctl.augment import AugmentRef
from nnctl.data.sources import DATA_SOURCES, check_owned_keys, check_source, source_kind
from nnctl.objectives.specs import CorruptionRef
from nnctl.registry import Strict


class DataSpec(Strict):
    """Where the examples come from and how they are split and scaled."""

    source: str = Field(
        ...,
        description="builtin:<name> | inline | csv | npz | images | parquet | hf | shards (written by nnctl data "
        "convert, read from disk as training needs it) | none (no data: inspect)",
    )
    x: Optional[Union[list, str]] = Field(
        None,
        description="inline: feature rows; npz: name of the input array; images (CSV list): image-path column; "
        "hf: input column(s)",
    )
    y: Optional[Union[list, str]] = Field(
        None, description="inline: targets; npz: name of the target array; hf: label column"
    )
    path: Optional[str] = Field(
        None,
        description="csv/npz/parquet: file path; images: a folder with one sub-folder per class, or a CSV listing "
        "image paths and labels; hf: a save_to_disk folder, an image folder or a csv/parquet/json file; "
        "shards: the folder nnctl data convert wrote (relative to the spec file)",
    )
    target: Optional[Union[str, list[str]]] = Field(
        None, description="csv/parquet: target column name(s); images (CSV list): label column"
    )
    features: Optional[list[str]] = Field(
        None, description="csv/parquet: feature columns (default: all but the target)"
    )
    delimiter: Optional[str] = Field(
        None,
        min_length=1,
        max_length=1,
        description="csv: field separator (default: detected from the header row among , ; tab |)",
    )
    categorical: list[str] = Field(
        default_factory=list,
        description="csv/parquet: text feature columns to one-hot encode (one input per distinct value, sorted)",
    )
    exclude: list[str] = Field(
        default_factory=list, description="csv: columns to leave out of the features (IDs, dates, free text)"
    )
    encoding: Optional[str] = Field(
        None,
        description="csv: text encoding (default: UTF-8 with or without a BOM, UTF-16 with a BOM, else Windows-1252)",
    )
    decimal: Literal[".", ","] = Field(".", description="csv: decimal mark (',' for 1,5)")
    thousands: Optional[Literal[",", ".", " ", "'"]] = Field(
        None, description="csv: thousands separator inside numbers (1,234 or 1.234.567)"
    )
    na_values: list[str] = Field(
        default_factory=list,
        description="csv: extra cell texts meaning a missing value (always: empty, NA, N/A, NaN, null, none, ?, #N/A)",
    )
    missing: Literal["error", "drop", "mean"] = Field(
        "error",
        description="missing feature values (empty, NA, NaN, ?, null): error; drop the rows; or fill "
        "with the training split's column mean (saved with the run). Rows without a target "
        "are dropped under drop and mean",
    )
    test: Optional[dict[str, str]] = Field(
        None, description="a fixed test split: npz: {x: name, y: name} (arrays); hf: {split: name}"
    )
    hf_split: Optional[str] = Field(None, description="hf: the dataset split to train on (default train)")
    task: Optional[Literal["classification", "binary", "regression", "autoencoder"]] = Field(
        None, description="inferred from the labels when omitted"
    )
    split: Optional[Literal["random", "stratified", "sequential"]] = Field(
        None,
        description="how examples are drawn into the test and validation splits: random; stratified (class "
        "proportions kept); sequential (the last test_split of the rows are the test split, the validation rows "
        "come just before them: for time-ordered data). Default: stratified for classes when data.stratify, "
        "else random (in file order with shuffle: false)",
    )
    group_by: Optional[str] = Field(
        None, description="csv: a column naming each row's group (a patient, a user): a group stays on one side"
    )
    validation_split: float = Field(0.0, ge=0.0, lt=1.0)
    test_split: float = Field(0.0, ge=0.0, lt=1.0)
    shuffle: bool = Field(True, description="shuffle the training examples every epoch")
    stratify: bool = Field(
        True, description="classification: keep the class proportions in the validation and test splits"
    )
    normalize: Literal["none", "minmax", "standard", "global_minmax", "global_standard"] = Field(
        "none",
        description="feature scaling, fitted on the training split only: minmax/standard per feature; "
        "global_minmax/global_standard one statistic over all features (images: pixels "
        "to [0, 1] like x / 255)",
    )
    normalize_target: Literal["none", "minmax", "standard"] = Field(
        "none", description="regression: scale targets (undone for predictions)"
    )
    n_samples: Optional[int] = Field(None, gt=0, le=10**8, description="builtin generators: number of examples")
    noise: Optional[float] = Field(None, ge=0, description="builtin generators: noise level")
    corruption: Optional[CorruptionRef] = Field(
        None,
        description="denoising autoencoder: noise applied to the "
        "training input only (the target stays clean), fresh each step",
    )
    augment: list[AugmentRef] = Field(default_factory=list, description="training-time transforms, on device")
    image_size: Optional[tuple[PositiveInt, PositiveInt]] = Field(
        None, description="images: [height, width] every image is resized to (needed when sizes differ)"
    )
    color_mode: Optional[Literal["rgb", "grayscale"]] = Field(
        None, description="images: decode to 3 channels (rgb, the default) or 1 (grayscale); others are converted"
    )
    resize: Optional[Literal["stretch", "crop", "pad"]] = Field(
        None,
        description="images, with image_size: stretch to the size (default), crop the centre to its aspect "
        "ratio first, or pad (letterbox, zeros) to it",
    )
    on_bad_file: Optional[Literal["error", "skip"]] = Field(
        None, description="images: an unreadable file is an error naming it (default), or skipped and counted"
    )

    @field_validator("source")
    @classmethod
    def _source(cls, v: str) -> str:
        return check_source(v)  # a registered source (builtin:<name>, inline, csv, npz, ...), else the choices

    @model_validator(mode="after")
    def _needs(self) -> DataSpec:
        source = DATA_SOURCES.get(source_kind(self.source))
        source.check(self)  # the fields that source needs and allows
        check_owned_keys(self, source)  # keys only some sources use (image_size, split, ...)
        if self.validation_split + self.test_split >= 1.0:
            raise ValueError("validation_split + test_split must leave some training data (sum < 1)")
        return self
