"""ParseConfig: every threshold of the PAF parser, with the paper's / OpenPose's defaults."""
from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, fields

import numpy as np

SUBPIXEL_MODES = ("gaussian", "quadratic", "none")
MATCHING_MODES = ("greedy", "hungarian")


@dataclass(frozen=True)
class ParseConfig:
    """Parser settings (frozen; ``to_dict``/``from_dict`` round-trip through JSON).

    Part candidates
      peak_threshold:  a heatmap peak must exceed this confidence (OpenPose ``thre1`` = 0.1).
      smooth_sigma:    Gaussian smoothing of the heatmaps before peak finding, in map cells;
                       0 = off. (OpenPose's Python demo smooths with sigma 3 image pixels after
                       upsampling to image size, about 0.4 cells at stride 8.)
      upsample:        1 = peaks at map resolution. f > 1: each map peak is moved to the highest
                       point, within one map cell, of the heatmap upsampled by f with bicubic
                       interpolation (OpenPose upsamples whole maps by the stride, 8; here only
                       the 3 x 3 cells around each peak are, which is all its position needs).
      subpixel:        refinement of each peak (on the map, or on the fine grid when upsampling),
                       per axis: "gaussian" (parabola through the log of the three values around
                       it, exact for a Gaussian bump), "quadratic" (parabola through the values)
                       or "none" (cell centre).
      max_peaks:       keep at most this many peaks per part, highest first (OpenPose: 127), which
                       bounds the limb-pair work on noisy maps.
    Limb scoring
      paf_samples:     points sampled on each candidate limb for the PAF line integral (paper: 10).
      paf_threshold:   a sample counts as supporting the limb if its PAF projection exceeds this
                       (OpenPose ``thre2`` = 0.05).
      min_support:     a candidate limb needs more than this fraction of supporting samples (0.8).
      distance_prior:  OpenPose's length prior: score = mean projection
                       + min(distance_prior * image_height_px / limb_length_px - 1, 0);
                       0 switches the prior off. Candidates also need score > 0.
    Matching and assembly
      matching:        "greedy" (OpenPose: by descending score, each part used once per limb) or
                       "hungarian" (maximum-weight bipartite matching per limb).
      redundant_limbs: also use the two ear-shoulder limbs (last two of ``skeleton.LIMBS``) to
                       attach/merge partial skeletons; they never start a new person.
      min_parts:       drop people with fewer parts (OpenPose's Python demo: 4).
      min_mean_score:  drop people whose (sum of part scores + limb scores) / parts is below this
                       (OpenPose: 0.4).
      max_people:      keep at most this many people (highest score first).
    """

    peak_threshold: float = 0.1
    smooth_sigma: float = 0.0
    upsample: int = 1
    subpixel: str = "gaussian"
    max_peaks: int = 128
    paf_samples: int = 10
    paf_threshold: float = 0.05
    min_support: float = 0.8
    distance_prior: float = 0.5
    matching: str = "greedy"
    redundant_limbs: bool = True
    min_parts: int = 4
    min_mean_score: float = 0.4
    max_people: int = 100

    def __post_init__(self) -> None:
        def bad(name: str, why: str) -> ValueError:
            return ValueError(f"ParseConfig.{name}={getattr(self, name)!r}: {why}")

        for name in ("peak_threshold", "smooth_sigma", "paf_threshold", "min_support",
                     "distance_prior", "min_mean_score"):
            v = getattr(self, name)
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real) or not math.isfinite(v):
                raise bad(name, "must be a finite number")
            object.__setattr__(self, name, float(v))  # plain Python numbers: to_dict stays JSON-able
        for name in ("upsample", "max_peaks", "paf_samples", "min_parts", "max_people"):
            v = getattr(self, name)
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral):
                raise bad(name, "must be an integer")
            object.__setattr__(self, name, int(v))
        if self.peak_threshold < 0:
            raise bad("peak_threshold", "must be >= 0 (keypoint scores are peak values above it)")
        if self.smooth_sigma < 0:
            raise bad("smooth_sigma", "must be >= 0 (0 = no smoothing)")
        if not 1 <= self.upsample <= 16:
            raise bad("upsample", "must be between 1 (map resolution) and 16")
        if self.max_peaks < 1:
            raise bad("max_peaks", "must be >= 1")
        if self.paf_samples < 2:
            raise bad("paf_samples", "must be >= 2")
        if not 0 <= self.min_support < 1:
            raise bad("min_support", "must be in [0, 1)")
        if self.distance_prior < 0:
            raise bad("distance_prior", "must be >= 0 (0 = no length prior)")
        if self.min_parts < 2:
            raise bad("min_parts", "must be >= 2 (a person has at least one limb)")
        if self.max_people < 1:
            raise bad("max_people", "must be >= 1")
        if self.subpixel not in SUBPIXEL_MODES:
            raise bad("subpixel", f"must be one of {SUBPIXEL_MODES}")
        if self.matching not in MATCHING_MODES:
            raise bad("matching", f"must be one of {MATCHING_MODES}")
        if not isinstance(self.redundant_limbs, bool):
            raise bad("redundant_limbs", "must be true or false")

    def to_dict(self) -> dict:
        """All settings as a JSON-able dict (recorded with every run)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ParseConfig":
        """Build from a dict such as ``to_dict()`` wrote; unknown keys or bad values -> ValueError."""
        if not isinstance(d, dict):
            raise ValueError(f"ParseConfig.from_dict needs a dict, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown ParseConfig keys {unknown}; valid keys are {sorted(known)}")
        return cls(**d)
