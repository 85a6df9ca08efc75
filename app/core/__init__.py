"""digitpad's core: images in, digits out. Preprocessing, segmentation and the classifier, with
no web framework in sight: the API, the command line and the benchmarks all call this."""
