"""Training and evaluation data: the dataset builder (`etok-tools data`), its sources, synthetic
clips, the frame codec of the stored sets, the clip sampler and the held-out evaluation."""
