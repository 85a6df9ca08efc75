"""digitpad's core: images in, digits out. Preprocessing, segmentation of numbers, the
classifiers and explanations, with no web framework in sight: the API, the command line, the
evaluation scripts and training's data all call this."""
