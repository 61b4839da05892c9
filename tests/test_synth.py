"""The synth benchmark: deterministic, co-occurring, labels consistent with masks."""

import numpy as np

from harness.synth.data import CLASSES, CONTEXTS, COOCCUR, SynthSpec, make_image
from harness.synth.dataset import SynthDataset


def test_same_spec_same_images_and_splits_differ():
    spec = SynthSpec()
    a, b = make_image(spec, "train", 7), make_image(spec, "train", 7)
    for x, y in zip(a[:3], b[:3], strict=True):
        np.testing.assert_array_equal(x, y)
    assert a[3].objects == b[3].objects
    assert not np.array_equal(a[0], make_image(spec, "eval", 7)[0])
    assert not np.array_equal(a[0], make_image(SynthSpec(seed=1), "train", 7)[0])


def test_cooccurrence_rate_follows_p_cooccur():
    for p in (0.8, 0.2):
        spec = SynthSpec(p_cooccur=p)
        objs = [o for i in range(300) for o in make_image(spec, "train", i)[3].objects]
        rate = np.mean([o["context"] == COOCCUR[o["class"]] for o in objs])
        # a random context hits the co-occurring one 1/5 of the time: p + (1-p)/5
        assert abs(rate - (p + (1 - p) / len(CONTEXTS))) < 0.06


def test_dataset_labels_match_masks_and_context_map(tmp_path):
    ds = SynthDataset(SynthSpec(n_eval=20), "eval", tmp_path)
    again = SynthDataset(SynthSpec(n_eval=20), "eval", tmp_path)  # from the .npz cache
    for i in range(len(ds)):
        present = sorted(set(np.unique(ds.mask(i))) - {0})
        assert list(np.nonzero(ds.labels(i))[0] + 1) == present
        assert [CLASSES.index(o["class"]) + 1 for o in ds.scenes[i].objects] == present
        assert (ds.context_map(i)[ds.mask(i) > 0] == -1).all()  # objects are not context
        np.testing.assert_array_equal(ds.image(i), again.image(i))
    assert not SynthDataset(SynthSpec(n_train=8), "train", tmp_path).has_masks
