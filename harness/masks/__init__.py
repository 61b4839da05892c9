"""Pseudo masks: the papers' "Mask" column.

The CAMs of a run (or any reference-format CAM folder) become per-pixel pseudo masks by the
family's reference pipeline, as the WSSS papers make the labels their segmentation model
trains on:

- `crf`: dense CRF over the thresholded CAMs (the SemPLeS release, `evaluation.py --out-crf`);
- `irn`: IRN (Ahn et al. 2019) — confident IR labels by dense CRF, a boundary (and
  displacement) network trained on them, a random walk over the boundary affinity (the
  CLIMS / QA-CLIMS pipeline, jiwoon-ahn/irn).

Modules: `crf` (the binding and its two parameter sets), `irlabel` (confident fg/bg labels),
`path_index` and `random_walk` (IRN's affinity graph and propagation), `irn_net` (the
network), `irn_train` (its training stage), `settings` (what a pipeline reads), `pngio`
(palette PNGs in the VOC layout), `score` (mask mIoU through harness.evaluate), `stage`
(the content-addressed stages).
"""
