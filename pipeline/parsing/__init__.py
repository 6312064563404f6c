"""From PAF network output to people (pure numpy/scipy; no torch).

    cands = find_candidates(fields, config)   # peaks + scored candidate limbs (compact hand-off)
    poses = assemble(cands, config)           # matching + assembly -> Poses
    poses = parse(fields, config)             # both steps
    fields = render_fields(skeletons, (W, H)) # ground-truth maps from known skeletons
"""
from pipeline.parsing.assembly import assemble, parse
from pipeline.parsing.candidates import LimbCandidates, find_candidates
from pipeline.parsing.config import ParseConfig
from pipeline.parsing.ground_truth import render_fields

__all__ = ["ParseConfig", "LimbCandidates", "parse", "find_candidates", "assemble", "render_fields"]
