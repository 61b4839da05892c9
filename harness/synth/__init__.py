"""`synth`, the embedded benchmark: scenes with co-occurring contexts, and the tiny CLIP
teacher trained on them, so every method runs end to end with nothing downloaded.

`data` (the spec, classes, contexts and scenes) and `draw` (the shapes and textures) make
the images, `dataset` serves them as a `SegDataset`, `teacher` trains and caches the teacher,
`gates` decides whether a teacher may be used.

What it guarantees:

- **The same images everywhere.** A `SynthSpec`, a split and an index give the same image,
  mask, context map and scene on every machine and in every process: each image draws
  from its own numpy stream seeded by (spec seed, split id, index), never from a run's seed
  or any global state. Cached arrays are keyed by the spec's fingerprint, which
  `GENERATOR_VERSION` enters once bumped past 1 (bump it whenever the drawing code changes
  what an image looks like).
- **The confound the methods exist to remove.** Each class sits on its context (boat on
  water, train on railway, ...) with probability `p_cooccur`; masks label objects only, the
  context is background, and a context map says where each context is, so `context_fp`
  measures how much a CAM lights the co-occurring context.
- **Disjoint splits.** train, eval, heldout (where `--threshold-split heldout` picks t) and
  the teacher's own splits draw from separate streams; the teacher never sees a train or
  eval image.
- **A teacher that behaves like CLIP where it matters, or none.** The teacher is cached by
  the spec and its recipe, and serves a run only if it passes gates fixed in advance
  (`gates`): zero-shot ≥ 90 % on objects, contexts, dimmed and partly cut objects; every
  blank image closer to "a photo of nothing." than to any class; and, on held-out pairs, the
  ground-truth mask beating the mask plus its co-occurring context under the methods' own
  losses (L_refine enforced). A teacher that fails refuses, in one line, to serve a run.
"""
