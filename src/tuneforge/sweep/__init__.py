"""`tuneforge sweep`: a hyper-parameter search on Optuna whose trials are real `tuneforge train` jobs.

spec.py reads sweep.yaml; submit.py queues a sweep as a job; driver.py runs the study (ask → train job → tell),
reading each trial's metric (metric.py; task_eval.py for eval:<task>); study.py builds the sampler and pruner and
tells a trial's process how to report; results.py reads the stored study back (rows, best trial); report.py writes
trials.csv, best.yaml and the importances; folder.py names the sweep folder's files. The study lives in
`<sweep folder>/study.sqlite`, so a killed sweep continues where it stopped.
"""
