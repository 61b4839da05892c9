"""CLIP-ES ("CLIP is Also an Efficient Segmenter", Lin et al., CVPR 2023; linyq2117/CLIP-ES): a
training-free family, written only against the public plugin path as another package would
be (docs/architecture.md): `paper.py` (the entry point `wsss_bench.methods: clip-es`, torch-free:
settings, variants, rows, published values), `cams.py` (Grad-CAM and CAA on tensors) and
`method.py` (the family: a CamModel over the run's frozen CLIP)."""
